namespace Starling.Server.Tests.Storage;

public sealed class SqliteOfflineStoreTests
{
    private const string Host = "example.org";
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);

    [Fact]
    public async Task Store_load_oldest_first_and_count()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(await storage.Offline.TryStoreAsync(Host, "alice", $"<message id='{i}'/>", T0.AddSeconds(i), 10));
        }

        await storage.Offline.TryStoreAsync(Host, "bob", "<message id='b'/>", T0, 10);

        var messages = await storage.Offline.LoadAsync(Host, "alice");
        Assert.Equal(["<message id='0'/>", "<message id='1'/>", "<message id='2'/>"], messages.Select(m => m.Xml));
        Assert.Equal([T0, T0.AddSeconds(1), T0.AddSeconds(2)], messages.Select(m => m.StoredAt));
        Assert.True(messages[0].Id < messages[1].Id && messages[1].Id < messages[2].Id);
        Assert.Equal(3, await storage.Offline.CountAsync(Host, "alice"));
        Assert.Equal(1, await storage.Offline.CountAsync(Host, "bob"));
        Assert.Equal(0, await storage.Offline.CountAsync(Host, "carol"));
        Assert.Empty(await storage.Offline.LoadAsync(Host, "carol"));
    }

    [Fact]
    public async Task Store_returns_false_when_quota_is_reached()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        Assert.True(await storage.Offline.TryStoreAsync(Host, "alice", "<m1/>", T0, 2));
        Assert.True(await storage.Offline.TryStoreAsync(Host, "alice", "<m2/>", T0, 2));
        Assert.False(await storage.Offline.TryStoreAsync(Host, "alice", "<m3/>", T0, 2));
        Assert.False(await storage.Offline.TryStoreAsync(Host, "alice", "<m4/>", T0, 0));
        Assert.Equal(2, await storage.Offline.CountAsync(Host, "alice"));

        // Another user's quota is separate.
        Assert.True(await storage.Offline.TryStoreAsync(Host, "bob", "<m1/>", T0, 2));
    }

    [Fact]
    public async Task Delete_removes_only_the_given_ids_of_that_user()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        for (int i = 0; i < 4; i++)
        {
            await storage.Offline.TryStoreAsync(Host, "alice", $"<m{i}/>", T0, 10);
        }

        await storage.Offline.TryStoreAsync(Host, "bob", "<b/>", T0, 10);
        var alice = await storage.Offline.LoadAsync(Host, "alice");
        var bob = await storage.Offline.LoadAsync(Host, "bob");

        await storage.Offline.DeleteAsync(Host, "alice", [alice[0].Id, alice[2].Id, bob[0].Id, 999_999]);
        await storage.Offline.DeleteAsync(Host, "alice", []);

        Assert.Equal(["<m1/>", "<m3/>"], (await storage.Offline.LoadAsync(Host, "alice")).Select(m => m.Xml));
        Assert.Equal(1, await storage.Offline.CountAsync(Host, "bob"));

        // Room again after delivery.
        Assert.True(await storage.Offline.TryStoreAsync(Host, "alice", "<m4/>", T0, 3));
        Assert.False(await storage.Offline.TryStoreAsync(Host, "alice", "<m5/>", T0, 3));
    }

    [Fact]
    public async Task Concurrent_stores_never_exceed_the_quota()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        const int Quota = 25;

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i =>
            Task.Run(() => storage.Offline.TryStoreAsync(Host, "alice", $"<m{i}/>", T0, Quota))));

        Assert.Equal(Quota, results.Count(stored => stored));
        Assert.Equal(Quota, await storage.Offline.CountAsync(Host, "alice"));
    }

    [Fact]
    public async Task Concurrent_stores_from_two_instances_never_exceed_the_quota()
    {
        await using var db = new TempDatabase();
        var a = await db.OpenMigratedAsync();
        var b = db.Open();
        const int Quota = 30;

        var results = await Task.WhenAll(Enumerable.Range(0, 120).Select(i =>
            Task.Run(() => (i % 2 == 0 ? a : b).Offline.TryStoreAsync(Host, "alice", $"<m{i}/>", T0, Quota))));

        Assert.Equal(Quota, results.Count(stored => stored));
        Assert.Equal(Quota, await a.Offline.CountAsync(Host, "alice"));
    }
}
