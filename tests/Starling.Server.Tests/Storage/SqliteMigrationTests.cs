using Starling.Server.Storage;
using Starling.Server.Storage.Sqlite;

namespace Starling.Server.Tests.Storage;

public sealed class SqliteMigrationTests
{
    [Fact]
    public void Migrations_are_numbered_from_one_without_gaps()
    {
        for (int i = 0; i < Migrations.All.Count; i++)
        {
            Assert.Equal(i + 1, Migrations.All[i].Version);
        }

        Assert.Equal(Migrations.All.Count, Migrations.Latest);
    }

    [Fact]
    public async Task Fresh_database_is_at_version_zero_then_latest()
    {
        await using var db = new TempDatabase();
        var storage = db.Open();
        Assert.Equal(0, await storage.GetSchemaVersionAsync());
        await storage.MigrateAsync();
        Assert.Equal(Migrations.Latest, await storage.GetSchemaVersionAsync());
    }

    [Fact]
    public async Task Migrating_twice_is_idempotent_and_keeps_data()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        Assert.True(await storage.Accounts.CreateAsync(TestData.Account("example.org", "alice")));

        await storage.MigrateAsync();
        var again = await db.OpenMigratedAsync();

        Assert.Equal(Migrations.Latest, await again.GetSchemaVersionAsync());
        Assert.NotNull(await again.Accounts.GetAsync("example.org", "alice"));
        using var raw = db.OpenRaw();
        using var command = raw.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM schema_version";
        Assert.Equal((long)Migrations.Latest, command.ExecuteScalar());
    }

    [Fact]
    public async Task Concurrent_migrations_from_two_instances_succeed()
    {
        await using var db = new TempDatabase();
        var a = db.Open();
        var b = db.Open();
        await Task.WhenAll(Task.Run(() => a.MigrateAsync()), Task.Run(() => b.MigrateAsync()));
        Assert.Equal(Migrations.Latest, await a.GetSchemaVersionAsync());
    }

    [Fact]
    public async Task Upgrading_from_version_1_keeps_the_rows_of_existing_accounts_and_drops_orphans()
    {
        await using var db = new TempDatabase();
        using (var raw = db.OpenRaw())
        {
            // A version-1 database: a deleted account ("ghost") left rows behind, as deluser did before migration 2.
            using var v1 = raw.CreateCommand();
            v1.CommandText = Migrations.All[0].Sql + """
                ;
                CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL);
                INSERT INTO schema_version VALUES (1, 0);
                INSERT INTO accounts VALUES ('example.org', 'alice', 0);
                INSERT INTO roster_items VALUES ('example.org', 'alice', 'bob@example.org', 'Bob', 'both', 0, '["Friends"]');
                INSERT INTO roster_items VALUES ('example.org', 'ghost', 'eve@example.org', NULL, 'none', 0, '[]');
                INSERT INTO roster_versions VALUES ('example.org', 'alice', 7), ('example.org', 'ghost', 8);
                INSERT INTO private_xml VALUES ('example.org', 'alice', 'urn:a', 'a', '<a xmlns="urn:a"/>');
                INSERT INTO private_xml VALUES ('example.org', 'ghost', 'urn:a', 'a', '<a xmlns="urn:a"/>');
                INSERT INTO offline_messages (host, username, xml, stored_at) VALUES ('example.org', 'alice', '<message>é</message>', 5);
                INSERT INTO offline_messages (host, username, xml, stored_at) VALUES ('example.org', 'ghost', '<message/>', 6);
                """;
            v1.ExecuteNonQuery();
        }

        var storage = db.Open();
        await storage.MigrateAsync();

        Assert.Equal(Migrations.Latest, await storage.GetSchemaVersionAsync());
        var roster = await storage.Roster.GetAsync("example.org", "alice");
        Assert.Equal("7", roster.Version);
        Assert.Equal(["Friends"], Assert.Single(roster.Items).Groups);
        Assert.Empty((await storage.Roster.GetAsync("example.org", "ghost")).Items);
        Assert.NotNull(await storage.PrivateXml.GetAsync("example.org", "alice", "a", "urn:a"));
        Assert.Null(await storage.PrivateXml.GetAsync("example.org", "ghost", "a", "urn:a"));
        var offline = Assert.Single(await storage.Offline.LoadPageAsync("example.org", "alice", 0, 10));
        Assert.Equal("<message>é</message>", offline.Xml);
        Assert.Equal(0, await storage.Offline.CountAsync("example.org", "ghost"));
        // The migrated row's size counts against the byte quota (21 bytes of UTF-8).
        Assert.Equal(OfflineStoreResult.ByteQuotaReached, await storage.Offline.TryStoreAsync("example.org", "alice", "<m/>", DateTimeOffset.UtcNow, 10, 24));
        Assert.Equal(OfflineStoreResult.Stored, await storage.Offline.TryStoreAsync("example.org", "alice", "<m/>", DateTimeOffset.UtcNow, 10, 25));

        // The re-created ghost starts empty; rows for a missing account are refused.
        await Assert.ThrowsAnyAsync<Exception>(() => storage.Roster.SetItemAsync("example.org", "ghost", new RosterItem("eve@example.org", null, "none", false, [])));
    }

    [Fact]
    public async Task Upgrading_from_version_2_keeps_roster_items_not_approved_and_deletes_pending_requests_with_the_account()
    {
        await using var db = new TempDatabase();
        using (var raw = db.OpenRaw())
        {
            using var v2 = raw.CreateCommand();
            v2.CommandText = Migrations.All[0].Sql + ";" + Migrations.All[1].Sql + """
                ;
                CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL);
                INSERT INTO schema_version VALUES (1, 0), (2, 0);
                INSERT INTO accounts VALUES ('example.org', 'alice', 0);
                INSERT INTO roster_items VALUES ('example.org', 'alice', 'bob@example.org', 'Bob', 'to', 1, '[]');
                """;
            v2.ExecuteNonQuery();
        }

        var storage = db.Open();
        await storage.MigrateAsync();
        var item = Assert.Single((await storage.Roster.GetAsync("example.org", "alice")).Items);
        Assert.Equal(("to", true, false), (item.Subscription, item.AskSubscribe, item.Approved));

        await storage.Roster.UpdateSubscriptionAsync("example.org", "alice", "carol@example.org", Starling.Server.Modules.Presence.SubscriptionRules.InboundSubscribe, "<presence/>", 10, 10);
        Assert.Single(await storage.Roster.GetPendingInAsync("example.org", "alice"));
        Assert.True(await storage.Accounts.DeleteAsync("example.org", "alice"));
        await storage.Accounts.CreateAsync(TestData.Account("example.org", "alice"));
        Assert.Empty(await storage.Roster.GetPendingInAsync("example.org", "alice"));
    }

    [Fact]
    public async Task Newer_schema_is_refused_with_a_clear_message()
    {
        await using var db = new TempDatabase();
        await db.OpenMigratedAsync();
        int newer = Migrations.Latest + 3;
        using (var raw = db.OpenRaw())
        {
            using var command = raw.CreateCommand();
            command.CommandText = "INSERT INTO schema_version (version, applied_at) VALUES ($v, 0)";
            command.Parameters.AddWithValue("$v", newer);
            command.ExecuteNonQuery();
        }

        var storage = db.Open();
        var error = await Assert.ThrowsAsync<StorageSchemaException>(() => storage.MigrateAsync());
        Assert.Equal($"database schema version {newer} is newer than this Starling (max {Migrations.Latest}); upgrade Starling", error.Message);
        Assert.Equal(newer, error.DatabaseVersion);
        Assert.Equal(Migrations.Latest, error.SupportedVersion);
    }

    [Fact]
    public async Task Database_uses_wal_journal_mode()
    {
        await using var db = new TempDatabase();
        await db.OpenMigratedAsync();
        using var raw = db.OpenRaw();
        using var command = raw.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", command.ExecuteScalar());
    }

    [Fact]
    public async Task In_memory_storage_works_and_is_private()
    {
        await using var a = SqliteStorage.CreateInMemory();
        await using var b = SqliteStorage.CreateInMemory();
        await a.MigrateAsync();
        await b.MigrateAsync();
        Assert.True(await a.Accounts.CreateAsync(TestData.Account("example.org", "alice")));
        Assert.NotNull(await a.Accounts.GetAsync("example.org", "alice"));
        Assert.Null(await b.Accounts.GetAsync("example.org", "alice"));
    }
}
