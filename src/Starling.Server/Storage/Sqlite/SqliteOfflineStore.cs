using System.Globalization;

namespace Starling.Server.Storage.Sqlite;

internal sealed class SqliteOfflineStore(SqliteStorage storage) : IOfflineStore
{
    public Task<bool> TryStoreAsync(string host, string user, string xml, DateTimeOffset storedAt, int quota, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(xml);
        if (quota <= 0)
        {
            return Task.FromResult(false);
        }

        // Count and insert in one IMMEDIATE transaction: the write lock is held from the count on,
        // so concurrent stores (from any process) cannot both see room for the last message.
        return storage.WriteAsync((connection, transaction) =>
        {
            using (var count = SqliteStorage.Command(connection, transaction, "SELECT COUNT(*) FROM offline_messages WHERE host = $host AND username = $user"))
            {
                count.Parameters.AddWithValue("$host", host);
                count.Parameters.AddWithValue("$user", user);
                if (Convert.ToInt64(count.ExecuteScalar(), CultureInfo.InvariantCulture) >= quota)
                {
                    return false;
                }
            }

            using var insert = SqliteStorage.Command(connection, transaction, """
                INSERT INTO offline_messages (host, username, xml, stored_at) VALUES ($host, $user, $xml, $at)
                """);
            insert.Parameters.AddWithValue("$host", host);
            insert.Parameters.AddWithValue("$user", user);
            insert.Parameters.AddWithValue("$xml", xml);
            insert.Parameters.AddWithValue("$at", storedAt.ToUnixTimeMilliseconds());
            insert.ExecuteNonQuery();
            return true;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<OfflineMessage>> LoadAsync(string host, string user, CancellationToken cancellationToken = default) =>
        storage.ReadAsync<IReadOnlyList<OfflineMessage>>(connection =>
        {
            using var command = SqliteStorage.Command(connection, null, """
                SELECT id, xml, stored_at FROM offline_messages WHERE host = $host AND username = $user ORDER BY id
                """);
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            using var reader = command.ExecuteReader();
            var messages = new List<OfflineMessage>();
            while (reader.Read())
            {
                messages.Add(new OfflineMessage(reader.GetInt64(0), reader.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2))));
            }

            return messages;
        }, cancellationToken);

    public Task DeleteAsync(string host, string user, IReadOnlyCollection<long> ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0)
        {
            return Task.CompletedTask;
        }

        return storage.WriteAsync((connection, transaction) =>
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

    public Task<int> CountAsync(string host, string user, CancellationToken cancellationToken = default) =>
        storage.ReadAsync(connection =>
        {
            using var command = SqliteStorage.Command(connection, null, "SELECT COUNT(*) FROM offline_messages WHERE host = $host AND username = $user");
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
        }, cancellationToken);
}
