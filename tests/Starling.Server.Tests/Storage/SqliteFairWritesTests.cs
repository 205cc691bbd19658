using Starling.Server.Storage;

namespace Starling.Server.Tests.Storage;

/// <summary>Issue #13: SQLite has one writer; one account's flood of writes must not starve another account's.</summary>
public sealed class SqliteFairWritesTests
{
    private const string Host = "example.org";

    [Fact]
    public async Task One_users_queued_roster_writes_do_not_hold_up_another_users_offline_store()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob");
        const int Flood = 300;
        int aliceDone = 0;
        var flood = new List<Task>(Flood);
        for (int i = 0; i < Flood; i++)
        {
            var item = new RosterItem($"c{i}@example.org", null, "none", false, []);
            flood.Add(storage.Roster.SetItemAsync(Host, "alice", item).ContinueWith(_ => Interlocked.Increment(ref aliceDone), TaskScheduler.Default));
        }

        // Queued after all of alice's writes: first come, first served would run it last.
        var stored = await storage.Offline.TryStoreAsync(Host, "bob", "<message/>", DateTimeOffset.UtcNow, 10, long.MaxValue);
        int aliceBeforeBob = Volatile.Read(ref aliceDone);
        await Task.WhenAll(flood);

        Assert.Equal(OfflineStoreResult.Stored, stored);
        // Round-robin per account: bob's write goes within a turn or two, not after alice's hundreds (generous margin).
        Assert.True(aliceBeforeBob < Flood / 3, $"{aliceBeforeBob} of alice's {Flood} writes went before bob's one");
        Assert.Equal(Flood, (await storage.Roster.GetAsync(Host, "alice")).Items.Count);
    }
}
