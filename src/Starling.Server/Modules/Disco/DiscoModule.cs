using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Disco;

/// <summary>
/// XEP-0030 Service Discovery for the server and for accounts, and the server's own XEP-0115 entity
/// capabilities, advertised in stream features (as Prosody does) so clients can cache the disco result.
/// </summary>
public sealed class DiscoModule : IModule
{
    public const string CapsNode = "https://starling.im";

    private ModuleContext _context = null!;

    // Per host: each host offers the features of the modules it runs (Hosts:N:Modules).
    private readonly ConcurrentDictionary<string, string> _capsVer = new(StringComparer.Ordinal);

    public string Name => "disco";

    public void Register(ModuleContext context)
    {
        _context = context;
        context.AddDiscoFeature(Namespaces.DiscoInfo, alsoAccount: true);
        context.AddDiscoFeature(Namespaces.DiscoItems, alsoAccount: true);
        context.OnIq(IqType.Get, IqAddress.Host, Namespaces.DiscoInfo, HostInfo);
        context.OnIq(IqType.Get, IqAddress.Host, Namespaces.DiscoItems, Items);
        context.OnIq(IqType.Get, IqAddress.Self, Namespaces.DiscoInfo, AccountInfo);
        context.OnIq(IqType.Get, IqAddress.Bare, Namespaces.DiscoInfo, AccountInfo);
        context.OnIq(IqType.Get, IqAddress.Self, Namespaces.DiscoItems, Items);
        context.OnIq(IqType.Get, IqAddress.Bare, Namespaces.DiscoItems, Items);
        context.AddStreamFeature(session =>
        {
            var c = new XmlElement("c", Namespaces.Caps);
            c.SetAttribute("hash", "sha-1").SetAttribute("node", CapsNode).SetAttribute("ver", CapsVer(session.Domain!));
            return c;
        });
    }

    /// <summary>XEP-0115 §5.1 verification string of a host's identity and features (computed once per host; modules register before the first stream).</summary>
    private string CapsVer(string host) => _capsVer.GetOrAdd(host, static (h, self) => ComputeVer(self.HostFeatures(h)), this);

    private IReadOnlyList<string> HostFeatures(string host) => _context.Server.Modules.ForHost(host)?.HostFeatures ?? [];

    internal static string ComputeVer(IReadOnlyList<string> features)
    {
        var sb = new StringBuilder();
        sb.Append("server/im//Starling<");
        var sorted = features.ToArray();
        Array.Sort(sorted, StringComparer.Ordinal);
        foreach (var f in sorted) sb.Append(f).Append('<');
        return Convert.ToBase64String(SHA1.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    private ValueTask<IqReply> HostInfo(IqRequest request)
    {
        var node = request.Payload.GetAttribute("node");
        var host = request.To.Domain;
        if (node is not null && node != CapsNode + "#" + CapsVer(host))
            return ValueTask.FromResult(IqReply.Fail(StanzaErrorCondition.ItemNotFound));
        var query = new XmlElement("query", Namespaces.DiscoInfo);
        if (node is not null) query.SetAttribute("node", node);
        query.AddElement("identity").SetAttribute("category", "server").SetAttribute("type", "im").SetAttribute("name", "Starling");
        foreach (var f in HostFeatures(host)) query.AddElement("feature").SetAttribute("var", f);
        return ValueTask.FromResult(IqReply.Result(query));
    }

    private async ValueTask<IqReply> AccountInfo(IqRequest request)
    {
        if (request.Payload.GetAttribute("node") is not null) return IqReply.Fail(StanzaErrorCondition.ItemNotFound);
        if (!await _context.Server.AccountExistsAsync(request.To.Bare)) return IqReply.Fail(StanzaErrorCondition.ServiceUnavailable);
        var query = new XmlElement("query", Namespaces.DiscoInfo);
        // XEP-0030 §3.1 / RFC 6121: an account is identified as a registered account.
        query.AddElement("identity").SetAttribute("category", "account").SetAttribute("type", "registered");
        foreach (var f in _context.Server.Modules.ForHost(request.To.Domain)?.AccountFeatures ?? []) query.AddElement("feature").SetAttribute("var", f);
        return IqReply.Result(query);
    }

    private static ValueTask<IqReply> Items(IqRequest request)
    {
        var query = new XmlElement("query", Namespaces.DiscoItems);
        var node = request.Payload.GetAttribute("node");
        if (node is not null) query.SetAttribute("node", node);
        return ValueTask.FromResult(IqReply.Result(query));
    }
}
