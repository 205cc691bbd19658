using System.Globalization;
using Starling.Server.Pipeline;
using Starling.Server.Routing;
using Starling.Server.Sessions;
using Starling.Server.Storage;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Presence;

/// <summary>
/// RFC 6121 §4 presence: initial presence is broadcast to the contacts subscribed to the user and to the user's own
/// available resources (the sender included — the echo the lab captured), updates likewise, directed presence is
/// tracked, and unavailable presence goes out when the user logs off or the connection drops. Entity caps
/// (XEP-0115) and any other payload pass through untouched. Presence subscriptions (RFC 6121 §3) are in
/// PresenceModule.Subscriptions.cs.
/// </summary>
public sealed partial class PresenceModule : IModule
{
    /// <summary>Entities this session sent directed presence to (RFC 6121 §4.6), told when it goes offline.</summary>
    internal static readonly SessionKey<HashSet<Jid>> DirectedPresence = new("presence.directed");

    /// <summary>
    /// The roster as presence needs it (subscribers and subscriptions, parsed), loaded when the session became available
    /// and kept current by every subscription change of the account (<see cref="UpdateRosterCaches"/>).
    /// </summary>
    internal static readonly SessionKey<PresenceRoster> Roster = new("presence.roster");

    /// <summary>RFC 6121 §3.4.1: the stream feature announcing subscription pre-approval.</summary>
    private const string PreApprovalNamespace = "urn:xmpp:features:pre-approval";

    /// <summary>Subscription changes applied to presence caches so far, of any account (see <see cref="LoadRosterAsync"/>).</summary>
    private static long _cacheChanges;

    private ModuleContext _context = null!;
    private int _maxDirected;
    private int _maxPending;

    public string Name => "presence";

    public void Register(ModuleContext context)
    {
        _context = context;
        var options = context.Options<PresenceOptions>();
        _maxDirected = options.MaxDirectedPresence;
        _maxPending = options.MaxPendingSubscriptions;
        // Prosody's mod_presence: a client's presence is handled in its own context before routing. Without 'to' it is
        // a broadcast (handled here); with one it is directed presence, tracked here and then routed as usual, or a
        // subscription stanza (the sender's roster changes, then it is routed with the sender's bare JID).
        context.Hook(StanzaEvent.PrePresenceBare, OnClientPresenceAsync);
        context.Hook(StanzaEvent.PrePresenceFull, OnClientPresenceAsync);
        context.Hook(StanzaEvent.PrePresenceHost, OnClientPresenceAsync);
        // Subscription stanzas and probes for a local account, ahead of the router's delivery rules (priority 0).
        context.Hook(StanzaEvent.PresenceBare, OnInboundPresenceAsync, 10);
        context.Hook(StanzaEvent.PresenceFull, OnInboundPresenceAsync, 10);
        context.Hook(StanzaEvent.PresenceHost, OnPresenceToHostAsync, 10);
        // RFC 6121 §3.4: subscription pre-approval is supported.
        context.AddStreamFeature(_ => new XmlElement("sub", PreApprovalNamespace));
        context.SessionClosed += OnSessionClosedAsync;
    }

    private XmppServer Server => _context.Server;

    private async ValueTask<bool> OnClientPresenceAsync(StanzaContext c)
    {
        if (c.Origin is not { } session) return false;
        var presence = c.Stanza;
        var jid = session.Jid!;
        var type = presence.GetAttribute("type");
        if (c.ExplicitTo)
        {
            var to = c.To;
            if (type is null or "unavailable")
            {
                // RFC 6121 §4.6: directed presence; remembered so the contact learns when we go offline.
                if (type is null && session.IsAvailable)
                {
                    var directed = session.Get(DirectedPresence);
                    if (directed is null) session.Set(DirectedPresence, directed = []);
                    // Issue #13: the set lived as long as the session and grew with every new addressee. Past the limit the
                    // presence is refused with resource-constraint (RFC 6120 §8.3.3.18) rather than sent untracked, since
                    // an untracked contact would never learn that we went offline (RFC 6121 §4.6.3).
                    if (directed.Count >= _maxDirected && !directed.Contains(to))
                    {
                        Server.Router.Bounce(presence, jid, to, StanzaErrorCondition.ResourceConstraint, $"directed presence to more than {_maxDirected} entities");
                        return true;
                    }
                    directed.Add(to);
                }
                else session.Get(DirectedPresence)?.Remove(to);
                return false; // routed by the session like any stanza
            }
            if (type is "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed")
            {
                await OnOutboundSubscriptionAsync(session, presence, to, type);
                return true;
            }
            return false; // probes (RFC 6121 §4.3: clients should not send them) and errors are routed as they are
        }

        if (type is null)
        {
            int priority = 0;
            var priorityText = presence.ElementText("priority", Namespaces.Client);
            if (priorityText is not null &&
                (!int.TryParse(priorityText.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out priority) || priority is < -128 or > 127))
            {
                // RFC 6121 §4.7.2.3: an integer from -128 to +127.
                Server.Router.Bounce(presence, jid, null, StanzaErrorCondition.BadRequest, "priority must be an integer from -128 to 127");
                return true;
            }
            bool initial = !session.IsAvailable;
            if (initial) await LoadRosterAsync(session);
            session.Priority = priority;
            session.Presence = presence;
            session.IsAvailable = true;
            await BroadcastAsync(session, presence);
            if (initial)
            {
                // RFC 6121 §4.2.3/§4.4.2: the new resource learns the presence of the account's other resources, and of the
                // contacts it is subscribed to by probing them (§4.3.1); then it gets the subscription requests that came
                // while the user was offline (§3.1.3).
                foreach (var other in Server.Sessions.GetSessions(jid.Bare))
                {
                    if (!ReferenceEquals(other, session) && other.IsAvailable && other.Presence is not null) session.Deliver(other.Presence);
                }
                await ProbeAsync(session);
                await DeliverPendingSubscriptionsAsync(session);
                await Server.Modules.RaiseSessionAvailableAsync(session);
            }
            return true;
        }
        if (type == "unavailable")
        {
            if (!session.IsAvailable) return true;
            session.IsAvailable = false;
            session.Presence = null;
            await BroadcastAsync(session, presence);
            await SendToDirectedAsync(session, presence);
            return true;
        }
        // Subscription requests and probes need an addressee; errors without one are dropped (RFC 6121 §4.7.1).
        return true;
    }

    /// <summary>
    /// Sets the session's presence cache: the one of another resource of the account when there is one (the same roster,
    /// kept current by the same changes), else the stored roster, parsed once. A subscription change stored while the
    /// roster was being read would miss the new cache (it updates the caches it finds), so the read is repeated when
    /// any change was applied meanwhile (rare: changes are few; bounded at three reads).
    /// </summary>
    private async ValueTask LoadRosterAsync(C2sSession session)
    {
        var jid = session.Jid!;
        foreach (var other in Server.Sessions.GetSessions(jid.Bare))
        {
            if (!ReferenceEquals(other, session) && other.Get(Roster) is { } shared)
            {
                session.Set(Roster, shared);
                return;
            }
        }
        for (int attempt = 0; ; attempt++)
        {
            long changes = Volatile.Read(ref _cacheChanges);
            session.Set(Roster, PresenceRoster.From(await Server.Storage.Roster.GetAsync(jid.Domain, jid.Local!)));
            if (Volatile.Read(ref _cacheChanges) == changes || attempt == 2) return;
        }
    }

    /// <summary>
    /// RFC 6121 §4.3.1: a probe from the new resource to each contact it is subscribed to; the contact's server answers
    /// with the contact's current presence (<see cref="OnProbeAsync"/>). Sent from the full JID, as Prosody does, so the
    /// answers reach only the resource that needs them. Contacts on other servers are not probed until s2s exists, nor
    /// local accounts without a session (they have no presence to report: the client shows them offline already).
    /// </summary>
    private async ValueTask ProbeAsync(C2sSession session)
    {
        var roster = session.Get(Roster);
        if (roster is null) return;
        var jid = session.Jid!;
        var domains = Server.Router.Domains;
        var contacts = roster.Subscriptions;
        foreach (var contact in contacts)
        {
            if (domains.Resolve(contact.Domain) != DomainKind.LocalHost || (contact.Local is not null && Server.Sessions.GetSessions(contact).Length == 0)) continue;
            var probe = new XmlElement("presence", Namespaces.Client);
            probe.SetAttribute("type", "probe").SetAttribute("from", jid.ToString()).SetAttribute("to", contact.ToString());
            await Server.Router.RouteAsync(probe, jid, contact);
        }
    }

    private async ValueTask OnSessionClosedAsync(C2sSession session)
    {
        if (!session.IsAvailable) return;
        session.IsAvailable = false;
        var jid = session.Jid!;
        var unavailable = new XmlElement("presence", Namespaces.Client);
        unavailable.SetAttribute("from", jid.ToString()).SetAttribute("type", "unavailable");
        await BroadcastAsync(session, unavailable);
        await SendToDirectedAsync(session, unavailable);
    }

    /// <summary>To the account's available resources and to every contact with a 'from' or 'both' subscription.</summary>
    private async ValueTask BroadcastAsync(C2sSession session, XmlElement presence)
    {
        var jid = session.Jid!;
        foreach (var s in Server.Sessions.GetSessions(jid.Bare))
        {
            if (s.IsAvailable || ReferenceEquals(s, session)) s.Deliver(presence);
        }
        var roster = session.Get(Roster);
        if (roster is null) return;
        // The subscribers as parsed at initial presence and kept current since: no parsing per presence. The array is
        // read once, so a subscription change during the loop applies from the next presence on.
        var subscribers = roster.Subscribers;
        var router = Server.Router;
        for (int i = 0; i < subscribers.Length; i++)
        {
            var contact = subscribers[i];
            // Each addressee gets its own copy: a routed stanza is not changed afterwards.
            var copy = presence.Clone();
            copy.SetAttribute("to", contact.ToString());
            await router.RouteAsync(copy, jid, contact);
        }
    }

    private async ValueTask SendToDirectedAsync(C2sSession session, XmlElement presence)
    {
        var targets = session.Get(DirectedPresence);
        if (targets is null) return;
        session.Set(DirectedPresence, null);
        foreach (var to in targets)
        {
            var copy = presence.Clone();
            copy.SetAttribute("to", to.ToString());
            await Server.Router.RouteAsync(copy, session.Jid!, to);
        }
    }
}
