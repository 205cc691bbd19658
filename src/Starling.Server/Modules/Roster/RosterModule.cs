using Starling.Server.Pipeline;
using Starling.Server.Storage;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Roster;

/// <summary>
/// RFC 6121 §2 roster get (with §2.6 versioning) and set/remove with pushes to interested resources.
/// Subscription state changes (presence subscribe/subscribed…) belong to the presence-subscription work.
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
        // RFC 6121 §2.6.3: the client's version is current — an empty result, changes come as pushes.
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
        var items = request.Payload.Elements("item", Namespaces.Roster).ToList();
        if (items.Count != 1) return IqReply.Fail(StanzaErrorCondition.BadRequest, "a roster set carries exactly one item");
        var item = items[0];
        if (!Jid.TryParse(item.GetAttribute("jid"), out var contact, out var error))
            return IqReply.Fail(StanzaErrorCondition.JidMalformed, $"invalid item jid: {error}");
        if (contact.Resource is not null) contact = contact.Bare;
        var limits = _options;
        var user = request.From;
        var store = _context.Server.Storage.Roster;
        string? version;
        XmlElement pushed;
        if (item.GetAttribute("subscription") == "remove")
        {
            version = await store.RemoveItemAsync(user.Domain, user.Local!, contact.ToString());
            if (version is null) return IqReply.Fail(StanzaErrorCondition.ItemNotFound);
            pushed = new XmlElement("item", Namespaces.Roster);
            pushed.SetAttribute("jid", contact.ToString()).SetAttribute("subscription", "remove");
        }
        else
        {
            // RFC 6121 §2.3.3: a name or group name longer than a server-configured limit is not-acceptable; so is an
            // item with more groups than the server keeps (issue #13: per-user storage was unbounded).
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
            var current = await store.GetAsync(user.Domain, user.Local!);
            RosterItem? existing = null;
            foreach (var i in current.Items)
            {
                if (i.Jid == contact.ToString()) existing = i;
            }
            var stored = new RosterItem(contact.ToString(), itemName,
                existing?.Subscription ?? "none", existing?.AskSubscribe ?? false, groups);
            version = await store.SetItemAsync(user.Domain, user.Local!, stored, limits.MaxItems);
            // The roster is at its quota and this is a new item: the server lacks room (RFC 6120 §8.3.3.18).
            if (version is null) return IqReply.Fail(StanzaErrorCondition.ResourceConstraint, $"the roster is full ({limits.MaxItems} items)");
            pushed = ToElement(stored);
        }
        Push(user.Bare, pushed, version);
        return IqReply.Result();
    }

    /// <summary>RFC 6121 §2.1.6: the change goes to every resource that asked for the roster.</summary>
    private void Push(Jid bare, XmlElement item, string version)
    {
        foreach (var session in _context.Server.Sessions.GetSessions(bare))
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

    private static XmlElement ToElement(RosterItem item)
    {
        var e = new XmlElement("item", Namespaces.Roster);
        e.SetAttribute("jid", item.Jid).SetAttribute("subscription", item.Subscription);
        if (item.Name is not null) e.SetAttribute("name", item.Name);
        if (item.AskSubscribe) e.SetAttribute("ask", "subscribe");
        foreach (var g in item.Groups) e.AddElement("group").AddText(g);
        return e;
    }
}
