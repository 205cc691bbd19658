using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Functional.Transport;

/// <summary>Issue #13 item 8: the outbound queue is bounded by bytes, not by a count of stanzas of any size.</summary>
public sealed class OutboundQueueBytesTests
{
    [Fact]
    public async Task A_reader_that_stops_reading_large_stanzas_is_cut_off_by_bytes_long_before_a_stanza_count_and_nothing_is_lost()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(
            "--Limits:MaxOutboundQueueBytes=2000000", "--C2s:ReadBytesPerSecond=0", "--Limits:OfflineQuota=100000");
        await server.LoginAsync("bob", "slow"); // and never reads again
        var alice = await server.LoginAsync("alice", "fast");
        var bob = Jid.Parse("bob@localhost");
        var padding = new string('x', 100_000);

        // 400 stanzas of 100 KB: far below a bound of 10,000 stanzas, far above the kernel's socket buffers (a few MB)
        // plus a queue of 2 MB.
        int sent = 0;
        for (; sent < 400 && server.Server.Sessions.GetSessions(bob).Length > 0; sent++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{sent}'><body>{sent} {padding}</body></message>");
        Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Sessions.GetSessions(bob).Length == 0, TimeSpan.FromSeconds(20)),
            $"the reader that stopped reading was not cut off after {sent} stanzas of 100 KB");

        // What was still queued was re-routed to bob's account (offline storage), with no error to alice.
        await alice.SyncAsync();
        Assert.True(await server.Server.Storage.Offline.CountAsync("localhost", "bob") > 0, "nothing was stored offline");
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for a message to the slow reader");
        // (Two other accounts: bob's next login receives the stored backlog.)
        await server.AddUserAsync("carol");
        await server.AddUserAsync("dave");
        await RawSocket.AssertNormalClientsLogInAndChatAsync(server, first: "carol", second: "dave");
    }

    [Fact]
    public void The_queue_estimate_is_an_upper_bound_of_the_serialised_size()
    {
        var message = new XmlElement("message", Namespaces.Client);
        message.SetAttribute("to", "bob@localhost").SetAttribute("from", "alice@localhost/phone").SetAttribute("type", "chat").SetAttribute("id", "x1");
        message.AddElement("body").AddText("héllo wörld, ünïcode 日本語 and <markup> & quotes \"'");
        message.AddElement("request", "urn:xmpp:receipts");
        message.AddElement("active", "http://jabber.org/protocol/chatstates");
        long written = XmlWriter.ToUtf8(message, Namespaces.Client).Length;
        long estimate = XmppStream.EstimateBytes(message);
        Assert.True(estimate >= written, $"estimate {estimate} < serialised {written}");
        Assert.True(estimate < 4 * written + 200, $"estimate {estimate} is far above serialised {written}");
    }

    [Theory]
    [InlineData(9_000, 1_000, 1)]   // one long namespace on thousands of children: the writer declares it once
    [InlineData(2_000, 300, 2)]     // two long namespaces alternating
    [InlineData(500, 10, 3)]        // short namespaces, re-declared on every element
    [InlineData(300, 200, 70)]      // more distinct namespaces than the estimate tracks
    public void The_queue_estimate_follows_the_writer_for_namespace_heavy_stanzas(int children, int uriLength, int distinct)
    {
        var message = new XmlElement("message", Namespaces.Client);
        message.SetAttribute("to", "bob@localhost").SetAttribute("id", "ns");
        var namespaces = new string[distinct];
        for (int i = 0; i < distinct; i++) namespaces[i] = "urn:" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":" + new string('n', uriLength);
        for (int i = 0; i < children; i++)
        {
            var ns = namespaces[i % distinct];
            var child = message.AddElement("x", ns);
            child.SetAttribute("a", "1", namespaces[(i + 1) % distinct]);
            child.AddElement("y", ns).AddText("t");
        }
        long written = XmlWriter.ToUtf8(message, Namespaces.Client).Length;
        long estimate = XmppStream.EstimateBytes(message);
        Assert.True(estimate >= written, $"estimate {estimate} < serialised {written}");
        // Not the URI per element (9,000 x 3,000 bytes): a small multiple of what is written, or of the URIs once each.
        Assert.True(estimate < 8 * written + 3L * distinct * uriLength * (distinct > 64 ? children : 1), $"estimate {estimate} is far above serialised {written}");
    }
}
