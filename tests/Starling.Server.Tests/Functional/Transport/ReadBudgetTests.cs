using System.Diagnostics;
using Starling.Server.Sessions;
using Starling.Xmpp;

namespace Starling.Server.Tests.Functional.Transport;

/// <summary>
/// Issue #13, fairness: one client flooding its own bare JID must not get the account's other resource disconnected
/// nor starve it. Each connection has a read budget (C2s:ReadBytesPerSecond, ReadBurstBytes); past it the server
/// pauses reading that connection, so TCP slows the flooder down.
/// </summary>
public sealed class ReadBudgetTests
{
    // The burst must hold one stanza of Limits:MaxStanzaBytes (256 KiB). Kestrel resumes reading a paused socket
    // once half its 1 MiB input buffer is consumed, so at this rate a blocked send waits ~2 s (the test client's
    // sends time out after 5 s).
    private const int Rate = 256 * 1024;
    private const int Burst = 256 * 1024;

    [Fact]
    public async Task A_flood_to_the_own_bare_jid_is_paused_by_the_read_budget_and_the_reading_resource_stays_connected()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(
            $"--C2s:ReadBytesPerSecond={Rate}", $"--C2s:ReadBurstBytes={Burst}");
        var reader = await server.LoginAsync("alice", "reader");
        // Not available: messages to the bare JID go to the reader only, so the flooder need not read.
        var flooder = await server.LoginAsync("alice", "flooder", available: false);
        // Paused reads make TCP block the flooder's sends: that is the point, so its sends may wait long.
        flooder.SendTimeout = TimeSpan.FromSeconds(60);
        var flooderSession = FindSession(server, "flooder");
        long before = flooderSession.BytesRead;

        int received = 0;
        var flooding = new CancellationTokenSource();
        var readLoop = Task.Run(async () =>
        {
            while (!flooding.IsCancellationRequested)
            {
                try
                {
                    await reader.ExpectAsync(e => e.Name == "message", "a flooded message", TimeSpan.FromSeconds(1));
                    received++;
                }
                catch (Xunit.Sdk.XunitException)
                {
                    // Nothing for a second (the end of the flood, or a pause): keep reading until told to stop.
                }
            }
        });

        var body = new string('f', 400);
        var clock = Stopwatch.StartNew();
        int sent = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(4))
            await flooder.SendAsync($"<message to='alice@localhost' type='chat' id='f{sent++}'><body>{body}</body></message>");
        double seconds = clock.Elapsed.TotalSeconds;
        long accepted = flooderSession.BytesRead - before;
        await flooding.CancelAsync();
        await readLoop;

        // What the server read is what the bucket allows (burst + rate × time), with a wide margin for a loaded
        // machine; unthrottled, a loopback flood moves megabytes in that time.
        long allowed = Burst + (long)(Rate * seconds * 2) + 256 * 1024;
        Assert.True(flooderSession.ReadPauses > 0, "the flooder's reads were never paused");
        Assert.True(accepted <= allowed, $"the server read {accepted} bytes from the flooder in {seconds:F1} s; the budget allows about {Burst + (long)(Rate * seconds)}");
        Assert.True(received > 0, "the reading resource received nothing");

        // The reading resource is still connected and answers at once.
        Assert.False(FindSession(server, "reader").IsClosed, "the reading resource was disconnected");
        await reader.SyncAsync();
        await RawSocket.AssertNormalClientsLogInAndChatAsync(server);
    }

    /// <summary>The TCP stream under the session bound to <paramref name="resource"/> (what the read budget applies to).</summary>
    private static C2sStream FindSession(TestServer server, string resource)
    {
        foreach (var s in server.Server.Sessions.GetSessions(Jid.Parse("alice@localhost")))
        {
            if (s.Jid?.Resource == resource) return (C2sStream)s.Transport!;
        }
        throw new InvalidOperationException("no session " + resource);
    }
}
