using Microsoft.Data.Sqlite;
using Starling.Server.Storage.Sqlite;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Storage;

/// <summary>A database file in the temp directory, deleted (with its -wal/-shm) on dispose.</summary>
internal sealed class TempDatabase : IAsyncDisposable
{
    private readonly List<SqliteStorage> _opened = [];

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "starling-test-" + Guid.NewGuid().ToString("N") + ".db");

    public SqliteStorage Open()
    {
        var storage = new SqliteStorage(Path);
        _opened.Add(storage);
        return storage;
    }

    /// <summary>Opens and migrates; creates the accounts <paramref name="users"/>@example.org (per-user rows need their account).</summary>
    public async Task<SqliteStorage> OpenMigratedAsync(params string[] users)
    {
        var storage = Open();
        await storage.MigrateAsync();
        foreach (string user in users)
        {
            await storage.Accounts.CreateAsync(TestData.Account("example.org", user));
        }

        return storage;
    }

    /// <summary>A raw connection, as another process would have.</summary>
    public SqliteConnection OpenRaw()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var storage in _opened)
        {
            await storage.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        foreach (string suffix in new[] { "", "-wal", "-shm", "-journal" })
        {
            File.Delete(Path + suffix);
        }
    }
}

internal static class TestData
{
    public static ScramCredential Credential(ScramHash hash, byte seed) =>
        new(hash, [seed, 1, 2, 3], 4096 + seed, Enumerable.Repeat(seed, hash == ScramHash.Sha1 ? 20 : 32).ToArray(), [seed, 9, 9]);

    public static Starling.Server.Storage.StoredAccount Account(string host, string user, byte seed = 7) =>
        new(host, user, Credential(ScramHash.Sha1, seed), Credential(ScramHash.Sha256, seed), DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123 + seed));
}
