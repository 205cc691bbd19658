using Starling.Server.Modules.Presence;
using Starling.Server.Pipeline;
using Starling.Server.Storage;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Roster;

/// <summary>
/// RFC 6121 §2 roster get (with §2.6 versioning: a client whose version is current gets an empty result, any other
/// version the full roster) and set/remove with pushes to interested resources. Subscription states are the presence
/// module's (RFC 6121 §3); removing an item cancels them (§2.5.2).
/// </summary>
public sealed class RosterModule : IModule
{
    /// <summary>True once the client fetched its roster: it then receives roster pushes (RFC 6121 §2.1.6).</summary>
    internal static readonly SessionKey<bool> RosterRequested = new("roster.requested");

    private ModuleContext _context = null!;
    private RosterOptions _options = null!;

    public string Name => "roster";

    public void Register(ModuleContext context)
    {
        _context = context;
        _options = context.Options<RosterOptions>();
        context.OnIq(IqType.Get, IqAddress.Self, Namespaces.Roster, GetAsync);
        context.OnIq(IqType.Set, IqAddress.Self, Namespaces.Roster, SetAsync);
        // RFC 6121 §2.6.1: advertise roster versioning.
        context.AddStreamFeature(_ => new XmlElement("ver", Namespaces.RosterVersioning));
    }

    private async ValueTask<IqReply> GetAsync(IqRequest request)
    {
        var user = request.From;
        var roster = await _context.Server.Storage.Roster.GetAsync(user.Domain, user.Local!);
        if (request.Session is { } session && !session.Get(RosterRequested)) session.Set(RosterRequested, true);
        // RFC 6121 §2.6.3: the client's version is current — an empty result, changes come as pushes. Any other version
        // gets the whole roster (the server keeps no history to push the difference from).
        var clientVer = request.Payload.GetAttribute("ver");
        if (clientVer is not null && clientVer == roster.Version) return IqReply.Result();
        var query = new XmlElement("query", Namespaces.Roster);
        query.SetAttribute("ver", roster.Version);
        foreach (var item in roster.Items) query.Add(ToElement(item));
        return IqReply.Result(query);
    }

    private async ValueTask<IqReply> SetAsync(IqRequest request)
    {
        // RFC 6121 §2.3.3: exactly one item.
        XmlElement? item = null;
        int count = 0;
        foreach (var child in request.Payload.Elements())
        {
            count++;
            if (child.Name == "item" && child.Namespace == Namespaces.Roster) item = child;
        }
        if (count != 1 || item is null) return IqReply.Fail(StanzaErrorCondition.BadRequest, "a roster set carries exactly one item");
        if (!Jid.TryParse(item.GetAttribute("jid"), out var contact, out var error))
            return IqReply.Fail(StanzaErrorCondition.JidMalformed, $"invalid item jid: {error}");
        if (contact.Resource is not null) contact = contact.Bare;
        var user = request.From;
        // The account itself is not a contact: its own resources always share presence (as Prosody, cancel/not-allowed).
        if (contact == user.Bare) return IqReply.Fail(StanzaErrorCondition.NotAllowed, "your own address cannot be a roster item");
        // RFC 6121 §2.1.2.5: a 'subscription' other than "remove" is ignored, as are 'ask' and 'approved' (§2.1.2.1/2):
        // subscription states change only through presence subscriptions.
        if (item.GetAttribute("subscription") == "remove") return await RemoveAsync(user, contact);

        // RFC 6121 §2.3.3: a name or group name longer than a server-configured limit is not-acceptable; so is an
        // item with more groups than the server keeps (issue #13: per-user storage was unbounded).
        var limits = _options;
        var itemName = item.GetAttribute("name");
        if (itemName is not null && itemName.Length > limits.MaxNameLength)
            return IqReply.Fail(StanzaErrorCondition.NotAcceptable, $"the item name is longer than {limits.MaxNameLength} characters");
        var groups = new List<string>();
        foreach (var g in item.Elements("group", Namespaces.Roster))
        {
            var name = g.Text;
            // RFC 6121 §2.3.3: empty or duplicate group names are not acceptable.
            if (name.Length == 0) return IqReply.Fail(StanzaErrorCondition.NotAcceptable, "empty group name");
            if (name.Length > limits.MaxGroupNameLength)
                return IqReply.Fail(StanzaErrorCondition.NotAcceptable, $"a group name is longer than {limits.MaxGroupNameLength} characters");
            if (groups.Count >= limits.MaxGroups)
                return IqReply.Fail(StanzaErrorCondition.NotAcceptable, $"an item may be in at most {limits.MaxGroups} groups");
            if (groups.Contains(name)) return IqReply.Fail(StanzaErrorCondition.BadRequest, "duplicate group");
            groups.Add(name);
        }
        var stored = await _context.Server.Storage.Roster.SetItemDetailsAsync(user.Domain, user.Local!, contact.ToString(), itemName, groups, limits.MaxItems);
        // The roster is at its quota and this is a new item: the server lacks room (RFC 6120 §8.3.3.18).
        if (stored is not { } result) return IqReply.Fail(StanzaErrorCondition.ResourceConstraint, $"the roster is full ({limits.MaxItems} items)");
        Push(_context.Server, user.Bare, ToElement(result.Item), result.Version);
        return IqReply.Result();
    }

    /// <summary>
    /// RFC 6121 §2.5.2: the item goes, with the contact's pending request; the subscriptions it carried are cancelled
    /// (unsubscribe when the user was subscribed or asking, unsubscribed when the contact was subscribed or asking) after
    /// the contact got unavailable presence from each of the user's available resources (§3.2.2).
    /// </summary>
    private async ValueTask<IqReply> RemoveAsync(Jid user, Jid contact)
    {
        var removal = await _context.Server.Storage.Roster.RemoveContactAsync(user.Domain, user.Local!, contact.ToString());
        // RFC 6121 §2.5.3: removing an item that is not in the roster.
        if (removal is null) return IqReply.Fail(StanzaErrorCondition.ItemNotFound);
        var server = _context.Server;
        var bare = user.Bare;
        var pushed = new XmlElement("item", Namespaces.Roster);
        pushed.SetAttribute("jid", contact.ToString()).SetAttribute("subscription", "remove");
        Push(server, bare, pushed, removal.Version);
        PresenceModule.UpdateRosterCaches(server, bare, contact, ContactState.Absent);

        var before = removal.Before;
        if (before.To || before.AskSubscribe) await SendSubscriptionAsync(bare, contact, "unsubscribe");
        if (before.From || before.PendingIn)
        {
            if (before.From) await PresenceModule.SendFromAvailableResourcesAsync(server, bare, contact, unavailable: true);
            await SendSubscriptionAsync(bare, contact, "unsubscribed");
        }
        return IqReply.Result();
    }

    private ValueTask SendSubscriptionAsync(Jid user, Jid contact, string type)
    {
        var presence = new XmlElement("presence", Namespaces.Client);
        presence.SetAttribute("type", type).SetAttribute("from", user.ToString()).SetAttribute("to", contact.ToString());
        return _context.Server.Router.RouteAsync(presence, user, contact);
    }

    /// <summary>RFC 6121 §2.1.6: the change goes to every resource that asked for the roster, with the new version (§2.6).</summary>
    internal static void Push(XmppServer server, Jid bare, XmlElement item, string version)
    {
        foreach (var session in server.Sessions.GetSessions(bare))
        {
            if (!session.Get(RosterRequested)) continue;
            var iq = new XmlElement("iq", Namespaces.Client);
            iq.SetAttribute("id", "push-" + Sessions.XmppStream.NewId()[..8]).SetAttribute("type", "set").SetAttribute("to", session.Jid!.ToString());
            var query = iq.AddElement("query", Namespaces.Roster);
            query.SetAttribute("ver", version);
            query.Add(item.Clone());
            session.Deliver(iq);
        }
    }

    internal static XmlElement ToElement(RosterItem item)
    {
        var e = new XmlElement("item", Namespaces.Roster);
        e.SetAttribute("jid", item.Jid).SetAttribute("subscription", item.Subscription);
        if (item.Name is not null) e.SetAttribute("name", item.Name);
        if (item.AskSubscribe) e.SetAttribute("ask", "subscribe");
        // RFC 6121 §2.1.2.1: only a server that supports pre-approval (§3.4) sends 'approved'.
        if (item.Approved) e.SetAttribute("approved", "true");
        foreach (var g in item.Groups) e.AddElement("group").AddText(g);
        return e;
    }
}
