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
/// block (WAL). Writers in this process queue per account and are served round-robin by one runner (see
/// <see cref="WriteAsync{T}(string, string, Func{SqliteConnection, SqliteTransaction, T}, CancellationToken)"/>) instead
/// of spinning in SQLite's busy handler; writers in other processes are waited for by the busy timeout. Write transactions start with
/// BEGIN IMMEDIATE, so a read-then-write transaction can never fail half-way on a lock upgrade.
/// Microsoft.Data.Sqlite executes synchronously, so reads complete on the calling thread.
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

    private readonly string _connectionPragmas;
    private readonly string _connectionString;
    private readonly ILogger? _logger;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly Dictionary<WriterKey, Queue<PendingWrite>> _writeQueues = [];
    private readonly Queue<WriterKey> _writeTurns = new();
    private bool _writerRunning;
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> _configured = new();
    private static readonly object Configured = new();
    private readonly SqliteConnection? _keepAlive;
    private volatile bool _walChecked;
    private bool _disposed;

    /// <summary>Storage in the SQLite database file at <paramref name="databasePath"/> (created if missing).</summary>
    /// <param name="synchronousFull">
    /// PRAGMA synchronous = FULL instead of NORMAL: in WAL mode NORMAL survives a process crash (SIGKILL) but may lose
    /// the last transactions on power loss or an OS crash; FULL syncs the WAL on every commit and survives both
    /// (docs/operations.md, "Durability").
    /// </param>
    public SqliteStorage(string databasePath, ILogger? logger = null, bool synchronousFull = false)
        : this(BuildFileConnectionString(databasePath), keepAlive: false, logger, synchronousFull)
    {
    }

    private SqliteStorage(string connectionString, bool keepAlive, ILogger? logger, bool synchronousFull = false)
    {
        _connectionString = connectionString;
        _logger = logger;
        _connectionPragmas = string.Create(
            CultureInfo.InvariantCulture,
            $"PRAGMA foreign_keys = ON; PRAGMA synchronous = {(synchronousFull ? "FULL" : "NORMAL")}; PRAGMA cache_size = -{CacheKiB}; PRAGMA busy_timeout = {(int)BusyTimeout.TotalMilliseconds};");
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
    /// <remarks>For writes that belong to no one user (account import, admin); they take their turn like a user's.</remarks>
    internal Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, T> work, CancellationToken cancellationToken) =>
        WriteAsync(string.Empty, string.Empty, work, cancellationToken);

    /// <summary>
    /// Runs <paramref name="work"/> for the account <paramref name="user"/>@<paramref name="host"/> in one IMMEDIATE
    /// transaction, committed if it returns normally.
    /// </summary>
    /// <remarks>
    /// SQLite has one writer at a time. Writes used to queue first come, first served on one gate, so an account with
    /// many resources looping roster sets kept a queue ahead of everybody else's offline stores (issue #13). Writes now
    /// wait in one queue per account and one runner serves the accounts round-robin, one transaction each: an account
    /// gets its share of the writer however many writes it has queued. The runner works on the thread pool (connections
    /// are served on the socket threads, StarlingHost; a write can wait BusyTimeout for another process and pays for
    /// checkpoints). Reads in WAL mode do not wait for writers.
    /// </remarks>
    internal Task<T> WriteAsync<T>(string host, string user, Func<SqliteConnection, SqliteTransaction, T> work, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var pending = new PendingWrite<T>(work, cancellationToken);
        bool start;
        lock (_writeQueues)
        {
            var key = new WriterKey(host, user);
            if (!_writeQueues.TryGetValue(key, out var queue))
            {
                queue = new Queue<PendingWrite>();
                _writeQueues.Add(key, queue);
                _writeTurns.Enqueue(key);
            }

            queue.Enqueue(pending);
            start = !_writerRunning;
            _writerRunning = true;
        }

        if (start) ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.RunWritesAsync(), this, preferLocal: false);
        return pending.Task;
    }

    /// <summary>Serves the per-account write queues round-robin until all are empty.</summary>
    private async Task RunWritesAsync()
    {
        while (true)
        {
            PendingWrite next;
            lock (_writeQueues)
            {
                if (_writeTurns.Count == 0)
                {
                    _writerRunning = false;
                    return;
                }

                var key = _writeTurns.Dequeue();
                var queue = _writeQueues[key];
                next = queue.Dequeue();
                if (queue.Count > 0) _writeTurns.Enqueue(key); // back of the line: the other accounts go first
                else _writeQueues.Remove(key);
            }

            if (next.CancellationToken.IsCancellationRequested)
            {
                next.Cancel();
                continue;
            }

            try
            {
                await _writeGate.WaitAsync(next.CancellationToken);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                next.Fail(ex);
                continue;
            }

            try
            {
                await using var connection = await OpenAsync(next.CancellationToken);
                using var transaction = connection.BeginTransaction(deferred: false);
                next.Run(connection, transaction);
                transaction.Commit();
                next.Complete();
            }
            catch (Exception ex)
            {
                // Handed to the caller, who maps it to a stanza error (StorageFailure); the runner goes on.
                next.Fail(ex);
            }
            finally
            {
                ReleaseGate();
            }
        }
    }

    private void ReleaseGate()
    {
        try
        {
            _writeGate.Release();
        }
        catch (ObjectDisposedException)
        {
            // Disposed while a write ran; nothing waits any more.
        }
    }

    private readonly record struct WriterKey(string Host, string User);

    private abstract class PendingWrite(CancellationToken cancellationToken)
    {
        public CancellationToken CancellationToken { get; } = cancellationToken;

        public abstract void Run(SqliteConnection connection, SqliteTransaction transaction);

        public abstract void Complete();

        public abstract void Fail(Exception exception);

        public abstract void Cancel();
    }

    private sealed class PendingWrite<T>(Func<SqliteConnection, SqliteTransaction, T> work, CancellationToken cancellationToken)
        : PendingWrite(cancellationToken)
    {
        // Continuations must not run on the writer: it would serve the next account only after them.
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;

        public Task<T> Task => _completion.Task;

        public override void Run(SqliteConnection connection, SqliteTransaction transaction) => _result = work(connection, transaction);

        public override void Complete() => _completion.TrySetResult(_result);

        public override void Fail(Exception exception)
        {
            if (exception is OperationCanceledException && CancellationToken.IsCancellationRequested) _completion.TrySetCanceled(CancellationToken);
            else _completion.TrySetException(exception);
        }

        public override void Cancel() => _completion.TrySetCanceled(CancellationToken);
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
                using (var pragmas = Command(connection, null, _connectionPragmas))
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
