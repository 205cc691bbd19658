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
