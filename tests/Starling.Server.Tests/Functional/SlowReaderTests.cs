using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>shared/ARCHITECTURE.md §3: a session's outbound queue is bounded; a client that stops reading is cut off, not buffered forever.</summary>
public sealed class SlowReaderTests
{
    [Fact]
    public async Task A_client_that_stops_reading_is_cut_off_and_its_queued_messages_go_to_offline_storage()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:MaxOutboundQueueBytes=300000", "--Limits:OfflineQuota=100000",
            "--C2s:ReadBytesPerSecond=0"); // alice sends 16 MB as fast as she can: a flood the read budget would slow down
        await server.LoginAsync("bob", "slow"); // and never reads again
        var alice = await server.LoginAsync("alice", "fast");
        var bob = Jid.Parse("bob@localhost");
        var padding = new string('x', 4000);

        // Enough to fill the loopback socket buffers, then the server's queue of 20 stanzas.
        for (int i = 0; i < 4000 && server.Server.Sessions.GetSessions(bob).Length > 0; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{i}'><body>{i} {padding}</body></message>");

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (server.Server.Sessions.GetSessions(bob).Length > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(server.Server.Sessions.GetSessions(bob).Length == 0, "the slow reader was not disconnected");

        // What was still queued for bob was re-routed to his account: stored for his next login, no error to alice.
        await alice.SyncAsync();
        Assert.True(await server.Server.Storage.Offline.CountAsync("localhost", "bob") > 0, "nothing was stored offline");
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for a message to the slow reader");
    }
}
