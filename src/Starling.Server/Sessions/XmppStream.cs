using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Starling.Server.Configuration;
using Starling.Server.Tls;
using Starling.Server.Transport;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Sessions;

/// <summary>A connection's read budget: a token bucket of <paramref name="BurstBytes"/> refilled at <paramref name="BytesPerSecond"/> (0: no budget).</summary>
public readonly record struct ReadBudget(int BytesPerSecond, int BurstBytes)
{
    public static ReadBudget For(C2sOptions c2s) => new(c2s.ReadBytesPerSecond, c2s.ReadBurstBytes);
}

/// <summary>
/// The plumbing every XMPP stream shares (c2s now; s2s and components later): the Pipelines read loop feeding the
/// incremental parser (with a read budget), an outbound queue bounded by bytes drained by a writer that runs only
/// while there is something to write (an idle connection holds no writer task), STARTTLS, stream errors and closing.
/// Subclasses implement negotiation and stanza handling.
/// </summary>
public abstract class XmppStream
{
    private readonly ConnectionContext _connection;
    // Outbound queue: a ring buffer under a lock. A writer activation is started by the first item queued into an
    // empty queue and ends when it has flushed everything (idle connections pay for no parked task or channel).
    private readonly Lock _sync = new();
    private Outbound[] _ring = [];
    private int _head;
    private int _count;
    private bool _writing;   // a writer activation is running
    private bool _accepting = true; // false once the stream is ending: the writer then finishes the output
    private bool _finished;  // the output is complete; nothing more is written
    private long _queuedBytes; // EstimateBytes of what the ring holds
    private readonly long _maxQueueBytes;
    private TaskCompletionSource? _roomWaiter; // a producer waiting for the queue to drain to half (WaitForQueueRoomAsync)
    // Read budget (token bucket): bytes the peer may still send now; refilled from _budgetAt at _readRate bytes/s.
    private readonly int _readRate;
    private readonly int _readBurst;
    private long _budget;
    private long _budgetAt;
    private long _closingSince; // Environment.TickCount64 when the stream started closing (for the close deadline)
    private int _aborted;
    private PipeReader _input;
    private PipeWriter _output;
    private SslStream? _tls;
    private int _closeState; // 0 open, 1 closing (close queued), 2 closed (transport gone)
    private volatile bool _closedDeliberately; // the stream was closed (by either side), not lost: see ClosedDeliberately
    private bool _headerSent;
    private bool _upgradeRequested;
    // While the read loop handles one received batch, the managed id of its thread: replies queued from that thread
    // are written when the batch is done, so the answers to one read leave in one send (the stream header and its
    // features, for example). Stanzas other sessions queue meanwhile are not held.
    private int _corkThread;
    private bool _writerDeferred; // a writer start held back by the cork (read loop only)
    private string? _tlsHost;
    private volatile bool _peerGone;
    private readonly List<XmlElement> _leftover = [];
    private readonly TaskCompletionSource _readDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected XmppStream(XmppServer server, ConnectionContext connection, XmlLimits limits, int maxQueueBytes, string defaultNamespace, ReadBudget readBudget = default)
    {
        Server = server;
        _connection = connection;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
        _maxQueueBytes = maxQueueBytes;
        _readRate = readBudget.BytesPerSecond;
        _readBurst = readBudget.BurstBytes;
        _budget = _readBurst;
        _budgetAt = Environment.TickCount64;
        DefaultNamespace = defaultNamespace;
        Parser = new XmlStreamParser(limits);
        StreamId = NewId();
        ConnectionId = connection.ConnectionId;
        RemoteEndPoint = connection.RemoteEndPoint;
        LastReceived = LastSent = Environment.TickCount64;
        Opened = LastReceived;
    }

    public XmppServer Server { get; }

    public string ConnectionId { get; }

    public EndPoint? RemoteEndPoint { get; }

    /// <summary>The current stream's id (new at every restart, RFC 6120 §4.7.3).</summary>
    public string StreamId { get; protected set; }

    protected XmlStreamParser Parser { get; }

    /// <summary>Namespace of stanzas on this stream (jabber:client or jabber:server).</summary>
    protected string DefaultNamespace { get; }

    public bool IsSecure => _tls is not null;

    public SslStream? Tls => _tls;

    public bool IsClosed => Volatile.Read(ref _closeState) != 0;

    /// <summary>
    /// True when the stream ended by a close (the peer's &lt;/stream:stream&gt;, a stream error or close of ours, an abort
    /// of ours), false when the connection was lost: it ended without either, or was closed for silence
    /// (connection-timeout). A lost connection is what XEP-0198 resumption may bridge.
    /// </summary>
    protected bool ClosedDeliberately => _closedDeliberately;

    /// <summary>Environment.TickCount64 at the last byte received / sent; read by the server's keepalive timer.</summary>
    public long LastReceived { get; private set; }

    public long LastSent { get; private set; }

    public long Opened { get; }

    /// <summary>Bytes of the peer's stream consumed so far (what the read budget counts).</summary>
    public long BytesRead { get; private set; }

    /// <summary>How many times the read budget paused this connection's reads.</summary>
    public int ReadPauses { get; private set; }

    /// <summary>The caps this connection counts against (null for streams not admitted through a listener).</summary>
    public ConnectionSlot? Slot { get; init; }

    protected abstract ILogger Log { get; }

    protected bool XmlTrace => Server.XmlTrace;

    protected abstract ValueTask OnStreamOpenAsync(XmlElement header);

    protected abstract ValueTask OnElementAsync(XmlElement element);

    /// <summary>Called once when the stream has ended, for whatever reason; <paramref name="undelivered"/> holds stanzas queued but never written.</summary>
    protected abstract ValueTask OnClosedAsync(List<XmlElement> undelivered);

    public static string NewId()
    {
        Span<byte> bytes = stackalloc byte[12];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        return Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Runs the connection until it ends. Never throws.</summary>
    public async Task RunAsync()
    {
        Server.Connections.Register(this);
        try
        {
            await ReadLoopAsync();
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or OperationCanceledException or ObjectDisposedException or AuthenticationException)
        {
            Uncork();
            Log.LogDebug("{Connection}: connection ended: {Message}", ConnectionId, ex.Message);
        }
        catch (Exception ex)
        {
            Uncork(); // a handler threw inside a batch: what it queued must still go out
            Log.LogError(ex, "{Connection}: internal error", ConnectionId);
            Close(StreamErrors.InternalServerError);
        }
        finally
        {
            // The peer is gone or closed its stream: stanzas not yet written are kept for re-routing
            // instead of being written into a connection nobody reads (nothing accepted is lost).
            _peerGone = true;
            _readDone.TrySetResult();
            BeginClosing();
            StopAccepting();
            // A peer that stopped reading can hold a flush forever: after a while, drop the connection.
            if (!await CompletesWithinAsync(_writerDone.Task, CloseTimeout))
                AbortConnection("peer does not read");
            await _writerDone.Task;
            Interlocked.Exchange(ref _closeState, 2);
            var undelivered = new List<XmlElement>(_leftover);
            lock (_sync)
            {
                for (; _count > 0; _count--, _head = (_head + 1) % _ring.Length)
                {
                    if (_ring[_head].Element is { } e) undelivered.Add(e);
                }
                _queuedBytes = 0;
            }
            try
            {
                await OnClosedAsync(undelivered);
            }
            catch (Exception ex)
            {
                Log.LogError(ex, "{Connection}: error while closing", ConnectionId);
            }
            _tls?.Dispose();
            // Unregistered only now: shutdown waits for the registry to empty, so what OnClosedAsync re-routes
            // (offline storage included) is written before the database is closed.
            Server.Connections.Unregister(this);
        }
    }

    private TimeSpan CloseTimeout => TimeSpan.FromSeconds(Server.Options.C2s.CloseTimeoutSeconds);

    private async Task ReadLoopAsync()
    {
        while (true)
        {
            var result = await _input.ReadAsync();
            var buffer = result.Buffer;
            long received = buffer.Length;
            if (!buffer.IsEmpty) LastReceived = Environment.TickCount64;
            bool stop = false;
            _corkThread = Environment.CurrentManagedThreadId;
            while (!stop)
            {
                var ev = Parser.Read(buffer, out var consumed);
                buffer = buffer.Slice(consumed);
                switch (ev)
                {
                    case XmlStreamEvent.NeedMoreData:
                        stop = true;
                        continue;
                    case XmlStreamEvent.StreamOpen:
                        await CorkedAsync(OnStreamOpenAsync(Parser.StreamHeader!));
                        break;
                    case XmlStreamEvent.Element:
                        var element = Parser.TakeElement();
                        if (XmlTrace) TraceXml("<<<", element);
                        await CorkedAsync(OnElementAsync(element));
                        break;
                    case XmlStreamEvent.StreamClose:
                        if (XmlTrace) Log.LogInformation("{Connection} <<< </stream:stream>", ConnectionId);
                        // RFC 6120 §4.4: answer the peer's close with ours, then end. A client that closed
                        // will not read what is still queued: that is re-routed (see RunAsync).
                        _peerGone = true;
                        CloseQuietly();
                        break;
                    case XmlStreamEvent.Error:
                        Log.LogInformation("{Connection}: XML error {Condition}: {Detail}", ConnectionId, Parser.Error, Parser.ErrorDetail);
                        Close(Parser.Error.ToElementName(), Parser.ErrorDetail);
                        break;
                }
                if (IsClosed || _upgradeRequested) stop = true;
            }
            Uncork();
            long batch = received - buffer.Length;
            _input.AdvanceTo(buffer.Start, buffer.End);
            BytesRead += batch;
            if (IsClosed) return;
            if (_upgradeRequested)
            {
                _upgradeRequested = false;
                await UpgradeToTlsAsync();
                continue;
            }
            if (result.IsCompleted || result.IsCanceled) return;
            if (_readRate > 0 && TakeFromBudget(batch) is var pauseMs and > 0)
            {
                // Over budget: stop reading for as long as the bucket takes to refill. Meanwhile the transport's
                // input buffer fills, Kestrel stops reading the socket and TCP flow control slows the sender down;
                // other connections' reads and deliveries go on. One timer only while over budget, none when idle.
                ReadPauses++;
                await Task.Delay(TimeSpan.FromMilliseconds(pauseMs));
            }
        }
    }

    /// <summary>
    /// Token bucket (as Prosody's mod_limits and ejabberd's shapers): takes <paramref name="bytes"/> from the budget,
    /// refilled since the last batch, and returns how many milliseconds the reads must pause (0 while within budget).
    /// </summary>
    private long TakeFromBudget(long bytes)
    {
        long now = Environment.TickCount64;
        long elapsed = now - _budgetAt;
        if (elapsed > 0)
        {
            _budget = Math.Min(_readBurst, _budget + elapsed * _readRate / 1000);
            _budgetAt = now;
        }
        _budget -= bytes;
        if (_budget >= 0) return 0;
        return Math.Min((-_budget * 1000 + _readRate - 1) / _readRate, 10_000);
    }

    /// <summary>
    /// Awaits a handler of the corked batch. Handlers usually complete synchronously; one that really waits
    /// (storage, throttling) first releases what is held, so nothing queued waits on it.
    /// </summary>
    private ValueTask CorkedAsync(ValueTask handler)
    {
        if (handler.IsCompleted) return handler;
        Uncork();
        return ReCorkAfterAsync(handler);
    }

    private async ValueTask ReCorkAfterAsync(ValueTask handler)
    {
        await handler;
        _corkThread = Environment.CurrentManagedThreadId;
    }

    /// <summary>Ends the read batch's cork: starts the writer if a reply was queued meanwhile.</summary>
    private void Uncork()
    {
        _corkThread = 0;
        if (_writerDeferred)
        {
            _writerDeferred = false;
            StartWriter();
        }
    }

    /// <summary>Queues a stanza or nonza for the peer. False if the stream is closing (the caller re-routes it).</summary>
    public bool Send(XmlElement element)
    {
        if (IsClosed) return false;
        var result = Enqueue(new Outbound(element, null, null, EstimateBytes(element)), closing: false);
        if (result == EnqueueResult.Full)
        {
            // A reader this slow cannot be served; cut it off rather than buffer without bound. What was queued
            // is handed back to OnClosedAsync and re-routed (shared/ARCHITECTURE.md §3).
            Log.LogWarning("{Connection}: outbound queue full ({Max} bytes); closing", ConnectionId, _maxQueueBytes);
            Abort();
        }
        return result == EnqueueResult.Queued;
    }

    /// <summary>Queues raw UTF-8 (stream header, whitespace keepalive).</summary>
    protected bool SendRaw(byte[] bytes)
    {
        if (IsClosed) return false;
        return Enqueue(new Outbound(null, bytes, null, bytes.Length + SlotBytes), closing: false) == EnqueueResult.Queued;
    }

    /// <summary>What a queue entry costs beyond its content (the ring slot and the element's objects).</summary>
    private const int SlotBytes = 32;

    /// <summary>
    /// What a queued stanza counts against the byte bound: an upper bound of its serialised size without serialising
    /// it (<see cref="XmlWriter.MaxSerializedBytes"/>, which follows the writer's namespace rules), plus the slot.
    /// </summary>
    public static long EstimateBytes(XmlElement element) => SlotBytes + XmlWriter.MaxSerializedBytes(element);

    /// <summary>Sends our stream header (RFC 6120 §4.7) for <paramref name="from"/>.</summary>
    protected void SendStreamHeader(string from, string? to, string lang = "en")
    {
        var sb = new StringBuilder(256);
        sb.Append("<?xml version='1.0'?><stream:stream xmlns='").Append(DefaultNamespace)
          .Append("' xmlns:stream='http://etherx.jabber.org/streams' id='").Append(StreamId)
          .Append("' from='").Append(Escape(from)).Append('\'');
        if (to is not null) sb.Append(" to='").Append(Escape(to)).Append('\'');
        sb.Append(" version='1.0' xml:lang='").Append(Escape(lang)).Append("'>");
        var text = sb.ToString();
        if (XmlTrace) Log.LogInformation("{Connection} >>> {Xml}", ConnectionId, text);
        _headerSent = true;
        SendRaw(Encoding.UTF8.GetBytes(text));
    }

    private static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("'", "&apos;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal);

    /// <summary>A whitespace keepalive (RFC 6120 §4.6.1).</summary>
    public void SendKeepalive() => SendRaw(" "u8.ToArray());

    /// <summary>Ends the stream with a stream error (RFC 6120 §4.9): header first if none was sent, then the error and the close tag.</summary>
    public void Close(string condition, string? text = null, XmlElement? applicationCondition = null)
    {
        if (!BeginClosing()) return;
        // A silent peer's connection timed out: as lost as a cut one (XEP-0198 §5 resumption covers both, as Prosody does).
        if (condition != StreamErrors.ConnectionTimeout) _closedDeliberately = true;
        Log.LogInformation("{Connection}: closing with stream error {Condition}{Text}", ConnectionId, condition, text is null ? "" : ": " + text);
        if (!_headerSent) SendHeaderForError();
        var error = StreamErrors.Create(condition, text, applicationCondition);
        if (XmlTrace) TraceXml(">>>", error);
        Enqueue(new Outbound(error, null, null), closing: true);
        Enqueue(new Outbound(null, "</stream:stream>"u8.ToArray(), null), closing: true);
        StopAccepting();
    }

    /// <summary>Ends the stream without an error.</summary>
    public void CloseQuietly()
    {
        if (!BeginClosing()) return;
        _closedDeliberately = true;
        if (!_headerSent) SendHeaderForError();
        Enqueue(new Outbound(null, "</stream:stream>"u8.ToArray(), null), closing: true);
        StopAccepting();
    }

    /// <summary>Drops the connection at once (slow reader, shutdown timeout).</summary>
    public void Abort()
    {
        if (BeginClosing()) _closedDeliberately = true;
        AbortConnection("aborted by server");
        StopAccepting();
    }

    /// <summary>Moves the stream to closing; false if it already was. Starts the close deadline.</summary>
    private bool BeginClosing()
    {
        if (Interlocked.CompareExchange(ref _closeState, 1, 0) != 0) return false;
        Volatile.Write(ref _closingSince, Environment.TickCount64);
        return true;
    }

    private void AbortConnection(string reason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0) return;
        _connection.Abort(new ConnectionAbortedException(reason));
    }

    /// <summary>
    /// Called by the server's timer: a stream that started closing more than <paramref name="deadlineMs"/> ago and
    /// is still there (a peer that stopped reading holds the flush of our close, and may never send its own close
    /// tag) loses its connection, so its socket and buffers are freed. Returns true if it aborted it.
    /// </summary>
    public bool AbortIfCloseOverdue(long now, long deadlineMs)
    {
        if (!IsClosed || Volatile.Read(ref _aborted) != 0) return false;
        long since = Volatile.Read(ref _closingSince);
        if (since == 0 || now - since < deadlineMs) return false;
        Log.LogInformation("{Connection}: still not closed {Seconds} s after the close began; dropping the connection", ConnectionId, (now - since) / 1000);
        AbortConnection("close deadline passed");
        StopAccepting();
        return true;
    }

    private void SendHeaderForError()
    {
        var from = Server.Config.Options.Hosts[0].Name;
        var text = "<?xml version='1.0'?><stream:stream xmlns='" + DefaultNamespace +
                   "' xmlns:stream='http://etherx.jabber.org/streams' id='" + StreamId + "' from='" + from + "' version='1.0'>";
        _headerSent = true;
        Enqueue(new Outbound(null, Encoding.UTF8.GetBytes(text), null), closing: true);
    }

    /// <summary>After &lt;proceed/&gt; is queued: flush it, then swap the pipes for TLS ones (RFC 6120 §5.4.3.3).</summary>
    protected void RequestTlsUpgrade(string host)
    {
        _tlsHost = host;
        _upgradeRequested = true;
    }

    private async Task UpgradeToTlsAsync()
    {
        var barrier = new Barrier();
        Enqueue(new Outbound(null, null, barrier), closing: true);
        await barrier.Flushed.Task; // <proceed/> is on the wire and the writer waits
        // Read once: a certificate reload meanwhile changes what the next connection gets, not this handshake.
        var cert = Server.Certificates.Get(_tlsHost!)!;
        var tls = new SslStream(new DuplexPipeStream(_connection.Transport), leaveInnerStreamOpen: false);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = cert.Context,
                // Tls/TlsPolicy.cs: TLS 1.2 and 1.3; the suites are restricted on the shared context (or here, as fallback).
                EnabledSslProtocols = TlsPolicy.Protocols,
                CipherSuitesPolicy = cert.CipherPolicy,
                ClientCertificateRequired = false,
                CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
            }, timeout.Token);
            // Belt and braces: whatever context the runtime used, no XMPP data flows over a suite outside the policy.
            // RFC 6120 §5.4.3.2: a failed TLS negotiation ends the TCP connection.
            if (!TlsPolicy.IsAllowed(tls.NegotiatedCipherSuite))
                throw new AuthenticationException($"cipher suite {tls.NegotiatedCipherSuite} is not allowed by the TLS policy");
        }
        catch
        {
            await tls.DisposeAsync();
            barrier.Resume.TrySetResult(false);
            throw;
        }
        _tls = tls;
        NativeHeap.ReleaseBuffersWhenIdle(tls); // ~34 KB less native memory per idle TLS session
        // An idle TLS connection waits for data without holding a read buffer (memory per idle session).
        _input = new TlsPipeReader(tls);
        _output = PipeWriter.Create(tls, new StreamPipeWriterOptions(minimumBufferSize: 4096, leaveOpen: true));
        // RFC 6120 §5.4.3.3: both sides discard the old stream; the client sends a new header.
        Parser.Reset();
        StreamId = NewId();
        barrier.Resume.TrySetResult(true);
        Log.LogDebug("{Connection}: TLS established ({Protocol}, {Cipher})", ConnectionId, tls.SslProtocol, tls.NegotiatedCipherSuite);
    }

    private enum EnqueueResult
    {
        Queued,
        Closed,
        Full,
    }

    /// <summary>Queues an item; with <paramref name="closing"/> it is accepted even while the stream ends (the close itself).</summary>
    private EnqueueResult Enqueue(Outbound item, bool closing)
    {
        bool start;
        lock (_sync)
        {
            if (_finished || (!_accepting && !closing)) return EnqueueResult.Closed;
            // Bounded by bytes, not stanzas (a count lets 10,000 stanzas of 256 KB pile up). An empty queue takes
            // any one stanza, so a single large one never cuts off a client that reads.
            if (!closing && _queuedBytes > 0 && _queuedBytes + item.Bytes > _maxQueueBytes) return EnqueueResult.Full;
            _queuedBytes += item.Bytes;
            if (_count == _ring.Length)
            {
                var bigger = new Outbound[Math.Max(4, _ring.Length * 2)];
                for (int i = 0; i < _count; i++) bigger[i] = _ring[(_head + i) % _ring.Length];
                _ring = bigger;
                _head = 0;
            }
            _ring[(_head + _count) % _ring.Length] = item;
            _count++;
            start = !_writing;
            _writing = true;
        }
        if (start) StartOrDeferWriter();
        return EnqueueResult.Queued;
    }

    /// <summary>True while the outbound queue holds at most half its byte bound: room for another large stanza.</summary>
    public bool HasQueueRoom
    {
        get
        {
            lock (_sync) return _queuedBytes <= _maxQueueBytes / 2;
        }
    }

    /// <summary>
    /// For a producer of a long run of stanzas to this one client (offline delivery): waits until the outbound queue is
    /// at most half full, so the run is paced by the client's reading instead of cutting it off as a slow reader. True
    /// when there is room; false when the stream ended or the queue did not drain within <paramref name="timeout"/>
    /// (a client that stopped reading: the producer keeps the rest for later).
    /// </summary>
    public async Task<bool> WaitForQueueRoomAsync(TimeSpan timeout)
    {
        Task room;
        lock (_sync)
        {
            if (_finished || !_accepting) return false;
            if (_queuedBytes <= _maxQueueBytes / 2) return true;
            _roomWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            room = _roomWaiter.Task;
        }
        if (!await CompletesWithinAsync(room, timeout)) return false;
        lock (_sync) return !_finished && _accepting;
    }

    /// <summary>Wakes a producer waiting for queue room (called under the lock).</summary>
    private void ReleaseRoomWaiter()
    {
        var waiter = _roomWaiter;
        if (waiter is null) return;
        _roomWaiter = null;
        waiter.TrySetResult();
    }

    /// <summary>No more stanzas are accepted; the writer drains what is queued, then completes the output.</summary>
    private void StopAccepting()
    {
        bool start;
        lock (_sync)
        {
            ReleaseRoomWaiter();
            _accepting = false;
            start = !_writing && !_finished;
            _writing = true;
        }
        if (start) StartOrDeferWriter();
    }

    /// <summary>
    /// Runs the writer on the caller's thread (usually the sending session's read loop): serialising and handing the
    /// bytes to the transport completes synchronously unless the peer is slow, so a routed stanza costs no thread-pool
    /// hop. When the transport pushes back, the rest of the activation continues asynchronously.
    /// </summary>
    private void StartWriter() => _ = WriteAsync();

    private void StartOrDeferWriter()
    {
        if (_corkThread == Environment.CurrentManagedThreadId) _writerDeferred = true;
        else StartWriter();
    }

    private bool TryDequeue(out Outbound item)
    {
        lock (_sync)
        {
            if (_count == 0)
            {
                item = default;
                return false;
            }
            item = _ring[_head];
            _ring[_head] = default;
            _head = (_head + 1) % _ring.Length;
            _count--;
            _queuedBytes -= item.Bytes;
            if (_queuedBytes <= _maxQueueBytes / 2) ReleaseRoomWaiter();
            return true;
        }
    }

    /// <summary>One writer activation: writes and flushes until the queue is empty; finishes the output when the stream ends.</summary>
    private async Task WriteAsync()
    {
        try
        {
            while (true)
            {
                while (TryDequeue(out var item))
                {
                    if (item.Element is not null)
                    {
                        if (_peerGone && IsStanza(item.Element)) _leftover.Add(item.Element);
                        else XmlWriter.Write(_output, item.Element, DefaultNamespace);
                    }
                    else if (item.Raw is not null)
                    {
                        _output.Write(item.Raw);
                    }
                    else if (item.Barrier is not null)
                    {
                        await _output.FlushAsync();
                        item.Barrier.Flushed.TrySetResult();
                        if (!await item.Barrier.Resume.Task) throw new IOException("TLS negotiation failed");
                    }
                }
                var flush = await _output.FlushAsync();
                LastSent = Environment.TickCount64;
                if (flush.IsCompleted || flush.IsCanceled) break;
                lock (_sync)
                {
                    if (_count > 0) continue;
                    if (_accepting)
                    {
                        // Idle again: give back a ring that a burst made large, and end this activation.
                        if (_ring.Length > 16) { _ring = []; _head = 0; }
                        _writing = false;
                        return;
                    }
                }
                break; // the stream is ending and everything queued was written
            }
            if (_tls is not null) await _tls.ShutdownAsync();
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ObjectDisposedException or InvalidOperationException or OperationCanceledException or AuthenticationException)
        {
            Log.LogDebug("{Connection}: write failed: {Message}", ConnectionId, ex.Message);
        }
        await FinishOutputAsync();
    }

    private async Task FinishOutputAsync()
    {
        lock (_sync)
        {
            ReleaseRoomWaiter();
            _accepting = false;
            _finished = true;
            _writing = false;
        }
        BeginClosing();
        // Closing the output ends the connection; the read loop then sees the end of input.
        try
        {
            await _output.CompleteAsync();
            if (_tls is not null) await _connection.Transport.Output.CompleteAsync();
        }
        catch (Exception ex)
        {
            Log.LogDebug("{Connection}: completing output: {Message}", ConnectionId, ex.Message);
        }
        // RFC 6120 §4.4: give the peer a moment to send its own closing tag, then drop the connection. A peer that
        // closed first (or whose input ended) needs no wait: the common case then arms no timer and wakes no thread.
        if (!_peerGone && !await CompletesWithinAsync(_readDone.Task, TimeSpan.FromSeconds(2))) AbortConnection("stream closed");
        _writerDone.TrySetResult();
    }

    /// <summary>
    /// Waits for <paramref name="task"/> (one that never faults) at most <paramref name="timeout"/>. Unlike
    /// Task.WhenAny with Task.Delay, the timer is removed as soon as the task completes, so a closed connection leaves
    /// no timer behind to fire seconds later (two per connection, thousands per second under login load).
    /// </summary>
    private static async ValueTask<bool> CompletesWithinAsync(Task task, TimeSpan timeout)
    {
        if (task.IsCompleted) return true;
        try
        {
            await task.WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private bool IsStanza(XmlElement e) =>
        e.Namespace == DefaultNamespace && e.Name is "message" or "presence" or "iq";

    /// <summary>Logs an element with secrets removed (SASL payloads, passwords).</summary>
    protected void TraceXml(string direction, XmlElement element)
    {
        Log.LogInformation("{Connection} {Direction} {Xml}", ConnectionId, direction, XmlRedaction.Redact(element));
    }

    /// <summary>A queue entry; <paramref name="Bytes"/> is what it counts against the queue's bound (0 for the close itself).</summary>
    private readonly record struct Outbound(XmlElement? Element, byte[]? Raw, Barrier? Barrier, long Bytes = 0);

    private sealed class Barrier
    {
        public TaskCompletionSource Flushed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<bool> Resume { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>Removes secrets from XML before it is logged.</summary>
public static class XmlRedaction
{
    public static string Redact(XmlElement element)
    {
        if (element.Namespace == Namespaces.Sasl && element.Text.Length > 0)
        {
            var copy = new XmlElement(element.Name, element.Namespace);
            foreach (var a in element.Attributes) copy.SetAttribute(a.Name, a.Value, a.Namespace);
            copy.AddText("[redacted]");
            return copy.ToString();
        }
        if (Contains(element, "password"))
        {
            var copy = element.Clone();
            RedactPasswords(copy);
            return copy.ToString();
        }
        return element.ToString();
    }

    private static bool Contains(XmlElement e, string name)
    {
        foreach (var c in e.Elements())
        {
            if (c.Name == name || Contains(c, name)) return true;
        }
        return false;
    }

    private static void RedactPasswords(XmlElement e)
    {
        foreach (var c in e.Elements())
        {
            if (c.Name == "password")
            {
                c.ClearChildren();
                c.AddText("[redacted]");
            }
            else RedactPasswords(c);
        }
    }
}
