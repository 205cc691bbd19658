using System.Text;

namespace Starling.Xmpp.Sasl;

/// <summary>
/// One channel-binding type a connection can provide for SCRAM-*-PLUS (RFC 5802 §6), with its data: e.g.
/// "tls-exporter" (RFC 9266) or "tls-server-end-point" (RFC 5929 §4).
/// </summary>
public sealed record ScramChannelBinding(string Type, byte[] Data)
{
    /// <summary>RFC 9266: keying material exported from TLS (label "EXPORTER-Channel-Binding", 32 bytes).</summary>
    public const string TlsExporter = "tls-exporter";

    /// <summary>RFC 5929 §4: hash of the server's certificate.</summary>
    public const string TlsServerEndPoint = "tls-server-end-point";
}

/// <summary>
/// XEP-0474 (SASL SCRAM Downgrade Protection, version 0.5.0) §4: the server puts the hash of the SASL mechanisms and
/// channel-binding types it advertised into its server-first-message as the optional attribute "h" (RFC 5802 §5.1
/// allows extensions), so the list is covered by the SCRAM signatures and a client can tell a MITM stripped from it.
/// </summary>
public static class ScramDowngradeProtection
{
    /// <summary>
    /// The string S of XEP-0474 §4.1: the advertised mechanisms sorted ("i;octet", i.e. ordinal on ASCII) and joined by
    /// %x1E; then, only when XEP-0440 channel-binding types were advertised, %x1F and the sorted types joined by %x1E.
    /// </summary>
    public static string Compose(IEnumerable<string> mechanisms, IEnumerable<string>? channelBindingTypes)
    {
        ArgumentNullException.ThrowIfNull(mechanisms);
        var sb = new StringBuilder(128);
        AppendSorted(sb, mechanisms);
        if (channelBindingTypes is not null)
        {
            sb.Append('\u001F');
            AppendSorted(sb, channelBindingTypes);
        }
        return sb.ToString();
    }

    /// <summary>The value of "h": base64 of the SCRAM mechanism's hash of S (XEP-0474 §4.1 step 5).</summary>
    public static string HashValue(ScramHash hash, string composed) =>
        Convert.ToBase64String(ScramPrimitives.H(hash, Encoding.UTF8.GetBytes(composed)));

    private static void AppendSorted(StringBuilder sb, IEnumerable<string> items)
    {
        var list = new List<string>(items);
        list.Sort(StringComparer.Ordinal);
        for (int i = 0; i < list.Count; i++)
        {
            if (i > 0) sb.Append('\u001E');
            sb.Append(list[i]);
        }
    }
}
