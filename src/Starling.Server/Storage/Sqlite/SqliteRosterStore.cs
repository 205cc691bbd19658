using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Starling.Server.Storage.Sqlite;

/// <summary>
/// Roster items plus a per-user version. Versions are drawn from one database-wide counter, so a user's
/// version only ever increases (also across account deletion and re-creation); "0" means "never changed".
/// </summary>
internal sealed class SqliteRosterStore(SqliteStorage storage) : IRosterStore
{
    /// <summary>Version of a roster that was never written.</summary>
    public const string EmptyVersion = "0";

    public Task<RosterSnapshot> GetAsync(string host, string user, CancellationToken cancellationToken = default) =>
        storage.ReadAsync(connection =>
        {
            // One read transaction so the version matches the items.
            using var transaction = connection.BeginTransaction(deferred: true);
            string version = EmptyVersion;
            using (var read = SqliteStorage.Command(connection, transaction, "SELECT version FROM roster_versions WHERE host = $host AND username = $user"))
            {
                read.Parameters.AddWithValue("$host", host);
                read.Parameters.AddWithValue("$user", user);
                if (read.ExecuteScalar() is long value)
                {
                    version = Render(value);
                }
            }

            var items = new List<RosterItem>();
            using (var read = SqliteStorage.Command(connection, transaction, """
                SELECT jid, name, subscription, ask, groups_json FROM roster_items
                WHERE host = $host AND username = $user ORDER BY jid
                """))
            {
                read.Parameters.AddWithValue("$host", host);
                read.Parameters.AddWithValue("$user", user);
                using var reader = read.ExecuteReader();
                while (reader.Read())
                {
                    items.Add(new RosterItem(
                        reader.GetString(0),
                        reader.IsDBNull(1) ? null : reader.GetString(1),
                        reader.GetString(2),
                        reader.GetInt64(3) != 0,
                        JsonSerializer.Deserialize(reader.GetString(4), RosterJson.Default.StringArray) ?? []));
                }
            }

            transaction.Commit();
            return new RosterSnapshot(version, items);
        }, cancellationToken);

    public Task<string?> SetItemAsync(string host, string user, RosterItem item, int maxItems = int.MaxValue, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(item);
        string groups = JsonSerializer.Serialize(item.Groups?.ToArray() ?? [], RosterJson.Default.StringArray);
        return storage.WriteAsync<string?>(host, user, (connection, transaction) =>
        {
            // The quota is checked in the write transaction, so two resources adding at once cannot both take the last place.
            if (maxItems < int.MaxValue)
            {
                using var count = SqliteStorage.Command(connection, transaction, """
                    SELECT COUNT(*), EXISTS (SELECT 1 FROM roster_items WHERE host = $host AND username = $user AND jid = $jid)
                    FROM roster_items WHERE host = $host AND username = $user
                    """);
                count.Parameters.AddWithValue("$host", host);
                count.Parameters.AddWithValue("$user", user);
                count.Parameters.AddWithValue("$jid", item.Jid);
                using var reader = count.ExecuteReader();
                reader.Read();
                if (reader.GetInt64(1) == 0 && reader.GetInt64(0) >= maxItems)
                {
                    return null;
                }
            }

            using (var upsert = SqliteStorage.Command(connection, transaction, """
                INSERT INTO roster_items (host, username, jid, name, subscription, ask, groups_json)
                VALUES ($host, $user, $jid, $name, $subscription, $ask, $groups)
                ON CONFLICT (host, username, jid) DO UPDATE SET
                    name = excluded.name, subscription = excluded.subscription,
                    ask = excluded.ask, groups_json = excluded.groups_json
                """))
            {
                upsert.Parameters.AddWithValue("$host", host);
                upsert.Parameters.AddWithValue("$user", user);
                upsert.Parameters.AddWithValue("$jid", item.Jid);
                upsert.Parameters.AddWithValue("$name", (object?)item.Name ?? DBNull.Value);
                upsert.Parameters.AddWithValue("$subscription", item.Subscription);
                upsert.Parameters.AddWithValue("$ask", item.AskSubscribe ? 1 : 0);
                upsert.Parameters.AddWithValue("$groups", groups);
                upsert.ExecuteNonQuery();
            }

            return Bump(connection, transaction, host, user);
        }, cancellationToken);
    }

    public Task<string?> RemoveItemAsync(string host, string user, string jid, CancellationToken cancellationToken = default) =>
        storage.WriteAsync<string?>(host, user, (connection, transaction) =>
        {
            using (var delete = SqliteStorage.Command(connection, transaction, "DELETE FROM roster_items WHERE host = $host AND username = $user AND jid = $jid"))
            {
                delete.Parameters.AddWithValue("$host", host);
                delete.Parameters.AddWithValue("$user", user);
                delete.Parameters.AddWithValue("$jid", jid);
                if (delete.ExecuteNonQuery() == 0)
                {
                    return null;
                }
            }

            return Bump(connection, transaction, host, user);
        }, cancellationToken);

    private static string Bump(SqliteConnection connection, SqliteTransaction transaction, string host, string user)
    {
        long version;
        using (var next = SqliteStorage.Command(connection, transaction, "UPDATE counters SET value = value + 1 WHERE name = 'roster_version' RETURNING value"))
        {
            version = (long)next.ExecuteScalar()!;
        }

        using (var store = SqliteStorage.Command(connection, transaction, """
            INSERT INTO roster_versions (host, username, version) VALUES ($host, $user, $version)
            ON CONFLICT (host, username) DO UPDATE SET version = excluded.version
            """))
        {
            store.Parameters.AddWithValue("$host", host);
            store.Parameters.AddWithValue("$user", user);
            store.Parameters.AddWithValue("$version", version);
            store.ExecuteNonQuery();
        }

        return Render(version);
    }

    private static string Render(long version) => version.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Source-generated JSON for the groups column (no reflection: the server is published ahead-of-time).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class RosterJson : System.Text.Json.Serialization.JsonSerializerContext;
