using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Starling.Server.Configuration;
using Starling.Xml;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Sessions;

/// <summary>
/// A client-to-server stream (RFC 6120): negotiation (STARTTLS, SASL, resource binding), then stanzas.
/// Stanzas from the client are handled in order on the connection's read loop; stanzas for the client arrive
/// through <see cref="Deliver"/> from any thread and go out through the bounded outbound queue.
/// </summary>
public sealed class C2sSession : XmppStream
{
    private const string ChannelBindingType = "tls-server-end-point";

    private readonly ILogger _log;
    private HostOptions? _host;
    private ScramServer? _scram;
    private string? _mechanism;
    private int _authFailures;
    private bool _authenticated;
    private string? _username;
    private bool _closedHandled;
    private string? _lastToText;
    private Jid? _lastTo;

    public C2sSession(XmppServer server, ConnectionContext connection)
        : base(server, connection, server.XmlLimits, server.Options.Limits.MaxOutboundQueueBytes, Namespaces.Client, ReadBudget.For(server.Options.C2s))
    {
        _log = server.LoggerFactory.CreateLogger<C2sSession>();
    }

    protected override ILogger Log => _log;

    /// <summary>The host this stream is for, once the header named it.</summary>
    public string? Domain => _host?.Name;

    /// <summary>The bound full JID (null until resource binding).</summary>
    public Jid? Jid { get; internal set; }

    public bool IsAuthenticated => _authenticated;

    public bool IsBound => Jid is not null && !IsClosed;

    /// <summary>True between initial available presence and unavailable presence (RFC 6121 §4.2, §4.5).</summary>
    public bool IsAvailable { get; internal set; }

    /// <summary>Priority of the last available presence (RFC 6121 §4.7.2.3).</summary>
    public int Priority { get; internal set; }

    /// <summary>The last available presence broadcast, as sent (with 'from').</summary>
    public XmlElement? Presence { get; internal set; }

    /// <summary>True once the client fetched its roster: it then receives roster pushes (RFC 6121 §2.1.6).</summary>
    public bool RosterRequested { get; internal set; }

    /// <summary>The roster as loaded when the session became available (for presence broadcast).</summary>
    public Storage.RosterSnapshot? Roster { get; internal set; }

    /// <summary>Entities this session sent directed presence to (RFC 6121 §4.6), told when it goes offline.</summary>
    public HashSet<Jid>? DirectedPresence { get; internal set; }

    /// <summary>Set by the server timer once it has pinged this silent client.</summary>
    internal bool IdlePinged { get; set; }

    /// <summary>Sends a XEP-0199 ping from the server; any answer (even an error) counts as activity.</summary>
    internal void SendPing()
    {
        var iq = new XmlElement("iq", Namespaces.Client);
        iq.SetAttribute("id", "ping-" + NewId()[..8]).SetAttribute("type", "get")
          .SetAttribute("from", Domain).SetAttribute("to", Jid?.ToString());
        iq.AddElement("ping", Namespaces.Ping);
        Deliver(iq);
    }

    /// <summary>Hands a stanza to this client. False if the session is closing (the caller re-routes).</summary>
    public bool Deliver(XmlElement stanza)
    {
        if (!Send(stanza)) return false;
        if (XmlTrace) TraceXml(">>>", stanza);
        return true;
    }

    /// <summary>Sends a nonza/stanza produced by negotiation.</summary>
    private void Reply(XmlElement element)
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
            Close(StreamErrors.HostUnknown, to is null ? "the stream header has no 'to' address" : $"this server does not serve {to}");
            return ValueTask.CompletedTask;
        }
        _host = host;
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
        bool tlsAvailable = Server.Certificates.Get(_host!.Name) is not null;
        // RFC 6120 §5.3.1: TLS is negotiated before SASL; after authentication STARTTLS is refused (HandleTls), so not offered.
        if (!IsSecure && tlsAvailable && !_authenticated)
        {
            var starttls = features.AddElement("starttls", Namespaces.Tls);
            if (_host.RequireEncryption) starttls.AddElement("required");
        }
        if (!_authenticated)
        {
            // RFC 6120 §5.3.1: while TLS is mandatory and not yet negotiated, offer nothing else.
            if (_host.RequireEncryption && !IsSecure) return features;
            var mechanisms = features.AddElement("mechanisms", Namespaces.Sasl);
            foreach (var m in OfferedMechanisms()) mechanisms.AddElement("mechanism").AddText(m);
            if (IsSecure && Server.Options.C2s.ChannelBinding)
            {
                // XEP-0440: which channel-binding types this server can verify.
                features.AddElement("sasl-channel-binding", Namespaces.ChannelBinding)
                    .AddElement("channel-binding").SetAttribute("type", ChannelBindingType);
            }
            return features;
        }
        features.AddElement("bind", Namespaces.Bind);
        // RFC 6121 (and RFC 3921 §3): legacy session establishment, advertised as optional as Prosody does.
        features.AddElement("session", Namespaces.Session).AddElement("optional");
        foreach (var feature in Server.Modules.StreamFeatures)
        {
            var f = feature(this);
            if (f is not null) features.Add(f);
        }
        return features;
    }

    private List<string> OfferedMechanisms()
    {
        var list = new List<string>(5);
        if (IsSecure && Server.Options.C2s.ChannelBinding)
        {
            list.Add("SCRAM-SHA-256-PLUS");
            list.Add("SCRAM-SHA-1-PLUS");
        }
        list.Add("SCRAM-SHA-256");
        list.Add("SCRAM-SHA-1");
        if (IsSecure || _host!.AllowPlainWithoutTls) list.Add("PLAIN");
        return list;
    }

    // ---- elements ----

    protected override async ValueTask OnElementAsync(XmlElement element)
    {
        if (_host is null) return; // cannot happen: the parser emits the header first
        if (element.Namespace == Namespaces.Tls) { HandleTls(element); return; }
        if (element.Namespace == Namespaces.Sasl) { await HandleSaslAsync(element); return; }
        if (element.Namespace != Namespaces.Client || element.Name is not ("message" or "presence" or "iq"))
        {
            Close(StreamErrors.UnsupportedStanzaType, $"<{element.Name} xmlns='{element.Namespace}'/> is not a stanza this server knows");
            return;
        }
        if (!_authenticated)
        {
            // RFC 6120 §6.4.7 / §7.1: no stanzas before authentication and binding.
            Close(StreamErrors.NotAuthorized, "authenticate first");
            return;
        }
        if (Jid is null)
        {
            if (element.Name == "iq" && element.Element("bind", Namespaces.Bind) is { } bind)
            {
                HandleBind(element, bind);
                return;
            }
            Close(StreamErrors.NotAuthorized, "bind a resource first");
            return;
        }
        await HandleStanzaAsync(element);
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

    // ---- SASL (RFC 6120 §6) ----

    private async ValueTask HandleSaslAsync(XmlElement element)
    {
        if (_authenticated)
        {
            Close(StreamErrors.PolicyViolation, "already authenticated");
            return;
        }
        if (_host!.RequireEncryption && !IsSecure)
        {
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
                _scram = null;
                _mechanism = null;
                SaslFailure("aborted", null);
                break;
            default:
                SaslFailure("malformed-request", $"unexpected <{element.Name}/>");
                break;
        }
    }

    private async ValueTask HandleAuthAsync(XmlElement auth)
    {
        _scram = null;
        _mechanism = auth.GetAttribute("mechanism");
        if (_mechanism is null || !OfferedMechanisms().Contains(_mechanism))
        {
            SaslFailure("invalid-mechanism", _mechanism is null ? "no mechanism given" : $"{_mechanism} is not offered");
            return;
        }
        if (!TryDecode(auth.Text, out var data))
        {
            SaslFailure("incorrect-encoding", null);
            return;
        }
        if (_mechanism == "PLAIN")
        {
            if (data.Length == 0)
            {
                Reply(new XmlElement("challenge", Namespaces.Sasl));
                return;
            }
            await HandlePlainAsync(data);
            return;
        }
        var hash = _mechanism.StartsWith("SCRAM-SHA-256", StringComparison.Ordinal) ? ScramHash.Sha256 : ScramHash.Sha1;
        bool plus = _mechanism.EndsWith("-PLUS", StringComparison.Ordinal);
        byte[]? cbData = null;
        string? cbType = null;
        if (IsSecure && Server.Options.C2s.ChannelBinding)
        {
            cbType = ChannelBindingType;
            cbData = Server.Certificates.Get(_host!.Name)!.EndpointBinding;
        }
        _scram = new ScramServer(hash, plus, cbType, cbData);
        if (data.Length == 0)
        {
            // RFC 6120 §6.4.2: no initial response — an empty challenge asks for it.
            Reply(new XmlElement("challenge", Namespaces.Sasl));
            return;
        }
        await ScramFirstAsync(data);
    }

    private async ValueTask HandleResponseAsync(XmlElement response)
    {
        if (_mechanism is null)
        {
            SaslFailure("malformed-request", "no authentication in progress");
            return;
        }
        if (!TryDecode(response.Text, out var data))
        {
            SaslFailure("incorrect-encoding", null);
            return;
        }
        if (_mechanism == "PLAIN")
        {
            await HandlePlainAsync(data);
            return;
        }
        var scram = _scram!;
        if (scram.Username is null)
        {
            await ScramFirstAsync(data);
            return;
        }
        var result = scram.HandleClientFinal(data, out var serverFinal);
        if (result != SaslStepResult.Success)
        {
            await AuthFailedAsync(scram.FailureCondition ?? "not-authorized");
            return;
        }
        CompleteAuthentication(scram.Username, scram.AuthorizationId, serverFinal);
    }

    private async ValueTask ScramFirstAsync(byte[] clientFirst)
    {
        var scram = _scram!;
        if (scram.HandleClientFirst(clientFirst) != SaslStepResult.Continue)
        {
            await AuthFailedAsync(scram.FailureCondition ?? "malformed-request");
            return;
        }
        var account = await LookupAsync(scram.Username!);
        ScramCredential? credential = account is null ? null
            : _mechanism!.StartsWith("SCRAM-SHA-256", StringComparison.Ordinal) ? account.Sha256 : account.Sha1;
        var challenge = new XmlElement("challenge", Namespaces.Sasl);
        challenge.AddText(Convert.ToBase64String(scram.CreateServerFirst(credential)));
        Reply(challenge);
    }

    private async ValueTask HandlePlainAsync(byte[] data)
    {
        // RFC 4616: [authzid] NUL authcid NUL passwd
        int first = Array.IndexOf(data, (byte)0);
        int second = first < 0 ? -1 : Array.IndexOf(data, (byte)0, first + 1);
        if (first < 0 || second < 0)
        {
            await AuthFailedAsync("malformed-request");
            return;
        }
        string authzid, authcid, password;
        try
        {
            var strict = new UTF8Encoding(false, true);
            authzid = strict.GetString(data, 0, first);
            authcid = strict.GetString(data, first + 1, second - first - 1);
            password = strict.GetString(data, second + 1, data.Length - second - 1);
        }
        catch (DecoderFallbackException)
        {
            await AuthFailedAsync("malformed-request");
            return;
        }
        var account = await LookupAsync(authcid);
        if (account is null || !account.Sha256.Verify(password))
        {
            await AuthFailedAsync("not-authorized");
            return;
        }
        CompleteAuthentication(authcid, authzid.Length == 0 ? null : authzid, null);
    }

    private async ValueTask<Storage.StoredAccount?> LookupAsync(string username)
    {
        if (!Xmpp.Jid.TryNormalizeLocal(username, out var local)) return null;
        return await Server.Storage.Accounts.GetAsync(_host!.Name, local);
    }

    private void CompleteAuthentication(string username, string? authzid, byte[]? serverFinal)
    {
        Xmpp.Jid.TryNormalizeLocal(username, out var local);
        var bare = Xmpp.Jid.Create(local, _host!.Name);
        if (authzid is not null && (!Xmpp.Jid.TryParse(authzid, out var requested) || requested != bare))
        {
            // RFC 6120 §6.4.6: we only let an account act as itself.
            SaslFailure("invalid-authzid", null);
            return;
        }
        _authenticated = true;
        _username = local;
        _scram = null;
        if (Slot is not null) Server.Connections.Authenticated(Slot);
        Server.AuthThrottle.Succeeded(RemoteEndPoint);
        var success = new XmlElement("success", Namespaces.Sasl);
        if (serverFinal is not null) success.AddText(Convert.ToBase64String(serverFinal));
        Reply(success);
        _log.LogInformation("{Connection}: authenticated as {Jid} with {Mechanism}", ConnectionId, bare, _mechanism);
        // RFC 6120 §6.4.6: the client now sends a new stream header over the same connection.
        Parser.Reset();
        StreamId = NewId();
    }

    private async ValueTask AuthFailedAsync(string condition)
    {
        _scram = null;
        _authFailures++;
        _log.LogInformation("{Connection}: authentication failed ({Condition}), attempt {Count}", ConnectionId, condition, _authFailures);
        // Slow down password guessing: each failure from the same address costs the next attempt more time.
        var delay = Server.AuthThrottle.Failed(RemoteEndPoint);
        if (delay > TimeSpan.Zero) await Task.Delay(delay);
        SaslFailure(condition, null);
        if (_authFailures >= Server.Options.C2s.MaxAuthFailures)
            Close(StreamErrors.PolicyViolation, "too many failed authentication attempts");
    }

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
        var outcome = Server.Sessions.Bind(this, full, replace, Server.Options.Limits.MaxResourcesPerUser, out var replaced);
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
        // RFC 6120 §7.7.2.2: the old session is replaced and told why.
        replaced?.Close(StreamErrors.Conflict, "replaced by a new session with the same resource");

        var result = new XmlElement("iq", Namespaces.Client);
        result.SetAttribute("id", id).SetAttribute("type", "result");
        result.AddElement("bind", Namespaces.Bind).AddElement("jid").AddText(full.ToString());
        Reply(result);
        _log.LogInformation("{Connection}: bound {Jid}", ConnectionId, full);
    }

    // ---- stanzas (RFC 6120 §8, RFC 6121) ----

    private async ValueTask HandleStanzaAsync(XmlElement stanza)
    {
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
                await Server.Router.RouteAsync(stanza, jid, to ?? jid.Bare);
                break;
            case "presence":
                var handler = Server.Modules.ClientPresence;
                if (handler is not null) await handler(this, stanza);
                else if (to is not null) await Server.Router.RouteAsync(stanza, jid, to);
                break;
        }
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
        await Server.Router.RouteIqAsync(iq, Jid!, to ?? Jid!.Bare, explicitTo: to is not null);
    }

    // ---- end ----

    protected override async ValueTask OnClosedAsync(List<XmlElement> undelivered)
    {
        if (_closedHandled) return;
        _closedHandled = true;
        var jid = Jid;
        if (jid is null) return;
        bool wasBound = Server.Sessions.Unbind(this);
        if (wasBound)
        {
            _log.LogInformation("{Connection}: session {Jid} ended", ConnectionId, jid);
            await Server.Modules.RaiseSessionClosedAsync(this);
        }
        IsAvailable = false;
        // Stanzas that were queued for this client but never written: messages go to the account again
        // (another resource, or offline storage) — RFC 6121 §8.5.3.2.1 treats them as addressed to the bare JID.
        foreach (var stanza in undelivered)
        {
            if (stanza.Name != "message") continue;
            var type = stanza.GetAttribute("type") ?? "normal";
            if (type is "groupchat" or "error" or "headline") continue;
            var fromText = stanza.GetAttribute("from");
            var from = fromText is not null && Xmpp.Jid.TryParse(fromText, out var f) ? f : Server.HostJid(jid.Domain);
            await Server.Router.DeliverToBareAsync(stanza, from, jid.Bare, type);
        }
    }
}
