using System.Globalization;
using Microsoft.Extensions.Logging;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.StreamManagement;

/// <summary>
/// XEP-0198 on one session: the counts (arithmetic modulo 2^32, §4), the queue of stanzas sent and not yet acknowledged
/// (each with when it arrived and, for an offline row, its receipt), and the session's phase — live, hibernating after
/// a lost connection, ended. Filled by an outgoing filter that runs last on the session, so it counts exactly what goes
/// out; it queues the stanza on the transport while it holds its lock, so the wire order is the queue's order and an
/// 'h' always acknowledges the oldest entries.
/// </summary>
internal sealed class StreamManagementState : ISessionResumption, IStanzaAcknowledgements
{
    // Never modified after creation, so one instance is queued on every stream that is asked for an ack.
    private static readonly XmlElement RequestElement = new("r", Namespaces.StreamManagement);

    private readonly StreamManagementModule _module;
    private readonly OutgoingFilter _filter;
    private readonly Lock _sync = new();
    private Entry[] _ring = new Entry[8];
    private int _head;
    private int _count;
    private long _bytes;                // EstimateBytes of the queued stanzas
    private uint _sent;                 // stanzas counted since <enabled/> (our side's 'h')
    private uint _acked;                // the client's last 'h'
    private uint _inboundBase;          // session.StanzasReceived when enabled: the client's 'h' is the difference
    private uint _sentAtLastRequest;
    private bool _requestPending;       // an <r/> is out and not answered yet
    private Phase _phase = Phase.Live;
    private int _hibernation;           // generation of the current hibernation (its timer ends only its own)
    private List<(XmlElement Stanza, IDeliveryReceipt Receipt)>? _pendingReceipts;
    private TaskCompletionSource<bool>? _drained;
    // What the client sends, by acknowledgement round: the open one (until its next <r/>), then the closed ones not yet
    // answered, oldest first. A round is answered once it and every older one are settled (see IInboundSettlement).
    private Round _round;
    private Round? _oldestUnanswered;
    private Round? _newestUnanswered;

    public StreamManagementState(StreamManagementModule module, C2sSession session, string? resumeId, int timeoutSeconds)
    {
        _module = module;
        Session = session;
        ResumeId = resumeId;
        TimeoutSeconds = timeoutSeconds;
        _filter = Filter;
        _round = new Round(this);
    }

    private enum Phase
    {
        Live,
        Hibernating,
        Ended,
    }

    public C2sSession Session { get; }

    /// <summary>The resumption id given in &lt;enabled/&gt;, or null when the session is not resumable.</summary>
    public string? ResumeId { get; }

    public int TimeoutSeconds { get; }

    public bool IsLiveWithUnacked
    {
        get
        {
            lock (_sync) return _phase == Phase.Live && _count > 0;
        }
    }

    public bool HasRoom
    {
        get
        {
            lock (_sync) return _count <= _module.Options.MaxUnackedStanzas / 2 && _bytes <= _module.MaxQueueBytes / 2;
        }
    }

    /// <summary>The open round of what the client sends; read on its read loop (the one thread that closes rounds).</summary>
    public IInboundSettlement? InboundRound => _round;

    internal int UnackedCount
    {
        get
        {
            lock (_sync) return _count;
        }
    }

    /// <summary>
    /// Turns stream management on: the counters start at zero when &lt;enabled/&gt; is queued (XEP-0198 §4), and the filter
    /// is installed under the same lock, so a stanza delivered meanwhile is counted after the answer.
    /// </summary>
    public void Start(XmlElement enabled)
    {
        lock (_sync)
        {
            _inboundBase = Session.StanzasReceived;
            Session.Set(StreamManagementModule.StateKey, this);
            Session.Resumption = this;
            Session.Acknowledgements = this;
            Session.AddOutgoingFilter(_filter, int.MinValue);
            Session.Transport?.Send(enabled);
        }
    }

    /// <summary>Test seam: as if <paramref name="sent"/> stanzas had been sent and acknowledged and <paramref name="received"/> received, to reach the 2^32 wrap.</summary>
    internal void SetCounters(uint sent, uint received)
    {
        lock (_sync)
        {
            _sent = _acked = _sentAtLastRequest = sent;
            _inboundBase = Session.StanzasReceived - received;
        }
    }

    // ---- outbound: the filter ----

    private OutgoingVerdict Filter(C2sSession session, ref XmlElement stanza)
    {
        long bytes = XmppStream.EstimateBytes(stanza);
        lock (_sync)
        {
            if (_phase == Phase.Ended) return OutgoingVerdict.Pass; // the session ended: Deliver refuses, the caller re-routes
            if (_count < _module.Options.MaxUnackedStanzas && (_count == 0 || _bytes + bytes <= _module.MaxQueueBytes))
            {
                var receipt = _pendingReceipts is { Count: > 0 } ? TakeReceipt(stanza) : null;
                // A stream-management sender's message routed right now: its <a/> waits until this client acknowledges it.
                var origin = receipt is null ? InboundSettlement.Current : null;
                origin?.AddRef();
                Push(new Entry(stanza, DateTime.UtcNow.Ticks, receipt, bytes, origin));
                _sent++;
                if (_phase == Phase.Live)
                {
                    // Queued on the transport under the lock: the wire order is the queue's. If the transport is closing the
                    // stanza stays queued here (resent on resume, or re-routed when the session ends).
                    session.Release(_filter, stanza);
                    // A sender waits for this one: ask at once (one request outstanding at a time coalesces a busy stream).
                    if (!_requestPending && (origin is not null || _sent - _sentAtLastRequest >= (uint)_module.Options.RequestAckEvery)) SendRequest();
                }
                return OutgoingVerdict.Hold;
            }
        }
        // A client that does not acknowledge cannot make the server hold unbounded memory. The stanza is not taken (Pass
        // reaches a closing transport, so Deliver returns false and the caller re-routes it); the rest is re-routed when
        // the session ends.
        _module.Context.Logger.LogWarning("{Connection}: {Jid} left {Count} stanzas unacknowledged (Modules:sm:MaxUnackedStanzas, Limits:MaxOutboundQueueBytes); ending the session",
            session.ConnectionId, session.Jid, _count);
        session.Close(StreamErrors.PolicyViolation, "too many unacknowledged stanzas (XEP-0198)");
        return OutgoingVerdict.Pass;
    }

    private IDeliveryReceipt? TakeReceipt(XmlElement stanza)
    {
        var pending = _pendingReceipts!;
        for (int i = 0; i < pending.Count; i++)
        {
            if (!ReferenceEquals(pending[i].Stanza, stanza)) continue;
            var receipt = pending[i].Receipt;
            pending.RemoveAt(i);
            return receipt;
        }
        return null;
    }

    private void Push(Entry entry)
    {
        if (_count == _ring.Length)
        {
            var bigger = new Entry[_ring.Length * 2];
            for (int i = 0; i < _count; i++) bigger[i] = _ring[(_head + i) % _ring.Length];
            _ring = bigger;
            _head = 0;
        }
        _ring[(_head + _count) % _ring.Length] = entry;
        _count++;
        _bytes += entry.Bytes;
    }

    private Entry Pop()
    {
        var entry = _ring[_head];
        _ring[_head] = default;
        _head = (_head + 1) % _ring.Length;
        _count--;
        _bytes -= entry.Bytes;
        if (_count == 0)
        {
            _head = 0;
            if (_ring.Length > 64) _ring = new Entry[8]; // give back what a burst or a hibernation grew
        }
        return entry;
    }

    /// <summary>Queues &lt;r/&gt; (under the lock).</summary>
    private void SendRequest()
    {
        _requestPending = true;
        _sentAtLastRequest = _sent;
        Session.Transport?.Send(RequestElement);
    }

    // ---- acks ----

    /// <summary>The client's &lt;r/&gt;: &lt;a h/&gt; with the stanzas received since enabling (XEP-0198 §4).</summary>
    /// <remarks>
    /// The answer counts what was received, but waits until the messages of this round are safe (recipients acknowledged
    /// them, or they were stored or written: <see cref="IInboundSettlement"/>), at most Modules:sm:SettleTimeoutSeconds;
    /// answers go out in order, each for its round and every older one.
    /// </remarks>
    public void AnswerRequest()
    {
        var closed = _round;
        closed.H = InboundCount();
        _round = new Round(this);
        lock (_sync)
        {
            if (_newestUnanswered is null) _oldestUnanswered = closed;
            else _newestUnanswered.Next = closed;
            _newestUnanswered = closed;
        }
        closed.Release(); // the round's own reference: settled now unless a recipient holds it
        if (!closed.IsSettled && _module.Options.SettleTimeoutSeconds > 0) _ = SettleLaterAsync(closed);
        else if (!closed.IsSettled) closed.Settle();
    }

    private async Task SettleLaterAsync(Round round)
    {
        await Task.Delay(TimeSpan.FromSeconds(_module.Options.SettleTimeoutSeconds));
        round.Settle();
    }

    /// <summary>A round became safe: answer it and every settled round after it that only waited for it.</summary>
    private void Settled()
    {
        uint h = 0;
        bool answer = false;
        lock (_sync)
        {
            while (_oldestUnanswered is { IsSettled: true } oldest)
            {
                h = oldest.H;
                answer = true;
                _oldestUnanswered = oldest.Next;
            }
            if (_oldestUnanswered is null) _newestUnanswered = null;
        }
        if (!answer) return;
        var a = new XmlElement("a", Namespaces.StreamManagement);
        a.SetAttribute("h", h.ToString(CultureInfo.InvariantCulture));
        Session.Transport?.Send(a);
    }

    /// <summary>One acknowledgement round of what the client sent: a reference count, the 'h' it answers, the next round.</summary>
    /// <remarks>Also a receipt, so that acknowledged entries give their reference back with the other receipts, after our lock.</remarks>
    private sealed class Round(StreamManagementState owner) : IInboundSettlement, IDeliveryReceipt
    {
        private int _references = 1; // the round's own, dropped when the client's <r/> closes it
        private int _settled;

        public uint H;
        public Round? Next;

        public bool IsSettled => Volatile.Read(ref _settled) != 0;

        public void AddRef() => Interlocked.Increment(ref _references);

        public void Release()
        {
            if (Interlocked.Decrement(ref _references) == 0) Settle();
        }

        void IDeliveryReceipt.Acknowledged() => Release();

        void IDeliveryReceipt.Unacknowledged() => Release();

        /// <summary>Safe (or waited for long enough): answered in order. Once.</summary>
        public void Settle()
        {
            if (Interlocked.Exchange(ref _settled, 1) == 0) owner.Settled();
        }
    }

    // Read on the transport's read loop, which is the one thread that counts.
    private uint InboundCount() => Session.StanzasReceived - Volatile.Read(ref _inboundBase);

    /// <summary>The client's &lt;a h/&gt;: the acknowledged stanzas leave the queue; their receipts complete.</summary>
    public void Acknowledge(uint h)
    {
        List<IDeliveryReceipt>? acknowledged = null;
        uint sent;
        bool valid;
        lock (_sync)
        {
            sent = _sent;
            valid = TrimTo(h, ref acknowledged);
            if (valid)
            {
                _requestPending = false;
                // Ask again at once when enough went out while the last request was pending, or someone waits for the queue
                // to drain (no further stanza may come to trigger a request).
                if (_phase == Phase.Live && _count > 0 && (_drained is not null || _sent - _sentAtLastRequest >= (uint)_module.Options.RequestAckEvery)) SendRequest();
            }
        }
        if (valid)
        {
            Complete(acknowledged);
            return;
        }
        _module.Context.Logger.LogInformation("{Connection}: {Jid} acknowledged {H} stanzas, {Sent} were sent", Session.ConnectionId, Session.Jid, h, sent);
        Session.Close(StreamErrors.UndefinedCondition, "acknowledged more stanzas than were sent", StreamManagementModule.HandledCountTooHigh(h, sent));
    }

    /// <summary>
    /// Removes what 'h' acknowledges (modulo 2^32: h - acked is the number newly acknowledged). False when that is more
    /// than the queue holds (XEP-0198 §4 handled-count-too-high). Under the lock.
    /// </summary>
    private bool TrimTo(uint h, ref List<IDeliveryReceipt>? acknowledged)
    {
        uint newly = h - _acked;
        if (newly > (uint)_count) return false;
        for (uint i = 0; i < newly; i++)
        {
            var entry = Pop();
            if (entry.Receipt is { } receipt) (acknowledged ??= []).Add(receipt);
            // Released after the lock (Complete): settling a round takes its sender's lock, and that sender may at this
            // moment be trimming an entry of ours under its own.
            if (entry.Origin is IDeliveryReceipt origin) (acknowledged ??= []).Add(origin);
        }
        _acked = h;
        if (_count == 0 && _drained is { } drained)
        {
            _drained = null;
            drained.TrySetResult(true);
        }
        return true;
    }

    private void Complete(List<IDeliveryReceipt>? acknowledged)
    {
        if (acknowledged is null) return;
        foreach (var receipt in acknowledged)
        {
            try
            {
                receipt.Acknowledged();
            }
            catch (Exception ex)
            {
                _module.Context.Logger.LogError(ex, "a delivery receipt of {Jid} failed", Session.Jid);
            }
        }
    }

    // ---- IStanzaAcknowledgements: tracked delivery (offline rows) ----

    public bool Deliver(C2sSession session, XmlElement stanza, IDeliveryReceipt receipt)
    {
        lock (_sync)
        {
            if (_phase == Phase.Ended) return false;
            (_pendingReceipts ??= []).Add((stanza, receipt));
        }
        if (session.Deliver(stanza)) return true; // the filter took the receipt with the stanza (or an earlier filter holds both)
        lock (_sync) TakeReceipt(stanza);
        return false;
    }

    public void RequestAck(C2sSession session)
    {
        lock (_sync)
        {
            if (_phase == Phase.Live && _count > 0 && !_requestPending) SendRequest();
        }
    }

    public async Task<bool> WaitForAcknowledgementAsync(TimeSpan timeout)
    {
        Task<bool> drained;
        lock (_sync)
        {
            if (_phase == Phase.Ended) return false;
            if (_count == 0) return true;
            _drained ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            drained = _drained.Task;
            if (_phase == Phase.Live && !_requestPending) SendRequest();
        }
        try
        {
            return await drained.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Graceful shutdown: ask once more, answered or not.</summary>
    public void RequestAckForShutdown()
    {
        lock (_sync)
        {
            if (_phase == Phase.Live && _count > 0) SendRequest();
        }
    }

    // ---- resumption (XEP-0198 §5) ----

    /// <summary>
    /// &lt;resume previd h/&gt; on <paramref name="stream"/> (authenticated as the session's account, unbound): the stream
    /// takes the session over — from hibernation, or from a connection that still looked alive — answers &lt;resumed/&gt;
    /// and resends what 'h' does not acknowledge, in order, before anything newer.
    /// </summary>
    public void Resume(C2sStream stream, uint h)
    {
        List<IDeliveryReceipt>? acknowledged = null;
        IClientTransport? old;
        int resent;
        lock (_sync)
        {
            if (_phase == Phase.Ended)
            {
                stream.Reply(StreamManagementModule.Failed("item-not-found", "no session to resume with that id (it ended, or it never existed)"));
                return;
            }
            if (!TrimTo(h, ref acknowledged))
            {
                // The old session is left as it was (hibernating or live): this connection claimed what it cannot have seen.
                stream.Close(StreamErrors.UndefinedCondition, "acknowledged more stanzas than were sent", StreamManagementModule.HandledCountTooHigh(h, _sent));
                return;
            }
            old = stream.Resume(Session);
            _phase = Phase.Live;
            _hibernation++; // the hibernation timer, if any, no longer ends this session
            _requestPending = false;
            var resumed = new XmlElement("resumed", Namespaces.StreamManagement);
            resumed.SetAttribute("previd", ResumeId!).SetAttribute("h", InboundCount().ToString(CultureInfo.InvariantCulture));
            IClientTransport transport = stream;
            transport.Send(resumed);
            resent = _count;
            for (int i = 0; i < _count; i++) transport.Send(_ring[(_head + i) % _ring.Length].Stanza);
            if (_count > 0) SendRequest();
        }
        Complete(acknowledged);
        _module.Context.Logger.LogInformation("{Connection}: session {Jid} resumed; {Count} unacknowledged stanzas resent", stream.ConnectionId, Session.Jid, resent);
        // The connection the client left behind (it reconnected before we noticed the cut) is dropped; what it still
        // had queued is in our queue and was resent above (Claim keeps it from being re-routed).
        if (old is not null && !old.IsClosed) old.Close(StreamErrors.Conflict, "the session was resumed on another connection");
    }

    // ---- ISessionResumption ----

    public void Claim(List<XmlElement> undelivered)
    {
        if (undelivered.Count == 0) return;
        lock (_sync)
        {
            if (_count == 0) return;
            var held = new HashSet<object>(_count, ReferenceEqualityComparer.Instance);
            for (int i = 0; i < _count; i++) held.Add(_ring[(_head + i) % _ring.Length].Stanza);
            undelivered.RemoveAll(held.Contains);
        }
    }

    public bool TryHibernate(C2sSession session, IClientTransport lost)
    {
        int generation;
        lock (_sync)
        {
            if (_phase != Phase.Live || ResumeId is null) return false;
            // A resume already moved the session to a new transport: nothing is lost.
            if (!session.DetachTransport(lost)) return true;
            _phase = Phase.Hibernating;
            _requestPending = false;
            generation = ++_hibernation;
        }
        _ = ExpireAsync(generation);
        return true;
    }

    /// <summary>The end of a hibernation that no resume ended first: the session ends (presence unavailable, messages re-routed).</summary>
    private async Task ExpireAsync(int generation)
    {
        await Task.Delay(TimeSpan.FromSeconds(TimeoutSeconds));
        lock (_sync)
        {
            if (_phase != Phase.Hibernating || _hibernation != generation) return;
            _phase = Phase.Ended; // decided under the lock: a resume from now on finds nothing
        }
        _module.Forget(this);
        _module.Context.Logger.LogInformation("{Connection}: session {Jid} was not resumed within {Seconds} s; it ends", Session.ConnectionId, Session.Jid, TimeoutSeconds);
        await Session.EndAsync([]);
    }

    /// <summary>
    /// The session ended: every unacknowledged message (chat and normal; XEP-0198 §5 leaves the choice, and groupchat,
    /// headline and error are not worth keeping, as RFC 6121 §8.5.2 drops them for an offline account) goes to the
    /// account again — another resource or offline storage — stamped with a XEP-0203 delay of when the server received
    /// it. Offline rows are not re-routed: their receipts say "unacknowledged", so the rows stay stored for the next login.
    /// </summary>
    public async ValueTask EndedAsync(C2sSession session)
    {
        Entry[] entries;
        List<(XmlElement Stanza, IDeliveryReceipt Receipt)>? pending;
        lock (_sync)
        {
            _phase = Phase.Ended;
            entries = new Entry[_count];
            for (int i = 0; i < entries.Length; i++) entries[i] = Pop();
            pending = _pendingReceipts;
            _pendingReceipts = null;
            _drained?.TrySetResult(false);
            _drained = null;
        }
        _module.Forget(this);
        if (pending is not null)
        {
            foreach (var (_, receipt) in pending) Unacknowledged(receipt);
        }
        var jid = session.Jid;
        if (jid is null) return;
        var server = session.Server;
        int rerouted = 0;
        foreach (var entry in entries)
        {
            if (entry.Receipt is { } receipt)
            {
                Unacknowledged(receipt);
                continue;
            }
            try
            {
                await RerouteAsync(entry, jid, server);
                rerouted++;
            }
            finally
            {
                // Safe now (stored offline or with another resource): the sender's round may be answered.
                entry.Origin?.Release();
            }
        }
        if (rerouted > 0) _module.Context.Logger.LogDebug("{Jid}: {Count} unacknowledged stanzas re-routed", jid, rerouted);
    }

    private async ValueTask RerouteAsync(Entry entry, Jid jid, XmppServer server)
    {
        var stanza = entry.Stanza;
        var fromText = stanza.GetAttribute("from");
        var from = fromText is not null && Jid.TryParse(fromText, out var f) ? f : server.HostJid(jid.Domain);
        if (stanza.Name == "iq")
        {
            // A request nobody will answer gets an error, not silence (RFC 6120 §8.2.3).
            if (stanza.GetAttribute("type") is "get" or "set") server.Router.Bounce(stanza, from, jid, StanzaErrorCondition.ServiceUnavailable, "the recipient's session ended");
            return;
        }
        if (stanza.Name != "message") return;
        var type = stanza.GetAttribute("type") ?? "normal";
        if (type is not ("chat" or "normal")) return;
        try
        {
            var stamped = Offline.OfflineModule.WithDelay(stanza, jid.Domain, new DateTimeOffset(entry.ReceivedTicks, TimeSpan.Zero));
            await server.Router.DeliverToBareAsync(stamped, from, jid.Bare, type);
        }
        catch (Exception ex)
        {
            _module.Context.Logger.LogError(ex, "re-routing an unacknowledged message for {Jid} from {From} failed", jid.Bare, from);
        }
    }

    private void Unacknowledged(IDeliveryReceipt receipt)
    {
        try
        {
            receipt.Unacknowledged();
        }
        catch (Exception ex)
        {
            _module.Context.Logger.LogError(ex, "a delivery receipt of {Jid} failed", Session.Jid);
        }
    }

    /// <summary>A stanza sent and not yet acknowledged: when it arrived (for the delay stamp) and who waits for its ack.</summary>
    /// <remarks><paramref name="Origin"/>: the round of a stream-management sender whose &lt;a/&gt; waits for this stanza's ack.</remarks>
    private readonly record struct Entry(XmlElement Stanza, long ReceivedTicks, IDeliveryReceipt? Receipt, long Bytes, IInboundSettlement? Origin = null);
}
