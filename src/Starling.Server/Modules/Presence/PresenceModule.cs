using System.Globalization;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Server.Storage;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Presence;

/// <summary>
/// RFC 6121 §4 presence: initial presence is broadcast to the contacts subscribed to the user and to the user's own
/// available resources (the sender included — the echo the lab captured), updates likewise, directed presence is
/// tracked, and unavailable presence goes out when the user logs off or the connection drops. Entity caps
/// (XEP-0115) and any other payload pass through untouched.
/// </summary>
public sealed class PresenceModule : IModule
{
    /// <summary>Entities this session sent directed presence to (RFC 6121 §4.6), told when it goes offline.</summary>
    internal static readonly SessionKey<HashSet<Jid>> DirectedPresence = new("presence.directed");

    /// <summary>The roster as loaded when the session became available (for presence broadcast).</summary>
    internal static readonly SessionKey<RosterSnapshot> Roster = new("presence.roster");

    private ModuleContext _context = null!;
    private int _maxDirected;

    public string Name => "presence";

    public void Register(ModuleContext context)
    {
        _context = context;
        _maxDirected = context.Options<PresenceOptions>().MaxDirectedPresence;
        // Prosody's mod_presence: a client's presence is handled in its own context before routing. Without 'to' it is
        // a broadcast (handled here); with one it is directed presence, tracked here and then routed as usual.
        context.Hook(StanzaEvent.PrePresenceBare, OnClientPresenceAsync);
        context.Hook(StanzaEvent.PrePresenceFull, OnClientPresenceAsync);
        context.Hook(StanzaEvent.PrePresenceHost, OnClientPresenceAsync);
        context.SessionClosed += OnSessionClosedAsync;
    }

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
                        _context.Server.Router.Bounce(presence, jid, to, StanzaErrorCondition.ResourceConstraint, $"directed presence to more than {_maxDirected} entities");
                        return true;
                    }
                    directed.Add(to);
                }
                else session.Get(DirectedPresence)?.Remove(to);
            }
            return false; // routed by the session like any stanza
        }

        if (type is null)
        {
            int priority = 0;
            var priorityText = presence.ElementText("priority", Namespaces.Client);
            if (priorityText is not null &&
                (!int.TryParse(priorityText.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out priority) || priority is < -128 or > 127))
            {
                // RFC 6121 §4.7.2.3: an integer from -128 to +127.
                _context.Server.Router.Bounce(presence, jid, null, StanzaErrorCondition.BadRequest, "priority must be an integer from -128 to 127");
                return true;
            }
            bool initial = !session.IsAvailable;
            RosterSnapshot? roster = null;
            if (initial) session.Set(Roster, roster = await _context.Server.Storage.Roster.GetAsync(jid.Domain, jid.Local!));
            session.Priority = priority;
            session.Presence = presence;
            session.IsAvailable = true;
            await BroadcastAsync(session, presence);
            if (initial)
            {
                // RFC 6121 §4.2.3/§4.4.2: the new resource learns the presence of the account's other resources and
                // of the local contacts it is subscribed to.
                foreach (var other in _context.Server.Sessions.GetSessions(jid.Bare))
                {
                    if (!ReferenceEquals(other, session) && other.IsAvailable && other.Presence is not null) session.Deliver(other.Presence);
                }
                foreach (var item in roster!.Items)
                {
                    if (item.Subscription is not ("to" or "both") || !Jid.TryParse(item.Jid, out var contact)) continue;
                    foreach (var s in _context.Server.Sessions.GetSessions(contact))
                    {
                        if (s.IsAvailable && s.Presence is not null) session.Deliver(s.Presence);
                    }
                }
                await _context.Server.Modules.RaiseSessionAvailableAsync(session);
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
        foreach (var s in _context.Server.Sessions.GetSessions(jid.Bare))
        {
            if (s.IsAvailable || ReferenceEquals(s, session)) s.Deliver(presence);
        }
        var roster = session.Get(Roster);
        if (roster is null) return;
        foreach (var item in roster.Items)
        {
            if (item.Subscription is not ("from" or "both") || !Jid.TryParse(item.Jid, out var contact)) continue;
            var copy = presence.Clone();
            copy.SetAttribute("to", contact.ToString());
            await _context.Server.Router.RouteAsync(copy, jid, contact);
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
            await _context.Server.Router.RouteAsync(copy, session.Jid!, to);
        }
    }
}
