using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Private;

/// <summary>XEP-0049 Private XML Storage: one stored element per namespace, for the account only.</summary>
public sealed class PrivateModule : IModule
{
    private ModuleContext _context = null!;
    private PrivateOptions _options = null!;

    public string Name => "private";

    public void Register(ModuleContext context)
    {
        _context = context;
        _options = context.Options<PrivateOptions>();
        context.AddDiscoFeature(Namespaces.Private, alsoAccount: true);
        context.OnIq(IqType.Get, IqAddress.Self, Namespaces.Private, GetAsync);
        context.OnIq(IqType.Set, IqAddress.Self, Namespaces.Private, SetAsync);
        // XEP-0049 §3: nobody may read or write another account's private data.
        context.OnIq(IqType.Get, IqAddress.Bare, Namespaces.Private, Forbidden);
        context.OnIq(IqType.Set, IqAddress.Bare, Namespaces.Private, Forbidden);
    }

    private static ValueTask<IqReply> Forbidden(IqRequest request) =>
        ValueTask.FromResult(IqReply.Fail(StanzaErrorCondition.Forbidden, "private storage is only for its owner"));

    private static bool IsReserved(string ns) =>
        ns.Length == 0 || ns.StartsWith("jabber:", StringComparison.Ordinal);

    private async ValueTask<IqReply> GetAsync(IqRequest request)
    {
        var children = request.Payload.Elements().ToList();
        // XEP-0049 §2: a get names exactly one element, in a namespace that is not jabber:*.
        if (children.Count != 1) return IqReply.Fail(StanzaErrorCondition.BadRequest, "name exactly one element to retrieve");
        var wanted = children[0];
        if (IsReserved(wanted.Namespace)) return IqReply.Fail(StanzaErrorCondition.NotAcceptable, "jabber:* namespaces cannot be stored");
        var user = request.From;
        var xml = await _context.Server.Storage.PrivateXml.GetAsync(user.Domain, user.Local!, wanted.Name, wanted.Namespace);
        var query = new XmlElement("query", Namespaces.Private);
        // Read with limits from the row, not the client's: a fragment stored under larger limits still loads (issue #13).
        query.Add(xml is null ? new XmlElement(wanted.Name, wanted.Namespace) : Storage.StoredXml.Parse(xml));
        return IqReply.Result(query);
    }

    private async ValueTask<IqReply> SetAsync(IqRequest request)
    {
        var children = request.Payload.Elements().ToList();
        if (children.Count == 0) return IqReply.Fail(StanzaErrorCondition.BadRequest, "nothing to store");
        foreach (var child in children)
        {
            if (IsReserved(child.Namespace)) return IqReply.Fail(StanzaErrorCondition.NotAcceptable, "jabber:* namespaces cannot be stored");
        }
        // Issue #13: per-user private storage was unbounded. A fragment larger than the limit is not-acceptable (the
        // request cannot be accepted as it is); a new namespace past the per-user count is resource-constraint
        // (RFC 6120 §8.3.3.18: the server lacks the room). Sizes are checked before anything is written.
        var limits = _options;
        var fragments = new string[children.Count];
        for (int i = 0; i < children.Count; i++)
        {
            fragments[i] = XmlWriter.ToXmlString(children[i], parentNamespace: null);
            if (System.Text.Encoding.UTF8.GetByteCount(fragments[i]) > limits.MaxFragmentBytes)
                return IqReply.Fail(StanzaErrorCondition.NotAcceptable, $"a private XML fragment may be at most {limits.MaxFragmentBytes} bytes");
        }
        var user = request.From;
        for (int i = 0; i < children.Count; i++)
        {
            var child = children[i];
            if (!await _context.Server.Storage.PrivateXml.SetAsync(user.Domain, user.Local!, child.Name, child.Namespace, fragments[i], limits.MaxFragments))
                return IqReply.Fail(StanzaErrorCondition.ResourceConstraint, $"private storage is full ({limits.MaxFragments} namespaces)");
        }
        return IqReply.Result();
    }
}
