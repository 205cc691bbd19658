using System.Globalization;
using Starling.Server.Storage.Sqlite;

namespace Starling.Server.Tests.Storage;

/// <summary>The per-connection pragmas are set once per native connection and stay set on pooled reuse.</summary>
public sealed class SqliteConnectionSettingsTests
{
    [Fact]
    public async Task Every_use_of_a_pooled_connection_has_the_pragmas()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();

        for (int i = 0; i < 5; i++)
        {
            // Reads and writes, sequential (one pooled connection reused) and concurrent (several).
            var reads = Enumerable.Range(0, 4).Select(_ => storage.ReadAsync(connection => Pragmas(connection, null), CancellationToken.None));
            foreach (var (foreignKeys, synchronous, busyTimeout, cacheSize) in await Task.WhenAll(reads))
            {
                Assert.Equal(1, foreignKeys);
                Assert.Equal(1, synchronous); // NORMAL
                Assert.True(busyTimeout > 0);
                Assert.Equal(-256, cacheSize); // KiB: a small page cache per pooled connection
            }

            var written = await storage.WriteAsync((connection, transaction) => Pragmas(connection, transaction), CancellationToken.None);
            Assert.Equal(1, written.ForeignKeys);
        }
    }

    [Fact]
    public async Task Synchronous_full_is_set_on_every_connection_when_asked_for()
    {
        await using var db = new TempDatabase();
        await using var storage = new SqliteStorage(db.Path, synchronousFull: true);
        await storage.MigrateAsync();
        var read = await storage.ReadAsync(connection => Pragmas(connection, null), CancellationToken.None);
        var written = await storage.WriteAsync((connection, transaction) => Pragmas(connection, transaction), CancellationToken.None);
        Assert.Equal(2, read.Synchronous); // FULL
        Assert.Equal(2, written.Synchronous);
    }

    [Fact]
    public async Task A_write_started_outside_the_thread_pool_runs_on_it()
    {
        // Connections are served on the socket threads, which must never wait for a write lock.
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync();
        bool? onPool = null;
        var thread = new Thread(() =>
            onPool = storage.WriteAsync((_, _) => Thread.CurrentThread.IsThreadPoolThread, CancellationToken.None).GetAwaiter().GetResult());
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)));
        Assert.True(onPool);
    }

    private static (long ForeignKeys, long Synchronous, long BusyTimeout, long CacheSize) Pragmas(Microsoft.Data.Sqlite.SqliteConnection connection, Microsoft.Data.Sqlite.SqliteTransaction? transaction)
    {
        long Read(string pragma)
        {
            using var command = SqliteStorage.Command(connection, transaction, "PRAGMA " + pragma);
            return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        return (Read("foreign_keys"), Read("synchronous"), Read("busy_timeout"), Read("cache_size"));
    }
}
