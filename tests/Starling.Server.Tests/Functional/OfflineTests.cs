using System.Globalization;
using Starling.Xml;

namespace Starling.Server.Tests.Functional;

/// <summary>XEP-0160 offline messages with XEP-0203 delay stamps, and the offline quota.</summary>
public sealed class OfflineTests
{
    [Fact]
    public async Task Message_to_offline_bare_jid_is_stored_and_delivered_with_delay_in_order_and_only_once()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        for (int i = 1; i <= 3; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{i}'><body>offline {i}</body></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for a stored message");

        // Bound but not yet available: nothing is delivered before initial presence.
        var bob = await server.LoginAsync("bob", "b", available: false);
        await bob.SyncAsync();
        bob.AssertNoPending(e => e.Name == "message", "offline messages before initial presence");

        await bob.SendPresenceAsync();
        for (int i = 1; i <= 3; i++)
        {
            var message = await bob.ExpectAsync(e => e.Name == "message", "an offline message");
            Assert.Equal($"offline {i}", message.ElementText("body", "jabber:client"));
            Assert.Equal("alice@localhost/a", message.GetAttribute("from"));
            Assert.Equal($"m{i}", message.GetAttribute("id"));
            var delay = message.Element("delay", "urn:xmpp:delay");
            Assert.True(delay is not null, $"no XEP-0203 delay in {message}");
            Assert.Equal("localhost", delay.GetAttribute("from"));
            var stamp = DateTimeOffset.Parse(delay.GetAttribute("stamp")!, CultureInfo.InvariantCulture);
            Assert.InRange(stamp, before, DateTimeOffset.UtcNow.AddSeconds(1));
            Assert.EndsWith("Z", delay.GetAttribute("stamp")!, StringComparison.Ordinal);
        }
        await bob.SendAsync("</stream:stream>");
        await bob.ExpectClosedAsync();

        var again = await server.LoginAsync("bob", "b2");
        await again.SyncAsync();
        again.AssertNoPending(e => e.Name == "message", "offline messages delivered a second time");
    }

    [Fact]
    public async Task A_backlog_larger_than_the_outbound_queue_is_delivered_whole_to_a_client_that_reads()
    {
        // 120 stored messages of ~10 KB: several times the 300 KB queue bound. Delivered all at once they would get bob
        // cut off as a slow reader at every login (and the backlog stored again); paced by his reading, all arrive.
        await using var server = await TestServer.StartWithAliceAndBobAsync(
            "--Limits:MaxOutboundQueueBytes=300000", "--C2s:ReadBytesPerSecond=0", "--Limits:OfflineQuota=1000");
        var alice = await server.LoginAsync("alice", "a");
        var padding = new string('p', 10_000);
        const int Count = 120;
        for (int i = 0; i < Count; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='b{i}'><body>{i} {padding}</body></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for a stored message");
        Assert.Equal(Count, await server.Server.Storage.Offline.CountAsync(TestServer.Domain, "bob"));

        var bob = await server.LoginAsync("bob", "b");
        for (int i = 0; i < Count; i++)
        {
            var message = await bob.ExpectAsync(e => e.Name == "message", $"offline message {i}");
            Assert.Equal($"b{i}", message.GetAttribute("id"));
        }
        await bob.SyncAsync(); // still connected: not cut off
        Assert.Equal(0, await server.Server.Storage.Offline.CountAsync(TestServer.Domain, "bob"));
    }

    [Fact]
    public async Task Offline_messages_go_to_the_first_non_negative_resource_only()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>once</body></message>");
        await alice.SyncAsync();
        var first = await server.LoginAsync("bob", "one");
        await first.ExpectAsync(e => TestServer.IsMessage(e, "once"), "the stored message");
        var second = await server.LoginAsync("bob", "two");
        await second.SyncAsync();
        second.AssertNoPending(e => TestServer.IsMessage(e, "once"), "the stored message again");
    }

    [Fact]
    public async Task Message_to_a_gone_full_jid_goes_to_another_online_resource_of_the_account()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var phone = await server.LoginAsync("bob", "phone");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost/laptop' type='chat'><body>redirected</body></message>");
        var message = await phone.ExpectAsync(e => TestServer.IsMessage(e, "redirected"), "the message");
        Assert.Null(message.Element("delay", "urn:xmpp:delay"));
    }

    [Fact]
    public async Task Message_to_a_gone_full_jid_of_an_offline_account_is_stored()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost/laptop' type='chat' id='m1'><body>kept</body></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error");
        var bob = await server.LoginAsync("bob", "phone");
        var message = await bob.ExpectAsync(e => TestServer.IsMessage(e, "kept"), "the stored message");
        Assert.NotNull(message.Element("delay", "urn:xmpp:delay"));
    }

    [Fact]
    public async Task Offline_quota_full_bounces_service_unavailable_and_keeps_the_earlier_messages()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:OfflineQuota=2");
        var alice = await server.LoginAsync("alice", "a");
        for (int i = 1; i <= 3; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{i}'><body>quota {i}</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "m3", "service-unavailable");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for a message within the quota");

        var bob = await server.LoginAsync("bob", "b");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "quota 1"), "the first message");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "quota 2"), "the second message");
        await bob.SyncAsync();
        bob.AssertNoPending(e => TestServer.IsMessage(e, "quota 3"), "the message over quota");
    }

    [Fact]
    public async Task Chat_state_only_message_to_offline_user_is_neither_stored_nor_bounced()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='cs1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m2'><body>real</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error");

        var bob = await server.LoginAsync("bob", "b");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "real"), "the message with a body");
        await bob.SyncAsync();
        bob.AssertNoPending(e => e.GetAttribute("id") == "cs1", "the stored chat state");
    }

    [Fact]
    public async Task Message_with_no_store_hint_is_not_stored()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='ns1'><body>ephemeral</body><no-store xmlns='urn:xmpp:hints'/></message>");
        await alice.SyncAsync();
        var bob = await server.LoginAsync("bob", "b");
        await bob.SyncAsync();
        bob.AssertNoPending(e => e.GetAttribute("id") == "ns1", "a no-store message");
    }

    [Fact]
    public async Task Headline_to_offline_user_is_not_stored()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='headline' id='h1'><body>news</body></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error");
        var bob = await server.LoginAsync("bob", "b");
        await bob.SyncAsync();
        bob.AssertNoPending(e => e.GetAttribute("id") == "h1", "a stored headline");
    }
}
