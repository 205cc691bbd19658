using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Starling.Xml;

namespace Starling.Cli.Tests.NoMessageLost;

/// <summary>How the connection a stanza arrived on began.</summary>
public enum SessionStart
{
    /// <summary>A new session: bind, enable, initial presence (offline messages follow the presence).</summary>
    Fresh,
    /// <summary>A XEP-0198 resumption of the previous session (the server resends what we had not acknowledged).</summary>
    Resumed,
}

/// <summary>How a client learns that the server has taken its stanzas.</summary>
public enum Acking
{
    /// <summary>XEP-0198: &lt;enable resume='true'/&gt;, &lt;r/&gt; and &lt;a h/&gt;, resumption after a cut.</summary>
    StreamManagement,
    /// <summary>
    /// No stream management: a XEP-0199 ping to the server as a barrier. The server handles a stream's stanzas in
    /// order, so its answer acknowledges everything sent before it (routed: delivered, written or stored).
    /// </summary>
    PingBarrier,
    /// <summary>No acknowledgements at all (a plain receiver).</summary>
    None,
}

/// <summary>
/// A XEP-0198 client for the no-message-lost proof, over plain TCP (SASL PLAIN on loopback) and Starling's own XML
/// parser. It stays connected by itself: when its connection ends it reconnects and resumes the session
/// (&lt;resume previd h/&gt;); when resumption fails (the server restarted, or the session timed out) it starts a new
/// session. It counts the stanzas it receives (h), answers &lt;r/&gt; with &lt;a h/&gt;, keeps what it sent until the
/// server acknowledges it, and says which of its stanzas were acknowledged (by the tag the caller gave each).
/// Without stream management it logs in afresh after each cut (and may learn what the server took from ping barriers).
/// </summary>
public sealed class SmClient : IAsyncDisposable
{
    private const string Sm = "urn:xmpp:sm:3";
    private const string Client = "jabber:client";
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(15);

    private readonly string _user;
    private readonly string _resource;
    private readonly Func<IPEndPoint> _endPoint;
    private readonly Acking _acking;
    private readonly bool _sendsPresence;
    private readonly object _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Queue<(int Tag, string Xml)> _unacked = new();
    private readonly List<string> _problems = [];
    private readonly List<string> _events = [];
    private Task? _running;
    private TaskCompletionSource _online = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Socket? _socket;
    private bool _isOnline;
    private bool _closing;
    private string? _sessionId;
    private uint _inbound;      // h: stanzas received in this SM session
    private uint _outboundAcked; // the server's last h for our stanzas
    private int _nextId;
    private long _lastWrite;
    private Task? _keepalive;

    /// <param name="sendsPresence">Sends initial presence in a new session (a receiver; it also triggers offline delivery).</param>
    public SmClient(string user, string resource, Func<IPEndPoint> endPoint, Acking acking, bool sendsPresence)
    {
        _user = user;
        _resource = resource;
        _endPoint = endPoint;
        _acking = acking;
        _sendsPresence = sendsPresence;
    }

    /// <summary>A message (or other stanza) received, with how the connection it came on began. Runs on the read loop.</summary>
    public Action<XmlElement, SessionStart>? StanzaReceived { get; set; }

    /// <summary>The server acknowledged our stanza with this tag (XEP-0198 &lt;a h/&gt;). Runs on the read loop.</summary>
    public Action<int>? Acknowledged { get; set; }

    /// <summary>A session was resumed; runs on the read loop before the stanzas the server resends.</summary>
    public Action? Resumed { get; set; }

    /// <summary>Waited before the next reconnection (once), e.g. a phone that regains coverage only later.</summary>
    public TimeSpan NextReconnectDelay { get; set; }

    public bool IsOnline
    {
        get
        {
            lock (_lock) return _isOnline;
        }
    }

    /// <summary>Problems that are the server's fault or a broken protocol step (each also ends the client when fatal).</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_lock) return [.. _problems];
        }
    }

    /// <summary>What happened to the connections (resumed, new session, stream errors), for the test's report.</summary>
    public IReadOnlyList<string> Events
    {
        get
        {
            lock (_lock) return [.. _events];
        }
    }

    public int Connections { get; private set; }

    public int Resumptions { get; private set; }

    public int ResumeFailures { get; private set; }

    public int FreshSessions { get; private set; }

    /// <summary>Stanzas sent in a session that ended without their acknowledgement and were not resent (their fate is unknown).</summary>
    public int Abandoned { get; private set; }

    /// <summary>The stream error conditions received, counted by name.</summary>
    public Dictionary<string, int> StreamErrors { get; } = [];

    /// <summary>Stanzas that arrived after the final &lt;a/&gt; of <see cref="CloseAsync"/> (not counted: the server holds them as unacknowledged).</summary>
    public int IgnoredAfterClose { get; private set; }

    /// <summary>Starts connecting (and reconnecting) in the background.</summary>
    public void Start()
    {
        _running = Task.Run(RunAsync);
        _keepalive = Task.Run(KeepaliveAsync);
    }

    /// <summary>
    /// A whitespace keepalive after a second without writing (RFC 6120 §4.6.1), as mobile clients send: the server's idle
    /// timeout then ends only connections that are really gone (a silent drop), not a receiver that only listens.
    /// </summary>
    private async Task KeepaliveAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                lock (_lock)
                {
                    if (_isOnline && Environment.TickCount64 - _lastWrite > 1000) Write(" ");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Waits until a session is up; fails the test with the client's problems if it does not come within <paramref name="timeout"/>.</summary>
    public async Task WaitOnlineAsync(TimeSpan timeout)
    {
        Task online;
        lock (_lock)
        {
            if (_isOnline) return;
            online = _online.Task;
        }
        var first = await Task.WhenAny(online, Task.Delay(timeout), _running ?? Task.CompletedTask);
        if (first != online) Assert.Fail($"{_user}/{_resource} did not get a session{(first == _running ? " (it gave up)" : $" within {timeout.TotalSeconds} s")}: {Describe()}");
    }

    /// <summary>Sends a stanza; false when there is no session right now (nothing was written).</summary>
    public bool Send(string xml, int tag)
    {
        lock (_lock)
        {
            if (!_isOnline || _socket is null) return false;
            // Queued before it is written, under the lock that orders writes: the server's h counts our stanzas in
            // the order they are written (XEP-0198 §4), so the queue's order is the count's order.
            if (Tracked) _unacked.Enqueue((tag, xml));
            Write(xml);
            return true;
        }
    }

    /// <summary>Asks the server for an acknowledgement (&lt;r/&gt;).</summary>
    public void RequestAck()
    {
        lock (_lock)
        {
            if (!_isOnline) return;
            if (_sessionId is not null)
            {
                Write("<r xmlns='urn:xmpp:sm:3'/>");
            }
            else if (_acking == Acking.PingBarrier)
            {
                // The ping is a stanza of its own: its answer acknowledges it and everything before it.
                uint seq = unchecked(_outboundAcked + (uint)_unacked.Count + 1);
                string ping = $"<iq type='get' id='ack-{seq.ToString(CultureInfo.InvariantCulture)}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>";
                _unacked.Enqueue((-1, ping));
                Write(ping);
            }
        }
    }

    /// <summary>Stanzas sent and not yet acknowledged.</summary>
    public int Unacknowledged
    {
        get
        {
            lock (_lock) return _unacked.Count;
        }
    }

    /// <summary>
    /// Ends the session cleanly: a last &lt;a h/&gt; (so the server knows everything we received), &lt;/stream:stream&gt;,
    /// then waits for the server to close. No reconnection after this.
    /// </summary>
    public async Task CloseAsync()
    {
        lock (_lock)
        {
            _closing = true;
            if (_isOnline && _socket is not null)
            {
                if (_sessionId is not null) Write("<a xmlns='urn:xmpp:sm:3' h='" + _inbound.ToString(CultureInfo.InvariantCulture) + "'/>");
                Write("</stream:stream>");
            }
        }
        if (_running is not null) await Task.WhenAny(_running, Task.Delay(TimeSpan.FromSeconds(10)));
        await _stop.CancelAsync();
    }

    public async ValueTask DisposeAsync()
    {
        lock (_lock) _closing = true;
        await _stop.CancelAsync();
        lock (_lock) _socket?.Dispose();
        if (_running is not null) await Task.WhenAny(_running, Task.Delay(TimeSpan.FromSeconds(10)));
        if (_keepalive is not null) await _keepalive;
        _stop.Dispose();
    }

    public string Describe()
    {
        lock (_lock)
        {
            return $"connections {Connections}, resumed {Resumptions}, resume failed {ResumeFailures}, new sessions {FreshSessions}; "
                + $"problems: [{string.Join("; ", _problems)}]; last events: [{string.Join("; ", _events.Count > 12 ? _events[^12..] : _events)}]";
        }
    }

    // ---- the connection loop ----

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            lock (_lock)
            {
                if (_closing || IsFatal) return;
            }
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, SendTimeout = 10_000 };
            var reader = new Reader(socket, _stop.Token);
            try
            {
                using (var connect = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
                {
                    connect.CancelAfter(TimeSpan.FromSeconds(5));
                    await socket.ConnectAsync(_endPoint(), connect.Token);
                }
                lock (_lock) _socket = socket;
                Connections++;
                var start = await NegotiateAsync(reader);
                if (start is null) return; // fatal: recorded in Problems
                await ReadLoopAsync(reader, start.Value);
            }
            catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or ObjectDisposedException or ConnectionEnded)
            {
                // The connection ended (a cut, a restart, a refused connection while the server is down): reconnect.
                // XML our parser rejects is the server's fault: recorded, and the client goes on.
                if (ex is ConnectionEnded { IsServerFault: true }) lock (_lock) _problems.Add(ex.Message);
            }
            finally
            {
                lock (_lock)
                {
                    _isOnline = false;
                    if (ReferenceEquals(_socket, socket)) _socket = null;
                    if (_online.Task.IsCompleted) _online = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                socket.Dispose();
            }
            var delay = NextReconnectDelay;
            NextReconnectDelay = TimeSpan.Zero;
            try
            {
                await Task.Delay(delay > TimeSpan.Zero ? delay : TimeSpan.FromMilliseconds(100), _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private bool IsFatal { get; set; }

    /// <summary>Whether sent stanzas are kept until acknowledged (under the lock).</summary>
    private bool Tracked => _sessionId is not null || _acking == Acking.PingBarrier;

    private void Fatal(string problem)
    {
        lock (_lock)
        {
            _problems.Add(problem);
            IsFatal = true;
        }
    }

    private void Event(string what)
    {
        lock (_lock)
        {
            _events.Add(DateTime.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) + " " + what);
        }
    }

    /// <summary>Stream, SASL PLAIN, restart; then resumption or a new session. Null when a fatal problem was recorded.</summary>
    private async Task<SessionStart?> NegotiateAsync(Reader reader)
    {
        const string Header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
        WriteNow(Header);
        var features = await reader.ExpectAsync(e => e.Name == "features", ReadTimeout);
        if (features.Element("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl") is null)
        {
            Fatal("no SASL mechanisms offered: " + features);
            return null;
        }
        string plain = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0" + _user + "\0pw"));
        WriteNow($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
        var outcome = await reader.ExpectAsync(e => e.Namespace == "urn:ietf:params:xml:ns:xmpp-sasl", ReadTimeout);
        if (outcome.Name != "success")
        {
            Fatal("authentication failed: " + outcome);
            return null;
        }
        reader.Restart();
        WriteNow(Header);
        features = await reader.ExpectAsync(e => e.Name == "features", ReadTimeout);

        if (_acking == Acking.StreamManagement && features.Element("sm", Sm) is null)
        {
            Fatal("the server does not offer XEP-0198 stream management (no <sm xmlns='urn:xmpp:sm:3'/> in the stream features after authentication): " + features);
            return null;
        }

        string? previous;
        uint h;
        lock (_lock)
        {
            previous = _sessionId;
            h = _inbound;
        }
        if (previous is not null)
        {
            WriteNow($"<resume xmlns='urn:xmpp:sm:3' previd='{previous}' h='{h.ToString(CultureInfo.InvariantCulture)}'/>");
            var answer = await reader.ExpectAsync(e => e.Namespace == Sm && e.Name is "resumed" or "failed", ReadTimeout);
            if (answer.Name == "resumed")
            {
                lock (_lock)
                {
                    if (!Acknowledge(answer.GetAttribute("h"), "resumed")) return null;
                    _isOnline = true;
                    // XEP-0198 §5: what the server did not acknowledge is sent again, in order, with its original count.
                    foreach (var (_, xml) in _unacked) Write(xml);
                    Resumptions++;
                }
                Event($"resumed (server h={answer.GetAttribute("h")}, our h={h})");
                Resumed?.Invoke();
                lock (_lock) _online.TrySetResult();
                return SessionStart.Resumed;
            }
            // XEP-0198 §5: <failed/> may say how many of our stanzas the old session handled (h).
            lock (_lock)
            {
                if (answer.GetAttribute("h") is not null && !Acknowledge(answer.GetAttribute("h"), "failed")) return null;
                Abandoned += _unacked.Count;
                _unacked.Clear();
                _sessionId = null;
                _inbound = 0;
                _outboundAcked = 0;
                ResumeFailures++;
            }
            Event("resume failed: " + answer);
        }

        string bindId = NewId("bind");
        WriteNow($"<iq type='set' id='{bindId}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{_resource}</resource></bind></iq>");
        var bound = await reader.ExpectAsync(e => e.Name == "iq" && e.GetAttribute("id") == bindId, ReadTimeout);
        if (bound.GetAttribute("type") != "result")
        {
            Fatal("bind failed: " + bound);
            return null;
        }
        if (_acking == Acking.StreamManagement)
        {
            WriteNow("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
            var enabled = await reader.ExpectAsync(e => e.Namespace == Sm && e.Name is "enabled" or "failed", ReadTimeout);
            string? id = enabled.GetAttribute("id");
            if (enabled.Name != "enabled" || id is null || enabled.GetAttribute("resume") is not ("true" or "1"))
            {
                Fatal("enabling stream management with resumption failed: " + enabled);
                return null;
            }
            lock (_lock)
            {
                _sessionId = id;
                _inbound = 0;
                _outboundAcked = 0;
                _unacked.Clear();
            }
            Event($"new session (enabled id={id}, max={enabled.GetAttribute("max") ?? "-"})");
        }
        else
        {
            lock (_lock)
            {
                // Without resumption a new session starts the count afresh; what the last one did not confirm is abandoned.
                Abandoned += _unacked.Count;
                _unacked.Clear();
                _outboundAcked = 0;
            }
            Event("new session (no stream management)");
        }
        lock (_lock)
        {
            _isOnline = true;
            FreshSessions++;
            if (_sendsPresence)
            {
                // Initial presence: makes this resource available (bare-JID messages reach it) and asks for the
                // offline messages (XEP-0160 §3).
                if (Tracked) _unacked.Enqueue((-1, "<presence/>"));
                Write("<presence/>");
            }
            _online.TrySetResult();
        }
        return SessionStart.Fresh;
    }

    private async Task ReadLoopAsync(Reader reader, SessionStart start)
    {
        while (true)
        {
            var (kind, element) = await reader.ReadAsync(Timeout.InfiniteTimeSpan);
            if (kind == ReadKind.StreamClose)
            {
                // The server closes: tell it what we received (XEP-0198 §4 allows an unrequested <a/>), then close.
                lock (_lock)
                {
                    if (!_closing)
                    {
                        if (_sessionId is not null) Write("<a xmlns='urn:xmpp:sm:3' h='" + _inbound.ToString(CultureInfo.InvariantCulture) + "'/>");
                        Write("</stream:stream>");
                    }
                }
                Event("the server closed the stream");
                return;
            }
            var e = element!;
            if (e.Namespace == Client && e.Name is "message" or "presence" or "iq")
            {
                bool count;
                lock (_lock)
                {
                    count = !_closing;
                    if (count) _inbound++;
                    else IgnoredAfterClose++;
                }
                if (!count) continue;
                if (e.Name == "iq")
                {
                    if (_acking == Acking.PingBarrier && e.GetAttribute("type") == "result" && e.GetAttribute("id") is { } id && id.StartsWith("ack-", StringComparison.Ordinal))
                    {
                        lock (_lock)
                        {
                            if (!Acknowledge(id[4..], "iq id='" + id + "'")) return;
                        }
                        continue;
                    }
                    AnswerIq(e);
                }
                else StanzaReceived?.Invoke(e, start);
                continue;
            }
            if (e.Namespace == Sm)
            {
                lock (_lock)
                {
                    if (e.Name == "r")
                    {
                        if (!_closing) Write("<a xmlns='urn:xmpp:sm:3' h='" + _inbound.ToString(CultureInfo.InvariantCulture) + "'/>");
                    }
                    else if (e.Name == "a")
                    {
                        if (!Acknowledge(e.GetAttribute("h"), "a")) return;
                    }
                    else
                    {
                        _problems.Add("unexpected stream management element: " + e);
                    }
                }
                continue;
            }
            if (e.Name == "error" && e.Namespace == "http://etherx.jabber.org/streams")
            {
                string condition = e.FirstElement()?.Name ?? "?";
                lock (_lock) StreamErrors[condition] = StreamErrors.GetValueOrDefault(condition) + 1;
                Event("stream error " + condition);
                continue;
            }
            lock (_lock) _problems.Add("unexpected element: " + e);
        }
    }

    /// <summary>XEP-0199 pings from the server are answered; any other request gets &lt;service-unavailable/&gt; (RFC 6120 §8.2.3: every iq is answered).</summary>
    private void AnswerIq(XmlElement iq)
    {
        string? type = iq.GetAttribute("type");
        if (type is not ("get" or "set")) return;
        string id = iq.GetAttribute("id") ?? "";
        string to = iq.GetAttribute("from") ?? "localhost";
        string answer = iq.Element("ping", "urn:xmpp:ping") is not null
            ? $"<iq type='result' id='{Escape(id)}' to='{Escape(to)}'/>"
            : $"<iq type='error' id='{Escape(id)}' to='{Escape(to)}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        lock (_lock)
        {
            if (Tracked) _unacked.Enqueue((-1, answer));
            Write(answer);
        }
    }

    private static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("'", "&apos;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal);

    /// <summary>Applies the server's h (under the lock): everything up to it is acknowledged. False (fatal) when h acknowledges more than we sent.</summary>
    private bool Acknowledge(string? value, string where)
    {
        if (!uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out uint h))
        {
            _problems.Add($"<{where}/> without a valid h: '{value}'");
            IsFatal = true;
            return false;
        }
        // h wraps at 2^32 (XEP-0198 §4): the difference in uint arithmetic is the number newly acknowledged.
        uint newly = unchecked(h - _outboundAcked);
        if (newly > (uint)_unacked.Count)
        {
            _problems.Add($"<{where} h='{h}'/> acknowledges {newly} stanzas but only {_unacked.Count} were unacknowledged (last h {_outboundAcked})");
            IsFatal = true;
            return false;
        }
        for (uint i = 0; i < newly; i++)
        {
            var (tag, _) = _unacked.Dequeue();
            if (tag >= 0) Acknowledged?.Invoke(tag);
        }
        _outboundAcked = h;
        return true;
    }

    private string NewId(string prefix) => prefix + (++_nextId).ToString(CultureInfo.InvariantCulture);

    /// <summary>Writes during negotiation (before the session is online).</summary>
    private void WriteNow(string xml)
    {
        lock (_lock) Write(xml);
    }

    /// <summary>Writes to the current connection (under the lock). A failed write ends the connection; the read loop notices.</summary>
    private void Write(string xml)
    {
        var socket = _socket;
        if (socket is null) return;
        _lastWrite = Environment.TickCount64;
        try
        {
            var bytes = Encoding.UTF8.GetBytes(xml);
            int sent = 0;
            while (sent < bytes.Length) sent += socket.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            _isOnline = false;
            socket.Dispose();
        }
    }

    // ---- reading with Starling's parser ----

    private enum ReadKind
    {
        Element,
        StreamClose,
    }

    /// <summary>The connection ended (end of input, reset, or XML the parser rejects) before what was expected.</summary>
    private sealed class ConnectionEnded(string message, bool isServerFault = false) : Exception(message)
    {
        public bool IsServerFault { get; } = isServerFault;
    }

    /// <summary>Pull reader over the socket: one parser per connection, reset at the stream restart after SASL.</summary>
    private sealed class Reader(Socket socket, CancellationToken stop)
    {
        private readonly XmlStreamParser _parser = new(new XmlLimits { MaxStanzaBytes = 1024 * 1024, MaxHeaderBytes = 64 * 1024 });
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        public void Restart() => _parser.Reset();

        public async Task<XmlElement> ExpectAsync(Func<XmlElement, bool> match, TimeSpan timeout)
        {
            while (true)
            {
                var (kind, element) = await ReadAsync(timeout);
                if (kind == ReadKind.StreamClose) throw new ConnectionEnded("the server closed the stream during negotiation");
                if (element!.Name == "error" && element.Namespace == "http://etherx.jabber.org/streams") throw new ConnectionEnded("stream error during negotiation: " + element);
                if (match(element)) return element;
            }
        }

        public async Task<(ReadKind Kind, XmlElement? Element)> ReadAsync(TimeSpan timeout)
        {
            while (true)
            {
                if (_start < _end)
                {
                    var ev = _parser.Read(_buffer.AsSpan(_start, _end - _start), out int consumed);
                    _start += consumed;
                    switch (ev)
                    {
                        case XmlStreamEvent.StreamOpen:
                            continue;
                        case XmlStreamEvent.Element:
                            return (ReadKind.Element, _parser.TakeElement());
                        case XmlStreamEvent.StreamClose:
                            return (ReadKind.StreamClose, null);
                        case XmlStreamEvent.Error:
                            throw new ConnectionEnded($"the server sent XML our parser rejects: {_parser.Error} ({_parser.ErrorDetail})", isServerFault: true);
                        default:
                            continue;
                    }
                }
                _start = _end = 0;
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(stop);
                if (timeout != Timeout.InfiniteTimeSpan) cts.CancelAfter(timeout);
                int n = await socket.ReceiveAsync(_buffer, SocketFlags.None, cts.Token);
                if (n == 0) throw new ConnectionEnded("end of input");
                _end = n;
            }
        }
    }
}
