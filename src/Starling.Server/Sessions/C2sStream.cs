using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Starling.Server.Configuration;
using Starling.Server.Negotiation;
using Starling.Server.Tls;
using Starling.Xml;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Sessions;

/// <summary>
/// A client-to-server stream over TCP (RFC 6120): the transport of a <see cref="C2sSession"/> and its negotiation
/// (STARTTLS, SASL, resource binding). Once a resource is bound (or a XEP-0198 session resumed) the stream hands the
/// client's stanzas to its session in order, and the session queues stanzas for the client through it
/// (<see cref="IClientTransport"/>).
/// </summary>
/// <remarks>
/// Negotiation is driven here, but what is offered is registered: the stream features of each stage in
/// <see cref="Modules.ModuleRegistry.StreamFeatures"/>, the SASL mechanisms in
/// <see cref="Modules.ModuleRegistry.SaslMechanisms"/>. The SASL driver below is mechanism-agnostic and applies what
/// every mechanism must: the address throttle and the failure count itself, the account look-up and the per-account
/// hold through what it lends mechanisms (<see cref="ISaslStream"/>).
/// </remarks>
public sealed class C2sStream : XmppStream, ISaslStream, IClientTransport
{
    private readonly ILogger _log;
    private HostOptions? _host;
    private ISaslExchange? _exchange;
    private string? _mechanism;
    private int _authFailures;
    private bool _attemptStarted;
    private string? _attemptAccount;
    private long _attemptReservation;
    private bool _authenticated;
    private string? _username;
    private string? _authenticatingAs;
    private bool _closedHandled;
    private C2sSession? _session;           // the bound session, once bound or resumed
    private volatile bool _detached;        // a resumption moved the session to another transport
    private string[]? _channelBindingTypes; // what this TLS connection advertises (XEP-0440), until authenticated
    private byte[]? _exporterBinding;       // its RFC 9266 tls-exporter data, when offered

    public C2sStream(XmppServer server, ConnectionContext connection)
        : base(server, connection, server.XmlLimits, server.Options.Limits.MaxOutboundQueueBytes, Namespaces.Client, ReadBudget.For(server.Options.C2s))
    {
        _log = server.LoggerFactory.CreateLogger<C2sStream>();
        // Until a resource is bound only small negotiation elements are legitimate (HandleBind lifts the limit).
        Parser.MaxStanzaBytes = server.Options.Limits.MaxStanzaBytesBeforeBind;
    }

    protected override ILogger Log => _log;

    /// <summary>The host this stream is for, once the header named it.</summary>
    public string? Domain => _host?.Name;

    /// <summary>What the stream's host offers (its modules, resolved at start), once the header named the host.</summary>
    public Modules.HostModules? HostModules { get; private set; }

    public bool IsAuthenticated => _authenticated;

    /// <summary>The account's bare JID once authenticated (what a XEP-0198 resume must match), else null.</summary>
    public Jid? AccountJid => _authenticated ? Xmpp.Jid.Create(_username, _host!.Name) : null;

    /// <summary>The session bound on this stream (by resource binding or a XEP-0198 resume), or null.</summary>
    public C2sSession? Session => _session;

    /// <summary>The bound full JID (null until resource binding).</summary>
    public Jid? Jid => _session?.Jid;

    /// <summary>
    /// The account (normalized localpart) this stream authenticated as, or last looked up to authenticate as: what
    /// `starling deluser` and `passwd --end-sessions` match, so a login that read the old credentials is ended too.
    /// </summary>
    internal string? AccountLocalpart => _username ?? _authenticatingAs;

    public bool IsBound => _session is not null && !IsClosed;

    /// <summary>True once a resumption moved this stream's session to another transport: the stream only ends.</summary>
    public bool IsDetached => _detached;

    /// <summary>The transport's send, with the XML trace (stanzas for the client go through here).</summary>
    bool IClientTransport.Send(XmlElement element)
    {
        if (!Send(element)) return false;
        if (XmlTrace) TraceXml(">>>", element);
        return true;
    }

    /// <summary>Sends a nonza/stanza produced by negotiation or a nonza handler (XEP-0198 answers).</summary>
    public void Reply(XmlElement element)
    {
        if (XmlTrace) TraceXml(">>>", element);
        Send(element);
    }

    // ---- stream header (RFC 6120 §4.7) ----

    protected override ValueTask OnStreamOpenAsync(XmlElement header)
    {
        if (Parser.StreamDefaultNamespace != Namespaces.Client)
        {
            Close(StreamErrors.InvalidNamespace, "the stream's default namespace must be jabber:client");
            return ValueTask.CompletedTask;
        }
        var to = header.GetAttribute("to");
        string? domain = null;
        if (to is not null && Xmpp.Jid.TryNormalizeDomain(to, out var normalized)) domain = normalized;
        var host = domain is null ? null : Server.Config.FindHost(domain);
        if (_host is not null && host != _host)
        {
            Close(StreamErrors.HostUnknown, "the restarted stream must be for the same host");
            return ValueTask.CompletedTask;
        }
        if (host is null)
        {
            Close(StreamErrors.HostUnknown, to is null ? "the stream header has no 'to' address" : $"this server does not serve {Echo(to)}");
            return ValueTask.CompletedTask;
        }
        _host = host;
        HostModules = Server.Modules.ForHost(host.Name);
        var version = header.GetAttribute("version");
        if (version is null || !version.StartsWith("1.", StringComparison.Ordinal))
        {
            SendStreamHeader(host.Name, null);
            Close(StreamErrors.UnsupportedVersion, "XMPP 1.0 is required (version='1.0')");
            return ValueTask.CompletedTask;
        }
        var lang = header.GetAttribute("lang", XmlNames.XmlNamespace) ?? "en";
        SendStreamHeader(host.Name, null, lang.Length is > 0 and < 36 && lang.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') ? lang : "en");
        Reply(BuildFeatures());
        return ValueTask.CompletedTask;
    }

    private XmlElement BuildFeatures()
    {
        var features = new XmlElement("features", Namespaces.Streams);
        // RFC 6120 §5.3.1: while TLS is mandatory and not yet negotiated, only STARTTLS is offered (the TlsRequired
        // stage); after authentication STARTTLS is refused (HandleTls), so the Authenticated stage does not offer it.
        var stage = _authenticated ? StreamFeatureStage.Authenticated
            : _host!.RequireEncryption && !IsSecure ? StreamFeatureStage.TlsRequired
            : StreamFeatureStage.Unauthenticated;
        Server.Modules.StreamFeatures.AddTo(features, stage, this);
        return features;
    }

    /// <summary>The stream features negotiation itself owns: STARTTLS, SASL, channel binding, resource binding, session.</summary>
    internal static StreamFeatureRegistry CreateStreamFeatures()
    {
        var features = new StreamFeatureRegistry();
        features.Add(StreamFeatureStage.TlsRequired, StreamFeatureRegistry.StartTlsOrder, static s => s.StartTlsFeature());
        features.Add(StreamFeatureStage.Unauthenticated, StreamFeatureRegistry.StartTlsOrder, static s => s.StartTlsFeature());
        features.Add(StreamFeatureStage.Unauthenticated, StreamFeatureRegistry.MechanismsOrder, static s => s.MechanismsFeature());
        features.Add(StreamFeatureStage.Unauthenticated, StreamFeatureRegistry.ChannelBindingOrder, static s => s.ChannelBindingFeature());
        features.Add(StreamFeatureStage.Authenticated, StreamFeatureRegistry.BindOrder, static _ => new XmlElement("bind", Namespaces.Bind));
        features.Add(StreamFeatureStage.Authenticated, StreamFeatureRegistry.SessionOrder, static _ =>
        {
            // RFC 6121 (and RFC 3921 §3): legacy session establishment, advertised as optional as Prosody does.
            var session = new XmlElement("session", Namespaces.Session);
            session.AddElement("optional");
            return session;
        });
        return features;
    }

    private XmlElement? StartTlsFeature()
    {
        if (IsSecure || Server.Certificates.Get(_host!.Name) is null) return null;
        var starttls = new XmlElement("starttls", Namespaces.Tls);
        if (_host.RequireEncryption) starttls.AddElement("required");
        return starttls;
    }

    private XmlElement MechanismsFeature()
    {
        var mechanisms = new XmlElement("mechanisms", Namespaces.Sasl);
        foreach (var m in Server.Modules.SaslMechanisms.OfferedNames(this)) mechanisms.AddElement("mechanism").AddText(m);
        return mechanisms;
    }

    private XmlElement? ChannelBindingFeature()
    {
        if (ChannelBindingTypes() is not { } types) return null;
        // XEP-0440: which channel-binding types this server can verify on this connection.
        var cb = new XmlElement("sasl-channel-binding", Namespaces.ChannelBinding);
        foreach (var type in types) cb.AddElement("channel-binding").SetAttribute("type", type);
        return cb;
    }

    /// <summary>
    /// The channel-binding types this connection offers, or null without TLS (or with channel binding off).
    /// tls-server-end-point (RFC 5929) always; tls-exporter (RFC 9266) on TLS 1.3 when the keying material can be
    /// exported. RFC 9266 §3 allows tls-exporter on TLS 1.2 only with the extended master secret; as Prosody does, we
    /// offer it on TLS 1.3 only. Worked out once per connection, so the features and the SCRAM exchange agree.
    /// </summary>
    private string[]? ChannelBindingTypes()
    {
        if (!IsSecure || !Server.Options.C2s.ChannelBinding) return null;
        if (_channelBindingTypes is not null) return _channelBindingTypes;
        if (Tls!.SslProtocol == System.Security.Authentication.SslProtocols.Tls13)
            _exporterBinding = NativeSsl.ExportChannelBinding(Tls);
        _channelBindingTypes = _exporterBinding is null
            ? [ScramChannelBinding.TlsServerEndPoint]
            : [ScramChannelBinding.TlsExporter, ScramChannelBinding.TlsServerEndPoint];
        return _channelBindingTypes;
    }

    /// <summary>
    /// Client input quoted in an error text: only a short prefix of plain characters, so a 200 KB name or a control
    /// character never travels back to the client or into the log.
    /// </summary>
    internal static string Echo(string? value)
    {
        const int Max = 40;
        if (string.IsNullOrEmpty(value)) return "''";
        int n = Math.Min(value.Length, Max);
        var sb = new StringBuilder(n + 3).Append('\'');
        for (int i = 0; i < n; i++)
        {
            char c = value[i];
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or ':' or '/' or '@' or '#' ? c : '?');
        }
        if (value.Length > Max) sb.Append('…');
        return sb.Append('\'').ToString();
    }

    // ---- elements ----

    protected override async ValueTask OnElementAsync(XmlElement element)
    {
        if (_host is null) return; // cannot happen: the parser emits the header first
        if (_detached) return; // the session lives on another connection now; this one is closing
        var session = _session;
        bool stanza = element.Namespace == Namespaces.Client && element.Name is "message" or "presence" or "iq";
        if (session is not null && stanza)
        {
            await session.HandleStanzaAsync(element);
            return;
        }
        if (element.Namespace == Namespaces.Tls) { HandleTls(element); return; }
        if (element.Namespace == Namespaces.Sasl) { await HandleSaslAsync(element); return; }
        if (!stanza)
        {
            // Nonzas on a bound stream (XEP-0198, XEP-0352…) go to the module that registered them; a few (XEP-0198
            // <resume/>) are also allowed before binding, registered with OnNonzaBeforeBind.
            if (element.Namespace != Namespaces.Client)
            {
                if (session is not null && Server.Modules.FindNonzaHandler(element.Namespace, element.Name) is { } nonza)
                {
                    await HandleNonzaAsync(nonza, session, element);
                    return;
                }
                if (session is null && Server.Modules.FindPreBindNonzaHandler(element.Namespace, element.Name) is { } early)
                {
                    await HandlePreBindNonzaAsync(early, element);
                    return;
                }
            }
            Close(StreamErrors.UnsupportedStanzaType, $"element {Echo(element.Name)} in namespace {Echo(element.Namespace)} is not a stanza this server knows");
            return;
        }
        if (!_authenticated)
        {
            // RFC 6120 §6.4.7 / §7.1: no stanzas before authentication and binding.
            Close(StreamErrors.NotAuthorized, "authenticate first");
            return;
        }
        if (element.Name == "iq" && element.Element("bind", Namespaces.Bind) is { } bind)
        {
            HandleBind(element, bind);
            return;
        }
        Close(StreamErrors.NotAuthorized, "bind a resource first");
    }

    // ---- STARTTLS (RFC 6120 §5) ----

    private void HandleTls(XmlElement element)
    {
        if (element.Name != "starttls" || IsSecure || _authenticated || Server.Certificates.Get(_host!.Name) is null)
        {
            Reply(new XmlElement("failure", Namespaces.Tls));
            CloseQuietly();
            return;
        }
        Reply(new XmlElement("proceed", Namespaces.Tls));
        RequestTlsUpgrade(_host.Name);
    }

    // ---- SASL (RFC 6120 §6): a driver for any registered mechanism ----

    private async ValueTask HandleSaslAsync(XmlElement element)
    {
        if (_authenticated)
        {
            Close(StreamErrors.PolicyViolation, "already authenticated");
            return;
        }
        if (_host!.RequireEncryption && !IsSecure)
        {
            ResetSasl();
            SaslFailure("encryption-required", "use STARTTLS first");
            return;
        }
        switch (element.Name)
        {
            case "auth":
                await HandleAuthAsync(element);
                break;
            case "response":
                await HandleResponseAsync(element);
                break;
            case "abort":
                // RFC 6120 §6.4.4: <aborted/>. An abort after the server answered counts as a failed attempt, so that
                // fetching challenges (salts) and aborting is not a free way to probe accounts.
                if (_attemptStarted) AuthFailed("aborted");
                else SaslFailure("aborted", null);
                break;
            default:
                AuthFailed("malformed-request", "unexpected element in the SASL namespace");
                break;
        }
    }

    private async ValueTask HandleAuthAsync(XmlElement auth)
    {
        // A new <auth/> abandons any exchange in progress (RFC 6120 §6.4.2): for the throttle that one failed.
        AbandonAttempt();
        var name = auth.GetAttribute("mechanism");
        var mechanism = name is null ? null : Server.Modules.SaslMechanisms.FindOffered(name, this);
        if (mechanism is null)
        {
            // RFC 6120 §6.5.5. Never echo the client's mechanism name: it can be as long as a stanza.
            AuthFailed("invalid-mechanism", name is null ? "no mechanism given" : "that mechanism is not offered; see <mechanisms/> in the stream features");
            return;
        }
        if (!Server.AuthThrottle.TryBegin(RemoteEndPoint, out var wait, out _attemptReservation))
        {
            // RFC 6120 §6.5.11: refused at once rather than held open, with the time to wait.
            Refuse($"too many failed logins from your network; wait {Seconds(wait)} seconds before trying again");
            return;
        }
        _attemptStarted = true;
        _mechanism = mechanism.Name;
        if (!TryDecode(auth.Text, out var data))
        {
            AuthFailed("incorrect-encoding");
            return;
        }
        var exchange = mechanism.Start(this);
        _exchange = exchange;
        ApplyStep(exchange, await exchange.StepAsync(data, this));
    }

    private async ValueTask HandleResponseAsync(XmlElement response)
    {
        var exchange = _exchange;
        if (exchange is null)
        {
            AuthFailed("malformed-request", "no authentication in progress");
            return;
        }
        if (!TryDecode(response.Text, out var data))
        {
            AuthFailed("incorrect-encoding");
            return;
        }
        ApplyStep(exchange, await exchange.StepAsync(data, this));
    }

    private void ApplyStep(ISaslExchange exchange, SaslStep step)
    {
        // The attempt may have ended while the step waited for storage or the throttle (refused, stream closed):
        // then there is nothing left to answer.
        if (_exchange != exchange) return;
        switch (step.Kind)
        {
            case SaslStepKind.Challenge:
                var challenge = new XmlElement("challenge", Namespaces.Sasl);
                if (step.Data is { Length: > 0 } data) challenge.AddText(Convert.ToBase64String(data));
                Reply(challenge);
                break;
            case SaslStepKind.Success:
                CompleteAuthentication(step.Account!, step.AuthorizationId, step.Data);
                break;
            case SaslStepKind.Failure:
                AuthFailed(step.Condition ?? "not-authorized", step.Text);
                break;
            case SaslStepKind.Ended:
                break;
        }
    }

    // What a mechanism sees of this stream (ISaslStream); Server and IsSecure come from XmppStream.

    HostOptions ISaslStream.Host => _host!;

    bool ISaslStream.OffersChannelBinding => IsSecure && Server.Options.C2s.ChannelBinding;

    IReadOnlyList<ScramChannelBinding>? ISaslStream.ChannelBindings()
    {
        var types = ChannelBindingTypes();
        if (types is null) return null;
        // The data of the type the client names in its GS2 header (RFC 5802 §6) is checked; both are ready.
        // tls-server-end-point is of the certificate this connection negotiated, which a reload may have replaced since.
        var bindings = new List<ScramChannelBinding>(2);
        if (_exporterBinding is not null) bindings.Add(new ScramChannelBinding(ScramChannelBinding.TlsExporter, _exporterBinding));
        bindings.Add(new ScramChannelBinding(ScramChannelBinding.TlsServerEndPoint,
            Server.Certificates.Get(_host!.Name)!.EndpointBindingOf(Tls!.LocalCertificate)));
        return bindings;
    }

    // XEP-0474 §4.1: the same lists MechanismsFeature and ChannelBindingFeature sent.
    string ISaslStream.DowngradeProtection() =>
        ScramDowngradeProtection.Compose(Server.Modules.SaslMechanisms.OfferedNames(this), ChannelBindingTypes());

    ValueTask<SaslAccount> ISaslStream.LookupAsync(string username) => LookupAsync(username);

    ValueTask<bool> ISaslStream.HoldForAccountAsync() => HoldForAccountAsync();

    private async ValueTask<SaslAccount> LookupAsync(string username)
    {
        // PRECIS UsernameCaseMapped, as accounts are stored: "Nobody" and "nobody" are one name, known or not.
        if (!Xmpp.Jid.TryNormalizeLocal(username, out var local)) return default;
        _authenticatingAs = local; // before the read: see AccountLocalpart
        var exchange = _exchange;
        var account = await Server.Storage.Accounts.GetAsync(_host!.Name, local);
        // From here the attempt counts against this account (unless it ended while the account was read).
        if (_exchange == exchange) _attemptAccount = local;
        return new SaslAccount(local, account);
    }

    /// <summary>The per-account throttle: waits before the credentials are checked, or refuses. False: the attempt is over.</summary>
    private async ValueTask<bool> HoldForAccountAsync()
    {
        if (!Server.AuthThrottle.TryHoldForAccount(RemoteEndPoint, _host!.Name, _attemptAccount, out var wait))
        {
            Refuse($"too many failed logins for this account; wait {Seconds(wait)} seconds before trying again");
            return false;
        }
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
            if (IsClosed) return false;
        }
        return true;
    }

    private void CompleteAuthentication(string local, string? authzid, byte[]? serverFinal)
    {
        var bare = Xmpp.Jid.Create(local, _host!.Name);
        if (authzid is not null && (!Xmpp.Jid.TryParse(authzid, out var requested) || requested != bare))
        {
            // RFC 6120 §6.4.6: we only let an account act as itself.
            AuthFailed("invalid-authzid");
            return;
        }
        Server.AuthThrottle.Succeeded(RemoteEndPoint, _host.Name, local, _attemptReservation);
        var mechanism = _mechanism;
        ResetSasl();
        _authenticated = true;
        _username = local;
        _channelBindingTypes = null; // negotiation is over: nothing to keep per session
        _exporterBinding = null;
        if (Slot is not null) Server.Connections.Authenticated(Slot);
        var success = new XmlElement("success", Namespaces.Sasl);
        if (serverFinal is { Length: > 0 }) success.AddText(Convert.ToBase64String(serverFinal));
        Reply(success);
        _log.LogInformation("{Connection}: authenticated as {Jid} with {Mechanism}", ConnectionId, bare, mechanism);
        // RFC 6120 §6.4.6: the client now sends a new stream header over the same connection.
        Parser.Reset();
        StreamId = NewId();
    }

    /// <summary>Ends the exchange in progress: whatever the step, the next client message must be a new &lt;auth/&gt;.</summary>
    private void ResetSasl()
    {
        _exchange = null;
        _mechanism = null;
        _attemptStarted = false;
        _attemptAccount = null;
        _attemptReservation = 0;
    }

    /// <summary>
    /// A failed step (RFC 6120 §6.4.5): the exchange is reset, the attempt counted against the address block and the
    /// account, and the stream closed after <see cref="C2sOptions.MaxAuthFailures"/> failures.
    /// </summary>
    private void AuthFailed(string condition, string? text = null)
    {
        bool attempt = _attemptStarted;
        var account = _attemptAccount;
        ResetSasl();
        if (attempt) Server.AuthThrottle.Failed(RemoteEndPoint, _host!.Name, account);
        CountFailure(condition, text);
    }

    /// <summary>An exchange left unfinished (a new &lt;auth/&gt;, the stream ending) counts as a failed guess, without a reply.</summary>
    private void AbandonAttempt()
    {
        if (_attemptStarted) Server.AuthThrottle.Failed(RemoteEndPoint, _host!.Name, _attemptAccount);
        ResetSasl();
    }

    /// <summary>An attempt refused by the throttle (RFC 6120 §6.5.11 temporary-auth-failure); not itself a guess.</summary>
    private void Refuse(string text)
    {
        ResetSasl();
        CountFailure("temporary-auth-failure", text);
    }

    private void CountFailure(string condition, string? text)
    {
        _authFailures++;
        _log.LogInformation("{Connection}: authentication failed ({Condition}), attempt {Count}", ConnectionId, condition, _authFailures);
        SaslFailure(condition, text);
        if (_authFailures >= Server.Options.C2s.MaxAuthFailures)
            Close(StreamErrors.PolicyViolation, "too many failed authentication attempts");
    }

    private static string Seconds(TimeSpan wait) =>
        Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private void SaslFailure(string condition, string? text)
    {
        var failure = new XmlElement("failure", Namespaces.Sasl);
        failure.AddElement(condition);
        if (text is not null) failure.AddElement("text").AddText(text);
        Reply(failure);
    }

    private static bool TryDecode(string text, out byte[] data)
    {
        text = text.Trim();
        if (text.Length == 0 || text == "=")
        {
            data = [];
            return true;
        }
        data = new byte[text.Length];
        if (Convert.TryFromBase64String(text, data, out int written))
        {
            Array.Resize(ref data, written);
            return true;
        }
        return false;
    }

    // ---- resource binding (RFC 6120 §7) ----

    private void HandleBind(XmlElement iq, XmlElement bind)
    {
        var id = iq.GetAttribute("id");
        if (iq.GetAttribute("type") != "set" || id is null)
        {
            Reply(StanzaError.CreateReply(iq, StanzaErrorCondition.BadRequest));
            return;
        }
        var requested = bind.ElementText("resource", Namespaces.Bind)?.Trim();
        string resource;
        if (string.IsNullOrEmpty(requested))
        {
            resource = "starling-" + NewId()[..10];
        }
        else if (!Xmpp.Jid.TryNormalizeResource(requested, out var normalized))
        {
            Reply(StanzaError.CreateReply(iq, StanzaErrorCondition.BadRequest, "the resource is not valid (RFC 7622 §3.4)"));
            return;
        }
        else resource = normalized;

        var full = Xmpp.Jid.Create(_username, _host!.Name, resource);
        bool replace = Server.Options.C2s.ResourceConflict == "replace";
        var session = new C2sSession(Server, this, _host.Name, HostModules);
        var outcome = Server.Sessions.Bind(session, full, replace, Server.Options.Limits.MaxResourcesPerUser, out var replaced);
        if (outcome == BindOutcome.Conflict)
        {
            Reply(StanzaError.CreateReply(iq, StanzaErrorCondition.Conflict, "this resource is already in use"));
            return;
        }
        if (outcome == BindOutcome.TooManyResources)
        {
            Reply(StanzaError.CreateReply(iq, StanzaErrorCondition.ResourceConstraint, "too many resources are bound for this account"));
            return;
        }
        _session = session;
        // RFC 6120 §7.7.2.2: the old session is replaced and told why.
        replaced?.Close(StreamErrors.Conflict, "replaced by a new session with the same resource");

        var result = new XmlElement("iq", Namespaces.Client);
        result.SetAttribute("id", id).SetAttribute("type", "result");
        result.AddElement("bind", Namespaces.Bind).AddElement("jid").AddText(full.ToString());
        Parser.MaxStanzaBytes = Server.Options.Limits.MaxStanzaBytes;
        Reply(result);
        _log.LogInformation("{Connection}: bound {Jid}", ConnectionId, full);
    }

    // ---- stanzas (RFC 6120 §8, RFC 6121) ----

    private async ValueTask HandleNonzaAsync(Pipeline.NonzaHandler handler, C2sSession session, XmlElement element)
    {
        try
        {
            await handler(session, element);
        }
        catch (Exception ex)
        {
            // Contained like a stanza handler's failure: one log entry, the stream stays up (a nonza has no error reply).
            _log.LogError(ex, "{Connection}: handler of the nonza {Name} in {Namespace} failed", ConnectionId, element.Name, element.Namespace);
        }
    }

    // ---- end ----

    private async ValueTask HandlePreBindNonzaAsync(Pipeline.PreBindNonzaHandler handler, XmlElement element)
    {
        try
        {
            await handler(this, element);
        }
        catch (Exception ex)
        {
            _log.LogError(ex, "{Connection}: handler of the nonza {Name} in {Namespace} failed", ConnectionId, element.Name, element.Namespace);
        }
    }

    /// <summary>
    /// XEP-0198 resumption: this authenticated, unbound stream takes over <paramref name="session"/> (the caller checked
    /// the account and holds the module's lock). Returns the transport it replaced, if the old one was still attached.
    /// </summary>
    public IClientTransport? Resume(C2sSession session)
    {
        _session = session;
        Parser.MaxStanzaBytes = Server.Options.Limits.MaxStanzaBytes;
        var old = session.AttachTransport(this);
        if (old is C2sStream stream) stream._detached = true;
        _log.LogInformation("{Connection}: resumed {Jid}", ConnectionId, session.Jid);
        return old;
    }

    // ---- end ----

    protected override async ValueTask OnClosedAsync(List<XmlElement> undelivered)
    {
        if (_closedHandled) return;
        _closedHandled = true;
        AbandonAttempt();
        var session = _session;
        if (session is null) return;
        await session.TransportClosedAsync(this, undelivered, lost: !ClosedDeliberately);
    }
}
