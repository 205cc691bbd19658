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
        // Hold the single writer inside a write of alice's, so that everything below is queued before any of it runs
        // (otherwise how many of alice's writes run before bob's is even queued depends on the machine's load).
        using var hold = new ManualResetEventSlim(false);
        using var holding = new ManualResetEventSlim(false);
        var held = storage.WriteAsync(Host, "alice", (_, _) => { holding.Set(); hold.Wait(); return 0; }, CancellationToken.None);
        Assert.True(holding.Wait(TimeSpan.FromSeconds(30)), "the held write never started");

        const int Flood = 300;
        // The order in which the writer runs them, counted inside the transactions (task continuations run later, on
        // the pool, and would say nothing about that order).
        int aliceRan = 0;
        var flood = new List<Task>(Flood);
        for (int i = 0; i < Flood; i++)
        {
            var item = new RosterItem($"c{i}@example.org", null, "none", false, []);
            flood.Add(storage.Roster.SetItemAsync(Host, "alice", item));
            flood.Add(storage.WriteAsync(Host, "alice", (_, _) => Interlocked.Increment(ref aliceRan), CancellationToken.None));
        }
        // Queued after all of alice's writes: first come, first served would run it last.
        int aliceBeforeBob = -1;
        var bobWrite = storage.WriteAsync(Host, "bob", (_, _) => aliceBeforeBob = Volatile.Read(ref aliceRan), CancellationToken.None);
        var bobStore = storage.Offline.TryStoreAsync(Host, "bob", "<message/>", DateTimeOffset.UtcNow, 10, long.MaxValue);
        hold.Set();
        await held;
        await bobWrite;
        var stored = await bobStore;
        await Task.WhenAll(flood);

        Assert.Equal(OfflineStoreResult.Stored, stored);
        // Round-robin per account: bob's write goes within a turn or two, not after alice's hundreds.
        Assert.True(aliceBeforeBob is >= 0 and < 5, $"{aliceBeforeBob} of alice's {Flood} counted writes went before bob's one");
        Assert.Equal(Flood, (await storage.Roster.GetAsync(Host, "alice")).Items.Count);
    }
}
