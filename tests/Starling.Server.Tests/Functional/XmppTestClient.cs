using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Starling.Xml;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// A raw XMPP client for tests: writes the exact XML a test gives it and reads with Starling's own
/// <see cref="XmlStreamParser"/>, so every top-level element received is an <see cref="XmlElement"/>.
/// Reading is pull-based (nothing reads the socket in the background), which lets STARTTLS swap the stream.
/// Elements that did not match what a test waited for are kept and searched by later waits, so tests do not
/// depend on the interleaving of unrelated traffic (presence broadcasts, pushes).
/// </summary>
public sealed class XmppTestClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private readonly TcpClient _tcp;
    private readonly NetworkStream _network;
    private readonly XmlStreamParser _parser = new(new XmlLimits { MaxStanzaBytes = 4 * 1024 * 1024, MaxHeaderBytes = 64 * 1024 });
    private readonly List<XmlElement> _pending = [];
    private readonly List<string> _transcript = [];
    private Stream _stream;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;
    private int _nextId;

    private XmppTestClient(TcpClient tcp, string domain)
    {
        _tcp = tcp;
        _network = tcp.GetStream();
        _stream = _network;
        Domain = domain;
    }

    public string Domain { get; }

    /// <summary>The server's last stream header.</summary>
    public XmlElement? StreamHeader { get; private set; }

    /// <summary>The last &lt;stream:features/&gt; received.</summary>
    public XmlElement? Features { get; private set; }

    /// <summary>DER of the only certificate STARTTLS accepts (the server's self-signed one).</summary>
    public byte[]? PinnedCertificate { get; set; }

    /// <summary>The TLS layer once STARTTLS completed.</summary>
    public SslStream? Tls { get; private set; }

    /// <summary>The bound full JID.</summary>
    public string? Jid { get; private set; }

    /// <summary>The server closed its stream (&lt;/stream:stream&gt; received).</summary>
    public bool ServerClosedStream { get; private set; }

    /// <summary>The connection reached end of input (or was reset).</summary>
    public bool ConnectionClosed { get; private set; }

    /// <summary>Bytes read from the connection so far (after TLS).</summary>
    public long BytesReceived { get; private set; }

    /// <summary>Stanzas (message, presence, iq) received so far: what a XEP-0198 'h' counts, from its value at &lt;enabled/&gt;.</summary>
    public uint StanzasReceived { get; private set; }

    /// <param name="from">Local address to connect from (e.g. 127.0.0.2, another loopback address: another client network for the server's throttle), or null.</param>
    public static async Task<XmppTestClient> ConnectAsync(IPEndPoint endPoint, string domain, IPAddress? from = null)
    {
        var tcp = new TcpClient(endPoint.AddressFamily) { NoDelay = true };
        try
        {
            if (from is not null) tcp.Client.Bind(new IPEndPoint(from, 0));
            using var cts = new CancellationTokenSource(DefaultTimeout);
            await tcp.ConnectAsync(endPoint, cts.Token);
            return new XmppTestClient(tcp, domain);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    public string NextId(string prefix = "t") => prefix + Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);

    // ---- sending ----

    public async Task SendAsync(string xml)
    {
        Record(">>> " + xml);
        await SendBytesAsync(Encoding.UTF8.GetBytes(xml));
    }

    /// <summary>How long one send may wait for the server to take the bytes (a throttled flooder waits longer).</summary>
    public TimeSpan SendTimeout { get; set; } = DefaultTimeout;

    public async Task SendBytesAsync(byte[] bytes)
    {
        using var cts = new CancellationTokenSource(SendTimeout);
        await _stream.WriteAsync(bytes, cts.Token);
        await _stream.FlushAsync(cts.Token);
    }

    /// <summary>Sends a stream header; <paramref name="to"/> null omits the attribute.</summary>
    public Task SendStreamHeaderAsync(string? to, string version = "1.0", string ns = "jabber:client", string streamNs = "http://etherx.jabber.org/streams")
    {
        var sb = new StringBuilder("<?xml version='1.0'?><stream:stream xmlns='").Append(ns)
            .Append("' xmlns:stream='").Append(streamNs).Append('\'');
        if (to is not null) sb.Append(" to='").Append(to).Append('\'');
        if (version.Length > 0) sb.Append(" version='").Append(version).Append('\'');
        sb.Append(" xml:lang='en'>");
        return SendAsync(sb.ToString());
    }

    /// <summary>Opens (or restarts) the stream and returns the features that follow the server's header.</summary>
    public async Task<XmlElement> OpenStreamAsync(string? to = null)
    {
        await SendStreamHeaderAsync(to ?? Domain);
        await ExpectHeaderAsync();
        var features = await ExpectAsync(e => e.Name == "features" && e.Namespace == Namespaces.Streams, "<stream:features/>");
        Features = features;
        return features;
    }

    // ---- receiving ----

    private enum Kind
    {
        Header,
        Element,
        StreamClose,
        EndOfInput,
    }

    private async Task<(Kind Kind, XmlElement? Element)> ReadEventAsync(CancellationToken cancellationToken)
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
                        StreamHeader = _parser.StreamHeader;
                        Record("<<< " + StreamHeader);
                        return (Kind.Header, StreamHeader);
                    case XmlStreamEvent.Element:
                        var element = _parser.TakeElement();
                        Record("<<< " + element);
                        if (element.Namespace == Namespaces.Client && element.Name is "message" or "presence" or "iq") StanzasReceived++;
                        return (Kind.Element, element);
                    case XmlStreamEvent.StreamClose:
                        ServerClosedStream = true;
                        Record("<<< </stream:stream>");
                        return (Kind.StreamClose, null);
                    case XmlStreamEvent.Error:
                        Assert.Fail($"the server sent XML our parser rejects: {_parser.Error} ({_parser.ErrorDetail}){Transcript()}");
                        break;
                    default:
                        continue;
                }
            }
            _start = _end = 0;
            if (ConnectionClosed) return (Kind.EndOfInput, null);
            int n;
            try
            {
                n = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            }
            catch (IOException)
            {
                n = 0;
            }
            if (n == 0)
            {
                ConnectionClosed = true;
                Record("<<< (end of input)");
                return (Kind.EndOfInput, null);
            }
            _end = n;
            BytesReceived += n;
        }
    }

    /// <summary>Waits for the server's stream header (after our header, STARTTLS or SASL success).</summary>
    public async Task<XmlElement> ExpectHeaderAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            while (true)
            {
                var (kind, element) = await ReadEventAsync(cts.Token);
                if (kind == Kind.Header) return element!;
                if (kind == Kind.Element) { _pending.Add(element!); continue; }
                Assert.Fail($"expected the server's stream header but the stream ended{Transcript()}");
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"no stream header within {(timeout ?? DefaultTimeout).TotalSeconds}s{Transcript()}");
            throw;
        }
    }

    /// <summary>
    /// Returns the first element (already received and not yet taken, or arriving within the timeout) that matches.
    /// Non-matching elements are kept for later waits. Fails with the transcript on timeout or end of stream.
    /// </summary>
    public async Task<XmlElement> ExpectAsync(Func<XmlElement, bool> predicate, string description, TimeSpan? timeout = null)
    {
        for (int i = 0; i < _pending.Count; i++)
        {
            if (predicate(_pending[i]))
            {
                var found = _pending[i];
                _pending.RemoveAt(i);
                return found;
            }
        }
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            while (true)
            {
                var (kind, element) = await ReadEventAsync(cts.Token);
                switch (kind)
                {
                    case Kind.Element when predicate(element!):
                        return element!;
                    case Kind.Element:
                        _pending.Add(element!);
                        break;
                    case Kind.Header:
                        break;
                    default:
                        Assert.Fail($"waiting for {description}, but the server {(kind == Kind.StreamClose ? "closed the stream" : "closed the connection")}{Transcript()}");
                        break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"waiting for {description}: nothing matching within {(timeout ?? DefaultTimeout).TotalSeconds}s{Transcript()}");
            throw;
        }
    }

    public Task<XmlElement> ExpectAsync(string name, string ns, TimeSpan? timeout = null) =>
        ExpectAsync(e => e.Name == name && e.Namespace == ns, $"<{name} xmlns='{ns}'/>", timeout);

    /// <summary>The next element in the SASL namespace (challenge, success or failure).</summary>
    public Task<XmlElement> ExpectSaslAsync() => ExpectAsync(e => e.Namespace == Namespaces.Sasl, "a SASL element");

    /// <summary>The iq answering <paramref name="id"/> (result or error).</summary>
    public Task<XmlElement> ExpectIqAsync(string id) =>
        ExpectAsync(e => e.Name == "iq" && e.GetAttribute("id") == id && e.GetAttribute("type") is "result" or "error", $"the answer to iq '{id}'");

    /// <summary>The iq result answering <paramref name="id"/>; fails if it is an error.</summary>
    public async Task<XmlElement> ExpectIqResultAsync(string id)
    {
        var iq = await ExpectIqAsync(id);
        Assert.True(iq.GetAttribute("type") == "result", $"iq '{id}' failed: {iq}");
        return iq;
    }

    /// <summary>A stanza of kind <paramref name="name"/> answering <paramref name="id"/> with type error and the given condition; returns it.</summary>
    public async Task<XmlElement> ExpectStanzaErrorAsync(string name, string id, string condition, string? errorType = null)
    {
        var stanza = await ExpectAsync(e => e.Name == name && e.GetAttribute("id") == id && e.GetAttribute("type") == "error", $"<{name} type='error' id='{id}'/>");
        AssertStanzaError(stanza, condition, errorType);
        return stanza;
    }

    public static void AssertStanzaError(XmlElement stanza, string condition, string? errorType = null)
    {
        var error = stanza.Element("error", Namespaces.Client);
        Assert.True(error is not null, $"no <error/> in {stanza}");
        Assert.True(error.Element(condition, Namespaces.Stanzas) is not null, $"expected <{condition}/> in {stanza}");
        if (errorType is not null) Assert.Equal(errorType, error.GetAttribute("type"));
    }

    /// <summary>
    /// Expects &lt;stream:error&gt; with <paramref name="condition"/>, then the server's &lt;/stream:stream&gt;,
    /// then the end of the connection.
    /// </summary>
    public async Task<XmlElement> ExpectStreamErrorAsync(string condition)
    {
        var error = await ExpectAsync(e => e.Name == "error" && e.Namespace == Namespaces.Streams, $"<stream:error><{condition}/></stream:error>");
        Assert.True(error.Element(condition, Namespaces.StreamErrors) is not null, $"expected stream error <{condition}/>, got {error}{Transcript()}");
        await ExpectClosedAsync();
        return error;
    }

    /// <summary>Expects the server's &lt;/stream:stream&gt; (skipping stanzas) and then the end of the connection.</summary>
    public async Task ExpectClosedAsync()
    {
        using var cts = new CancellationTokenSource(DefaultTimeout);
        try
        {
            while (!ServerClosedStream)
            {
                var (kind, element) = await ReadEventAsync(cts.Token);
                if (kind == Kind.Element) _pending.Add(element!);
                if (kind == Kind.EndOfInput) Assert.Fail($"the connection ended without </stream:stream>{Transcript()}");
            }
            while (!ConnectionClosed)
            {
                var (kind, _) = await ReadEventAsync(cts.Token);
                if (kind == Kind.EndOfInput) break;
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the server did not close the stream and the connection within {DefaultTimeout.TotalSeconds}s{Transcript()}");
        }
    }

    /// <summary>
    /// A barrier: pings the server and waits for the answer. The server handles a stream's stanzas in order, so
    /// everything this client sent before has been routed, and everything queued for it before is now received.
    /// </summary>
    public async Task SyncAsync()
    {
        var id = NextId("sync");
        await SendAsync($"<iq type='get' id='{id}' to='{Domain}'><ping xmlns='urn:xmpp:ping'/></iq>");
        await ExpectIqResultAsync(id);
    }

    /// <summary>Received elements not yet taken by a wait.</summary>
    public IReadOnlyList<XmlElement> Pending => _pending;

    /// <summary>Removes and returns the pending elements matching <paramref name="predicate"/>.</summary>
    public List<XmlElement> TakePending(Func<XmlElement, bool> predicate)
    {
        var taken = _pending.Where(predicate).ToList();
        _pending.RemoveAll(e => taken.Contains(e));
        return taken;
    }

    /// <summary>Fails if a received, not yet taken element matches (call after <see cref="SyncAsync"/>).</summary>
    public void AssertNoPending(Func<XmlElement, bool> predicate, string description)
    {
        var found = _pending.FirstOrDefault(predicate);
        Assert.True(found is null, $"did not expect {description}, got {found}{Transcript()}");
    }

    // ---- negotiation ----

    /// <summary>STARTTLS (accepting the self-signed certificate) and the stream restart; returns the new features.</summary>
    public async Task<XmlElement> StartTlsAsync()
    {
        await SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        var answer = await ExpectAsync(e => e.Namespace == Namespaces.Tls, "<proceed/>");
        Assert.True(answer.Name == "proceed", $"STARTTLS refused: {answer}");
        Assert.True(_start == _end, "bytes after <proceed/> before the TLS handshake");
        // The server's certificate is self-signed: it is trusted by pinning the exact certificate the server loaded.
        var tls = new SslStream(_network, leaveInnerStreamOpen: true, (_, certificate, _, _) =>
            certificate is not null && PinnedCertificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(PinnedCertificate));
        using (var cts = new CancellationTokenSource(DefaultTimeout))
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = Domain }, cts.Token);
        }
        Tls = tls;
        _stream = tls;
        _parser.Reset();
        Record("--- TLS established");
        return await OpenStreamAsync();
    }

    /// <summary>RFC 5929 tls-server-end-point for the server's certificate (SHA-256 of the DER: ours is signed with SHA-256).</summary>
    public byte[] ServerEndPointBinding()
    {
        var cert = Tls?.RemoteCertificate ?? throw new InvalidOperationException("no TLS");
        return SHA256.HashData(cert.GetRawCertData());
    }

    /// <summary>
    /// A SCRAM exchange. Returns the final &lt;success/&gt; or &lt;failure/&gt;. On success the server-final is verified
    /// and the parser reset for the stream restart (the caller opens the new stream).
    /// </summary>
    public async Task<XmlElement> TryAuthenticateScramAsync(string user, string password, ScramHash hash, bool plus = false, byte[]? channelBinding = null, string? authzid = null)
    {
        var scram = new ScramClient(hash, user, password, plus ? "tls-server-end-point" : null, plus ? channelBinding ?? ServerEndPointBinding() : null)
        {
            AuthorizationId = authzid,
        };
        return await TryAuthenticateScramAsync(scram);
    }

    /// <summary>A SCRAM exchange with a client the test configured (channel-binding type, XEP-0474 lists); as above.</summary>
    public async Task<XmlElement> TryAuthenticateScramAsync(ScramClient scram)
    {
        await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{scram.MechanismName}'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        var challenge = await ExpectSaslAsync();
        if (challenge.Name != "challenge") return challenge;
        var final = scram.ClientFinal(Convert.FromBase64String(challenge.Text));
        await SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(final)}</response>");
        var outcome = await ExpectSaslAsync();
        if (outcome.Name == "success")
        {
            Assert.True(scram.VerifyServerFinal(Convert.FromBase64String(outcome.Text)), $"the server's SCRAM signature does not verify: {outcome}");
            _parser.Reset();
        }
        return outcome;
    }

    /// <summary>After a &lt;success/&gt; the test read itself: the server's next bytes are a new stream header (RFC 6120 §6.4.6).</summary>
    public void ExpectStreamRestart() => _parser.Reset();

    /// <summary>A SCRAM login that must succeed; the stream is restarted and the post-auth features returned.</summary>
    public async Task<XmlElement> AuthenticateScramAsync(string user, string password, ScramHash hash = ScramHash.Sha256, bool plus = false)
    {
        var outcome = await TryAuthenticateScramAsync(user, password, hash, plus);
        Assert.True(outcome.Name == "success", $"SCRAM authentication failed: {outcome}{Transcript()}");
        return await OpenStreamAsync();
    }

    /// <summary>A PLAIN exchange (RFC 4616) with the initial response; returns &lt;success/&gt; or &lt;failure/&gt;.</summary>
    public async Task<XmlElement> TryAuthenticatePlainAsync(string user, string password, string authzid = "")
    {
        var data = Encoding.UTF8.GetBytes(authzid + "\0" + user + "\0" + password);
        await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{Convert.ToBase64String(data)}</auth>");
        var outcome = await ExpectSaslAsync();
        if (outcome.Name == "success") _parser.Reset();
        return outcome;
    }

    public async Task<XmlElement> AuthenticatePlainAsync(string user, string password)
    {
        var outcome = await TryAuthenticatePlainAsync(user, password);
        Assert.True(outcome.Name == "success", $"PLAIN authentication failed: {outcome}{Transcript()}");
        return await OpenStreamAsync();
    }

    /// <summary>Sends a bind request and returns the answering iq (result or error).</summary>
    public async Task<XmlElement> TryBindAsync(string? resource)
    {
        var id = NextId("bind");
        var inner = resource is null ? "" : $"<resource>{resource}</resource>";
        await SendAsync($"<iq type='set' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{inner}</bind></iq>");
        return await ExpectIqAsync(id);
    }

    /// <summary>Binds and returns the full JID the server assigned.</summary>
    public async Task<string> BindAsync(string? resource)
    {
        var iq = await TryBindAsync(resource);
        Assert.True(iq.GetAttribute("type") == "result", $"bind failed: {iq}");
        var jid = iq.Element("bind", Namespaces.Bind)?.ElementText("jid", Namespaces.Bind);
        Assert.False(string.IsNullOrEmpty(jid), $"no <jid/> in the bind result: {iq}");
        Jid = jid;
        return jid;
    }

    /// <summary>The whole dance: stream, STARTTLS if offered as required, SCRAM-SHA-256, restart, bind.</summary>
    public async Task<string> LoginAsync(string user, string password, string? resource)
    {
        var features = await OpenStreamAsync();
        if (features.Element("starttls", Namespaces.Tls)?.Element("required", Namespaces.Tls) is not null) await StartTlsAsync();
        await AuthenticateScramAsync(user, password);
        return await BindAsync(resource);
    }

    /// <summary>Initial (or updated) available presence; waits for the server's echo to this resource.</summary>
    public async Task<XmlElement> SendPresenceAsync(int? priority = null, string extra = "")
    {
        var inner = (priority is null ? "" : $"<priority>{priority}</priority>") + extra;
        await SendAsync(inner.Length == 0 ? "<presence/>" : $"<presence>{inner}</presence>");
        return await ExpectAsync(e => e.Name == "presence" && e.GetAttribute("type") is null && e.GetAttribute("from") == Jid, "the echo of our own presence");
    }

    // ---- XEP-0198 stream management ----

    /// <summary>Sends &lt;enable/&gt; and returns the answer: &lt;enabled/&gt; or &lt;failed/&gt;.</summary>
    public async Task<XmlElement> TryEnableSmAsync(bool resume = true, int? max = null)
    {
        var attributes = (resume ? " resume='true'" : "") + (max is null ? "" : $" max='{max}'");
        await SendAsync($"<enable xmlns='urn:xmpp:sm:3'{attributes}/>");
        return await ExpectAsync(e => e.Namespace == Namespaces.StreamManagement && e.Name is "enabled" or "failed", "<enabled/> or <failed/>");
    }

    /// <summary>Enables stream management (it must succeed); returns &lt;enabled/&gt;.</summary>
    public async Task<XmlElement> EnableSmAsync(bool resume = true, int? max = null)
    {
        var answer = await TryEnableSmAsync(resume, max);
        Assert.True(answer.Name == "enabled", $"stream management not enabled: {answer}{Transcript()}");
        return answer;
    }

    public Task SendAckAsync(uint h) => SendAsync($"<a xmlns='urn:xmpp:sm:3' h='{h}'/>");

    /// <summary>Sends &lt;r/&gt; and returns the server's 'h'.</summary>
    public async Task<uint> RequestAckAsync()
    {
        await SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        var a = await ExpectAsync("a", Namespaces.StreamManagement);
        return uint.Parse(a.GetAttribute("h")!, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Opens the stream and authenticates without binding (what a XEP-0198 resume needs).</summary>
    public async Task AuthenticateAsync(string user, string password)
    {
        var features = await OpenStreamAsync();
        if (features.Element("starttls", Namespaces.Tls)?.Element("required", Namespaces.Tls) is not null) await StartTlsAsync();
        await AuthenticateScramAsync(user, password);
    }

    /// <summary>Sends &lt;resume/&gt; and returns &lt;resumed/&gt; or &lt;failed/&gt;; on success this client is <paramref name="jid"/>.</summary>
    public async Task<XmlElement> ResumeAsync(string previd, uint h, string? jid = null)
    {
        await SendAsync($"<resume xmlns='urn:xmpp:sm:3' previd='{previd}' h='{h}'/>");
        var answer = await ExpectAsync(e => e.Namespace == Namespaces.StreamManagement && e.Name is "resumed" or "failed", "<resumed/> or <failed/>");
        if (answer.Name == "resumed" && jid is not null) Jid = jid;
        return answer;
    }

    // ---- diagnostics and teardown ----

    private void Record(string line)
    {
        lock (_transcript)
        {
            _transcript.Add(line.Length > 600 ? line[..600] + "…" : line);
            if (_transcript.Count > 60) _transcript.RemoveAt(0);
        }
    }

    /// <summary>The recent conversation, for failure messages.</summary>
    public string Transcript()
    {
        lock (_transcript)
        {
            var pending = _pending.Count == 0 ? "" : Environment.NewLine + "  pending: " + string.Join(Environment.NewLine + "           ", _pending.Select(p => p.ToString()));
            return Environment.NewLine + "  transcript (" + (Jid ?? "unbound") + "):" + Environment.NewLine + "    " + string.Join(Environment.NewLine + "    ", _transcript) + pending;
        }
    }

    /// <summary>Drops the connection without closing the stream (an abrupt disconnect).</summary>
    public void Abort()
    {
        try
        {
            _tcp.Client.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        _tcp.Dispose();
        ConnectionClosed = true;
    }

    public async ValueTask DisposeAsync()
    {
        if (Tls is not null) await Tls.DisposeAsync();
        _tcp.Dispose();
        ConnectionClosed = true;
    }
}
