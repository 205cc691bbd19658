using Microsoft.Extensions.Logging;
using Starling.Server.Modules;
using Starling.Server.Pipeline;
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
        Domains = DomainTable.For(server.Options);
    }

    /// <summary>Local hosts, internal services, components; everything else is remote.</summary>
    public DomainTable Domains { get; }

    /// <summary>
    /// The router's RFC 6121 §8.5 rules, as the default handlers (priority 0) of the delivery events, and the last
    /// word on message/offline (service-unavailable, at the lowest priority, after offline storage).
    /// </summary>
    internal void RegisterDefaults(ModuleRegistry modules)
    {
        modules.Hook(StanzaEvent.MessageFull, MessageToFullAsync, 0);
        modules.Hook(StanzaEvent.MessageBare, MessageToBareAsync, 0);
        modules.Hook(StanzaEvent.MessageHost, MessageToHost, 0);
        modules.Hook(StanzaEvent.MessageOffline, NoOfflineStorage, int.MinValue);
        modules.Hook(StanzaEvent.PresenceFull, PresenceToFull, 0);
        modules.Hook(StanzaEvent.PresenceBare, PresenceToBare, 0);
        modules.Hook(StanzaEvent.PresenceHost, PresenceToHost, 0);
        modules.Hook(StanzaEvent.IqFull, IqToFull, 0);
        modules.Hook(StanzaEvent.IqBare, IqToAccountOrHostAsync, 0);
        modules.Hook(StanzaEvent.IqHost, IqToAccountOrHostAsync, 0);
    }

    public ValueTask RouteAsync(XmlElement stanza, Jid from, Jid to)
    {
        ArgumentNullException.ThrowIfNull(stanza);
        return stanza.Name switch
        {
            "message" => RouteAsync(StanzaKind.Message, stanza, from, to),
            "presence" => RouteAsync(StanzaKind.Presence, stanza, from, to),
            "iq" => RouteAsync(StanzaKind.Iq, stanza, from, to),
            _ => ValueTask.CompletedTask,
        };
    }

    /// <summary>
    /// Routes a stanza whose kind the caller already knows: to a local address, the delivery event
    /// (<c>message/bare</c>, <c>iq/full</c>…) fires; <paramref name="explicitTo"/> is false for a client iq without 'to'.
    /// </summary>
    internal ValueTask RouteAsync(StanzaKind kind, XmlElement stanza, Jid from, Jid to, bool explicitTo = true)
    {
        if (Domains.Resolve(to.Domain) != DomainKind.LocalHost)
        {
            // No s2s, components or internal services yet: RFC 6120 §8.3.3.13 remote-server-not-found.
            Bounce(stanza, from, to, StanzaErrorCondition.RemoteServerNotFound, $"this server does not federate yet ({to.Domain} is not local)");
            return ValueTask.CompletedTask;
        }
        var pending = _server.Modules.Pipeline.FireAsync(StanzaEvent.For(StanzaStage.Deliver, kind, to), new StanzaContext(stanza, from, to, null, explicitTo));
        if (!pending.IsCompletedSuccessfully) return AwaitAsync(pending);
        _ = pending.Result;
        return ValueTask.CompletedTask;
    }

    private static async ValueTask AwaitAsync(ValueTask<bool> pending) => await pending;

    // ---- message (RFC 6121 §8.5.2, §8.5.3) ----

    /// <summary>Messages to the server itself: nothing here consumes them (RFC 6120 §10.3.1 leaves it to the server).</summary>
    private ValueTask<bool> MessageToHost(StanzaContext c)
    {
        if ((c.Stanza.GetAttribute("type") ?? "normal") is "normal" or "chat") Bounce(c.Stanza, c.From, c.To, StanzaErrorCondition.ServiceUnavailable);
        return new ValueTask<bool>(true);
    }

    private async ValueTask<bool> MessageToFullAsync(StanzaContext c)
    {
        var type = c.Stanza.GetAttribute("type") ?? "normal";
        var session = _server.Sessions.GetSession(c.To);
        if (session is not null && session.Deliver(c.Stanza)) return true;
        // RFC 6121 §8.5.3.2.1: no such resource — normal/chat/headline go to the bare JID; groupchat errors; error is ignored.
        if (type == "groupchat") { Bounce(c.Stanza, c.From, c.To, StanzaErrorCondition.ServiceUnavailable); return true; }
        if (type == "error") return true;
        await DeliverToBareAsync(c.Stanza, c.From, c.To.Bare, type);
        return true;
    }

    private async ValueTask<bool> MessageToBareAsync(StanzaContext c)
    {
        await DeliverToBareAsync(c.Stanza, c.From, c.To, c.Stanza.GetAttribute("type") ?? "normal");
        return true;
    }

    /// <summary>message/offline with nobody to take it (no offline module, or it declined): an error, never a silent drop.</summary>
    private ValueTask<bool> NoOfflineStorage(StanzaContext c)
    {
        Bounce(c.Stanza, c.From, c.To, StanzaErrorCondition.ServiceUnavailable);
        return new ValueTask<bool>(true);
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
        }
        catch (Exception ex)
        {
            // Issue #13: a failing database must not close the sender's stream or lose the message silently: the sender
            // gets an error for this message.
            var kind = StorageFailure.Log(_log, ex, "routing a message", bare);
            Bounce(stanza, from, bare, StorageFailure.Condition(kind), StorageFailure.Text(kind));
            return;
        }
        // §8.5.2.2: no available resource — message/offline: offline storage (XEP-0160), else service-unavailable at the
        // end of the chain. The pipeline turns a failing handler (a storage error) into an error for the sender.
        await _server.Modules.Pipeline.FireAsync(StanzaEvent.MessageOffline, new StanzaContext(stanza, from, bare));
    }

    // ---- presence (RFC 6121 §8.5.2.1.2, §8.5.3) ----

    private ValueTask<bool> PresenceToFull(StanzaContext c)
    {
        var session = _server.Sessions.GetSession(c.To);
        if (session is not null)
        {
            session.Deliver(c.Stanza);
            return new ValueTask<bool>(true);
        }
        // §8.5.3.2.3: only subscription-related presence goes on to the bare JID.
        if (c.Stanza.GetAttribute("type") is "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed") DeliverToAvailable(c.Stanza, c.To.Bare);
        return new ValueTask<bool>(true);
    }

    private ValueTask<bool> PresenceToBare(StanzaContext c)
    {
        // Probes are answered by the presence module (its presence/bare handler runs first, RFC 6121 §4.3.2); without it
        // nobody answers them for the account.
        if (c.Stanza.GetAttribute("type") != "probe") DeliverToAvailable(c.Stanza, c.To);
        return new ValueTask<bool>(true);
    }

    /// <summary>Presence to the server: nothing to do yet.</summary>
    private static ValueTask<bool> PresenceToHost(StanzaContext c) => new(true);

    private void DeliverToAvailable(XmlElement stanza, Jid bare)
    {
        foreach (var s in _server.Sessions.GetSessions(bare))
        {
            if (s.IsAvailable) s.Deliver(stanza);
        }
    }

    // ---- iq (RFC 6120 §8.2.3, §10.3.3; RFC 6121 §8.5) ----

    private ValueTask<bool> IqToFull(StanzaContext c)
    {
        var session = _server.Sessions.GetSession(c.To);
        if (c.Stanza.GetAttribute("type") is "get" or "set")
        {
            if (session is null || !session.Deliver(c.Stanza)) Bounce(c.Stanza, c.From, c.To, StanzaErrorCondition.ServiceUnavailable);
        }
        else session?.Deliver(c.Stanza); // a result or error for a resource that is gone has no one waiting
        return new ValueTask<bool>(true);
    }

    private async ValueTask<bool> IqToAccountOrHostAsync(StanzaContext c)
    {
        await RouteIqAsync(c.Stanza, c.From, c.To, c.ExplicitTo);
        return true;
    }

    /// <summary>An iq to an account's bare JID or to a host: the modules' iq-{type}/{host|self|bare}/{namespace} handlers.</summary>
    /// <param name="explicitTo">False when the client sent no 'to' (the iq is for its own account, or the server).</param>
    private async ValueTask RouteIqAsync(XmlElement stanza, Jid from, Jid to, bool explicitTo)
    {
        var type = stanza.GetAttribute("type");
        if (type is not ("get" or "set"))
        {
            // Results and errors for the server (or an account, for PEP later) answer its own requests, if any waits.
            _server.IqTracker.TryComplete(stanza, from, explicitTo ? to : null);
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
        // A request the server sent that cannot be delivered: its waiter gets the error now rather than a timeout.
        else if (to is not null && stanza.Name == "iq" && _server.IqTracker.TryComplete(reply, to, from)) return;
        // The sender's resource is gone: RFC 6121 §8.5.3.2.1 has errors to absent resources ignored.
        _log.LogDebug("bounced {Kind} from {From} to {To}: {Condition}", stanza.Name, from, to, condition);
    }
}
