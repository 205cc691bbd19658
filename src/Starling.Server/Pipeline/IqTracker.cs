using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Pipeline;

public enum IqOutcomeKind
{
    /// <summary>The addressee answered with type='result'.</summary>
    Result,

    /// <summary>The addressee (or the router, on its behalf) answered with type='error'.</summary>
    Error,

    /// <summary>No answer in time. A caller answering a client for it says remote-server-timeout (RFC 6120 §8.3.3.17).</summary>
    Timeout,

    /// <summary>The caller's cancellation token fired first.</summary>
    Cancelled,

    /// <summary>Not sent: too many requests are waiting for answers (the table is bounded).</summary>
    Refused,
}

/// <summary>How a server-originated iq ended; <see cref="Stanza"/> is the answer for Result and Error.</summary>
public readonly record struct IqOutcome(IqOutcomeKind Kind, XmlElement? Stanza)
{
    public static IqOutcome Refused { get; } = new(IqOutcomeKind.Refused, null);
}

/// <summary>
/// Iq requests the server sends (idle pings today; PEP, s2s and MUC later) with an id and a deadline, so that the
/// answer reaches the code that asked. Ids are random (unguessable, so nobody can answer for another entity in
/// advance); an answer completes its request only when its id, its sender (the addressee of the request) and its
/// addressee (the requester: a host, or an account's bare JID) all match (RFC 6120 §8.2.3). Entries leave the table
/// when answered, on timeout and on cancellation; the table is bounded and refuses past the limit.
/// </summary>
public sealed class IqTracker
{
    /// <summary>Requests waiting at once; past this <see cref="SendAsync"/> returns Refused without sending.</summary>
    public const int DefaultMaxPending = 65_536;

    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly Func<XmlElement, Jid, Jid, ValueTask> _route;
    private readonly int _maxPending;
    private int _count;

    /// <param name="route">Sends the request (the router: the only way a stanza reaches anyone).</param>
    public IqTracker(Func<XmlElement, Jid, Jid, ValueTask> route, int maxPending = DefaultMaxPending)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPending, 1);
        _route = route;
        _maxPending = maxPending;
    }

    /// <summary>Requests waiting for an answer.</summary>
    public int Count => Volatile.Read(ref _count);

    private sealed class Pending(Jid requester, Jid responder)
    {
        public Jid Requester { get; } = requester;
        public Jid Responder { get; } = responder;
        public TaskCompletionSource<IqOutcome> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public CancellationTokenSource? Timer { get; set; }
        public CancellationTokenRegistration TimerRegistration { get; set; }
        public CancellationTokenRegistration CallerRegistration { get; set; }
    }

    /// <summary>
    /// Sends <paramref name="iq"/> (type get or set, with its payload) from <paramref name="from"/> to <paramref name="to"/>
    /// with a fresh id, and waits for the answer. Never throws for the network's doing: every end is an outcome.
    /// </summary>
    public async Task<IqOutcome> SendAsync(XmlElement iq, Jid from, Jid to, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(iq);
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        var type = iq.GetAttribute("type");
        if (iq.Name != "iq" || type is not ("get" or "set")) throw new ArgumentException("a request is an iq of type get or set", nameof(iq));
        if (Interlocked.Increment(ref _count) > _maxPending)
        {
            Interlocked.Decrement(ref _count);
            return IqOutcome.Refused;
        }
        var pending = new Pending(from, to);
        string id;
        do id = NewId(); while (!_pending.TryAdd(id, pending));
        iq.SetAttribute("id", id).SetAttribute("from", from.ToString()).SetAttribute("to", to.ToString());

        // A timer of its own rather than a source linked to the caller's token: a linked source would stay registered on
        // a long-lived caller token (server shutdown) until disposed, which cannot be done from its own callback.
        var timer = new CancellationTokenSource();
        pending.Timer = timer;
        pending.TimerRegistration = timer.Token.Register(static state =>
        {
            var (tracker, id) = ((IqTracker, string))state!;
            tracker.Expire(id, IqOutcomeKind.Timeout);
        }, (this, id));
        if (cancellationToken.CanBeCanceled)
        {
            pending.CallerRegistration = cancellationToken.Register(static state =>
            {
                var (tracker, id) = ((IqTracker, string))state!;
                tracker.Expire(id, IqOutcomeKind.Cancelled);
            }, (this, id));
        }
        timer.CancelAfter(timeout);

        try
        {
            await _route(iq, from, to);
        }
        catch (Exception)
        {
            // The router contains its handlers' failures; should one escape, the request ends as if unanswered.
            Expire(id, IqOutcomeKind.Timeout);
        }
        return await pending.Done.Task;
    }

    /// <summary>
    /// Offers an iq result or error routed to <paramref name="requester"/> (a host or an account's bare JID; null when
    /// the client sent it without 'to', i.e. to the server) from <paramref name="sender"/>. True if it answered a request.
    /// </summary>
    public bool TryComplete(XmlElement response, Jid sender, Jid? requester)
    {
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(sender);
        var id = response.GetAttribute("id");
        if (id is null || !_pending.TryGetValue(id, out var pending)) return false;
        // The id alone proves nothing: only the entity asked may answer, and only to the one who asked.
        if (pending.Responder != sender || (requester is not null && requester != pending.Requester)) return false;
        if (!_pending.TryRemove(new KeyValuePair<string, Pending>(id, pending))) return false;
        Interlocked.Decrement(ref _count);
        pending.CallerRegistration.Dispose();
        pending.TimerRegistration.Dispose();
        pending.Timer?.Dispose();
        var kind = response.GetAttribute("type") == "result" ? IqOutcomeKind.Result : IqOutcomeKind.Error;
        pending.Done.TrySetResult(new IqOutcome(kind, response));
        return true;
    }

    private void Expire(string id, IqOutcomeKind kind)
    {
        if (!_pending.TryRemove(id, out var pending)) return;
        Interlocked.Decrement(ref _count);
        pending.CallerRegistration.Dispose();
        // On timeout this runs inside the timer's own callback: the fired timer is left to the GC, not disposed from within.
        if (kind != IqOutcomeKind.Timeout)
        {
            pending.TimerRegistration.Dispose();
            pending.Timer?.Dispose();
        }
        pending.Done.TrySetResult(new IqOutcome(kind, null));
    }

    /// <summary>96 random bits, base64url: unique in practice and not guessable by the clients that answer.</summary>
    private static string NewId()
    {
        Span<byte> bytes = stackalloc byte[12];
        RandomNumberGenerator.Fill(bytes);
        return "s" + Base64Url.EncodeToString(bytes);
    }
}
