using System.Globalization;

namespace Starling.Server.Modules.Presence;

/// <summary>Options of the presence module (Modules:presence), RFC 6121 §4.</summary>
public sealed class PresenceOptions : IModuleOptions
{
    /// <summary>Entities one session may have sent directed presence to (RFC 6121 §4.6); one more gets resource-constraint.</summary>
    public int MaxDirectedPresence { get; set; } = 1_000;

    public void Validate(string section, List<string> errors)
    {
        if (MaxDirectedPresence <= 0) errors.Add($"{section}:MaxDirectedPresence must be a positive number (is {MaxDirectedPresence.ToString(CultureInfo.InvariantCulture)})");
    }
}
