using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Starling.Server.Storage.Sqlite;

/// <summary>
/// Embedded storage in one SQLite file (WAL mode), safe for many concurrent callers in this process and for
/// other processes (the admin CLI) using the same file at the same time.
/// </summary>
/// <remarks>
/// Every operation takes a connection from Microsoft.Data.Sqlite's pool and returns it when done. Readers never
/// block (WAL). Writers in this process queue on an async gate instead of spinning in SQLite's busy handler;
/// writers in other processes are waited for by the busy timeout. Write transactions start with
/// BEGIN IMMEDIATE, so a read-then-write transaction can never fail half-way on a lock upgrade.
/// Microsoft.Data.Sqlite executes synchronously, so the async methods complete on the calling thread.
/// </remarks>
public sealed class SqliteStorage : IStorage
{
    /// <summary>How long an operation waits for another process's write lock before failing.</summary>
    public static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Page cache per pooled connection, in KiB (SQLite's default is 2,000). The pool keeps several connections and each
    /// filled its cache with account pages under login load: ~2 MB resident apiece for pages the OS page cache holds
    /// anyway. 256 KiB keeps the hot index pages; logins/s did not change (docs/benchmarks.md).
    /// </summary>
    private const int CacheKiB = 256;

    private static readonly string ConnectionPragmas = string.Create(
        CultureInfo.InvariantCulture,
        $"PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{CacheKiB}; PRAGMA busy_timeout = {(int)BusyTimeout.TotalMilliseconds};");

    private readonly string _connectionString;
    private readonly ILogger? _logger;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> _configured = new();
    private static readonly object Configured = new();
    private readonly SqliteConnection? _keepAlive;
    private volatile bool _walChecked;
    private bool _disposed;

    /// <summary>Storage in the SQLite database file at <paramref name="databasePath"/> (created if missing).</summary>
    public SqliteStorage(string databasePath, ILogger? logger = null)
        : this(BuildFileConnectionString(databasePath), keepAlive: false, logger)
    {
    }

    private SqliteStorage(string connectionString, bool keepAlive, ILogger? logger)
    {
        _connectionString = connectionString;
        _logger = logger;
        Accounts = new SqliteAccountStore(this);
        Roster = new SqliteRosterStore(this);
        PrivateXml = new SqlitePrivateXmlStore(this);
        Offline = new SqliteOfflineStore(this);
        if (keepAlive)
        {
            // A shared-cache in-memory database lives only while a connection to it is open.
            _keepAlive = new SqliteConnection(connectionString);
            _keepAlive.Open();
        }
    }

    public IAccountStore Accounts { get; }

    public IRosterStore Roster { get; }

    public IPrivateXmlStore PrivateXml { get; }

    public IOfflineStore Offline { get; }

    /// <summary>The connection string in use (pooling on).</summary>
    public string ConnectionString => _connectionString;

    /// <summary>Storage on an explicit Microsoft.Data.Sqlite connection string (pooling is forced on).</summary>
    public static SqliteStorage FromConnectionString(string connectionString, ILogger? logger = null)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString) { Pooling = true };
        bool memory = builder.Mode == SqliteOpenMode.Memory || builder.DataSource == ":memory:";
        return new SqliteStorage(builder.ToString(), keepAlive: memory, logger);
    }

    /// <summary>
    /// A private in-memory database (shared cache, so all pooled connections of this instance see it),
    /// alive until the instance is disposed. For tests; no WAL, and nothing is shared with other processes.
    /// </summary>
    public static SqliteStorage CreateInMemory(ILogger? logger = null)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = "starling-" + Guid.NewGuid().ToString("N"),
            Mode = SqliteOpenMode.Memory,
            Cache = SqliteCacheMode.Shared,
            Pooling = true,
        };
        return new SqliteStorage(builder.ToString(), keepAlive: true, logger);
    }

    /// <summary>The schema version of the database (0 if it was never migrated).</summary>
    public async Task<int> GetSchemaVersionAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        return ReadSchemaVersion(connection, transaction: null);
    }

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            using (var create = Command(connection, null, """
                CREATE TABLE IF NOT EXISTS schema_version (
                    version    INTEGER NOT NULL PRIMARY KEY,
                    applied_at INTEGER NOT NULL
                )
                """))
            {
                create.ExecuteNonQuery();
            }

            ThrowIfNewer(ReadSchemaVersion(connection, null));

            foreach (var migration in Migrations.All)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var transaction = connection.BeginTransaction(deferred: false);

                // Re-read under the write lock: another process may have migrated meanwhile.
                int current = ReadSchemaVersion(connection, transaction);
                ThrowIfNewer(current);
                if (migration.Version <= current)
                {
                    continue;
                }

                using (var apply = Command(connection, transaction, migration.Sql))
                {
                    apply.ExecuteNonQuery();
                }

                using (var record = Command(connection, transaction, "INSERT INTO schema_version (version, applied_at) VALUES ($version, $at)"))
                {
                    record.Parameters.AddWithValue("$version", migration.Version);
                    record.Parameters.AddWithValue("$at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                    record.ExecuteNonQuery();
                }

                transaction.Commit();
                _logger?.LogInformation("Storage schema migrated to version {Version}: {Description}", migration.Version, migration.Description);
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return ValueTask.CompletedTask;
        }

        _disposed = true;
        _writeGate.Dispose();
        if (_keepAlive is not null)
        {
            // Close (not just pool) the keep-alive connection so the in-memory database is freed.
            _keepAlive.Dispose();
            SqliteConnection.ClearPool(_keepAlive);
        }
        else
        {
            // Close idle pooled connections so the file (and its -wal/-shm) is released and checkpointed.
            using var connection = new SqliteConnection(_connectionString);
            SqliteConnection.ClearPool(connection);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Runs <paramref name="work"/> on a pooled connection, for reads.</summary>
    internal async Task<T> ReadAsync<T>(Func<SqliteConnection, T> work, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        return work(connection);
    }

    /// <summary>Runs <paramref name="work"/> in one IMMEDIATE transaction, committed if it returns normally.</summary>
    internal async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, T> work, CancellationToken cancellationToken)
    {
        // Connections are served on the socket threads (StarlingHost). A write can wait up to BusyTimeout for another
        // process (the admin CLI) and pays for checkpoints, so it moves to the thread pool instead of holding up
        // every connection of that socket thread. Reads in WAL mode do not wait for writers.
        if (!Thread.CurrentThread.IsThreadPoolThread) await Task.Yield();
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            using var transaction = connection.BeginTransaction(deferred: false);
            var result = work(connection, transaction);
            transaction.Commit();
            return result;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    internal static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
#pragma warning disable CA2100 // SQL text is always a constant of this assembly; values are bound as parameters.
        command.CommandText = sql;
#pragma warning restore CA2100
        return command;
    }

    private static string BuildFileConnectionString(string databasePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(databasePath);
        return new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
        }.ToString();
    }

    private static int ReadSchemaVersion(SqliteConnection connection, SqliteTransaction? transaction)
    {
        using var exists = Command(connection, transaction, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
        if (exists.ExecuteScalar() is null)
        {
            return 0;
        }

        using var read = Command(connection, transaction, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
        return Convert.ToInt32(read.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static void ThrowIfNewer(int databaseVersion)
    {
        if (databaseVersion > Migrations.Latest)
        {
            throw new StorageSchemaException(databaseVersion, Migrations.Latest);
        }
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            // The pragmas belong to the native connection, which the pool keeps open between uses: set them once
            // per native connection, not on every open (that was three statements parsed and run per query).
            object? handle = connection.Handle;
            if (handle is null || !_configured.TryGetValue(handle, out _))
            {
                using (var pragmas = Command(connection, null, ConnectionPragmas))
                {
                    pragmas.ExecuteNonQuery();
                }

                if (handle is not null) _configured.AddOrUpdate(handle, Configured);
            }

            if (!_walChecked)
            {
                EnsureWal(connection);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private void EnsureWal(SqliteConnection connection)
    {
        // The journal mode is stored in the file, so this is needed once per database; checked once per instance.
        using var wal = Command(connection, null, "PRAGMA journal_mode = WAL");
        string? mode = wal.ExecuteScalar() as string;
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase) && !string.Equals(mode, "memory", StringComparison.OrdinalIgnoreCase))
        {
            _logger?.LogWarning("SQLite journal mode is {Mode}, not WAL; concurrent access will be slower", mode);
        }

        _walChecked = true;
    }
}
