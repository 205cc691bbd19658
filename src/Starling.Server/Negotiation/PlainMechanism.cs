using System.Text;
using System.Text.Unicode;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Negotiation;

/// <summary>
/// SASL PLAIN (RFC 4616), checked against the stored SCRAM-SHA-256 credential. Offered over TLS, or without it only
/// where the host allows it (Hosts:AllowPlainWithoutTls).
/// </summary>
public sealed class PlainMechanism : ISaslMechanism
{
    /// <summary>Largest PLAIN message accepted (RFC 4616 §2: each field is at most 255 octets; generous for long passwords).</summary>
    public const int MaxMessageBytes = 8192;

    public string Name => "PLAIN";

    public bool IsOffered(ISaslStream stream) => stream.IsSecure || stream.Host.AllowPlainWithoutTls;

    public ISaslExchange Start(ISaslStream stream) => new PlainExchange();

    private sealed class PlainExchange : ISaslExchange
    {
        private bool _started;

        public async ValueTask<SaslStep> StepAsync(byte[] data, ISaslStream stream)
        {
            if (!_started)
            {
                _started = true;
                // RFC 6120 §6.4.2: no initial response — an empty challenge asks for it.
                if (data.Length == 0) return SaslStep.Challenge(null);
            }
            // RFC 4616 §2: [authzid] NUL authcid NUL passwd
            int first = Array.IndexOf(data, (byte)0);
            int second = first < 0 ? -1 : Array.IndexOf(data, (byte)0, first + 1);
            // Strict UTF-8 (RFC 4616 §2): checked up front rather than with a throwing decoder.
            if (first < 0 || second < 0 || data.Length > MaxMessageBytes || !Utf8.IsValid(data))
                return SaslStep.Fail("malformed-request");
            var authzid = Encoding.UTF8.GetString(data, 0, first);
            var authcid = Encoding.UTF8.GetString(data, first + 1, second - first - 1);
            var password = Encoding.UTF8.GetString(data, second + 1, data.Length - second - 1);

            var (local, account) = await stream.LookupAsync(authcid);
            if (!await stream.HoldForAccountAsync()) return SaslStep.Ended;
            if (account is not null) stream.Server.ScramStandIns.Observe(account.Sha256);
            // An unknown account costs the same PBKDF2 run as a known one, so the answer's timing does not tell them apart.
            var credential = account?.Sha256 ?? stream.Server.ScramStandIns.For(ScramHash.Sha256, stream.Host.Name, local ?? authcid);
            bool ok = credential.Verify(password) & account is not null;
            if (!ok) return SaslStep.Fail("not-authorized");
            return SaslStep.Succeed(local!, authzid.Length == 0 ? null : authzid, null);
        }
    }
}
