using Starling.Server.Storage;
using Starling.Server.Storage.Sqlite;

namespace Starling.Server.Tests.Storage;

public sealed class SqliteOfflineStoreTests
{
    private const string Host = "example.org";
    private const long NoByteLimit = long.MaxValue;
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);

    private static async Task<bool> Store(SqliteStorage storage, string user, string xml, int quota = 10, DateTimeOffset? at = null) =>
        await storage.Offline.TryStoreAsync(Host, user, xml, at ?? T0, quota, NoByteLimit) == OfflineStoreResult.Stored;

    private static Task<IReadOnlyList<OfflineMessage>> LoadAll(SqliteStorage storage, string user) =>
        storage.Offline.LoadPageAsync(Host, user, 0, 10_000);

    [Fact]
    public async Task Store_load_oldest_first_and_count()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol");
        for (int i = 0; i < 3; i++)
        {
            Assert.True(await Store(storage, "alice", $"<message id='{i}'/>", at: T0.AddSeconds(i)));
        }

        await Store(storage, "bob", "<message id='b'/>");

        var messages = await LoadAll(storage, "alice");
        Assert.Equal(["<message id='0'/>", "<message id='1'/>", "<message id='2'/>"], messages.Select(m => m.Xml));
        Assert.Equal([T0, T0.AddSeconds(1), T0.AddSeconds(2)], messages.Select(m => m.StoredAt));
        Assert.True(messages[0].Id < messages[1].Id && messages[1].Id < messages[2].Id);
        Assert.Equal(3, await storage.Offline.CountAsync(Host, "alice"));
        Assert.Equal(1, await storage.Offline.CountAsync(Host, "bob"));
        Assert.Equal(0, await storage.Offline.CountAsync(Host, "carol"));
        Assert.Empty(await LoadAll(storage, "carol"));
    }

    [Fact]
    public async Task Pages_follow_each_other_without_gaps_or_repeats()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        for (int i = 0; i < 7; i++)
        {
            await Store(storage, "alice", $"<m{i}/>");
        }

        var seen = new List<string>();
        long after = 0;
        while (true)
        {
            var page = await storage.Offline.LoadPageAsync(Host, "alice", after, 3);
            Assert.True(page.Count <= 3);
            if (page.Count == 0) break;
            seen.AddRange(page.Select(m => m.Xml));
            after = page[^1].Id;
        }

        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"<m{i}/>"), seen);
    }

    [Fact]
    public async Task Store_returns_false_when_quota_is_reached()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob");
        Assert.True(await Store(storage, "alice", "<m1/>", 2));
        Assert.True(await Store(storage, "alice", "<m2/>", 2));
        Assert.Equal(OfflineStoreResult.MessageQuotaReached, await storage.Offline.TryStoreAsync(Host, "alice", "<m3/>", T0, 2, NoByteLimit));
        Assert.False(await Store(storage, "alice", "<m4/>", 0));
        Assert.Equal(2, await storage.Offline.CountAsync(Host, "alice"));

        // Another user's quota is separate.
        Assert.True(await Store(storage, "bob", "<m1/>", 2));
    }

    [Fact]
    public async Task Byte_quota_counts_the_utf8_size_of_what_is_stored()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob");
        string ten = "<m>ééé</m>"; // 10 characters, 13 bytes
        Assert.Equal(OfflineStoreResult.Stored, await storage.Offline.TryStoreAsync(Host, "alice", ten, T0, 100, 30));
        Assert.Equal(OfflineStoreResult.Stored, await storage.Offline.TryStoreAsync(Host, "alice", ten, T0, 100, 30));
        Assert.Equal(OfflineStoreResult.ByteQuotaReached, await storage.Offline.TryStoreAsync(Host, "alice", ten, T0, 100, 30));
        Assert.Equal(OfflineStoreResult.Stored, await storage.Offline.TryStoreAsync(Host, "alice", "<a/>", T0, 100, 30));
        Assert.Equal(OfflineStoreResult.ByteQuotaReached, await storage.Offline.TryStoreAsync(Host, "bob", new string('x', 31), T0, 100, 30));
        Assert.Equal(3, await storage.Offline.CountAsync(Host, "alice"));
    }

    [Fact]
    public async Task Quarantined_rows_leave_the_queue_and_no_longer_count_against_the_quota()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        Assert.True(await Store(storage, "alice", "<broken", 2));
        Assert.True(await Store(storage, "alice", "<ok/>", 2));
        Assert.False(await Store(storage, "alice", "<more/>", 2));

        var rows = await LoadAll(storage, "alice");
        await storage.Offline.QuarantineAsync(Host, "alice", rows[0].Id, "Incomplete XML");

        Assert.Equal(["<ok/>"], (await LoadAll(storage, "alice")).Select(m => m.Xml));
        Assert.Equal(1, await storage.Offline.CountQuarantinedAsync(Host, "alice"));
        Assert.True(await Store(storage, "alice", "<more/>", 2));

        // Quarantine goes with the account.
        await storage.Accounts.DeleteAsync(Host, "alice");
        Assert.Equal(0, await storage.Offline.CountQuarantinedAsync(Host, "alice"));
    }

    [Fact]
    public async Task Storing_for_a_missing_account_fails_as_account_missing()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => storage.Offline.TryStoreAsync(Host, "ghost", "<m/>", T0, 10, NoByteLimit));
        Assert.Equal(StorageFailureKind.AccountMissing, StorageFailure.Classify(error));
        Assert.Equal(0, await storage.Offline.CountAsync(Host, "ghost"));
    }

    [Fact]
    public async Task Delete_removes_only_the_given_ids_of_that_user()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob");
        for (int i = 0; i < 4; i++)
        {
            await Store(storage, "alice", $"<m{i}/>");
        }

        await Store(storage, "bob", "<b/>");
        var alice = await LoadAll(storage, "alice");
        var bob = await LoadAll(storage, "bob");

        await storage.Offline.DeleteAsync(Host, "alice", [alice[0].Id, alice[2].Id, bob[0].Id, 999_999]);
        await storage.Offline.DeleteAsync(Host, "alice", []);

        Assert.Equal(["<m1/>", "<m3/>"], (await LoadAll(storage, "alice")).Select(m => m.Xml));
        Assert.Equal(1, await storage.Offline.CountAsync(Host, "bob"));

        // Room again after delivery.
        Assert.True(await Store(storage, "alice", "<m4/>", 3));
        Assert.False(await Store(storage, "alice", "<m5/>", 3));
    }

    [Fact]
    public async Task Concurrent_stores_never_exceed_the_quota()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        const int Quota = 25;

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            Task.Run(() => Store(storage, "alice", $"<m{i}/>", Quota))));

        Assert.Equal(Quota, results.Count(stored => stored));
        Assert.Equal(Quota, await storage.Offline.CountAsync(Host, "alice"));
    }

    [Fact]
    public async Task Concurrent_stores_from_two_instances_never_exceed_the_quota()
    {
        await using var db = new TempDatabase();
        var a = await db.OpenMigratedAsync("alice");
        var b = db.Open();
        const int Quota = 30;

        var results = await Task.WhenAll(Enumerable.Range(0, 120).Select(i =>
            Task.Run(() => Store(i % 2 == 0 ? a : b, "alice", $"<m{i}/>", Quota))));

        Assert.Equal(Quota, results.Count(stored => stored));
        Assert.Equal(Quota, await a.Offline.CountAsync(Host, "alice"));
    }
}
