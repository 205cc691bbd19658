using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Pipeline;

/// <summary>
/// What a stanza handler sees: the stanza ('from' stamped and trusted), its sender and addressee, and for pre-events
/// the local client session that sent it. A value: firing an event allocates nothing.
/// </summary>
public readonly struct StanzaContext(XmlElement stanza, Jid from, Jid to, C2sSession? origin = null, bool explicitTo = true)
{
    public XmlElement Stanza { get; } = stanza;

    public Jid From { get; } = from;

    /// <summary>The addressee; when the client sent no 'to', the sender's own bare JID (RFC 6120 §10.3.3, RFC 6121 §8.1.1.1).</summary>
    public Jid To { get; } = to;

    /// <summary>The local client session the stanza came from (pre-events); null at delivery and for server-made stanzas.</summary>
    public C2sSession? Origin { get; } = origin;

    /// <summary>False when the client sent no 'to' (a presence broadcast, an iq for its own account or the server).</summary>
    public bool ExplicitTo { get; } = explicitTo;
}

/// <summary>
/// A handler on a pipeline event. Returns true when it handled the stanza (the chain stops: Prosody's "return true"),
/// false to let the next handler, and finally the default, have it.
/// </summary>
/// <remarks>
/// Handlers run on the socket thread that received the stanza and must not block (see IModule). An exception is
/// contained by the pipeline: one log line, an error to the sender where one may be sent, the stream stays up.
/// </remarks>
public delegate ValueTask<bool> StanzaHandler(StanzaContext context);

/// <summary>How the pipeline tells a sender that a handler failed (the router's Bounce).</summary>
public delegate void StanzaBounce(StanzaContext context, StanzaErrorCondition condition, string? text);
