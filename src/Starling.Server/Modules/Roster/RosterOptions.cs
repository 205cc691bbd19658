using System.Globalization;

namespace Starling.Server.Modules.Roster;

/// <summary>Options of the roster module (Modules:roster), RFC 6121 §2: per-user quotas, far above what a client stores.</summary>
public sealed class RosterOptions : IModuleOptions
{
    /// <summary>Roster items per user; a roster set adding one more gets resource-constraint.</summary>
    public int MaxItems { get; set; } = 5_000;

    /// <summary>Longest roster item name, in characters; longer: not-acceptable (RFC 6121 §2.3.3).</summary>
    public int MaxNameLength { get; set; } = 1_024;

    /// <summary>Groups on one roster item; more: not-acceptable.</summary>
    public int MaxGroups { get; set; } = 64;

    /// <summary>Longest roster group name, in characters; longer: not-acceptable (RFC 6121 §2.3.3).</summary>
    public int MaxGroupNameLength { get; set; } = 1_024;

    public void Validate(string section, List<string> errors)
    {
        Positive(errors, section, "MaxItems", MaxItems);
        Positive(errors, section, "MaxNameLength", MaxNameLength);
        Positive(errors, section, "MaxGroups", MaxGroups);
        Positive(errors, section, "MaxGroupNameLength", MaxGroupNameLength);
    }

    private static void Positive(List<string> errors, string section, string key, int value)
    {
        if (value <= 0) errors.Add($"{section}:{key} must be a positive number (is {value.ToString(CultureInfo.InvariantCulture)})");
    }
}
