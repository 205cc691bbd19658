using Microsoft.Data.Sqlite;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Storage.Sqlite;

internal sealed class SqliteAccountStore(SqliteStorage storage) : IAccountStore
{
    private const string Sha1Name = "SHA-1";
    private const string Sha256Name = "SHA-256";

    private const string InsertAccountSql =
        "INSERT OR IGNORE INTO accounts (host, username, created_at) VALUES ($host, $user, $created)";

    private const string UpsertCredentialSql = """
        INSERT INTO scram_credentials (host, username, hash, salt, iterations, stored_key, server_key)
        VALUES ($host, $user, $hash, $salt, $iterations, $stored_key, $server_key)
        ON CONFLICT (host, username, hash) DO UPDATE SET
            salt = excluded.salt, iterations = excluded.iterations,
            stored_key = excluded.stored_key, server_key = excluded.server_key
        """;

    public Task<StoredAccount?> GetAsync(string host, string user, CancellationToken cancellationToken = default) =>
        storage.ReadAsync(connection =>
        {
            using var command = SqliteStorage.Command(connection, null, """
                SELECT a.created_at, c.hash, c.salt, c.iterations, c.stored_key, c.server_key
                FROM accounts a
                JOIN scram_credentials c ON c.host = a.host AND c.username = a.username
                WHERE a.host = $host AND a.username = $user
                """);
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            using var reader = command.ExecuteReader();
            long createdAt = 0;
            ScramCredential? sha1 = null;
            ScramCredential? sha256 = null;
            while (reader.Read())
            {
                createdAt = reader.GetInt64(0);
                string hashName = reader.GetString(1);
                var hash = hashName switch
                {
                    Sha1Name => ScramHash.Sha1,
                    Sha256Name => ScramHash.Sha256,
                    _ => (ScramHash?)null, // a hash a newer build added; not ours to use
                };
                if (hash is null)
                {
                    continue;
                }

                var credential = new ScramCredential(hash.Value, (byte[])reader[2], reader.GetInt32(3), (byte[])reader[4], (byte[])reader[5]);
                if (hash == ScramHash.Sha1)
                {
                    sha1 = credential;
                }
                else
                {
                    sha256 = credential;
                }
            }

            // Both are always written together; a row missing means no usable account.
            return sha1 is null || sha256 is null
                ? null
                : new StoredAccount(host, user, sha1, sha256, DateTimeOffset.FromUnixTimeMilliseconds(createdAt));
        }, cancellationToken);

    public Task<bool> CreateAsync(StoredAccount account, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(account);
        return storage.WriteAsync(account.Host, account.User, (connection, transaction) =>
        {
            using var inserter = new Inserter(connection, transaction);
            return inserter.Insert(account);
        }, cancellationToken);
    }

    public Task<int> CreateManyAsync(IEnumerable<StoredAccount> accounts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(accounts);
        return storage.WriteAsync((connection, transaction) =>
        {
            using var inserter = new Inserter(connection, transaction);
            int created = 0;
            foreach (var account in accounts)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (inserter.Insert(account))
                {
                    created++;
                }
            }

            return created;
        }, cancellationToken);
    }

    public Task<bool> SetCredentialsAsync(string host, string user, ScramCredential sha1, ScramCredential sha256, CancellationToken cancellationToken = default)
    {
        CheckHash(sha1, ScramHash.Sha1);
        CheckHash(sha256, ScramHash.Sha256);
        return storage.WriteAsync(host, user, (connection, transaction) =>
        {
            using (var exists = SqliteStorage.Command(connection, transaction, "SELECT 1 FROM accounts WHERE host = $host AND username = $user"))
            {
                exists.Parameters.AddWithValue("$host", host);
                exists.Parameters.AddWithValue("$user", user);
                if (exists.ExecuteScalar() is null)
                {
                    return false;
                }
            }

            using var upsert = new CredentialWriter(connection, transaction);
            upsert.Write(host, user, sha1);
            upsert.Write(host, user, sha256);
            return true;
        }, cancellationToken);
    }

    public Task<bool> DeleteAsync(string host, string user, CancellationToken cancellationToken = default) =>
        storage.WriteAsync(host, user, (connection, transaction) =>
        {
            // Every per-user table references the account with ON DELETE CASCADE (migration 2): credentials, roster,
            // private XML, offline messages and their quarantine all go with the account row, in this transaction.
            using var command = SqliteStorage.Command(connection, transaction, "DELETE FROM accounts WHERE host = $host AND username = $user");
            command.Parameters.AddWithValue("$host", host);
            command.Parameters.AddWithValue("$user", user);
            int deleted = command.ExecuteNonQuery();
            return deleted > 0;
        }, cancellationToken);

    public Task<IReadOnlyList<string>> ListAsync(string host, CancellationToken cancellationToken = default) =>
        storage.ReadAsync<IReadOnlyList<string>>(connection =>
        {
            using var command = SqliteStorage.Command(connection, null, "SELECT username FROM accounts WHERE host = $host ORDER BY username");
            command.Parameters.AddWithValue("$host", host);
            using var reader = command.ExecuteReader();
            var users = new List<string>();
            while (reader.Read())
            {
                users.Add(reader.GetString(0));
            }

            return users;
        }, cancellationToken);

    private static void CheckHash(ScramCredential credential, ScramHash expected)
    {
        ArgumentNullException.ThrowIfNull(credential);
        if (credential.Hash != expected)
        {
            throw new ArgumentException($"expected a {expected} credential, got {credential.Hash}", nameof(credential));
        }
    }

    private static string HashName(ScramHash hash) => hash switch
    {
        ScramHash.Sha1 => Sha1Name,
        ScramHash.Sha256 => Sha256Name,
        _ => throw new ArgumentOutOfRangeException(nameof(hash), hash, "unknown SCRAM hash"),
    };

    /// <summary>Prepared statements for inserting accounts, reused across a batch.</summary>
    private sealed class Inserter : IDisposable
    {
        private readonly SqliteCommand _account;
        private readonly SqliteParameter _host;
        private readonly SqliteParameter _user;
        private readonly SqliteParameter _created;
        private readonly CredentialWriter _credentials;

        public Inserter(SqliteConnection connection, SqliteTransaction transaction)
        {
            _account = SqliteStorage.Command(connection, transaction, InsertAccountSql);
            _host = _account.Parameters.Add("$host", SqliteType.Text);
            _user = _account.Parameters.Add("$user", SqliteType.Text);
            _created = _account.Parameters.Add("$created", SqliteType.Integer);
            _account.Prepare();
            _credentials = new CredentialWriter(connection, transaction);
        }

        /// <summary>False if the account exists already (then nothing is written).</summary>
        public bool Insert(StoredAccount account)
        {
            ArgumentNullException.ThrowIfNull(account);
            CheckHash(account.Sha1, ScramHash.Sha1);
            CheckHash(account.Sha256, ScramHash.Sha256);
            _host.Value = account.Host;
            _user.Value = account.User;
            _created.Value = account.CreatedAt.ToUnixTimeMilliseconds();
            if (_account.ExecuteNonQuery() == 0)
            {
                return false;
            }

            _credentials.Write(account.Host, account.User, account.Sha1);
            _credentials.Write(account.Host, account.User, account.Sha256);
            return true;
        }

        public void Dispose()
        {
            _account.Dispose();
            _credentials.Dispose();
        }
    }

    /// <summary>Prepared upsert of one SCRAM credential row.</summary>
    private sealed class CredentialWriter : IDisposable
    {
        private readonly SqliteCommand _command;
        private readonly SqliteParameter _host;
        private readonly SqliteParameter _user;
        private readonly SqliteParameter _hash;
        private readonly SqliteParameter _salt;
        private readonly SqliteParameter _iterations;
        private readonly SqliteParameter _storedKey;
        private readonly SqliteParameter _serverKey;

        public CredentialWriter(SqliteConnection connection, SqliteTransaction transaction)
        {
            _command = SqliteStorage.Command(connection, transaction, UpsertCredentialSql);
            _host = _command.Parameters.Add("$host", SqliteType.Text);
            _user = _command.Parameters.Add("$user", SqliteType.Text);
            _hash = _command.Parameters.Add("$hash", SqliteType.Text);
            _salt = _command.Parameters.Add("$salt", SqliteType.Blob);
            _iterations = _command.Parameters.Add("$iterations", SqliteType.Integer);
            _storedKey = _command.Parameters.Add("$stored_key", SqliteType.Blob);
            _serverKey = _command.Parameters.Add("$server_key", SqliteType.Blob);
            _command.Prepare();
        }

        public void Write(string host, string user, ScramCredential credential)
        {
            _host.Value = host;
            _user.Value = user;
            _hash.Value = HashName(credential.Hash);
            _salt.Value = credential.Salt;
            _iterations.Value = credential.Iterations;
            _storedKey.Value = credential.StoredKey;
            _serverKey.Value = credential.ServerKey;
            _command.ExecuteNonQuery();
        }

        public void Dispose() => _command.Dispose();
    }
}
