using Starling.Server.Storage;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Storage;

public sealed class SqliteAccountStoreTests
{
    private static void AssertSame(ScramCredential expected, ScramCredential actual)
    {
        Assert.Equal(expected.Hash, actual.Hash);
        Assert.Equal(expected.Salt, actual.Salt);
        Assert.Equal(expected.Iterations, actual.Iterations);
        Assert.Equal(expected.StoredKey, actual.StoredKey);
        Assert.Equal(expected.ServerKey, actual.ServerKey);
    }

    [Fact]
    public async Task Create_then_get_round_trips_all_fields()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        var account = TestData.Account("example.org", "alice", seed: 3);

        Assert.True(await storage.Accounts.CreateAsync(account));
        var loaded = await storage.Accounts.GetAsync("example.org", "alice");

        Assert.NotNull(loaded);
        Assert.Equal("example.org", loaded.Host);
        Assert.Equal("alice", loaded.User);
        Assert.Equal(account.CreatedAt, loaded.CreatedAt);
        AssertSame(account.Sha1, loaded.Sha1);
        AssertSame(account.Sha256, loaded.Sha256);
    }

    [Fact]
    public async Task Get_of_missing_account_is_null_and_compare_is_case_sensitive()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        await storage.Accounts.CreateAsync(TestData.Account("example.org", "alice"));

        Assert.Null(await storage.Accounts.GetAsync("example.org", "bob"));
        Assert.Null(await storage.Accounts.GetAsync("example.net", "alice"));
        Assert.Null(await storage.Accounts.GetAsync("example.org", "Alice"));
    }

    [Fact]
    public async Task Duplicate_create_returns_false_and_changes_nothing()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        var first = TestData.Account("example.org", "alice", seed: 1);
        Assert.True(await storage.Accounts.CreateAsync(first));

        Assert.False(await storage.Accounts.CreateAsync(TestData.Account("example.org", "alice", seed: 2)));

        var loaded = await storage.Accounts.GetAsync("example.org", "alice");
        Assert.NotNull(loaded);
        AssertSame(first.Sha256, loaded.Sha256);
        Assert.Equal(first.CreatedAt, loaded.CreatedAt);
    }

    [Fact]
    public async Task Set_credentials_replaces_both_hashes()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        await storage.Accounts.CreateAsync(TestData.Account("example.org", "alice", seed: 1));
        var sha1 = TestData.Credential(ScramHash.Sha1, 50);
        var sha256 = TestData.Credential(ScramHash.Sha256, 60);

        Assert.True(await storage.Accounts.SetCredentialsAsync("example.org", "alice", sha1, sha256));

        var loaded = await storage.Accounts.GetAsync("example.org", "alice");
        Assert.NotNull(loaded);
        AssertSame(sha1, loaded.Sha1);
        AssertSame(sha256, loaded.Sha256);
    }

    [Fact]
    public async Task Set_credentials_of_missing_account_returns_false_and_creates_nothing()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();

        Assert.False(await storage.Accounts.SetCredentialsAsync("example.org", "ghost", TestData.Credential(ScramHash.Sha1, 1), TestData.Credential(ScramHash.Sha256, 1)));
        Assert.Null(await storage.Accounts.GetAsync("example.org", "ghost"));
    }

    [Fact]
    public async Task Credentials_with_the_wrong_hash_are_rejected()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        var swapped = new StoredAccount("example.org", "alice", TestData.Credential(ScramHash.Sha256, 1), TestData.Credential(ScramHash.Sha1, 1), DateTimeOffset.UnixEpoch);

        await Assert.ThrowsAsync<ArgumentException>(() => storage.Accounts.CreateAsync(swapped));
        Assert.Null(await storage.Accounts.GetAsync("example.org", "alice"));
    }

    [Fact]
    public async Task Delete_removes_the_account_and_all_its_data_only()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        const string Host = "example.org";
        foreach (string user in new[] { "alice", "bob" })
        {
            await storage.Accounts.CreateAsync(TestData.Account(Host, user));
            await storage.Roster.SetItemAsync(Host, user, new RosterItem("carol@example.net", "Carol", "both", false, ["Friends"]));
            await storage.PrivateXml.SetAsync(Host, user, "storage", "storage:bookmarks", "<storage xmlns='storage:bookmarks'/>");
            await storage.Offline.TryStoreAsync(Host, user, "<message/>", DateTimeOffset.UtcNow, 10, long.MaxValue);
        }

        Assert.True(await storage.Accounts.DeleteAsync(Host, "alice"));

        Assert.Null(await storage.Accounts.GetAsync(Host, "alice"));
        var roster = await storage.Roster.GetAsync(Host, "alice");
        Assert.Empty(roster.Items);
        Assert.Equal("0", roster.Version);
        Assert.Null(await storage.PrivateXml.GetAsync(Host, "alice", "storage", "storage:bookmarks"));
        Assert.Equal(0, await storage.Offline.CountAsync(Host, "alice"));

        Assert.NotNull(await storage.Accounts.GetAsync(Host, "bob"));
        Assert.Single((await storage.Roster.GetAsync(Host, "bob")).Items);
        Assert.NotNull(await storage.PrivateXml.GetAsync(Host, "bob", "storage", "storage:bookmarks"));
        Assert.Equal(1, await storage.Offline.CountAsync(Host, "bob"));

        using var raw = db.OpenRaw();
        using var command = raw.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM scram_credentials WHERE username = 'alice'";
        Assert.Equal(0L, command.ExecuteScalar());
    }

    [Fact]
    public async Task Delete_of_missing_account_returns_false()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        Assert.False(await storage.Accounts.DeleteAsync("example.org", "ghost"));
    }

    [Fact]
    public async Task List_returns_users_of_the_host_sorted()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        foreach (string user in new[] { "carol", "alice", "dave", "bob" })
        {
            await storage.Accounts.CreateAsync(TestData.Account("example.org", user));
        }

        await storage.Accounts.CreateAsync(TestData.Account("example.net", "eve"));

        Assert.Equal(["alice", "bob", "carol", "dave"], await storage.Accounts.ListAsync("example.org"));
        Assert.Equal(["eve"], await storage.Accounts.ListAsync("example.net"));
        Assert.Empty(await storage.Accounts.ListAsync("nowhere.example"));
    }

    [Fact]
    public async Task Create_many_skips_existing_and_duplicates_within_the_batch()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        await storage.Accounts.CreateAsync(TestData.Account("example.org", "alice", seed: 1));

        int created = await storage.Accounts.CreateManyAsync(
        [
            TestData.Account("example.org", "alice", seed: 2),
            TestData.Account("example.org", "bob", seed: 3),
            TestData.Account("example.org", "carol", seed: 4),
            TestData.Account("example.org", "bob", seed: 5),
            TestData.Account("example.net", "alice", seed: 6),
        ]);

        Assert.Equal(3, created);
        Assert.Equal(["alice", "bob", "carol"], await storage.Accounts.ListAsync("example.org"));
        Assert.Equal(1, (await storage.Accounts.GetAsync("example.org", "alice"))!.Sha1.Salt[0]);
        Assert.Equal(3, (await storage.Accounts.GetAsync("example.org", "bob"))!.Sha1.Salt[0]);
    }

    [Fact]
    public async Task Create_many_rolls_back_entirely_on_failure()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        var bad = new StoredAccount("example.org", "bad", TestData.Credential(ScramHash.Sha256, 1), TestData.Credential(ScramHash.Sha256, 1), DateTimeOffset.UnixEpoch);

        await Assert.ThrowsAsync<ArgumentException>(() => storage.Accounts.CreateManyAsync([TestData.Account("example.org", "alice"), bad]));

        Assert.Empty(await storage.Accounts.ListAsync("example.org"));
    }

    [Fact]
    public async Task Create_many_handles_100000_accounts()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        const int Count = 100_000;
        var sha1 = TestData.Credential(ScramHash.Sha1, 1);
        var sha256 = TestData.Credential(ScramHash.Sha256, 1);
        var now = DateTimeOffset.UtcNow;

        IEnumerable<StoredAccount> Generate()
        {
            for (int i = 0; i < Count; i++)
            {
                yield return new StoredAccount("load.example", "user" + i.ToString("D6", System.Globalization.CultureInfo.InvariantCulture), sha1, sha256, now);
            }
        }

        Assert.Equal(Count, await storage.Accounts.CreateManyAsync(Generate()));
        Assert.Equal(0, await storage.Accounts.CreateManyAsync(Generate().Take(1000)));

        var users = await storage.Accounts.ListAsync("load.example");
        Assert.Equal(Count, users.Count);
        Assert.Equal("user000000", users[0]);
        Assert.Equal("user099999", users[^1]);
        var sample = await storage.Accounts.GetAsync("load.example", "user054321");
        Assert.NotNull(sample);
        Assert.Equal(sha256.StoredKey, sample.Sha256.StoredKey);
    }
}
