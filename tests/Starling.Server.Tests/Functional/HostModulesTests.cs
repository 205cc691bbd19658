using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// Modules per host (Hosts:N:Modules): what a host does not run is not offered on it — no disco or stream feature, its
/// requests answered as an unknown namespace, its event handlers skipped — while another host of the same server runs it.
/// </summary>
public sealed class HostModulesTests
{
    private const string Other = "example.net";

    private static async Task<TestServer> StartAsync(params string[] extra)
    {
        var server = await TestServer.StartAsync(["--Hosts:1:Name=" + Other, "--Hosts:1:RequireEncryption=false", .. extra]);
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        await server.Admin.AddUserAsync(server.Admin.ParseAccount("carol@" + Other), TestServer.Password);
        await server.Admin.AddUserAsync(server.Admin.ParseAccount("dave@" + Other), TestServer.Password);
        return server;
    }

    private static async Task<XmppTestClient> LoginOtherAsync(TestServer server, string user, string resource)
    {
        var client = await XmppTestClient.ConnectAsync(server.EndPoint, Other);
        await client.LoginAsync(user, TestServer.Password, resource);
        await client.SendPresenceAsync();
        return client;
    }

    private static async Task<List<string?>> DiscoFeaturesAsync(XmppTestClient client, string to)
    {
        var id = client.NextId("disco");
        await client.SendAsync($"<iq type='get' id='{id}' to='{to}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var query = (await client.ExpectIqResultAsync(id)).Element("query", Namespaces.DiscoInfo)!;
        return query.Elements("feature", Namespaces.DiscoInfo).Select(f => f.GetAttribute("var")).ToList();
    }

    [Fact]
    public async Task Module_disabled_on_one_host_is_not_offered_there_and_still_is_on_the_other()
    {
        await using var server = await StartAsync("--Hosts:1:Modules:Disabled:0=version");
        var alice = await server.LoginAsync("alice", "a");

        Assert.Contains("jabber:iq:version", await DiscoFeaturesAsync(alice, TestServer.Domain));
        Assert.DoesNotContain("jabber:iq:version", await DiscoFeaturesAsync(alice, Other));
        Assert.Contains("urn:xmpp:ping", await DiscoFeaturesAsync(alice, Other));

        await alice.SendAsync($"<iq type='get' id='v1' to='{TestServer.Domain}'><query xmlns='jabber:iq:version'/></iq>");
        await alice.ExpectIqResultAsync("v1");
        // RFC 6120 §8.4: as for a namespace the server does not know at all.
        await alice.SendAsync($"<iq type='get' id='v2' to='{Other}'><query xmlns='jabber:iq:version'/></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "v2", "service-unavailable");
    }

    [Fact]
    public async Task Module_disabled_server_wide_runs_on_a_host_that_enables_it()
    {
        await using var server = await StartAsync("--Modules:Disabled:0=version", "--Hosts:1:Modules:Enabled:0=version");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync($"<iq type='get' id='v1' to='{TestServer.Domain}'><query xmlns='jabber:iq:version'/></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "v1", "service-unavailable");
        await alice.SendAsync($"<iq type='get' id='v2' to='{Other}'><query xmlns='jabber:iq:version'/></iq>");
        var query = (await alice.ExpectIqResultAsync("v2")).Element("query", Namespaces.Version);
        Assert.Equal("Starling", query?.ElementText("name", Namespaces.Version));
    }

    [Fact]
    public async Task Host_without_the_roster_module_offers_no_roster_versioning_and_refuses_roster_requests()
    {
        await using var server = await StartAsync("--Hosts:1:Modules:Disabled:0=roster");
        await using var carol = await LoginOtherAsync(server, "carol", "c");
        Assert.Null(carol.Features!.Element("ver", Namespaces.RosterVersioning));
        // The caps hash follows the host's own feature list (XEP-0115 §5.1), which lacks nothing the roster adds to disco,
        // but the stream features of the other host still carry roster versioning.
        var alice = await server.LoginAsync("alice", "a");
        Assert.NotNull(alice.Features!.Element("ver", Namespaces.RosterVersioning));

        await carol.SendAsync("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
        await carol.ExpectStanzaErrorAsync("iq", "r1", "service-unavailable");
        await alice.SendAsync("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
        await alice.ExpectIqResultAsync("r1");
    }

    [Fact]
    public async Task Caps_of_each_host_hash_its_own_features()
    {
        await using var server = await StartAsync("--Hosts:1:Modules:Disabled:0=version");
        await using var carol = await LoginOtherAsync(server, "carol", "c");
        var alice = await server.LoginAsync("alice", "a");
        var here = alice.Features!.Element("c", "http://jabber.org/protocol/caps")!.GetAttribute("ver");
        var there = carol.Features!.Element("c", "http://jabber.org/protocol/caps")!.GetAttribute("ver");
        Assert.NotEqual(here, there);
        // XEP-0115 §6.2: each host answers the node#ver it advertised.
        var node = "https://starling.im#" + there;
        await carol.SendAsync($"<iq type='get' id='d1' to='{Other}'><query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/></iq>");
        await carol.ExpectIqResultAsync("d1");
    }

    [Fact]
    public async Task Host_without_offline_storage_bounces_messages_to_its_offline_users_and_the_other_host_stores_them()
    {
        await using var server = await StartAsync("--Hosts:1:Modules:Disabled:0=offline");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync($"<message to='dave@{Other}' type='chat' id='m1'><body>not kept</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "m1", "service-unavailable");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m2'><body>kept</body></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for a message to an offline user of a host that stores them");
        Assert.Equal(1, await server.Server.Storage.Offline.CountAsync(TestServer.Domain, "bob"));
    }
}
