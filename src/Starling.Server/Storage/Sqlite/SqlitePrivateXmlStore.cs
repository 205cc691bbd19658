namespace Starling.Server.Storage.Sqlite;

internal sealed class SqlitePrivateXmlStore(SqliteStorage storage) : IPrivateXmlStore
{
    public Task<string?> GetAsync(string host, string user, string name, string ns, CancellationToken cancellationToken = default) =>
        storage.ReadAsync(connection =>
        {
            using var command = SqliteStorage.Command(connection, null, """
                SELECT xml FROM private_xml WHERE host = $host AND username = $user AND ns = $ns AND name = $name
                """);
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            command.Parameters.AddWithValue("$ns", ns);
            command.Parameters.AddWithValue("$name", name);
            return command.ExecuteScalar() as string;
        }, cancellationToken);

    public Task<bool> SetAsync(string host, string user, string name, string ns, string xml, int maxFragments = int.MaxValue, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(xml);
        return storage.WriteAsync(host, user, (connection, transaction) =>
        {
            // The quota is checked in the write transaction, so concurrent sets cannot both take the last place.
            if (maxFragments < int.MaxValue)
            {
                using var count = SqliteStorage.Command(connection, transaction, """
                    SELECT COUNT(*), EXISTS (SELECT 1 FROM private_xml WHERE host = $host AND username = $user AND ns = $ns AND name = $name)
                    FROM private_xml WHERE host = $host AND username = $user
                    """);
                count.Parameters.AddWithValue("$host", host);
                count.Parameters.AddWithValue("$user", user);
                count.Parameters.AddWithValue("$ns", ns);
                count.Parameters.AddWithValue("$name", name);
                using var reader = count.ExecuteReader();
                reader.Read();
                if (reader.GetInt64(1) == 0 && reader.GetInt64(0) >= maxFragments)
                {
                    return false;
                }
            }

            using var command = SqliteStorage.Command(connection, transaction, """
                INSERT INTO private_xml (host, username, ns, name, xml) VALUES ($host, $user, $ns, $name, $xml)
                ON CONFLICT (host, username, ns, name) DO UPDATE SET xml = excluded.xml
                """);
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            command.Parameters.AddWithValue("$ns", ns);
            command.Parameters.AddWithValue("$name", name);
            command.Parameters.AddWithValue("$xml", xml);
            command.ExecuteNonQuery();
            return true;
        }, cancellationToken);
    }
}
