using System.Globalization;

namespace Starling.Server.Modules.Presence;

/// <summary>Options of the presence module (Modules:presence), RFC 6121 §3 and §4.</summary>
public sealed class PresenceOptions : IModuleOptions
{
    /// <summary>Entities one session may have sent directed presence to (RFC 6121 §4.6); one more gets resource-constraint.</summary>
    public int MaxDirectedPresence { get; set; } = 1_000;

    /// <summary>
    /// Subscription requests stored for one user and not yet answered (pending in, RFC 6121 §3.1.3); a request from one
    /// more contact is refused with resource-constraint to its sender.
    /// </summary>
    public int MaxPendingSubscriptions { get; set; } = 1_000;

    public void Validate(string section, List<string> errors)
    {
        Positive(errors, section, "MaxDirectedPresence", MaxDirectedPresence);
        Positive(errors, section, "MaxPendingSubscriptions", MaxPendingSubscriptions);
    }

    private static void Positive(List<string> errors, string section, string key, int value)
    {
        if (value <= 0) errors.Add($"{section}:{key} must be a positive number (is {value.ToString(CultureInfo.InvariantCulture)})");
    }
}
