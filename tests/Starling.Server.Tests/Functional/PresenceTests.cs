using Starling.Xml;

namespace Starling.Server.Tests.Functional;

/// <summary>RFC 6121 §4 presence among an account's own resources.</summary>
public sealed class PresenceTests
{
    private const string Caps = "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.com/client' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>";

    private static bool IsPresenceFrom(XmlElement e, string from, string? type = null) =>
        e.Name == "presence" && e.GetAttribute("from") == from && e.GetAttribute("type") == type;

    [Fact]
    public async Task Initial_presence_is_echoed_to_self_with_caps_untouched()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.LoginAsync("alice", "a", available: false);
        var echo = await client.SendPresenceAsync(priority: 2, extra: Caps + "<status>here</status>");
        var c = echo.Element("c", "http://jabber.org/protocol/caps");
        Assert.NotNull(c);
        Assert.Equal("sha-1", c.GetAttribute("hash"));
        Assert.Equal("https://example.com/client", c.GetAttribute("node"));
        Assert.Equal("QgayPKawpkPSDYmwT/WM94uAlu0=", c.GetAttribute("ver"));
        Assert.Equal("here", echo.ElementText("status", "jabber:client"));
        Assert.Equal("2", echo.ElementText("priority", "jabber:client"));
    }

    [Fact]
    public async Task Another_resource_of_the_account_receives_the_presence_and_the_newcomer_learns_of_it()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var first = await server.LoginAsync("alice", "first");
        var second = await server.LoginAsync("alice", "second", available: false);
        await second.SendPresenceAsync(extra: Caps);
        var seen = await first.ExpectAsync(e => IsPresenceFrom(e, "alice@localhost/second"), "the other resource's presence");
        Assert.NotNull(seen.Element("c", "http://jabber.org/protocol/caps"));
        await second.ExpectAsync(e => IsPresenceFrom(e, "alice@localhost/first"), "the presence of the resource already online");
    }

    [Fact]
    public async Task Abrupt_disconnect_broadcasts_unavailable_to_the_other_resources()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var stays = await server.LoginAsync("alice", "stays");
        var drops = await server.LoginAsync("alice", "drops");
        await stays.ExpectAsync(e => IsPresenceFrom(e, "alice@localhost/drops"), "the presence of the second resource");
        drops.Abort();
        await stays.ExpectAsync(e => IsPresenceFrom(e, "alice@localhost/drops", "unavailable"), "unavailable presence after the disconnect");
    }

    [Fact]
    public async Task Unavailable_presence_is_broadcast_to_the_other_resources()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var stays = await server.LoginAsync("alice", "stays");
        var leaves = await server.LoginAsync("alice", "leaves");
        await leaves.SendAsync("<presence type='unavailable'/>");
        await stays.ExpectAsync(e => IsPresenceFrom(e, "alice@localhost/leaves", "unavailable"), "unavailable presence");
    }

    [Theory]
    [InlineData("200")]
    [InlineData("-129")]
    [InlineData("high")]
    public async Task Priority_out_of_range_gets_bad_request(string priority)
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.LoginAsync("alice", "a", available: false);
        await client.SendAsync($"<presence id='p1'><priority>{priority}</priority></presence>");
        await client.ExpectStanzaErrorAsync("presence", "p1", "bad-request", "modify");
    }

    [Fact]
    public async Task Boundary_priorities_are_accepted()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.LoginAsync("alice", "a", available: false);
        await client.SendPresenceAsync(127);
        await client.SendPresenceAsync(-128);
    }

    [Fact]
    public async Task Directed_presence_reaches_the_full_jid_and_is_followed_by_unavailable_on_disconnect()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<presence to='bob@localhost/b'><status>just for you</status></presence>");
        var directed = await bob.ExpectAsync(e => IsPresenceFrom(e, "alice@localhost/a"), "the directed presence");
        Assert.Equal("just for you", directed.ElementText("status", "jabber:client"));
        alice.Abort();
        // RFC 6121 §4.6.3: whoever got directed presence learns when the sender goes offline.
        await bob.ExpectAsync(e => IsPresenceFrom(e, "alice@localhost/a", "unavailable"), "unavailable presence after the disconnect");
    }
}
