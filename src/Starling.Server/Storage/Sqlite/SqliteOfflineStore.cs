using System.Globalization;
using System.Text;

namespace Starling.Server.Storage.Sqlite;

internal sealed class SqliteOfflineStore(SqliteStorage storage) : IOfflineStore
{
    public Task<OfflineStoreResult> TryStoreAsync(string host, string user, string xml, DateTimeOffset storedAt, int maxMessages, long maxBytes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(xml);
        if (maxMessages <= 0)
        {
            return Task.FromResult(OfflineStoreResult.MessageQuotaReached);
        }

        long bytes = Encoding.UTF8.GetByteCount(xml);
        if (bytes > maxBytes)
        {
            return Task.FromResult(OfflineStoreResult.ByteQuotaReached);
        }

        // Count and insert in one IMMEDIATE transaction: the write lock is held from the count on,
        // so concurrent stores (from any process) cannot both see room for the last message.
        // The count and the sum are read from the covering index offline_messages_by_user.
        return storage.WriteAsync(host, user, (connection, transaction) =>
        {
            using (var usage = SqliteStorage.Command(connection, transaction, """
                SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM offline_messages WHERE host = $host AND username = $user
                """))
            {
                usage.Parameters.AddWithValue("$host", host);
                usage.Parameters.AddWithValue("$user", user);
                using var reader = usage.ExecuteReader();
                reader.Read();
                if (reader.GetInt64(0) >= maxMessages)
                {
                    return OfflineStoreResult.MessageQuotaReached;
                }

                if (reader.GetInt64(1) + bytes > maxBytes)
                {
                    return OfflineStoreResult.ByteQuotaReached;
                }
            }

            // A missing account fails here on the foreign key (StorageFailureKind.AccountMissing).
            using var insert = SqliteStorage.Command(connection, transaction, """
                INSERT INTO offline_messages (host, username, xml, bytes, stored_at) VALUES ($host, $user, $xml, $bytes, $at)
                """);
            insert.Parameters.AddWithValue("$host", host);
            insert.Parameters.AddWithValue("$user", user);
            insert.Parameters.AddWithValue("$xml", xml);
            insert.Parameters.AddWithValue("$bytes", bytes);
            insert.Parameters.AddWithValue("$at", storedAt.ToUnixTimeMilliseconds());
            insert.ExecuteNonQuery();
            return OfflineStoreResult.Stored;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<OfflineMessage>> LoadPageAsync(string host, string user, long afterId, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        return storage.ReadAsync<IReadOnlyList<OfflineMessage>>(connection =>
        {
            using var command = SqliteStorage.Command(connection, null, """
                SELECT id, xml, stored_at FROM offline_messages
                WHERE host = $host AND username = $user AND id > $after ORDER BY id LIMIT $limit
                """);
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            command.Parameters.AddWithValue("$after", afterId);
            command.Parameters.AddWithValue("$limit", limit);
            using var reader = command.ExecuteReader();
            var messages = new List<OfflineMessage>();
            while (reader.Read())
            {
                messages.Add(new OfflineMessage(reader.GetInt64(0), reader.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2))));
            }

            return messages;
        }, cancellationToken);
    }

    public Task DeleteAsync(string host, string user, IReadOnlyCollection<long> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0)
        {
            return Task.CompletedTask;
        }

        return storage.WriteAsync(host, user, (connection, transaction) =>
        {
            // Scoped to the user, so ids of someone else's messages are ignored.
            using var command = SqliteStorage.Command(connection, transaction, """
                DELETE FROM offline_messages WHERE id = $id AND host = $host AND username = $user
                """);
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            var id = command.Parameters.Add("$id", Microsoft.Data.Sqlite.SqliteType.Integer);
            command.Prepare();
            int deleted = 0;
            foreach (long value in ids)
            {
                id.Value = value;
                deleted += command.ExecuteNonQuery();
            }

            return deleted;
        }, cancellationToken);
    }

    public Task QuarantineAsync(string host, string user, long id, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reason);
        return storage.WriteAsync(host, user, (connection, transaction) =>
        {
            using (var copy = SqliteStorage.Command(connection, transaction, """
                INSERT OR REPLACE INTO offline_quarantine (id, host, username, xml, stored_at, quarantined_at, reason)
                SELECT id, host, username, xml, stored_at, $now, $reason FROM offline_messages
                WHERE id = $id AND host = $host AND username = $user
                """))
            {
                copy.Parameters.AddWithValue("$id", id);
                copy.Parameters.AddWithValue("$host", host);
                copy.Parameters.AddWithValue("$user", user);
                copy.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                copy.Parameters.AddWithValue("$reason", reason);
                copy.ExecuteNonQuery();
            }

            using var delete = SqliteStorage.Command(connection, transaction, "DELETE FROM offline_messages WHERE id = $id AND host = $host AND username = $user");
            delete.Parameters.AddWithValue("$id", id);
            delete.Parameters.AddWithValue("$host", host);
            delete.Parameters.AddWithValue("$user", user);
            return delete.ExecuteNonQuery();
        }, cancellationToken);
    }

    public Task<int> CountAsync(string host, string user, CancellationToken cancellationToken = default) =>
        Count("SELECT COUNT(*) FROM offline_messages WHERE host = $host AND username = $user", host, user, cancellationToken);

    public Task<int> CountQuarantinedAsync(string host, string user, CancellationToken cancellationToken = default) =>
        Count("SELECT COUNT(*) FROM offline_quarantine WHERE host = $host AND username = $user", host, user, cancellationToken);

    private Task<int> Count(string sql, string host, string user, CancellationToken cancellationToken) =>
        storage.ReadAsync(connection =>
        {
            using var command = SqliteStorage.Command(connection, null, sql);
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
        }, cancellationToken);
}
