using System.Net;
using Starling.Xml;

namespace Starling.Server.Sessions;

/// <summary>
/// What a bound <see cref="C2sSession"/> needs of the connection under it: queue an element, close, and a few facts
/// for logs and timers. TCP (<see cref="C2sStream"/>) is the one transport today; BOSH and WebSocket will be others.
/// A session outlives its transport when XEP-0198 resumption keeps it (<see cref="ISessionResumption"/>).
/// </summary>
public interface IClientTransport
{
    string ConnectionId { get; }

    EndPoint? RemoteEndPoint { get; }

    bool IsSecure { get; }

    /// <summary>True once the transport started closing: it accepts nothing more.</summary>
    bool IsClosed { get; }

    /// <summary>Queues a stanza or nonza for the client. False when the transport is closing (the caller keeps or re-routes it).</summary>
    bool Send(XmlElement element);

    /// <summary>Ends the stream with a stream error (RFC 6120 §4.9), optionally with an application-specific condition.</summary>
    void Close(string condition, string? text = null, XmlElement? applicationCondition = null);

    /// <summary>True while the transport's outbound queue has room for another large stanza.</summary>
    bool HasQueueRoom { get; }

    /// <summary>Waits until the outbound queue drained to half; false when the transport ended or the wait timed out.</summary>
    Task<bool> WaitForQueueRoomAsync(TimeSpan timeout);
}

/// <summary>
/// XEP-0198 resumption's part in a session's end, set on the session by the stream management module while it is
/// enabled: whether a lost connection leaves the session waiting for a resume (hibernating) instead of ending it, and
/// which of the stanzas a transport never wrote it already holds in its unacknowledged queue (so they are not
/// re-routed twice).
/// </summary>
public interface ISessionResumption
{
    /// <summary>Removes from <paramref name="undelivered"/> what the module holds and will resend or re-route itself.</summary>
    void Claim(List<XmlElement> undelivered);

    /// <summary>
    /// The transport was lost (no closing handshake). True: the session stays bound without a transport until it is
    /// resumed or its hibernation ends (the module then ends it); false: it ends now.
    /// </summary>
    bool TryHibernate(C2sSession session, IClientTransport lost);

    /// <summary>
    /// The session ended (after SessionClosed): every unacknowledged message goes to another resource or offline
    /// storage, and every pending delivery receipt learns that the client never acknowledged its stanza.
    /// </summary>
    ValueTask EndedAsync(C2sSession session);
}

/// <summary>
/// Told once what became of a stanza delivered with <see cref="C2sSession.DeliverTracked"/>: the client acknowledged it
/// (XEP-0198), or the session ended without (the sender keeps it: an offline row stays stored for the next login).
/// Called on any thread; must not block.
/// </summary>
public interface IDeliveryReceipt
{
    void Acknowledged();

    void Unacknowledged();
}

/// <summary>Stream management's delivery with acknowledgement, set on a session while it is enabled.</summary>
public interface IStanzaAcknowledgements
{
    /// <summary>Delivers <paramref name="stanza"/>, completing <paramref name="receipt"/> later. False: not taken (the session ended).</summary>
    bool Deliver(C2sSession session, XmlElement stanza, IDeliveryReceipt receipt);

    /// <summary>True while the unacknowledged queue is at most half full: room for a producer of a long run (offline delivery).</summary>
    bool HasRoom { get; }

    /// <summary>Asks the client for an acknowledgement now (&lt;r/&gt;), e.g. after a run of offline messages.</summary>
    void RequestAck(C2sSession session);

    /// <summary>
    /// Asks for an acknowledgement and waits until the client acknowledged everything sent so far (a producer of a long
    /// run paces itself by it). False when the session ended or the wait timed out.
    /// </summary>
    Task<bool> WaitForAcknowledgementAsync(TimeSpan timeout);
}
