using Starling.Server.Configuration;
using Starling.Server.Storage;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Admin;

/// <summary>An admin operation that cannot be done, with the one line that tells the admin why.</summary>
public sealed class AdminException(string message) : Exception(message);

/// <summary>
/// Account administration shared by the `starling` commands and tests: the same validation and the same storage
/// code as the server, so an account created here is one the server accepts.
/// </summary>
public sealed class AccountAdmin(LoadedConfiguration config, IStorage storage)
{
    /// <summary>Parses user@host, checks the host is served and the JID is a bare account address.</summary>
    public Jid ParseAccount(string text)
    {
        if (!Jid.TryParse(text, out var jid, out var error))
            throw new AdminException($"'{text}' is not a valid JID: {error}");
        if (jid.Local is null)
            throw new AdminException($"'{text}' has no user part; write it as user@{jid.Domain}");
        if (jid.Resource is not null)
            throw new AdminException($"'{text}' has a resource; accounts are bare JIDs like {jid.Bare}");
        if (config.FindHost(jid.Domain) is null)
            throw new AdminException($"host '{jid.Domain}' is not served by this server (configured: {string.Join(", ", config.Options.Hosts.Select(h => h.Name))}); add it to Hosts in the config");
        return jid;
    }

    public static (ScramCredential Sha1, ScramCredential Sha256) CreateCredentials(string password, int iterations = ScramCredential.DefaultIterations)
    {
        if (password.Length == 0) throw new AdminException("the password is empty");
        try
        {
            return (ScramCredential.Create(ScramHash.Sha1, password, iterations), ScramCredential.Create(ScramHash.Sha256, password, iterations));
        }
        catch (ArgumentException ex)
        {
            throw new AdminException($"the password cannot be used: {ex.Message}");
        }
    }

    public async Task AddUserAsync(Jid jid, string password)
    {
        var (sha1, sha256) = CreateCredentials(password);
        var account = new StoredAccount(jid.Domain, jid.Local!, sha1, sha256, DateTimeOffset.UtcNow);
        if (!await storage.Accounts.CreateAsync(account))
            throw new AdminException($"user {jid} already exists; use `starling passwd {jid}` to change the password");
    }

    public async Task SetPasswordAsync(Jid jid, string password)
    {
        var (sha1, sha256) = CreateCredentials(password);
        if (!await storage.Accounts.SetCredentialsAsync(jid.Domain, jid.Local!, sha1, sha256))
            throw new AdminException($"user {jid} does not exist; create it with `starling adduser {jid}`");
    }

    public async Task DeleteUserAsync(Jid jid)
    {
        if (!await storage.Accounts.DeleteAsync(jid.Domain, jid.Local!))
            throw new AdminException($"user {jid} does not exist");
    }

    /// <summary>
    /// Bulk import of `user,password` lines (user is a bare JID, or a localpart when <paramref name="defaultHost"/> is
    /// given). Every line is validated before anything is written; keys are derived on all cores and written in
    /// batches, one transaction each. Existing accounts are kept unchanged and counted.
    /// </summary>
    public async Task<(int Created, int Existing)> ImportAsync(TextReader input, string? defaultHost, int iterations, Action<int>? progress = null)
    {
        var entries = new List<(Jid Jid, string Password)>();
        var seen = new HashSet<Jid>();
        int lineNumber = 0;
        string? line;
        while ((line = await input.ReadLineAsync()) is not null)
        {
            lineNumber++;
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int comma = line.IndexOf(',', StringComparison.Ordinal);
            if (comma <= 0) throw new AdminException($"line {lineNumber}: expected user,password");
            var user = line[..comma].Trim();
            var password = line[(comma + 1)..];
            if (!user.Contains('@', StringComparison.Ordinal))
            {
                if (defaultHost is null) throw new AdminException($"line {lineNumber}: '{user}' has no host; write user@host or pass --host");
                user += "@" + defaultHost;
            }
            Jid jid;
            try
            {
                jid = ParseAccount(user);
            }
            catch (AdminException ex)
            {
                throw new AdminException($"line {lineNumber}: {ex.Message}");
            }
            if (password.Length == 0) throw new AdminException($"line {lineNumber}: the password of {jid} is empty");
            if (!Xmpp.Sasl.SaslPrep.TryNormalize(password, out _, out var why)) throw new AdminException($"line {lineNumber}: the password of {jid} cannot be used: {why}");
            if (!seen.Add(jid)) throw new AdminException($"line {lineNumber}: {jid} is listed twice");
            entries.Add((jid, password));
        }

        int created = 0, done = 0;
        const int Batch = 5000;
        for (int start = 0; start < entries.Count; start += Batch)
        {
            int count = Math.Min(Batch, entries.Count - start);
            var accounts = new StoredAccount[count];
            var now = DateTimeOffset.UtcNow;
            Parallel.For(0, count, i =>
            {
                var (jid, password) = entries[start + i];
                var (sha1, sha256) = CreateCredentials(password, iterations);
                accounts[i] = new StoredAccount(jid.Domain, jid.Local!, sha1, sha256, now);
            });
            created += await storage.Accounts.CreateManyAsync(accounts);
            done += count;
            progress?.Invoke(done);
        }
        return (created, entries.Count - created);
    }

    public async Task<IReadOnlyList<string>> ListUsersAsync(string? host)
    {
        var result = new List<string>();
        IEnumerable<string> hosts;
        if (host is null) hosts = config.Options.Hosts.Select(h => h.Name);
        else
        {
            if (!Jid.TryNormalizeDomain(host, out var normalized) || config.FindHost(normalized) is null)
                throw new AdminException($"host '{host}' is not served by this server (configured: {string.Join(", ", config.Options.Hosts.Select(h => h.Name))})");
            hosts = [normalized];
        }
        foreach (var h in hosts)
        {
            foreach (var user in await storage.Accounts.ListAsync(h)) result.Add(user + "@" + h);
        }
        return result;
    }
}
