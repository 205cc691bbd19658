using Starling.Xmpp.Sasl;

namespace Starling.Server.Negotiation;

/// <summary>
/// SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), and their -PLUS variants with channel binding (RFC 5802 §6,
/// RFC 5929 tls-server-end-point, RFC 9266 tls-exporter), with the XEP-0474 downgrade-protection "h" attribute.
/// </summary>
public sealed class ScramMechanism : ISaslMechanism
{
    private readonly ScramHash _hash;
    private readonly bool _plus;

    public ScramMechanism(ScramHash hash, bool plus)
    {
        _hash = hash;
        _plus = plus;
        Name = ScramServer.GetMechanismName(hash, plus);
    }

    public string Name { get; }

    // The plain variants are always offered: SCRAM never sends the password, so it is fine without TLS.
    public bool IsOffered(ISaslStream stream) => !_plus || stream.OffersChannelBinding;

    public ISaslExchange Start(ISaslStream stream)
    {
        // The data of every type advertised is handed over, the client names one in its GS2 header; even the plain
        // variants get it, so a client that says "y" (it could have bound but thinks we cannot) is caught (RFC 5802 §6).
        var scram = new ScramServer(_hash, _plus, stream.ChannelBindings())
        {
            // XEP-0474 §4.1: sign what this stream advertised.
            DowngradeProtection = stream.DowngradeProtection(),
        };
        return new ScramExchange(scram, _hash);
    }

    private sealed class ScramExchange(ScramServer scram, ScramHash hash) : ISaslExchange
    {
        private bool _started;
        private string? _account;

        public async ValueTask<SaslStep> StepAsync(byte[] response, ISaslStream stream)
        {
            if (!_started)
            {
                _started = true;
                // RFC 6120 §6.4.2: no initial response — an empty challenge asks for it.
                if (response.Length == 0) return SaslStep.Challenge(null);
            }
            if (scram.AwaitsClientFirst)
            {
                if (scram.HandleClientFirst(response) != SaslStepResult.Continue)
                    return SaslStep.Fail(scram.FailureCondition ?? ScramServer.MalformedRequest);
                var (local, account) = await stream.LookupAsync(scram.Username!);
                _account = local;
                ScramCredential? credential = account is null ? null : hash == ScramHash.Sha256 ? account.Sha256 : account.Sha1;
                ScramCredential? standIn = null;
                // An unknown account gets stand-in credentials of the same shape, so the challenge does not tell them apart.
                if (credential is null) standIn = stream.Server.ScramStandIns.For(hash, stream.Host.Name, local ?? scram.Username!);
                else stream.Server.ScramStandIns.Observe(credential);
                return SaslStep.Challenge(scram.CreateServerFirst(credential, standIn));
            }
            if (!scram.AwaitsClientFinal) return SaslStep.Fail(ScramServer.MalformedRequest, "the exchange is over");
            if (!await stream.HoldForAccountAsync()) return SaslStep.Ended;
            var result = scram.HandleClientFinal(response, out var serverFinal);
            // A stand-in never verifies, so success implies a known account (and so a localpart).
            if (result != SaslStepResult.Success || _account is null) return SaslStep.Fail(scram.FailureCondition ?? ScramServer.NotAuthorized);
            return SaslStep.Succeed(_account, scram.AuthorizationId, serverFinal);
        }
    }
}
