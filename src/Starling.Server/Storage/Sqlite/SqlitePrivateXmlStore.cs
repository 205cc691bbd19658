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

    public Task SetAsync(string host, string user, string name, string ns, string xml, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(xml);
        return storage.WriteAsync((connection, transaction) =>
        {
            using var command = SqliteStorage.Command(connection, transaction, """
                INSERT INTO private_xml (host, username, ns, name, xml) VALUES ($host, $user, $ns, $name, $xml)
                ON CONFLICT (host, username, ns, name) DO UPDATE SET xml = excluded.xml
                """);
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            command.Parameters.AddWithValue("$ns", ns);
            command.Parameters.AddWithValue("$name", name);
            command.Parameters.AddWithValue("$xml", xml);
            return command.ExecuteNonQuery();
        }, cancellationToken);
    }
}
