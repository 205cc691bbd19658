using System.Globalization;

namespace Starling.Server.Modules.Private;

/// <summary>Options of the private module (Modules:private), XEP-0049 Private XML Storage: per-user quotas.</summary>
public sealed class PrivateOptions : IModuleOptions
{
    /// <summary>Fragments (element name + namespace) stored per user; a new one past it gets resource-constraint.</summary>
    public int MaxFragments { get; set; } = 100;

    /// <summary>Largest fragment, in bytes (UTF-8); larger: not-acceptable.</summary>
    public int MaxFragmentBytes { get; set; } = 128 * 1024;

    public void Validate(string section, List<string> errors)
    {
        if (MaxFragments <= 0) errors.Add($"{section}:MaxFragments must be a positive number (is {MaxFragments.ToString(CultureInfo.InvariantCulture)})");
        if (MaxFragmentBytes <= 0) errors.Add($"{section}:MaxFragmentBytes must be a positive number (is {MaxFragmentBytes.ToString(CultureInfo.InvariantCulture)})");
    }
}
