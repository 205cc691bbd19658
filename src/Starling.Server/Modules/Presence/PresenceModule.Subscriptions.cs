using Microsoft.Extensions.Logging;
using Starling.Server.Modules.Roster;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Server.Storage;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Presence;

/// <summary>
/// RFC 6121 §3 presence subscriptions and §4.3 probes. A client's subscription stanza (pre-presence) changes its own
/// roster item by the outbound rules and is routed stamped with its bare JID; a subscription stanza or probe for a local
/// account (presence/bare, presence/full) changes that account's item by the inbound rules and is delivered, answered
/// or ignored as Appendix A says. Every change is pushed to the interested resources (§2.1.6) and applied to the
/// presence caches of the account's sessions, so the next broadcast uses the current roster.
/// </summary>
public sealed partial class PresenceModule
{
    /// <summary>
    /// A pending request is stored as received so that its payload (a status text, a XEP-0172 nick) reaches the user at
    /// login; one larger than this (a client's stanza may be far larger) is stored as a plain subscribe. The request
    /// itself is kept either way; the bound keeps MaxPendingSubscriptions × this the most one user's requests take.
    /// </summary>
    private const int MaxStoredRequestChars = 4_096;

    private int MaxRosterItems => Server.Options.Modules.Roster.MaxItems;

    // ---- outbound: the user's server (§3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4.1) ----

    private async ValueTask OnOutboundSubscriptionAsync(C2sSession session, XmlElement stanza, Jid to, string type)
    {
        var from = session.Jid!;
        var user = from.Bare;
        var contact = to.Bare;
        // The account's own resources always share presence: no subscription to oneself (Prosody: "no self contacts").
        if (contact == user) return;
        Func<ContactState, ContactState> rule = type switch
        {
            "subscribe" => SubscriptionRules.OutboundSubscribe,
            "subscribed" => SubscriptionRules.OutboundSubscribed,
            "unsubscribe" => SubscriptionRules.OutboundUnsubscribe,
            _ => SubscriptionRules.OutboundUnsubscribed,
        };
        var update = await Server.Storage.Roster.UpdateSubscriptionAsync(user.Domain, user.Local!, contact.ToString(), rule, null, MaxRosterItems, int.MaxValue);
        if (update.Outcome == SubscriptionOutcome.RosterFull)
        {
            // A request or approval that needs a new roster item past the roster's limit (Modules:roster:MaxItems) is
            // refused as a roster set would be (RFC 6120 §8.3.3.18), and not routed: the contact sees nothing.
            Server.Router.Bounce(stanza, from, to, StanzaErrorCondition.ResourceConstraint, $"the roster is full ({MaxRosterItems} items)");
            return;
        }
        ApplyChange(user, contact, update);

        // RFC 6121 §3.1.2 (and §3.2.2, §3.3.2): the server stamps the user's bare JID, and the contact's bare JID is the addressee.
        stanza.SetAttribute("from", user.ToString());
        stanza.SetAttribute("to", contact.ToString());
        var before = update.Before;
        switch (type)
        {
            case "subscribe":
            case "unsubscribe":
                // Routed in every state, as Prosody does: the contact's server answers a request it already approved
                // (§3.1.3), and a cancellation repairs a contact whose state drifted.
                await Server.Router.RouteAsync(stanza, from, contact);
                break;
            case "subscribed":
                // §3.1.5: an approval is routed, then the contact gets the user's current presence. A pre-approval, or
                // approving a contact that is already subscribed, is not routed (§3.4.1).
                if (before.PendingIn && update.After.From)
                {
                    await Server.Router.RouteAsync(stanza, from, contact);
                    await SendFromAvailableResourcesAsync(Server, user, contact, unavailable: false);
                }
                break;
            default:
                // §3.4: withdrawing a pre-approval is not routed.
                if (before.Approved && !before.From && !before.PendingIn) break;
                // §3.2.2: while the contact is still subscribed, it gets unavailable presence from each available resource.
                if (before.From) await SendFromAvailableResourcesAsync(Server, user, contact, unavailable: true);
                await Server.Router.RouteAsync(stanza, from, contact);
                break;
        }
    }

    // ---- inbound: the contact's server (§3.1.3, §3.1.6, §3.2.3, §3.3.3, §4.3.2) ----

    /// <summary>Subscription stanzas and probes for a local account; any other presence goes on to the router's delivery.</summary>
    private ValueTask<bool> OnInboundPresenceAsync(StanzaContext c)
    {
        var type = c.Stanza.GetAttribute("type");
        if (type is not ("subscribe" or "subscribed" or "unsubscribe" or "unsubscribed" or "probe")) return new ValueTask<bool>(false);
        return OnInboundSubscriptionAsync(c, type);
    }

    private async ValueTask<bool> OnInboundSubscriptionAsync(StanzaContext c, string type)
    {
        var owner = c.To.Bare;
        var sender = c.From.Bare;
        // Between the resources of one account nothing is subscribed: a probe or request to oneself is ignored.
        if (owner == sender) return true;
        if (type == "probe")
        {
            await OnProbeAsync(c, owner, sender);
            return true;
        }
        // Addressed bare-to-bare (§3.1.2); a sender whose host does not run this module did not stamp its bare JID, so
        // a copy is (the routed stanza is not changed). A subscription stanza to a full JID is for the account:
        // subscriptions are between bare JIDs (§3).
        var stanza = c.Stanza;
        var senderText = sender.ToString();
        var ownerText = owner.ToString();
        if (stanza.GetAttribute("from") != senderText || stanza.GetAttribute("to") != ownerText)
        {
            stanza = stanza.Clone();
            stanza.SetAttribute("from", senderText).SetAttribute("to", ownerText);
        }
        if (type == "subscribe")
        {
            await OnInboundSubscribeAsync(c, stanza, owner, sender);
            return true;
        }
        Func<ContactState, ContactState> rule = type switch
        {
            "subscribed" => SubscriptionRules.InboundSubscribed,
            "unsubscribe" => SubscriptionRules.InboundUnsubscribe,
            _ => SubscriptionRules.InboundUnsubscribed,
        };
        var update = await Server.Storage.Roster.UpdateSubscriptionAsync(owner.Domain, owner.Local!, senderText, rule, null, MaxRosterItems, _maxPending);
        // Appendix A: a stanza that changes nothing (an unsolicited subscribed or unsubscribed, a cancellation of a
        // subscription that does not exist) is ignored: not delivered.
        if (update.Outcome != SubscriptionOutcome.Changed) return true;
        // §3.3.3: the sender's subscription ends; while it lasts it gets unavailable presence from each available resource.
        if (type == "unsubscribe" && update.Before.From) await SendFromAvailableResourcesAsync(Server, owner, sender, unavailable: true);
        ApplyChange(owner, sender, update);
        DeliverToAvailable(owner, stanza);
        return true;
    }

    /// <summary>
    /// Presence to the server itself, as Prosody's mod_presence answers it: the server's presence is anyone's, so a
    /// subscription request is approved at once and a probe is answered with available presence from the host. Other
    /// presence to the host goes on to the router's default (nothing is delivered).
    /// </summary>
    private ValueTask<bool> OnPresenceToHostAsync(StanzaContext c)
    {
        var type = c.Stanza.GetAttribute("type");
        if (type is not ("subscribe" or "probe")) return new ValueTask<bool>(false);
        return AnswerForHostAsync(c, type);
    }

    private async ValueTask<bool> AnswerForHostAsync(StanzaContext c, string type)
    {
        var host = c.To;
        if (type == "subscribe")
        {
            await SendPresenceAsync(host, c.From.Bare, "subscribed");
            return true;
        }
        var presence = new XmlElement("presence", Namespaces.Client);
        presence.SetAttribute("from", host.ToString()).SetAttribute("to", c.From.ToString());
        await Server.Router.RouteAsync(presence, host, c.From);
        return true;
    }

    /// <summary>
    /// §3.1.3: a request already approved (from, or pre-approved, §3.4) is answered for the user with subscribed and the
    /// user's current presence (as Prosody does); a new one is stored as pending in and delivered to the available
    /// resources (later ones get it at login); one already pending is not delivered again (it will be at login).
    /// </summary>
    private async ValueTask OnInboundSubscribeAsync(StanzaContext c, XmlElement stanza, Jid owner, Jid sender)
    {
        if (!await Server.AccountExistsAsync(owner))
        {
            // No such account: the request is denied, so the sender's roster does not wait forever.
            await SendPresenceAsync(owner, sender, "unsubscribed");
            return;
        }
        var xml = stanza.ToString();
        if (xml.Length > MaxStoredRequestChars) xml = SubscriptionStanza(sender, owner, "subscribe").ToString();
        var update = await Server.Storage.Roster.UpdateSubscriptionAsync(owner.Domain, owner.Local!, sender.ToString(), SubscriptionRules.InboundSubscribe, xml, MaxRosterItems, _maxPending);
        if (update.Outcome == SubscriptionOutcome.PendingFull)
        {
            // Modules:presence:MaxPendingSubscriptions: a flood of requests cannot grow a user's storage without bound.
            Server.Router.Bounce(c.Stanza, c.From, c.To, StanzaErrorCondition.ResourceConstraint, $"{owner} has {_maxPending} subscription requests waiting for an answer");
            return;
        }
        var after = update.After;
        if (after.From)
        {
            if (update.Outcome == SubscriptionOutcome.Changed) ApplyChange(owner, sender, update);
            await SendPresenceAsync(owner, sender, "subscribed");
            await SendFromAvailableResourcesAsync(Server, owner, sender, unavailable: false);
            return;
        }
        if (update.Outcome == SubscriptionOutcome.Changed) DeliverToAvailable(owner, stanza);
    }

    /// <summary>
    /// RFC 6121 §4.3.2: a probe from a subscribed contact is answered with the current presence of each available
    /// resource (unavailable presence when there is none); a probe from anyone else is answered with unsubscribed, which
    /// tells a contact whose roster says otherwise that it is not subscribed (as Prosody does) — except while its request
    /// is pending in, which that would cancel.
    /// </summary>
    private async ValueTask OnProbeAsync(StanzaContext c, Jid owner, Jid sender)
    {
        PresenceRoster? cache = null;
        foreach (var s in Server.Sessions.GetSessions(owner))
        {
            if (s.Get(Roster) is { } r) { cache = r; break; }
        }
        bool subscribed = cache is not null && cache.IsSubscriber(sender);
        if (!subscribed)
        {
            var state = await Server.Storage.Roster.GetContactAsync(owner.Domain, owner.Local!, sender.ToString());
            subscribed = state.From;
            if (!subscribed)
            {
                if (!state.PendingIn) await SendPresenceAsync(owner, sender, "unsubscribed");
                return;
            }
        }
        var sessions = Server.Sessions.GetSessions(owner).ToArray();
        int sent = 0;
        foreach (var s in sessions)
        {
            if (!s.IsAvailable || s.Presence is not { } current) continue;
            var copy = current.Clone();
            copy.SetAttribute("to", c.From.ToString());
            await Server.Router.RouteAsync(copy, s.Jid!, c.From);
            sent++;
        }
        if (sent == 0) await SendPresenceAsync(owner, c.From, "unavailable");
    }

    /// <summary>§3.1.3: the requests that arrived while the user was offline, after its initial presence, to the new resource.</summary>
    private async ValueTask DeliverPendingSubscriptionsAsync(C2sSession session)
    {
        var jid = session.Jid!;
        var pending = await Server.Storage.Roster.GetPendingInAsync(jid.Domain, jid.Local!);
        foreach (var request in pending)
        {
            XmlElement stanza;
            try
            {
                stanza = StoredXml.Parse(request.Xml);
            }
            catch (FormatException ex)
            {
                // Written by this server, so only a damaged row fails: the request itself still reaches the user.
                _context.Logger.LogWarning("the stored subscription request of {Contact} to {User} is not readable XML ({Reason}); delivering a plain request", request.Jid, jid.Bare, ex.Message);
                stanza = new XmlElement("presence", Namespaces.Client);
            }
            stanza.SetAttribute("type", "subscribe").SetAttribute("from", request.Jid).SetAttribute("to", jid.Bare.ToString());
            session.Deliver(stanza);
        }
    }

    // ---- shared with the roster module ----

    /// <summary>A stored change: pushed to the interested resources (§2.1.6) and applied to the account's presence caches.</summary>
    private void ApplyChange(Jid account, Jid contact, SubscriptionUpdate update)
    {
        if (update.Version is { } version && update.Item is { } item) RosterModule.Push(Server, account, RosterModule.ToElement(item), version);
        if (update.Before.To != update.After.To || update.Before.From != update.After.From) UpdateRosterCaches(Server, account, contact, update.After);
    }

    /// <summary>
    /// Brings the presence cache of every session of <paramref name="account"/> to <paramref name="contact"/>'s new state,
    /// so broadcasts and probes follow the current roster (sessions of one account usually share one cache).
    /// </summary>
    internal static void UpdateRosterCaches(XmppServer server, Jid account, Jid contact, ContactState state)
    {
        ArgumentNullException.ThrowIfNull(server);
        // Counted before the caches are updated, so a session reading its roster meanwhile reads it again.
        Interlocked.Increment(ref _cacheChanges);
        foreach (var s in server.Sessions.GetSessions(account))
        {
            s.Get(Roster)?.Apply(contact, state.InRoster && state.To, state.InRoster && state.From);
        }
    }

    /// <summary>
    /// The current presence (or, with <paramref name="unavailable"/>, unavailable presence) of each available resource of
    /// <paramref name="account"/>, from its full JID, to <paramref name="to"/> (§3.1.5, §3.2.2, §3.3.3).
    /// </summary>
    internal static async ValueTask SendFromAvailableResourcesAsync(XmppServer server, Jid account, Jid to, bool unavailable)
    {
        ArgumentNullException.ThrowIfNull(server);
        // Copied: the loop awaits the router, and the directory's array may be replaced meanwhile (not a broadcast path).
        var sessions = server.Sessions.GetSessions(account).ToArray();
        foreach (var s in sessions)
        {
            if (!s.IsAvailable || s.Presence is not { } current) continue;
            XmlElement presence;
            if (unavailable)
            {
                presence = new XmlElement("presence", Namespaces.Client);
                presence.SetAttribute("type", "unavailable").SetAttribute("from", s.Jid!.ToString());
            }
            else presence = current.Clone();
            presence.SetAttribute("to", to.ToString());
            await server.Router.RouteAsync(presence, s.Jid!, to);
        }
    }

    private void DeliverToAvailable(Jid account, XmlElement stanza)
    {
        foreach (var s in Server.Sessions.GetSessions(account))
        {
            if (s.IsAvailable) s.Deliver(stanza);
        }
    }

    /// <summary>A presence the server sends for an account (subscribed, unsubscribed, unavailable), from its bare JID.</summary>
    private ValueTask SendPresenceAsync(Jid from, Jid to, string type) => Server.Router.RouteAsync(SubscriptionStanza(from, to, type), from, to);

    private static XmlElement SubscriptionStanza(Jid from, Jid to, string type)
    {
        var presence = new XmlElement("presence", Namespaces.Client);
        presence.SetAttribute("type", type).SetAttribute("from", from.ToString()).SetAttribute("to", to.ToString());
        return presence;
    }
}
