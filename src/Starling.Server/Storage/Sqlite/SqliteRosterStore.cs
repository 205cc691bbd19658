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
                SELECT jid, name, subscription, ask, groups_json, approved FROM roster_items
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
                        JsonSerializer.Deserialize(reader.GetString(4), RosterJson.Default.StringArray) ?? [],
                        reader.GetInt64(5) != 0));
                }
            }

            transaction.Commit();
            return new RosterSnapshot(version, items);
        }, cancellationToken);

    public Task<string?> SetItemAsync(string host, string user, RosterItem item, int maxItems = int.MaxValue, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(item);
        return storage.WriteAsync<string?>(host, user, (connection, transaction) =>
        {
            // The quota is checked in the write transaction, so two resources adding at once cannot both take the last place.
            if (maxItems < int.MaxValue && ReadItem(connection, transaction, host, user, item.Jid) is null && Count(connection, transaction, "roster_items", host, user) >= maxItems)
            {
                return null;
            }

            Upsert(connection, transaction, host, user, item);
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

    public Task<(RosterItem Item, string Version)?> SetItemDetailsAsync(string host, string user, string jid, string? name, IReadOnlyList<string> groups, int maxItems = int.MaxValue, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var groupList = new string[groups.Count];
        for (int i = 0; i < groupList.Length; i++) groupList[i] = groups[i];
        return storage.WriteAsync<(RosterItem, string)?>(host, user, (connection, transaction) =>
        {
            var existing = ReadItem(connection, transaction, host, user, jid);
            if (existing is null && maxItems < int.MaxValue && Count(connection, transaction, "roster_items", host, user) >= maxItems)
            {
                return null;
            }

            // The subscription state is the server's (RFC 6121 §2.1.2.5: a client's values are ignored): kept as stored.
            var item = existing is null
                ? new RosterItem(jid, name, "none", false, groupList)
                : existing with { Name = name, Groups = groupList };
            Upsert(connection, transaction, host, user, item);
            return (item, Bump(connection, transaction, host, user));
        }, cancellationToken);
    }

    public Task<RosterRemoval?> RemoveContactAsync(string host, string user, string jid, CancellationToken cancellationToken = default) =>
        storage.WriteAsync<RosterRemoval?>(host, user, (connection, transaction) =>
        {
            var before = ReadState(connection, transaction, host, user, jid, out _);
            if (!before.InRoster)
            {
                return null;
            }

            DeleteRow(connection, transaction, "roster_items", host, user, jid);
            DeleteRow(connection, transaction, "roster_pending_in", host, user, jid);
            return new RosterRemoval(before, Bump(connection, transaction, host, user));
        }, cancellationToken);

    public Task<ContactState> GetContactAsync(string host, string user, string jid, CancellationToken cancellationToken = default) =>
        storage.ReadAsync(connection =>
        {
            using var transaction = connection.BeginTransaction(deferred: true);
            var state = ReadState(connection, transaction, host, user, jid, out _);
            transaction.Commit();
            return state;
        }, cancellationToken);

    public Task<SubscriptionUpdate> UpdateSubscriptionAsync(string host, string user, string jid, Func<ContactState, ContactState> transition, string? requestXml, int maxItems, int maxPending, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transition);
        return storage.WriteAsync(host, user, (connection, transaction) =>
        {
            var before = ReadState(connection, transaction, host, user, jid, out var item);
            var after = transition(before);
            if (after == before)
            {
                return new SubscriptionUpdate(SubscriptionOutcome.Unchanged, before, after, item, null);
            }

            // Limits are checked in the write transaction, so concurrent requests cannot both take the last place.
            if (after.InRoster && !before.InRoster && Count(connection, transaction, "roster_items", host, user) >= maxItems)
            {
                return new SubscriptionUpdate(SubscriptionOutcome.RosterFull, before, before, item, null);
            }

            if (after.PendingIn && !before.PendingIn && Count(connection, transaction, "roster_pending_in", host, user) >= maxPending)
            {
                return new SubscriptionUpdate(SubscriptionOutcome.PendingFull, before, before, item, null);
            }

            if (after.PendingIn != before.PendingIn)
            {
                if (after.PendingIn)
                {
                    using var insert = SqliteStorage.Command(connection, transaction, """
                        INSERT INTO roster_pending_in (host, username, jid, xml, received_at) VALUES ($host, $user, $jid, $xml, $at)
                        ON CONFLICT (host, username, jid) DO UPDATE SET xml = excluded.xml, received_at = excluded.received_at
                        """);
                    insert.Parameters.AddWithValue("$host", host);
                    insert.Parameters.AddWithValue("$user", user);
                    insert.Parameters.AddWithValue("$jid", jid);
                    insert.Parameters.AddWithValue("$xml", requestXml ?? "<presence xmlns='jabber:client' type='subscribe'/>");
                    insert.Parameters.AddWithValue("$at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                    insert.ExecuteNonQuery();
                }
                else
                {
                    DeleteRow(connection, transaction, "roster_pending_in", host, user, jid);
                }
            }

            string? version = null;
            if (after with { PendingIn = false } != before with { PendingIn = false })
            {
                if (after.InRoster)
                {
                    item = (item ?? new RosterItem(jid, null, "none", false, [])) with
                    {
                        Subscription = after.Subscription,
                        AskSubscribe = after.AskSubscribe,
                        Approved = after.Approved,
                    };
                    Upsert(connection, transaction, host, user, item);
                }
                else
                {
                    DeleteRow(connection, transaction, "roster_items", host, user, jid);
                    item = null;
                }

                version = Bump(connection, transaction, host, user);
            }

            return new SubscriptionUpdate(SubscriptionOutcome.Changed, before, after, item, version);
        }, cancellationToken);
    }

    public Task<IReadOnlyList<PendingSubscription>> GetPendingInAsync(string host, string user, CancellationToken cancellationToken = default) =>
        storage.ReadAsync<IReadOnlyList<PendingSubscription>>(connection =>
        {
            var pending = new List<PendingSubscription>();
            using var read = SqliteStorage.Command(connection, null, """
                SELECT jid, xml FROM roster_pending_in WHERE host = $host AND username = $user ORDER BY received_at, jid
                """);
            read.Parameters.AddWithValue("$host", host);
            read.Parameters.AddWithValue("$user", user);
            using var reader = read.ExecuteReader();
            while (reader.Read())
            {
                pending.Add(new PendingSubscription(reader.GetString(0), reader.GetString(1)));
            }

            return pending;
        }, cancellationToken);

    private static RosterItem? ReadItem(SqliteConnection connection, SqliteTransaction transaction, string host, string user, string jid)
    {
        using var read = SqliteStorage.Command(connection, transaction, """
            SELECT name, subscription, ask, groups_json, approved FROM roster_items
            WHERE host = $host AND username = $user AND jid = $jid
            """);
        read.Parameters.AddWithValue("$host", host);
        read.Parameters.AddWithValue("$user", user);
        read.Parameters.AddWithValue("$jid", jid);
        using var reader = read.ExecuteReader();
        if (!reader.Read())
        {
            return null;
        }

        return new RosterItem(
            jid,
            reader.IsDBNull(0) ? null : reader.GetString(0),
            reader.GetString(1),
            reader.GetInt64(2) != 0,
            JsonSerializer.Deserialize(reader.GetString(3), RosterJson.Default.StringArray) ?? [],
            reader.GetInt64(4) != 0);
    }

    private static ContactState ReadState(SqliteConnection connection, SqliteTransaction transaction, string host, string user, string jid, out RosterItem? item)
    {
        item = ReadItem(connection, transaction, host, user, jid);
        bool pendingIn;
        using (var read = SqliteStorage.Command(connection, transaction, "SELECT 1 FROM roster_pending_in WHERE host = $host AND username = $user AND jid = $jid"))
        {
            read.Parameters.AddWithValue("$host", host);
            read.Parameters.AddWithValue("$user", user);
            read.Parameters.AddWithValue("$jid", jid);
            pendingIn = read.ExecuteScalar() is not null;
        }

        if (item is null)
        {
            return ContactState.Absent with { PendingIn = pendingIn };
        }

        var (to, from) = ContactState.Directions(item.Subscription);
        return new ContactState(true, to, from, item.AskSubscribe, pendingIn, item.Approved);
    }

    private static void Upsert(SqliteConnection connection, SqliteTransaction transaction, string host, string user, RosterItem item)
    {
        string[] groups = new string[item.Groups.Count];
        for (int i = 0; i < groups.Length; i++) groups[i] = item.Groups[i];
        using var upsert = SqliteStorage.Command(connection, transaction, """
            INSERT INTO roster_items (host, username, jid, name, subscription, ask, groups_json, approved)
            VALUES ($host, $user, $jid, $name, $subscription, $ask, $groups, $approved)
            ON CONFLICT (host, username, jid) DO UPDATE SET
                name = excluded.name, subscription = excluded.subscription,
                ask = excluded.ask, groups_json = excluded.groups_json, approved = excluded.approved
            """);
        upsert.Parameters.AddWithValue("$host", host);
        upsert.Parameters.AddWithValue("$user", user);
        upsert.Parameters.AddWithValue("$jid", item.Jid);
        upsert.Parameters.AddWithValue("$name", (object?)item.Name ?? DBNull.Value);
        upsert.Parameters.AddWithValue("$subscription", item.Subscription);
        upsert.Parameters.AddWithValue("$ask", item.AskSubscribe ? 1 : 0);
        upsert.Parameters.AddWithValue("$groups", JsonSerializer.Serialize(groups, RosterJson.Default.StringArray));
        upsert.Parameters.AddWithValue("$approved", item.Approved ? 1 : 0);
        upsert.ExecuteNonQuery();
    }

    /// <summary>Rows of a user in <paramref name="table"/> (a constant of this class, never input).</summary>
    private static long Count(SqliteConnection connection, SqliteTransaction transaction, string table, string host, string user)
    {
        using var count = SqliteStorage.Command(connection, transaction, $"SELECT COUNT(*) FROM {table} WHERE host = $host AND username = $user");
        count.Parameters.AddWithValue("$host", host);
        count.Parameters.AddWithValue("$user", user);
        return (long)count.ExecuteScalar()!;
    }

    /// <summary>Deletes a contact's row from <paramref name="table"/> (a constant of this class, never input).</summary>
    private static void DeleteRow(SqliteConnection connection, SqliteTransaction transaction, string table, string host, string user, string jid)
    {
        using var delete = SqliteStorage.Command(connection, transaction, $"DELETE FROM {table} WHERE host = $host AND username = $user AND jid = $jid");
        delete.Parameters.AddWithValue("$host", host);
        delete.Parameters.AddWithValue("$user", user);
        delete.Parameters.AddWithValue("$jid", jid);
        delete.ExecuteNonQuery();
    }

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
