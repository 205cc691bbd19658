using Starling.Server.Configuration;
using Starling.Server.Storage;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Negotiation;

/// <summary>
/// A SASL mechanism the server offers (RFC 6120 §6, RFC 4422), registered in the <see cref="SaslMechanismRegistry"/> at
/// start. One instance serves every connection; the state of one attempt lives in the <see cref="ISaslExchange"/> it
/// starts.
/// </summary>
public interface ISaslMechanism
{
    /// <summary>The name in &lt;mechanism/&gt; and &lt;auth mechanism='…'/&gt; (RFC 4422 §3.1: upper-case letters, digits, '-', '_'; at most 20).</summary>
    string Name { get; }

    /// <summary>Whether this stream may use the mechanism now (TLS, channel binding, the host's options): offered in the features and accepted in &lt;auth/&gt; only then.</summary>
    bool IsOffered(ISaslStream stream);

    /// <summary>A new exchange for one authentication attempt on <paramref name="stream"/>.</summary>
    ISaslExchange Start(ISaslStream stream);
}

/// <summary>One authentication attempt: the mechanism's state between the client's messages.</summary>
public interface ISaslExchange
{
    /// <summary>
    /// Handles the client's next message (the initial response of &lt;auth/&gt;, then each &lt;response/&gt;; empty
    /// when the client sent none). Account look-ups and the per-account throttle go through <paramref name="stream"/>,
    /// so every mechanism is throttled and answers unknown accounts alike. Must not throw on client input.
    /// </summary>
    ValueTask<SaslStep> StepAsync(byte[] response, ISaslStream stream);
}

/// <summary>
/// What a mechanism sees of the stream being authenticated, and the session's services every mechanism must use:
/// <see cref="LookupAsync"/> (which also tells the throttle and `starling deluser` whom the attempt is for) and
/// <see cref="HoldForAccountAsync"/> (the per-account delay, before any credential is checked).
/// </summary>
public interface ISaslStream
{
    XmppServer Server { get; }

    /// <summary>The host the stream is for.</summary>
    HostOptions Host { get; }

    /// <summary>True once TLS is negotiated.</summary>
    bool IsSecure { get; }

    /// <summary>True when this stream offers channel binding (TLS, and C2s:ChannelBinding on): the -PLUS mechanisms then.</summary>
    bool OffersChannelBinding { get; }

    /// <summary>The channel-binding data of every type this stream advertises (XEP-0440), or null without channel binding.</summary>
    IReadOnlyList<ScramChannelBinding>? ChannelBindings();

    /// <summary>XEP-0474 §4.1: the mechanisms and channel-binding types this stream advertised, composed for the "h" attribute.</summary>
    string DowngradeProtection();

    /// <summary>
    /// The normalised localpart of <paramref name="username"/> (null if no account can have that name, RFC 7622 §3.3)
    /// and its account, if any. The attempt counts against that account from then on.
    /// </summary>
    ValueTask<SaslAccount> LookupAsync(string username);

    /// <summary>
    /// The per-account throttle: waits before the credentials are checked, or refuses the attempt (and answers the
    /// client itself). False: the attempt is over — return <see cref="SaslStep.Ended"/>.
    /// </summary>
    ValueTask<bool> HoldForAccountAsync();
}

/// <summary>The result of <see cref="ISaslStream.LookupAsync"/>: the normalised localpart and the stored account, either null.</summary>
public readonly record struct SaslAccount(string? Local, StoredAccount? Account);

public enum SaslStepKind
{
    /// <summary>Send a &lt;challenge/&gt; and wait for the client's &lt;response/&gt;.</summary>
    Challenge,

    /// <summary>Authenticated: send &lt;success/&gt; (RFC 6120 §6.4.6).</summary>
    Success,

    /// <summary>Send &lt;failure/&gt; with an RFC 6120 §6.5 condition; the attempt counts as failed.</summary>
    Failure,

    /// <summary>The attempt already ended (the throttle refused it, or the stream closed): nothing more to send.</summary>
    Ended,
}

/// <summary>The outcome of one <see cref="ISaslExchange.StepAsync"/>.</summary>
public readonly struct SaslStep
{
    private SaslStep(SaslStepKind kind, byte[]? data, string? account, string? authorizationId, string? condition, string? text)
    {
        Kind = kind;
        Data = data;
        Account = account;
        AuthorizationId = authorizationId;
        Condition = condition;
        Text = text;
    }

    public SaslStepKind Kind { get; }

    /// <summary>The challenge, or the additional data with success (e.g. SCRAM's server-final-message); null or empty for none.</summary>
    public byte[]? Data { get; }

    /// <summary>On success: the normalised localpart of the authenticated account on this host.</summary>
    public string? Account { get; }

    /// <summary>On success: the authorization identity the client asked for (null: act as the account itself).</summary>
    public string? AuthorizationId { get; }

    /// <summary>On failure: the RFC 6120 §6.5 condition element name.</summary>
    public string? Condition { get; }

    /// <summary>On failure: an optional human-readable &lt;text/&gt; (never client input).</summary>
    public string? Text { get; }

    public static SaslStep Ended => new(SaslStepKind.Ended, null, null, null, null, null);

    public static SaslStep Challenge(byte[]? data) => new(SaslStepKind.Challenge, data, null, null, null, null);

    public static SaslStep Succeed(string account, string? authorizationId, byte[]? additionalData) =>
        new(SaslStepKind.Success, additionalData, account, authorizationId, null, null);

    public static SaslStep Fail(string condition, string? text = null) => new(SaslStepKind.Failure, null, null, null, condition, text);
}
