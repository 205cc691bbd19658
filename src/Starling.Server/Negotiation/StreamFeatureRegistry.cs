using Starling.Server.Sessions;
using Starling.Xml;

namespace Starling.Server.Negotiation;

/// <summary>Where a client stream is in negotiation (RFC 6120 §4.3.2): which &lt;stream:features/&gt; it is sent.</summary>
public enum StreamFeatureStage
{
    /// <summary>
    /// TLS is mandatory for the host and not negotiated yet. RFC 6120 §5.3.1: only STARTTLS is offered, so register
    /// nothing else here.
    /// </summary>
    TlsRequired,

    /// <summary>Before authentication, TLS done or optional: STARTTLS when optional, SASL mechanisms, XEP-0440 channel binding.</summary>
    Unauthenticated,

    /// <summary>After SASL (the restarted stream, RFC 6120 §6.4.6): resource binding, legacy session, roster versioning, caps…</summary>
    Authenticated,
}

/// <summary>
/// The stream features of each stage, declared by the code that owns them, each with an order (lower first; equal
/// orders keep the order of registration). A provider returns its element for this stream, or null to offer nothing.
/// Filled at start; a registration publishes a new array, so building the features takes no lock and no look-up.
/// </summary>
public sealed class StreamFeatureRegistry
{
    /// <summary>Orders of the features negotiation owns (C2sStream), for placing others around them.</summary>
    public const int StartTlsOrder = 100;
    public const int MechanismsOrder = 200;
    public const int ChannelBindingOrder = 300;
    public const int BindOrder = 100;
    public const int SessionOrder = 200;

    /// <summary>XEP-0198 stream management, after bind and session (as Prosody and ejabberd list it).</summary>
    public const int StreamManagementOrder = 300;

    /// <summary>The order of a feature registered without one (after the negotiation's own: bind, session).</summary>
    public const int DefaultOrder = 1000;

    private readonly Lock _gate = new();
    private readonly Entry[][] _stages = [[], [], []];

    private readonly record struct Entry(int Order, Func<C2sStream, XmlElement?> Provider);

    /// <exception cref="ArgumentOutOfRangeException"><paramref name="stage"/> is not a stage.</exception>
    public void Add(StreamFeatureStage stage, int order, Func<C2sStream, XmlElement?> provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        if ((uint)stage >= (uint)_stages.Length) throw new ArgumentOutOfRangeException(nameof(stage));
        lock (_gate)
        {
            var old = _stages[(int)stage];
            var entries = new Entry[old.Length + 1];
            int i = 0;
            for (; i < old.Length && old[i].Order <= order; i++) entries[i] = old[i];
            entries[i] = new Entry(order, provider);
            for (; i < old.Length; i++) entries[i + 1] = old[i];
            Volatile.Write(ref _stages[(int)stage], entries);
        }
    }

    /// <summary>Adds the features of <paramref name="stage"/> for <paramref name="session"/> to &lt;stream:features/&gt;, in order.</summary>
    public void AddTo(XmlElement features, StreamFeatureStage stage, C2sStream session)
    {
        foreach (var entry in Volatile.Read(ref _stages[(int)stage]))
        {
            if (entry.Provider(session) is { } feature) features.Add(feature);
        }
    }
}
