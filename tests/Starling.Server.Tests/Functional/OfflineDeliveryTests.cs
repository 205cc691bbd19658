using System.Globalization;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// XEP-0160 delivery rules the other offline tests do not pin down: which resource gets the stored messages, and what
/// time their XEP-0203 delay carries (issue #14: a mutation of each still passed the suite).
/// </summary>
public sealed class OfflineDeliveryTests
{
    [Fact]
    public async Task Stored_messages_are_not_delivered_to_a_negative_priority_resource_but_to_the_next_non_negative_one()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>for a real client</body></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for the stored message");

        // XEP-0160 §3: a resource with negative priority (a bot, a monitor) does not take the offline messages.
        var monitor = await server.LoginAsync("bob", "monitor", priority: -1);
        await monitor.SyncAsync();
        monitor.AssertNoPending(e => e.Name == "message", "an offline message at priority -1");
        Assert.Equal(1, await server.Server.Storage.Offline.CountAsync(TestServer.Domain, "bob"));

        var phone = await server.LoginAsync("bob", "phone", priority: 0);
        var message = await phone.ExpectAsync(e => TestServer.IsMessage(e, "for a real client"), "the stored message at priority 0");
        Assert.NotNull(message.Element("delay", "urn:xmpp:delay"));
        await monitor.SyncAsync();
        monitor.AssertNoPending(e => e.Name == "message", "the stored message at priority -1 after all");
    }

    [Fact]
    public async Task Delay_stamp_is_the_time_the_message_was_stored_not_the_time_it_was_delivered()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        var beforeStore = DateTimeOffset.UtcNow;
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>stamped</body></message>");
        await alice.SyncAsync();
        var afterStore = DateTimeOffset.UtcNow;
        Assert.Equal(1, await server.Server.Storage.Offline.CountAsync(TestServer.Domain, "bob"));

        // Far enough apart that a stamp taken at delivery cannot pass for the time of storing (the stamp has milliseconds).
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var beforeLogin = DateTimeOffset.UtcNow;
        var bob = await server.LoginAsync("bob", "b");
        var message = await bob.ExpectAsync(e => TestServer.IsMessage(e, "stamped"), "the stored message");

        // XEP-0203 §3 / XEP-0160 §4: the stamp says when the server received the message.
        var stampText = message.Element("delay", "urn:xmpp:delay")?.GetAttribute("stamp");
        Assert.True(stampText is not null, $"no XEP-0203 delay in {message}");
        var stamp = DateTimeOffset.Parse(stampText, CultureInfo.InvariantCulture);
        Assert.True(stamp < beforeLogin, $"stamp {stampText} is not before bob's login at {beforeLogin:O}");
        Assert.InRange(stamp, beforeStore.AddSeconds(-1), afterStore.AddSeconds(1));
    }
}
