using System.Globalization;

namespace Starling.Server.Modules.Offline;

/// <summary>Options of the offline module (Modules:offline), XEP-0160 offline message storage.</summary>
public sealed class OfflineOptions : IModuleOptions
{
    /// <summary>Offline messages kept per user; past it senders get service-unavailable (XEP-0160 §3). 0 keeps none.</summary>
    public int QuotaMessages { get; set; } = 1_000;

    /// <summary>Bytes of offline messages kept per user (UTF-8 of the stored XML), besides the count; past it senders get service-unavailable.</summary>
    public long QuotaBytes { get; set; } = 16 * 1024 * 1024;

    public void Validate(string section, List<string> errors)
    {
        if (QuotaMessages < 0) errors.Add($"{section}:QuotaMessages must be 0 or more (is {QuotaMessages.ToString(CultureInfo.InvariantCulture)})");
        if (QuotaBytes < 0) errors.Add($"{section}:QuotaBytes must be 0 or more (is {QuotaBytes.ToString(CultureInfo.InvariantCulture)})");
    }
}
