using System.Net;
using Microsoft.Extensions.Logging;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Sessions;

/// <summary>
/// A bound client session (RFC 6120 §7): what the session directory, the router and modules hold. It is apart from the
/// connection under it (<see cref="IClientTransport"/>; negotiation happens there, in <see cref="C2sStream"/>), so it can
/// outlive a lost connection while XEP-0198 resumption waits for the client, and run over other transports later.
/// Stanzas from the client arrive through <see cref="HandleStanzaAsync"/> in order, from its transport's read loop;
/// stanzas for the client arrive through <see cref="Deliver"/> from any thread.
/// </summary>
/// <remarks>
/// "The stream ended" is two events here: the transport is gone (<see cref="TransportClosedAsync"/>) and the session
/// ended (<see cref="EndAsync"/>: unbound, modules' SessionClosed, queued messages re-routed). Without stream
/// management they happen together; with it a lost connection leaves the session hibernating until it is resumed on a
/// new transport or its time is up.
/// </remarks>
public sealed class C2sSession
{
    private readonly ILogger _log;
    private IClientTransport? _transport;   // null while hibernating (and after the end)
    private string _connectionId;            // the last transport's, for logs
    private object?[]? _slots;               // module state (Get/Set), allocated on first use
    private Pipeline.OutgoingFilterChain? _outgoing; // null: no outgoing filters, one check per stanza
    private string? _lastToText;
    private Jid? _lastTo;
    private int _ending; // 1 once the server decided to end the session: its close is not a lost connection
    private int _ended;  // 1 once EndAsync ran
    private uint _received; // stanzas received from the client (XEP-0198 counts from here; wraps at 2^32)

    internal C2sSession(XmppServer server, IClientTransport transport, string domain, Modules.HostModules? hostModules)
    {
        Server = server;
        _log = server.LoggerFactory.CreateLogger<C2sSession>();
        _transport = transport;
        _connectionId = transport.ConnectionId;
        Domain = domain;
        HostModules = hostModules;
    }

    public XmppServer Server { get; }

    /// <summary>The session's host.</summary>
    public string Domain { get; }

    /// <summary>What the session's host offers (its modules, resolved at start).</summary>
    public Modules.HostModules? HostModules { get; }

    /// <summary>The bound full JID (set by <see cref="SessionManager.Bind"/>).</summary>
    public Jid? Jid { get; internal set; }

    /// <summary>The connection the session runs over now; null while it hibernates (XEP-0198) and after it ended.</summary>
    public IClientTransport? Transport => Volatile.Read(ref _transport);

    /// <summary>The current (or last) transport's connection id, for logs.</summary>
    public string ConnectionId => Volatile.Read(ref _connectionId);

    public EndPoint? RemoteEndPoint => Transport?.RemoteEndPoint;

    public bool IsSecure => Transport?.IsSecure ?? false;

    /// <summary>True once the session ended, or its transport is closing and nothing will keep the session (XEP-0198 resumption can).</summary>
    public bool IsClosed => Volatile.Read(ref _ended) != 0 || (Transport is { } t && t.IsClosed && (Resumption is null || Volatile.Read(ref _ending) != 0));

    /// <summary>Bound and not ended.</summary>
    public bool IsBound => Jid is not null && Volatile.Read(ref _ended) == 0;

    /// <summary>Bound, not ended, without a transport: waiting for a XEP-0198 resume.</summary>
    public bool IsHibernating => Jid is not null && Volatile.Read(ref _ended) == 0 && Transport is null;

    /// <summary>True between initial available presence and unavailable presence (RFC 6121 §4.2, §4.5).</summary>
    public bool IsAvailable { get; internal set; }

    /// <summary>Priority of the last available presence (RFC 6121 §4.7.2.3).</summary>
    public int Priority { get; internal set; }

    /// <summary>The last available presence broadcast, as sent (with 'from').</summary>
    public XmlElement? Presence { get; internal set; }

    /// <summary>Set by the server timer once it has pinged this silent client.</summary>
    internal bool IdlePinged { get; set; }

    /// <summary>Stanzas received from the client so far, modulo 2^32 (XEP-0198 §4 'h' counts from its value at &lt;enable/&gt;).</summary>
    public uint StanzasReceived => Volatile.Read(ref _received);

    /// <summary>XEP-0198's part in this session's end, while stream management is enabled (null otherwise).</summary>
    public ISessionResumption? Resumption { get; set; }

    /// <summary>Delivery with acknowledgement, while stream management is enabled (null otherwise; see <see cref="DeliverTracked"/>).</summary>
    public IStanzaAcknowledgements? Acknowledgements { get; set; }

    /// <summary>
    /// Sends a XEP-0199 ping from the server through the router, tracked (IqTracker) so the answer reaches a waiter
    /// instead of being dropped; any answer (even an error) already counts as activity. The idle timeout itself stays with
    /// the server timer. When too many server requests are waiting the ping goes out untracked, as before.
    /// </summary>
    internal void SendPing()
    {
        var jid = Jid;
        if (jid is null) return;
        var iq = new XmlElement("iq", Namespaces.Client);
        iq.SetAttribute("type", "get");
        iq.AddElement("ping", Namespaces.Ping);
        var host = Server.HostJid(jid.Domain);
        var outcome = Server.IqTracker.SendAsync(iq, host, jid, TimeSpan.FromSeconds(Server.Options.C2s.IdleTimeoutSeconds));
        if (outcome.IsCompletedSuccessfully && outcome.Result.Kind == Pipeline.IqOutcomeKind.Refused)
        {
            iq.SetAttribute("id", "ping-" + XmppStream.NewId()[..8]).SetAttribute("from", host.ToString()).SetAttribute("to", jid.ToString());
            Deliver(iq);
        }
    }

    // ---- per-session module state (typed slots) ----

    /// <summary>The module state in <paramref name="key"/>'s slot (default when never set). Lock-free; any thread.</summary>
    public T? Get<T>(Pipeline.SessionKey<T> key) => Pipeline.SessionSlots.Get(Volatile.Read(ref _slots), key);

    /// <summary>Sets the module state in <paramref name="key"/>'s slot (copy and swap: no lock, any thread).</summary>
    public void Set<T>(Pipeline.SessionKey<T> key, T? value) => Pipeline.SessionSlots.Set(ref _slots, key, value);

    // ---- delivery to the client, through the session's outgoing filters ----

    /// <summary>
    /// Adds a filter that sees every stanza before it is queued for this client (higher priorities first; CSI, stream
    /// management counting). A session without filters pays one null check per stanza.
    /// </summary>
    public void AddOutgoingFilter(Pipeline.OutgoingFilter filter, int priority = 0)
    {
        // Copy and swap: delivery on other threads reads the chain without a lock, and a session carries no lock object.
        while (true)
        {
            var current = Volatile.Read(ref _outgoing);
            if (ReferenceEquals(Interlocked.CompareExchange(ref _outgoing, Pipeline.OutgoingFilterChain.With(current, filter, priority), current), current)) return;
        }
    }

    public void RemoveOutgoingFilter(Pipeline.OutgoingFilter filter)
    {
        while (true)
        {
            var current = Volatile.Read(ref _outgoing);
            if (ReferenceEquals(Interlocked.CompareExchange(ref _outgoing, Pipeline.OutgoingFilterChain.Without(current, filter), current), current)) return;
        }
    }

    /// <summary>Hands a stanza to this client. False if the session is closing (the caller re-routes).</summary>
    public bool Deliver(XmlElement stanza)
    {
        var filters = Volatile.Read(ref _outgoing);
        if (filters is not null && !filters.Run(this, ref stanza)) return true; // held: the filter owns it now
        return SendStanza(stanza);
    }

    /// <summary>
    /// Hands on a stanza that <paramref name="heldBy"/> held: the filters after it run, then it is queued. False if the
    /// session is closing (the filter re-routes it).
    /// </summary>
    public bool Release(Pipeline.OutgoingFilter heldBy, XmlElement stanza)
    {
        var filters = Volatile.Read(ref _outgoing);
        if (filters is not null && !filters.Run(this, ref stanza, filters.IndexOf(heldBy) + 1)) return true;
        return SendStanza(stanza);
    }

    /// <summary>
    /// Delivers a stanza whose sender waits to know that the client has it (offline storage deletes a row only then).
    /// With stream management the receipt completes when the client acknowledges it or the session ends without; without,
    /// it completes as soon as the stanza is queued (as before stream management existed). False: not taken, the receipt
    /// is not used.
    /// </summary>
    public bool DeliverTracked(XmlElement stanza, IDeliveryReceipt receipt)
    {
        if (Acknowledgements is { } acks) return acks.Deliver(this, stanza, receipt);
        if (!Deliver(stanza)) return false;
        receipt.Acknowledged();
        return true;
    }

    private bool SendStanza(XmlElement stanza) => Volatile.Read(ref _transport) is { } transport && transport.Send(stanza);

    /// <summary>True while the transport's outbound queue has room for another large stanza (false without a transport).</summary>
    public bool HasQueueRoom => Transport?.HasQueueRoom ?? false;

    /// <summary>
    /// For a producer of a long run of stanzas to this one client (offline delivery): waits until the outbound queue is
    /// at most half full. False without a transport, when it ended, or when it did not drain in time.
    /// </summary>
    public Task<bool> WaitForQueueRoomAsync(TimeSpan timeout) => Transport is { } t ? t.WaitForQueueRoomAsync(timeout) : Task.FromResult(false);

    /// <summary>
    /// Ends the session with a stream error (RFC 6120 §4.9): the transport closes, and the session ends with it rather
    /// than hibernating (the server asked for this end). A hibernating session ends at once.
    /// </summary>
    public void Close(string condition, string? text = null, XmlElement? applicationCondition = null)
    {
        Volatile.Write(ref _ending, 1);
        if (Transport is { } transport) transport.Close(condition, text, applicationCondition);
        else _ = EndAsync([]).AsTask();
    }

    // ---- stanzas from the client (RFC 6120 §8, RFC 6121) ----

    /// <summary>A stanza (message, presence, iq in jabber:client) from the client, on its transport's read loop.</summary>
    internal async ValueTask HandleStanzaAsync(XmlElement stanza)
    {
        _received++; // read and written on the transport's read loop only
        var jid = Jid!;
        // RFC 6120 §8.1.2.1: the server stamps 'from' with the full JID; a client may only send its own address.
        var from = stanza.GetAttribute("from");
        if (from is not null && from != jid.ToString() && from != jid.Bare.ToString())
        {
            if (!Xmpp.Jid.TryParse(from, out var claimed) || (claimed != jid && claimed != jid.Bare))
            {
                Close(StreamErrors.InvalidFrom, "'from' does not match the authenticated address");
                return;
            }
        }
        stanza.SetAttribute("from", jid.ToString());

        var toText = stanza.GetAttribute("to");
        Jid? to = null;
        if (toText is not null)
        {
            // A conversation repeats its 'to': reuse the last parsed address instead of parsing it per stanza.
            if (string.Equals(toText, _lastToText, StringComparison.Ordinal)) to = _lastTo;
            else if (Xmpp.Jid.TryParse(toText, out to, out var error))
            {
                _lastToText = toText;
                _lastTo = to;
            }
            else
            {
                Server.Router.Bounce(stanza, jid, null, StanzaErrorCondition.JidMalformed, $"invalid 'to' address: {error}");
                return;
            }
        }

        switch (stanza.Name)
        {
            case "iq":
                await HandleIqAsync(stanza, to);
                break;
            case "message":
                // RFC 6121 §8.1.1.1: a message without 'to' is for the sender's own bare JID.
                await PostAsync(Pipeline.StanzaKind.Message, stanza, to);
                break;
            case "presence":
                // Without 'to' a broadcast (the presence module handles pre-presence/bare); unhandled, it goes nowhere.
                await PostAsync(Pipeline.StanzaKind.Presence, stanza, to);
                break;
        }
    }

    /// <summary>
    /// The stanza's pre-event (pre-message/bare…) in this session's context, then, unless a handler took it, the
    /// router. A stanza without 'to' is addressed to the sender's bare JID (RFC 6120 §10.3.3, RFC 6121 §8.1.1.1).
    /// </summary>
    private async ValueTask PostAsync(Pipeline.StanzaKind kind, XmlElement stanza, Jid? to)
    {
        var jid = Jid!;
        var target = to ?? jid.Bare;
        bool explicitTo = to is not null;
        var pipeline = Server.Modules.Pipeline;
        var e = Pipeline.StanzaEvent.For(Pipeline.StanzaStage.Pre, kind, target);
        if (pipeline.HandlerCount(e) > 0 && await pipeline.FireAsync(e, new Pipeline.StanzaContext(stanza, jid, target, this, explicitTo))) return;
        // Presence without 'to' that no handler took (the presence module disabled) has nobody to go to.
        if (kind == Pipeline.StanzaKind.Presence && !explicitTo) return;
        await Server.Router.RouteAsync(kind, stanza, jid, target, explicitTo);
    }

    private async ValueTask HandleIqAsync(XmlElement iq, Jid? to)
    {
        var type = iq.GetAttribute("type");
        var id = iq.GetAttribute("id");
        if (id is null || type is not ("get" or "set" or "result" or "error"))
        {
            // RFC 6120 §8.2.3: id and a valid type are required.
            if (type is not ("result" or "error")) Server.Router.Bounce(iq, Jid!, to, StanzaErrorCondition.BadRequest, "an iq needs an 'id' and a type of get, set, result or error");
            return;
        }
        if (to is null && type == "set" && iq.Element("session", Namespaces.Session) is not null)
        {
            // Legacy session establishment (RFC 3921 §3): nothing to do but say yes.
            var result = new XmlElement("iq", Namespaces.Client);
            result.SetAttribute("id", id).SetAttribute("type", "result").SetAttribute("to", Jid!.ToString());
            Deliver(result);
            return;
        }
        await PostAsync(Pipeline.StanzaKind.Iq, iq, to);
    }

    // ---- transports: lost, replaced ----

    /// <summary>
    /// XEP-0198 resumption: <paramref name="transport"/> (a new, authenticated connection of the same account) takes
    /// the place of the current one, if any. The caller holds the module's lock, so no stanza is queued in between.
    /// Returns the transport it replaced (still open when the old connection seemed alive), or null.
    /// </summary>
    public IClientTransport? AttachTransport(IClientTransport transport)
    {
        var old = Interlocked.Exchange(ref _transport, transport);
        Volatile.Write(ref _connectionId, transport.ConnectionId);
        IdlePinged = false;
        return old;
    }

    /// <summary>Hibernation: the session lets go of its lost transport (only if it is still the current one).</summary>
    public bool DetachTransport(IClientTransport lost) =>
        ReferenceEquals(Interlocked.CompareExchange(ref _transport, null, lost), lost);

    /// <summary>
    /// The transport ended; <paramref name="undelivered"/> holds the stanzas it queued but never wrote. When the
    /// connection was <paramref name="lost"/> (no closing handshake) and stream management keeps the session, it
    /// hibernates; otherwise the session ends. A transport a resumption replaced only hands back its stanzas.
    /// </summary>
    internal async ValueTask TransportClosedAsync(IClientTransport transport, List<XmlElement> undelivered, bool lost)
    {
        Resumption?.Claim(undelivered);
        if (!ReferenceEquals(Transport, transport))
        {
            await RerouteAsync(undelivered);
            return;
        }
        if (lost && Volatile.Read(ref _ending) == 0 && !Server.IsStopping && Resumption is { } resumption && resumption.TryHibernate(this, transport))
        {
            _log.LogInformation("{Connection}: connection of {Jid} lost; the session waits for a resume", ConnectionId, Jid);
            await RerouteAsync(undelivered);
            return;
        }
        await EndAsync(undelivered);
    }

    /// <summary>
    /// Ends the session once: unbound, SessionClosed raised (presence unavailable goes out), then the messages that were
    /// queued for the client but never written are re-routed, and stream management re-routes what it holds. Never throws.
    /// </summary>
    public async ValueTask EndAsync(List<XmlElement> undelivered)
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            await RerouteAsync(undelivered);
            return;
        }
        Volatile.Write(ref _ending, 1);
        var jid = Jid;
        if (jid is null) return;
        try
        {
            bool wasBound = Server.Sessions.Unbind(this);
            if (wasBound)
            {
                _log.LogInformation("{Connection}: session {Jid} ended", ConnectionId, jid);
                await Server.Modules.RaiseSessionClosedAsync(this);
            }
        }
        catch (Exception ex)
        {
            _log.LogError(ex, "{Connection}: error while ending the session of {Jid}", ConnectionId, jid);
        }
        IsAvailable = false;
        await RerouteAsync(undelivered);
        if (Resumption is { } resumption)
        {
            try
            {
                await resumption.EndedAsync(this);
            }
            catch (Exception ex)
            {
                _log.LogError(ex, "{Connection}: re-routing the unacknowledged stanzas of {Jid} failed", ConnectionId, jid);
            }
        }
        Interlocked.Exchange(ref _transport, null);
    }

    /// <summary>
    /// Stanzas that were queued for this client but never written: messages go to the account again (another
    /// resource, or offline storage) — RFC 6121 §8.5.3.2.1 treats them as addressed to the bare JID.
    /// </summary>
    internal async ValueTask RerouteAsync(List<XmlElement> undelivered)
    {
        var jid = Jid;
        if (jid is null) return;
        foreach (var stanza in undelivered)
        {
            if (stanza.Name != "message") continue;
            var type = stanza.GetAttribute("type") ?? "normal";
            if (type is "groupchat" or "error" or "headline") continue;
            var fromText = stanza.GetAttribute("from");
            var from = fromText is not null && Xmpp.Jid.TryParse(fromText, out var f) ? f : Server.HostJid(jid.Domain);
            try
            {
                await Server.Router.DeliverToBareAsync(stanza, from, jid.Bare, type);
            }
            catch (Exception ex)
            {
                // Issue #13: one message that cannot be re-routed must not strand the rest of the queue.
                _log.LogError(ex, "{Connection}: re-routing a queued message for {Jid} from {From} failed", ConnectionId, jid.Bare, from);
            }
        }
    }
}
