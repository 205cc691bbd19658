using Microsoft.Data.Sqlite;
using Starling.Server.Storage;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// Storage that delegates to the real one but lets a test make offline stores fail the way SQLite does (busy, full),
/// and records which messages were offered to offline storage.
/// </summary>
internal sealed class FaultyStorage(IStorage inner) : IStorage
{
    private readonly FaultyOfflineStore _offline = new(inner.Offline);

    public IAccountStore Accounts => inner.Accounts;

    public IRosterStore Roster => inner.Roster;

    public IPrivateXmlStore PrivateXml => inner.PrivateXml;

    public IOfflineStore Offline => _offline;

    /// <summary>Decides per stored XML whether the store throws, and with which SQLite error code (null: no failure).</summary>
    public Func<string, int?> OfflineFault
    {
        get => _offline.Fault;
        set => _offline.Fault = value;
    }

    /// <summary>Every XML offered to offline storage, in order, with whether it failed.</summary>
    public IReadOnlyList<(string Xml, bool Failed)> Offered => _offline.Offered;

    public Task MigrateAsync(CancellationToken cancellationToken = default) => inner.MigrateAsync(cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    /// <summary>An exception as Microsoft.Data.Sqlite throws it for <paramref name="code"/> (5 busy, 13 full).</summary>
    public static SqliteException Sqlite(int code) =>
        new(code == 13 ? "SQLite Error 13: 'database or disk is full'." : "SQLite Error 5: 'database is locked'.", code);

    private sealed class FaultyOfflineStore(IOfflineStore inner) : IOfflineStore
    {
        private readonly List<(string, bool)> _offered = [];

        public Func<string, int?> Fault { get; set; } = _ => null;

        public IReadOnlyList<(string Xml, bool Failed)> Offered
        {
            get
            {
                lock (_offered) return [.. _offered];
            }
        }

        public Task<OfflineStoreResult> TryStoreAsync(string host, string user, string xml, DateTimeOffset storedAt, int maxMessages, long maxBytes, CancellationToken cancellationToken = default)
        {
            int? code = Fault(xml);
            lock (_offered) _offered.Add((xml, code is not null));
            if (code is { } c) return Task.FromException<OfflineStoreResult>(Sqlite(c));
            return inner.TryStoreAsync(host, user, xml, storedAt, maxMessages, maxBytes, cancellationToken);
        }

        public Task<IReadOnlyList<OfflineMessage>> LoadPageAsync(string host, string user, long afterId, int limit, CancellationToken cancellationToken = default) =>
            inner.LoadPageAsync(host, user, afterId, limit, cancellationToken);

        public Task DeleteAsync(string host, string user, IReadOnlyCollection<long> ids, CancellationToken cancellationToken = default) =>
            inner.DeleteAsync(host, user, ids, cancellationToken);

        public Task QuarantineAsync(string host, string user, long id, string reason, CancellationToken cancellationToken = default) =>
            inner.QuarantineAsync(host, user, id, reason, cancellationToken);

        public Task<int> CountAsync(string host, string user, CancellationToken cancellationToken = default) =>
            inner.CountAsync(host, user, cancellationToken);

        public Task<int> CountQuarantinedAsync(string host, string user, CancellationToken cancellationToken = default) =>
            inner.CountQuarantinedAsync(host, user, cancellationToken);
    }
}
