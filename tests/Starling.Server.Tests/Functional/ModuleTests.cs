using System.Security.Cryptography;
using System.Text;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>The built-in modules seen from a client: ping, disco, caps, version, roster, private storage.</summary>
public sealed class ModuleTests
{
    private static async Task<(TestServer Server, XmppTestClient Alice)> StartAsync(params string[] extra)
    {
        var server = await TestServer.StartAsync(extra);
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        return (server, await server.LoginAsync("alice", "a"));
    }

    [Theory]
    [InlineData(" to='localhost'")]
    [InlineData("")]
    public async Task Ping_to_the_server_gets_a_result(string to)
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync($"<iq type='get' id='p1'{to}><ping xmlns='urn:xmpp:ping'/></iq>");
        var result = await alice.ExpectIqResultAsync("p1");
        Assert.Equal("alice@localhost/a", result.GetAttribute("to"));
        Assert.False(result.HasChildren);
    }

    [Fact]
    public async Task Disco_info_of_the_server_lists_identity_and_features()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        var query = await DiscoInfoAsync(alice);
        var identity = query.Element("identity", Namespaces.DiscoInfo);
        Assert.NotNull(identity);
        Assert.Equal("server", identity.GetAttribute("category"));
        Assert.Equal("im", identity.GetAttribute("type"));
        var features = query.Elements("feature", Namespaces.DiscoInfo).Select(f => f.GetAttribute("var")).ToList();
        Assert.Contains("urn:xmpp:ping", features);
        Assert.Contains("jabber:iq:version", features);
        Assert.Contains("http://jabber.org/protocol/disco#info", features);
        Assert.Equal(features.Count, features.Distinct().Count());
    }

    [Fact]
    public async Task Caps_ver_in_stream_features_is_the_xep0115_hash_of_the_disco_info()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        var c = alice.Features!.Element("c", "http://jabber.org/protocol/caps");
        Assert.True(c is not null, $"no caps in {alice.Features}");
        Assert.Equal("sha-1", c.GetAttribute("hash"));
        var query = await DiscoInfoAsync(alice);
        Assert.Equal(CapsHash(query), c.GetAttribute("ver"));

        // XEP-0115 §6.2: the node#ver form of the query is answered with the same data.
        var node = c.GetAttribute("node") + "#" + c.GetAttribute("ver");
        await alice.SendAsync($"<iq type='get' id='d2' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/></iq>");
        var byNode = (await alice.ExpectIqResultAsync("d2")).Element("query", Namespaces.DiscoInfo)!;
        Assert.Equal(node, byNode.GetAttribute("node"));
        Assert.Equal(CapsHash(query), CapsHash(byNode));
    }

    private static async Task<XmlElement> DiscoInfoAsync(XmppTestClient client)
    {
        var id = client.NextId("disco");
        await client.SendAsync($"<iq type='get' id='{id}' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var result = await client.ExpectIqResultAsync(id);
        Assert.Equal("localhost", result.GetAttribute("from"));
        return result.Element("query", Namespaces.DiscoInfo) ?? throw new InvalidOperationException($"no query in {result}");
    }

    /// <summary>XEP-0115 §5.1 verification string (no data forms), written here independently of the server's code.</summary>
    private static string CapsHash(XmlElement query)
    {
        var identities = query.Elements("identity", Namespaces.DiscoInfo)
            .Select(i => $"{i.GetAttribute("category")}/{i.GetAttribute("type")}/{i.GetAttribute("lang", XmlNames.XmlNamespace)}/{i.GetAttribute("name")}")
            .OrderBy(s => s, StringComparer.Ordinal);
        var features = query.Elements("feature", Namespaces.DiscoInfo).Select(f => f.GetAttribute("var")!).OrderBy(s => s, StringComparer.Ordinal);
        var s = new StringBuilder();
        foreach (var i in identities) s.Append(i).Append('<');
        foreach (var f in features) s.Append(f).Append('<');
        return Convert.ToBase64String(SHA1.HashData(Encoding.UTF8.GetBytes(s.ToString())));
    }

    [Fact]
    public async Task Disco_info_of_an_unknown_node_gets_item_not_found()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='urn:example:none'/></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "d1", "item-not-found");
    }

    [Fact]
    public async Task Version_names_the_server_Starling()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync("<iq type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
        var query = (await alice.ExpectIqResultAsync("v1")).Element("query", Namespaces.Version)!;
        Assert.Equal("Starling", query.ElementText("name", Namespaces.Version));
        Assert.False(string.IsNullOrEmpty(query.ElementText("version", Namespaces.Version)));
        Assert.Null(query.Element("os", Namespaces.Version));
    }

    [Fact]
    public async Task Roster_get_returns_a_version_and_an_empty_result_when_the_client_is_current()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        Assert.NotNull(alice.Features!.Element("ver", Namespaces.RosterVersioning));
        await alice.SendAsync("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
        var query = (await alice.ExpectIqResultAsync("r1")).Element("query", Namespaces.Roster);
        Assert.NotNull(query);
        var ver = query.GetAttribute("ver");
        Assert.NotNull(ver);
        Assert.Empty(query.Elements());

        await alice.SendAsync($"<iq type='get' id='r2'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>");
        var current = await alice.ExpectIqResultAsync("r2");
        Assert.False(current.HasChildren, $"expected an empty result, got {current}");
    }

    [Fact]
    public async Task Roster_set_is_pushed_to_resources_that_requested_the_roster_and_returned_by_get()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        var quiet = await server.LoginAsync("alice", "quiet");
        await alice.SendAsync("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
        var ver0 = (await alice.ExpectIqResultAsync("r1")).Element("query", Namespaces.Roster)!.GetAttribute("ver");

        await alice.SendAsync("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Friends</group></item></query></iq>");
        var push = await alice.ExpectAsync(e => e.Name == "iq" && e.GetAttribute("type") == "set" && e.Element("query", Namespaces.Roster) is not null, "a roster push");
        await alice.ExpectIqResultAsync("s1");
        var pushed = push.Element("query", Namespaces.Roster)!;
        Assert.NotEqual(ver0, pushed.GetAttribute("ver"));
        var item = pushed.Element("item", Namespaces.Roster)!;
        Assert.Equal("bob@localhost", item.GetAttribute("jid"));
        Assert.Equal("none", item.GetAttribute("subscription"));
        // RFC 6121 §2.1.6: a push is from the account (no 'from' or the bare JID); the client answers it.
        Assert.True(push.GetAttribute("from") is null or "alice@localhost", $"roster push from {push.GetAttribute("from")}");
        await alice.SendAsync($"<iq type='result' id='{push.GetAttribute("id")}'/>");

        await alice.SendAsync("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>");
        var roster = (await alice.ExpectIqResultAsync("r2")).Element("query", Namespaces.Roster)!;
        Assert.Equal(pushed.GetAttribute("ver"), roster.GetAttribute("ver"));
        var stored = Assert.Single(roster.Elements("item", Namespaces.Roster));
        Assert.Equal("bob@localhost", stored.GetAttribute("jid"));
        Assert.Equal("Bob", stored.GetAttribute("name"));
        Assert.Equal("Friends", stored.ElementText("group", Namespaces.Roster));

        await quiet.SyncAsync();
        quiet.AssertNoPending(e => e.Element("query", Namespaces.Roster) is not null, "a push to a resource that never requested the roster");
    }

    [Fact]
    public async Task Roster_remove_of_an_unknown_item_gets_item_not_found()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='nobody@localhost' subscription='remove'/></query></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "s1", "item-not-found");
    }

    [Fact]
    public async Task Roster_set_with_two_items_gets_bad_request()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/><item jid='b@localhost'/></query></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "s1", "bad-request");
    }

    [Fact]
    public async Task Private_storage_round_trips()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync("<iq type='set' id='s1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color shade='dark'>blue</color></prefs></query></iq>");
        await alice.ExpectIqResultAsync("s1");
        await alice.SendAsync("<iq type='get' id='g1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>");
        var prefs = (await alice.ExpectIqResultAsync("g1")).Element("query", Namespaces.Private)?.Element("prefs", "urn:example:prefs");
        Assert.NotNull(prefs);
        var color = prefs.Element("color", "urn:example:prefs");
        Assert.Equal("blue", color?.Text);
        Assert.Equal("dark", color?.GetAttribute("shade"));
    }

    [Fact]
    public async Task Private_storage_get_of_an_unset_namespace_returns_the_empty_element()
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync("<iq type='get' id='g1'><query xmlns='jabber:iq:private'><other xmlns='urn:example:other'/></query></iq>");
        var other = (await alice.ExpectIqResultAsync("g1")).Element("query", Namespaces.Private)?.Element("other", "urn:example:other");
        Assert.NotNull(other);
        Assert.False(other.HasChildren);
    }

    [Theory]
    [InlineData("get")]
    [InlineData("set")]
    public async Task Private_storage_of_a_jabber_namespace_gets_not_acceptable(string type)
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync($"<iq type='{type}' id='x1'><query xmlns='jabber:iq:private'><query xmlns='jabber:iq:roster'/></query></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "x1", "not-acceptable", "modify");
    }

    [Theory]
    [InlineData("get")]
    [InlineData("set")]
    public async Task Private_storage_of_another_user_gets_forbidden(string type)
    {
        var (server, alice) = await StartAsync();
        await using var _ = server;
        await alice.SendAsync($"<iq type='{type}' id='x1' to='bob@localhost'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "x1", "forbidden", "auth");
    }

    [Fact]
    public async Task Disabled_module_is_not_advertised_and_its_iq_gets_service_unavailable()
    {
        var (server, alice) = await StartAsync("--Modules:Disabled:0=version");
        await using var _ = server;
        var features = (await DiscoInfoAsync(alice)).Elements("feature", Namespaces.DiscoInfo).Select(f => f.GetAttribute("var")).ToList();
        Assert.DoesNotContain("jabber:iq:version", features);
        await alice.SendAsync("<iq type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "v1", "service-unavailable");
    }
}
