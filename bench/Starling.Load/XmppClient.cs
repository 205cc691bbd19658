using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Starling.Xml;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Load;

/// <summary>A login step failed; <see cref="Reason"/> is a short, countable reason ("auth-failed:not-authorized", "timeout:sasl", ...).</summary>
internal sealed class LoginException : Exception
{
    public LoginException(string reason) : base(reason) => Reason = reason;

    public LoginException() : this("unknown")
    {
    }

    public LoginException(string message, Exception innerException) : base(message, innerException) => Reason = message;

    public string Reason { get; }
}

/// <summary>
/// One client connection speaking real c2s XMPP: TCP (optionally from a chosen loopback source address),
/// optional STARTTLS, SASL (SCRAM-SHA-1/-256 or PLAIN), stream restart, bind, initial presence; then a
/// receive loop that answers pings and roster pushes and hands messages/presences to the scenario.
/// </summary>
/// <remarks>
/// Kept small because a run holds ~19,000 of them: while idle the receive loop parks in a zero-byte read
/// and returns its buffer to the pool, so an idle client owns a socket, a stream, a parser and a few fields.
/// </remarks>
internal sealed class XmppClient : IAsyncDisposable
{
    /// <summary>Salted passwords by user, shared by every client of this process (see <see cref="ScramKeyCache"/>).</summary>
    internal static readonly ScramKeyCache KeyCache = new();

    private const int BufferSize = 8192;
    private static readonly byte[] StreamCloseBytes = "</stream:stream>"u8.ToArray();

    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly XmlStreamParser _parser = new();
    private Socket? _socket;
    private Stream? _stream;
    private byte[]? _buffer;
    private int _start;
    private int _end;
    private int _iqCounter;

    public XmppClient(int index, string user, string domain)
    {
        Index = index;
        User = user;
        Domain = domain;
        BareJid = user + "@" + domain;
    }

    /// <summary>Index of this client in the scenario (0-based).</summary>
    public int Index { get; }

    public string User { get; }

    public string Domain { get; }

    public string BareJid { get; }

    public string? FullJid { get; private set; }

    /// <summary>Where the login is (used to name timeouts).</summary>
    public string Phase { get; private set; } = "connect";

    /// <summary>Called from the receive loop for each &lt;message/&gt; (after login).</summary>
    public Action<XmppClient, XmlElement>? OnMessage { get; set; }

    /// <summary>Called from the receive loop for each &lt;presence/&gt; (after login).</summary>
    public Action<XmppClient, XmlElement>? OnPresence { get; set; }

    /// <summary>Called from the receive loop for each &lt;iq type=result|error/&gt; (after login).</summary>
    public Action<XmppClient, XmlElement>? OnIqResponse { get; set; }

    public long PingsAnswered;

    /// <summary>Why the receive loop ended (null while it runs or if we closed it ourselves).</summary>
    public string? CloseReason { get; private set; }

    public bool Closed { get; private set; }

    /// <summary>Connects and logs in. Throws <see cref="LoginException"/> (with a reason) or the transport's exception.</summary>
    public async Task LoginAsync(IPEndPoint server, IPAddress? source, LoginSettings settings, CancellationToken ct)
    {
        Phase = "connect";
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket = socket;
        if (source is not null)
        {
            TryBindAddressNoPort(socket);
            socket.Bind(new IPEndPoint(source, 0));
        }
        await socket.ConnectAsync(server, ct);
        _stream = new NetworkStream(socket, ownsSocket: true);

        Phase = "stream";
        var features = await OpenStreamAsync(ct);

        if (settings.Tls == TlsMode.StartTls)
        {
            Phase = "starttls";
            if (features.Element("starttls", Namespaces.Tls) is null) throw new LoginException("starttls-not-offered");
            await SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"u8.ToArray(), ct);
            var answer = await NextElementAsync(ct);
            if (answer.Name != "proceed") throw new LoginException("starttls-refused");
            var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = Domain,
                // A load tool on loopback talks to servers with self-signed test certificates: any certificate is accepted.
#pragma warning disable CA5359
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
#pragma warning restore CA5359
            }, ct);
            _stream = ssl;
            features = await OpenStreamAsync(ct);
        }

        Phase = "sasl";
        await AuthenticateAsync(features, settings, ct);

        Phase = "bind";
        features = await OpenStreamAsync(ct);
        if (features.Element("bind", Namespaces.Bind) is null) throw new LoginException("bind-not-offered");
        await SendAsync(Encoding.UTF8.GetBytes(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"
            + Escape(settings.Resource) + "</resource></bind></iq>"), ct);
        var bound = await NextElementAsync(ct);
        if (bound.Name != "iq" || bound.GetAttribute("type") != "result")
            throw new LoginException("bind-failed:" + ErrorCondition(bound));
        FullJid = bound.Element("bind", Namespaces.Bind)?.ElementText("jid", Namespaces.Bind) ?? BareJid;

        var session = features.Element("session", Namespaces.Session);
        if (session is not null && session.Element("optional", Namespaces.Session) is null)
        {
            Phase = "session";
            await SendAsync("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"u8.ToArray(), ct);
            var ok = await NextElementAsync(ct);
            if (ok.GetAttribute("type") != "result") throw new LoginException("session-failed:" + ErrorCondition(ok));
        }

        Phase = "online";
    }

    /// <summary>Sends initial presence (the scenario decides when: some want handlers installed first).</summary>
    public Task SendInitialPresenceAsync(CancellationToken ct) => SendAsync("<presence/>"u8.ToArray(), ct);

    private async Task AuthenticateAsync(XmlElement features, LoginSettings settings, CancellationToken ct)
    {
        var mechanisms = features.Element("mechanisms", Namespaces.Sasl);
        if (mechanisms is null) throw new LoginException("no-sasl-offered");
        if (!mechanisms.Elements("mechanism", Namespaces.Sasl).Any(m => m.Text.Trim() == settings.Mechanism))
            throw new LoginException("mechanism-not-offered:" + settings.Mechanism);

        if (settings.Mechanism == "PLAIN")
        {
            byte[] plain = Encoding.UTF8.GetBytes("\0" + User + "\0" + settings.Password);
            await SendAsync(Encoding.UTF8.GetBytes(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + Convert.ToBase64String(plain) + "</auth>"), ct);
            var reply = await NextElementAsync(ct);
            if (reply.Name != "success") throw new LoginException("auth-failed:" + SaslCondition(reply));
            return;
        }

        var scram = new ScramClient(settings.Mechanism == "SCRAM-SHA-256" ? ScramHash.Sha256 : ScramHash.Sha1, User, settings.Password)
        {
            // Reconnecting clients keep their salted password: the load generator measures the server, not its own PBKDF2.
            KeyCache = settings.KeyCache ? KeyCache : null,
        };
        await SendAsync(Encoding.UTF8.GetBytes(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + settings.Mechanism + "'>"
            + Convert.ToBase64String(scram.ClientFirst()) + "</auth>"), ct);
        var challenge = await NextElementAsync(ct);
        if (challenge.Name != "challenge") throw new LoginException("auth-failed:" + SaslCondition(challenge));
        byte[] final;
        try
        {
            final = scram.ClientFinal(Convert.FromBase64String(challenge.Text.Trim()));
        }
        catch (FormatException)
        {
            throw new LoginException("auth-failed:bad-server-first");
        }
        await SendAsync(Encoding.UTF8.GetBytes(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + Convert.ToBase64String(final) + "</response>"), ct);
        var outcome = await NextElementAsync(ct);
        if (outcome.Name == "challenge")
        {
            // Server-final sent as a challenge (RFC 6120 allows it): verify, answer with an empty response.
            if (!VerifyServerFinal(scram, outcome.Text)) throw new LoginException("auth-failed:bad-server-signature");
            await SendAsync("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"u8.ToArray(), ct);
            outcome = await NextElementAsync(ct);
            if (outcome.Name != "success") throw new LoginException("auth-failed:" + SaslCondition(outcome));
            return;
        }
        if (outcome.Name != "success") throw new LoginException("auth-failed:" + SaslCondition(outcome));
        if (!VerifyServerFinal(scram, outcome.Text)) throw new LoginException("auth-failed:bad-server-signature");
    }

    private static bool VerifyServerFinal(ScramClient scram, string base64)
    {
        try
        {
            return scram.VerifyServerFinal(Convert.FromBase64String(base64.Trim()));
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private async Task<XmlElement> OpenStreamAsync(CancellationToken ct)
    {
        _parser.Reset();
        await SendAsync(Encoding.UTF8.GetBytes(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='"
            + Escape(Domain) + "' version='1.0'>"), ct);
        var ev = await ReadEventAsync(ct);
        if (ev != XmlStreamEvent.StreamOpen) throw new LoginException("no-stream-header");
        var features = await NextElementAsync(ct);
        if (features.Name != "features" || features.Namespace != Namespaces.Streams) throw new LoginException("no-stream-features");
        return features;
    }

    /// <summary>Next top-level element; a stream error, stream close or XML error becomes a <see cref="LoginException"/>.</summary>
    private async Task<XmlElement> NextElementAsync(CancellationToken ct)
    {
        var ev = await ReadEventAsync(ct);
        switch (ev)
        {
            case XmlStreamEvent.Element:
                var e = _parser.TakeElement();
                if (e.Name == "error" && e.Namespace == Namespaces.Streams)
                    throw new LoginException("stream-error:" + (e.FirstElement()?.Name ?? "?"));
                return e;
            case XmlStreamEvent.StreamClose:
                throw new LoginException("stream-closed:" + Phase);
            default:
                throw new LoginException("xml-error:" + _parser.Error);
        }
    }

    private async ValueTask<XmlStreamEvent> ReadEventAsync(CancellationToken ct)
    {
        var stream = _stream ?? throw new InvalidOperationException("Not connected.");
        while (true)
        {
            if (_start < _end)
            {
                var ev = _parser.Read(_buffer.AsSpan(_start, _end - _start), out int used);
                _start += used;
                if (ev != XmlStreamEvent.NeedMoreData) return ev;
            }

            // The parser keeps partial-token state itself, so an exhausted buffer can go back to the pool
            // while we wait: idle connections then hold no read buffer at all.
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
            if (await stream.ReadAsync(Memory<byte>.Empty, ct) < 0) throw new IOException("negative read");
            _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            int n = await stream.ReadAsync(_buffer, ct);
            if (n == 0) throw new LoginException("connection-closed:" + Phase);
            _start = 0;
            _end = n;
        }
    }

    /// <summary>After login: reads until the stream ends, answering pings/iq and dispatching stanzas.</summary>
    public async Task ReceiveLoopAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var ev = await ReadEventAsync(ct);
                if (ev == XmlStreamEvent.Element)
                {
                    Dispatch(_parser.TakeElement());
                }
                else if (ev == XmlStreamEvent.StreamClose)
                {
                    CloseReason ??= "stream-closed-by-server";
                    break;
                }
                else
                {
                    CloseReason ??= "xml-error:" + _parser.Error;
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (LoginException ex)
        {
            CloseReason ??= ex.Reason;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            CloseReason ??= Closed ? null : "io:" + ex.GetType().Name;
        }
        finally
        {
            Closed = true;
        }
    }

    private void Dispatch(XmlElement e)
    {
        switch (e.Name)
        {
            case "message":
                OnMessage?.Invoke(this, e);
                break;
            case "presence":
                OnPresence?.Invoke(this, e);
                break;
            case "iq":
                string? type = e.GetAttribute("type");
                if (type is "get" or "set")
                    AnswerIq(e, type);
                else
                    OnIqResponse?.Invoke(this, e);
                break;
            case "error" when e.Namespace == Namespaces.Streams:
                CloseReason = "stream-error:" + (e.FirstElement()?.Name ?? "?");
                break;
            default:
                break;
        }
    }

    private void AnswerIq(XmlElement iq, string type)
    {
        string id = Escape(iq.GetAttribute("id") ?? "");
        string? from = iq.GetAttribute("from");
        string to = from is null ? "" : " to='" + Escape(from) + "'";
        var child = iq.FirstElement();
        string reply;
        if (type == "get" && child is { Name: "ping", Namespace: Namespaces.Ping })
        {
            Interlocked.Increment(ref PingsAnswered);
            reply = "<iq type='result' id='" + id + "'" + to + "/>";
        }
        else if (type == "set" && child is { Name: "query", Namespace: Namespaces.Roster })
        {
            reply = "<iq type='result' id='" + id + "'" + to + "/>"; // roster push
        }
        else
        {
            reply = "<iq type='error' id='" + id + "'" + to
                + "><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        }
        _ = SendQuietlyAsync(Encoding.UTF8.GetBytes(reply));
    }

    /// <summary>Sends raw bytes; writes from several tasks (scheduler, ping answers) are serialised.</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        var stream = _stream ?? throw new InvalidOperationException("Not connected.");
        await _writeLock.WaitAsync(ct);
        try
        {
            await stream.WriteAsync(data, ct);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Like <see cref="SendAsync"/>, but a dead connection just returns false (the receive loop records why).</summary>
    public async Task<bool> SendQuietlyAsync(ReadOnlyMemory<byte> data)
    {
        try
        {
            await SendAsync(data);
            return true;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            return false;
        }
    }

    public string NextIqId() => "q" + Interlocked.Increment(ref _iqCounter).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Ends the stream politely (best effort) and closes the socket.</summary>
    public async Task CloseAsync()
    {
        if (Closed && _stream is null) return;
        Closed = true;
        if (_stream is not null && Phase == "online")
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await SendAsync(StreamCloseBytes, cts.Token);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }
        }
        Abort();
    }

    /// <summary>Closes the socket at once (no stream close).</summary>
    public void Abort()
    {
        Closed = true;
        try
        {
            _socket?.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        _stream?.Dispose();
        _socket?.Dispose();
        _stream = null;
        if (_buffer is not null)
        {
            // Only returned when no read is in flight (the loop is over or never started).
            _buffer = null;
        }
    }

    public ValueTask DisposeAsync()
    {
        Abort();
        _writeLock.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Linux IP_BIND_ADDRESS_NO_PORT: bind the source address now, choose the port at connect time (saves ephemeral ports).</summary>
    internal static void TryBindAddressNoPort(Socket socket)
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            socket.SetRawSocketOption(0 /* IPPROTO_IP */, 24 /* IP_BIND_ADDRESS_NO_PORT */, BitConverter.GetBytes(1));
        }
        catch (SocketException)
        {
        }
    }

    internal static string ErrorCondition(XmlElement stanza)
    {
        var error = stanza.Element("error", stanza.Namespace);
        var condition = error?.Elements().FirstOrDefault(c => c.Namespace == Namespaces.Stanzas && c.Name != "text");
        return condition?.Name ?? stanza.Name + "/" + (stanza.GetAttribute("type") ?? "?");
    }

    private static string SaslCondition(XmlElement reply)
    {
        if (reply.Name != "failure") return "unexpected-" + reply.Name;
        return reply.Elements().FirstOrDefault(c => c.Name != "text")?.Name ?? "failure";
    }

    internal static string Escape(string s)
    {
        if (s.AsSpan().IndexOfAny("<>&'\"") < 0) return s;
        return s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
            .Replace(">", "&gt;", StringComparison.Ordinal).Replace("'", "&apos;", StringComparison.Ordinal)
            .Replace("\"", "&quot;", StringComparison.Ordinal);
    }
}

/// <summary>Per-user login parameters.</summary>
internal sealed record LoginSettings(TlsMode Tls, string Mechanism, string Password, string Resource, bool KeyCache = true);
