using Microsoft.Extensions.Logging;
using Starling.Server.Modules;
using Starling.Server.Sessions;
using Starling.Server.Storage;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Routing;

/// <summary>
/// Routing for the domains this node serves, per RFC 6121 §8.5 (local user) and RFC 6120 §10 (server rules).
/// Every stanza either reaches a session, a module, offline storage, or comes back to its sender as an error —
/// none is dropped silently except where the RFC says to ignore it (errors, presence to nobody).
/// </summary>
public sealed class LocalRouter : IRouter
{
    private readonly XmppServer _server;
    private readonly ILogger _log;

    public LocalRouter(XmppServer server)
    {
        _server = server;
        _log = server.LoggerFactory.CreateLogger<LocalRouter>();
    }

    public ValueTask RouteAsync(XmlElement stanza, Jid from, Jid to)
    {
        if (!_server.IsLocalHost(to.Domain))
        {
            // No s2s yet: RFC 6120 §8.3.3.13 remote-server-not-found.
            Bounce(stanza, from, to, StanzaErrorCondition.RemoteServerNotFound, $"this server does not federate yet ({to.Domain} is not local)");
            return ValueTask.CompletedTask;
        }
        return stanza.Name switch
        {
            "message" => RouteMessageAsync(stanza, from, to),
            "presence" => RoutePresenceAsync(stanza, from, to),
            "iq" => RouteIqAsync(stanza, from, to, explicitTo: true),
            _ => ValueTask.CompletedTask,
        };
    }

    // ---- message (RFC 6121 §8.5.2, §8.5.3) ----

    private async ValueTask RouteMessageAsync(XmlElement stanza, Jid from, Jid to)
    {
        var type = stanza.GetAttribute("type") ?? "normal";
        if (to.Local is null)
        {
            // Messages to the server itself: nothing here consumes them (RFC 6120 §10.3.1 leaves it to the server).
            if (type is "normal" or "chat") Bounce(stanza, from, to, StanzaErrorCondition.ServiceUnavailable);
            return;
        }
        if (to.Resource is not null)
        {
            var session = _server.Sessions.GetSession(to);
            if (session is not null && session.Deliver(stanza)) return;
            // RFC 6121 §8.5.3.2.1: no such resource — normal/chat/headline go to the bare JID; groupchat errors; error is ignored.
            if (type == "groupchat") { Bounce(stanza, from, to, StanzaErrorCondition.ServiceUnavailable); return; }
            if (type == "error") return;
        }
        await DeliverToBareAsync(stanza, from, to.Bare, type);
    }

    /// <summary>RFC 6121 §8.5.2: a message for an account's bare JID.</summary>
    public async ValueTask DeliverToBareAsync(XmlElement stanza, Jid from, Jid bare, string type)
    {
        if (type == "groupchat") { Bounce(stanza, from, bare, StanzaErrorCondition.ServiceUnavailable); return; }
        if (type == "error") return; // §8.5.2.1.1: ignored
        var sessions = _server.Sessions.GetSessions(bare);
        int delivered = 0;
        if (sessions.Length > 0)
        {
            if (type == "headline")
            {
                foreach (var s in sessions)
                {
                    if (s.IsAvailable && s.Priority >= 0 && s.Deliver(stanza)) delivered++;
                }
            }
            else
            {
                // normal/chat: every available resource with the highest non-negative priority (as Prosody does).
                int best = int.MinValue;
                foreach (var s in sessions)
                {
                    if (s.IsAvailable && s.Priority >= 0 && s.Priority > best) best = s.Priority;
                }
                if (best >= 0)
                {
                    foreach (var s in sessions)
                    {
                        if (s.IsAvailable && s.Priority == best && s.Deliver(stanza)) delivered++;
                    }
                    if (delivered == 0)
                    {
                        // The top-priority sessions were closing: any other available one will do.
                        foreach (var s in sessions)
                        {
                            if (s.IsAvailable && s.Priority >= 0 && s.Deliver(stanza)) { delivered++; break; }
                        }
                    }
                }
            }
        }
        if (delivered > 0 || type == "headline") return;

        try
        {
            if (sessions.Length == 0 && !await _server.AccountExistsAsync(bare))
            {
                // RFC 6121 §8.5.1: no such account.
                Bounce(stanza, from, bare, StanzaErrorCondition.ServiceUnavailable);
                return;
            }
            // §8.5.2.2: no available resource — offline storage (XEP-0160), else an error, never a silent drop.
            var offline = _server.Modules.UndeliverableMessage;
            if (offline is not null && await offline(bare, stanza)) return;
        }
        catch (Exception ex)
        {
            // Issue #13: a failing database must not close the sender's stream or lose the message silently: the sender
            // gets an error for this message (the offline module reports its own store failures the same way).
            var kind = StorageFailure.Log(_log, ex, "routing a message", bare);
            Bounce(stanza, from, bare, StorageFailure.Condition(kind), StorageFailure.Text(kind));
            return;
        }
        Bounce(stanza, from, bare, StanzaErrorCondition.ServiceUnavailable);
    }

    // ---- presence (RFC 6121 §8.5.2.1.2, §8.5.3) ----

    private ValueTask RoutePresenceAsync(XmlElement stanza, Jid from, Jid to)
    {
        if (to.Local is null) return ValueTask.CompletedTask; // presence to the server: nothing to do yet
        var type = stanza.GetAttribute("type");
        if (to.Resource is not null)
        {
            var session = _server.Sessions.GetSession(to);
            if (session is not null)
            {
                session.Deliver(stanza);
                return ValueTask.CompletedTask;
            }
            // §8.5.3.2.3: only subscription-related presence goes on to the bare JID.
            if (type is not ("subscribe" or "subscribed" or "unsubscribe" or "unsubscribed")) return ValueTask.CompletedTask;
        }
        if (type == "probe") return ValueTask.CompletedTask; // answered by the presence module once rosters exist
        foreach (var s in _server.Sessions.GetSessions(to.Bare))
        {
            if (s.IsAvailable) s.Deliver(stanza);
        }
        return ValueTask.CompletedTask;
    }

    // ---- iq (RFC 6120 §8.2.3, §10.3.3; RFC 6121 §8.5) ----

    /// <param name="explicitTo">False when the client sent no 'to' (the iq is for its own account, or the server).</param>
    public async ValueTask RouteIqAsync(XmlElement stanza, Jid from, Jid to, bool explicitTo)
    {
        var type = stanza.GetAttribute("type");
        bool request = type is "get" or "set";
        if (!request)
        {
            if (to.Resource is not null) _server.Sessions.GetSession(to)?.Deliver(stanza);
            // Results and errors addressed to the server or a bare JID have no waiting requester here.
            return;
        }
        if (to.Resource is not null)
        {
            var session = _server.Sessions.GetSession(to);
            if (session is null || !session.Deliver(stanza)) Bounce(stanza, from, to, StanzaErrorCondition.ServiceUnavailable);
            return;
        }

        var payload = stanza.FirstElement();
        if (payload is null)
        {
            // RFC 6120 §8.2.3: a get/set iq carries exactly one payload element.
            Bounce(stanza, from, to, StanzaErrorCondition.BadRequest, "an iq of type get or set must contain one payload element");
            return;
        }
        var iqType = type == "get" ? IqType.Get : IqType.Set;
        IqAddress address = to.Local is null ? IqAddress.Host : to == from.Bare ? IqAddress.Self : IqAddress.Bare;
        // The addressee's host: only what its modules offer is served (Hosts:N:Modules).
        var host = to.Domain;
        var handler = _server.Modules.FindIqHandler(iqType, address, payload.Namespace, host);
        if (handler is null && !explicitTo && address == IqAddress.Self)
        {
            // No 'to': served by the server for the account (RFC 6120 §10.3.3), falling back to the server's own handlers
            // (e.g. a ping without 'to', as Profanity sends).
            handler = _server.Modules.FindIqHandler(iqType, IqAddress.Host, payload.Namespace, host);
            if (handler is not null) to = _server.HostJid(from.Domain);
        }
        if (handler is null)
        {
            // RFC 6120 §8.3.3.3: a namespace the server knows, asked with a type it does not support (e.g. an iq-set
            // ping) is feature-not-implemented; an unknown namespace is service-unavailable (§8.4).
            var other = iqType == IqType.Get ? IqType.Set : IqType.Get;
            bool known = _server.Modules.FindIqHandler(other, address, payload.Namespace, host) is not null
                || (!explicitTo && address == IqAddress.Self && _server.Modules.FindIqHandler(other, IqAddress.Host, payload.Namespace, host) is not null);
            if (known)
                Bounce(stanza, from, explicitTo ? to : null, StanzaErrorCondition.FeatureNotImplemented, $"iq of type {type} is not supported for {payload.Namespace}");
            else
                Bounce(stanza, from, explicitTo ? to : null, StanzaErrorCondition.ServiceUnavailable);
            return;
        }

        IqReply reply;
        try
        {
            reply = await handler(new IqRequest
            {
                Stanza = stanza,
                Payload = payload,
                From = from,
                To = to,
                Session = from.Resource is null ? null : _server.Sessions.GetSession(from),
                Type = iqType,
            });
        }
        catch (Exception ex)
        {
            // Issue #13: storage failures (busy, full, account deleted under the session) are expected conditions with
            // their own error and one log line; anything else is logged with its stack trace. The stream stays up.
            var kind = StorageFailure.Classify(ex);
            if (kind == StorageFailureKind.Unexpected)
            {
                _log.LogError(ex, "iq handler for {Namespace} failed", payload.Namespace);
                reply = IqReply.Fail(StanzaErrorCondition.InternalServerError);
            }
            else
            {
                _log.LogWarning("iq handler for {Namespace} of {From}: storage {Kind} ({Message})", payload.Namespace, from, kind, ex.Message);
                reply = IqReply.Fail(StorageFailure.Condition(kind), StorageFailure.Text(kind));
            }
        }
        if (reply.Error is { } condition)
        {
            Bounce(stanza, from, explicitTo ? to : null, condition, reply.ErrorText);
            return;
        }
        var result = new XmlElement("iq", Namespaces.Client);
        var id = stanza.GetAttribute("id");
        if (id is not null) result.SetAttribute("id", id);
        result.SetAttribute("type", "result");
        if (explicitTo) result.SetAttribute("from", to.ToString());
        result.SetAttribute("to", from.ToString());
        if (reply.Payload is not null) result.Add(reply.Payload);
        await SendToAsync(result, from);
    }

    /// <summary>Delivers a stanza generated by the server (from a host or account) to a local or remote address.</summary>
    public ValueTask SendToAsync(XmlElement stanza, Jid to)
    {
        var fromText = stanza.GetAttribute("from");
        var from = fromText is not null && Jid.TryParse(fromText, out var f) ? f : _server.HostJid(to.Domain);
        return RouteAsync(stanza, from, to);
    }

    /// <summary>Returns an error to the sender (RFC 6120 §8.3), unless the stanza is itself an error.</summary>
    public void Bounce(XmlElement stanza, Jid from, Jid? to, StanzaErrorCondition condition, string? text = null)
    {
        if (!StanzaError.MayReplyTo(stanza)) return;
        var reply = StanzaError.CreateReply(stanza, condition, text);
        reply.SetAttribute("from", to?.ToString());
        reply.SetAttribute("to", from.ToString());
        if (from.Resource is not null)
        {
            var session = _server.Sessions.GetSession(from);
            if (session is not null) { session.Deliver(reply); return; }
        }
        // The sender's resource is gone: RFC 6121 §8.5.3.2.1 has errors to absent resources ignored.
        _log.LogDebug("bounced {Kind} from {From} to {To}: {Condition}", stanza.Name, from, to, condition);
    }
}
