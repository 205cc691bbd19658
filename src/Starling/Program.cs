using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Cryptography.X509Certificates;
using Starling.Server;
using Starling.Server.Admin;
using Starling.Server.Configuration;
using Starling.Server.Control;
using Starling.Server.Hosting;
using Starling.Server.Storage.Sqlite;
using Starling.Server.Tls;

namespace Starling;

/// <summary>`starling`: the server and its admin commands, as prosodyctl is for Prosody.</summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        // Everything this process creates (database, -wal/-shm, keys, control socket) is owner-only from the start.
        DataPermissions.RestrictNewFiles();
        var root = BuildCommands();
        // --Section:Key=value config overrides are taken out before parsing, so they never fill an argument slot.
        var rest = new List<string>();
        foreach (var arg in args)
        {
            if (IsOverride(arg)) s_overrides.Add(arg);
            else rest.Add(arg);
        }
        try
        {
            return await root.Parse(rest.ToArray()).InvokeAsync();
        }
        catch (Exception ex) when (ex is ConfigurationException or AdminException or ListenException or Server.Storage.StorageSchemaException)
        {
            Console.Error.WriteLine($"starling: {ex.Message}");
            return 1;
        }
    }

    private static readonly Option<string?> ConfigOption = new("--config", "-c")
    {
        Description = "Config file (JSON). Default: $STARLING_CONFIG, else ./starling.json if present, else built-in defaults. Any key can be overridden with --Section:Key=value or STARLING_Section__Key.",
        Recursive = true,
    };

    private static RootCommand BuildCommands()
    {
        var root = new RootCommand("Starling XMPP server. Run `starling start` to serve; the other commands administer it (they work while it runs).");
        root.Options.Add(ConfigOption);

        var start = new Command("start", "Run the server in the foreground (Ctrl+C stops it).");
        start.SetAction((p, ct) => RunGuarded(p, () => StartAsync(p, ct)));
        root.Subcommands.Add(start);

        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Read the password from the first line of standard input instead of asking." };

        var jidArg = new Argument<string>("jid") { Description = "The account, e.g. alice@localhost" };
        var adduser = new Command("adduser", "Create an account (asks the password twice).") { jidArg, passwordStdin };
        adduser.SetAction((p, ct) => RunGuarded(p, async () =>
        {
            var (config, admin, storage) = await OpenAdminAsync(p);
            await using var _ = storage;
            var jid = admin.ParseAccount(p.GetValue(jidArg)!);
            var password = ReadPassword(p.GetValue(passwordStdin), confirm: true);
            await admin.AddUserAsync(jid, password);
            Console.WriteLine($"created {jid}");
            return 0;
        }));
        root.Subcommands.Add(adduser);

        var passwdJid = new Argument<string>("jid") { Description = "The account, e.g. alice@localhost" };
        var endSessions = new Option<bool>("--end-sessions")
        {
            Description = "Also end the account's live sessions (stream error <reset/>). Default: they stay connected, so resetting a forgotten password does not cut off the user's other clients; use it after a compromise.",
        };
        var passwd = new Command("passwd", "Change an account's password (through the running server if there is one).") { passwdJid, passwordStdin, endSessions };
        passwd.SetAction((p, ct) => RunGuarded(p, async () =>
        {
            var (config, admin, storage) = await OpenAdminAsync(p);
            await using var _ = storage;
            var jid = admin.ParseAccount(p.GetValue(passwdJid)!);
            var password = ReadPassword(p.GetValue(passwordStdin), confirm: true);
            var end = p.GetValue(endSessions);
            var answer = await AskServerAsync(config, new ControlRequest { Command = "passwd", Jid = jid.ToString(), Password = password, EndSessions = end });
            if (answer is not null)
            {
                Console.WriteLine(answer.Message);
                return 0;
            }
            await admin.SetPasswordAsync(jid, password);
            Console.WriteLine($"password of {jid} changed{(end ? " (no server is running: no sessions to end)" : "")}");
            return 0;
        }));
        root.Subcommands.Add(passwd);

        var delJid = new Argument<string>("jid") { Description = "The account, e.g. alice@localhost" };
        var deluser = new Command("deluser", "Delete an account and all its data; a running server first ends its sessions (stream error <not-authorized/>).") { delJid };
        deluser.SetAction((p, ct) => RunGuarded(p, async () =>
        {
            var (config, admin, storage) = await OpenAdminAsync(p);
            await using var _ = storage;
            var jid = admin.ParseAccount(p.GetValue(delJid)!);
            var answer = await AskServerAsync(config, new ControlRequest { Command = "deluser", Jid = jid.ToString() });
            if (answer is not null)
            {
                Console.WriteLine(answer.Message);
                return 0;
            }
            await admin.DeleteUserAsync(jid);
            Console.WriteLine($"deleted {jid}");
            return 0;
        }));
        root.Subcommands.Add(deluser);

        var importFile = new Argument<string>("file") { Description = "Lines of user,password (user@host, or a user name with --host); '-' reads standard input." };
        var importHost = new Option<string?>("--host") { Description = "Host for lines that give only a user name." };
        var iterations = new Option<int>("--iterations") { Description = "SCRAM iteration count (default 4096, the minimum RFC 7677 recommends).", DefaultValueFactory = _ => Xmpp.Sasl.ScramCredential.DefaultIterations };
        var import = new Command("import-users", "Create many accounts from a file (existing accounts are left unchanged).") { importFile, importHost, iterations };
        import.SetAction((p, ct) => RunGuarded(p, async () =>
        {
            var (config, admin, storage) = await OpenAdminAsync(p);
            await using var _ = storage;
            var path = p.GetValue(importFile)!;
            var n = p.GetValue(iterations);
            if (n < 1) throw new AdminException("--iterations must be at least 1");
            if (n < Xmpp.Sasl.ScramCredential.DefaultIterations) Console.Error.WriteLine($"warning: {n} iterations is below the 4096 RFC 7677 recommends");
            using TextReader reader = path == "-" ? Console.In : OpenText(path);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (created, existing) = await admin.ImportAsync(reader, p.GetValue(importHost), n,
                done => Console.Error.Write($"\r{done} accounts processed ({done / Math.Max(clock.Elapsed.TotalSeconds, 0.001):F0}/s)"));
            Console.Error.WriteLine();
            Console.WriteLine($"imported {created} accounts ({existing} already existed) in {clock.Elapsed.TotalSeconds:F1} s");
            return 0;
        }));
        root.Subcommands.Add(import);

        var hostArg = new Argument<string?>("host") { Description = "Only this host (default: all hosts)", Arity = ArgumentArity.ZeroOrOne };
        var users = new Command("users", "List accounts.") { hostArg };
        users.SetAction((p, ct) => RunGuarded(p, async () =>
        {
            var (config, admin, storage) = await OpenAdminAsync(p);
            await using var _ = storage;
            foreach (var u in await admin.ListUsersAsync(p.GetValue(hostArg))) Console.WriteLine(u);
            return 0;
        }));
        root.Subcommands.Add(users);

        var status = new Command("status", "Show the running server's version, uptime, connections, sessions and memory (exit code 3 when none runs).");
        status.SetAction((p, ct) => RunGuarded(p, () => StatusAsync(p)));
        root.Subcommands.Add(status);

        var reload = new Command("reload", "Make the running server re-read its certificates (as SIGHUP does); new connections get the new ones.");
        reload.SetAction((p, ct) => RunGuarded(p, () => ReloadAsync(p)));
        root.Subcommands.Add(reload);

        var check = new Command("check", "Validate the configuration, certificates, database and ports; say precisely what is wrong.");
        check.SetAction((p, ct) => RunGuarded(p, () => CheckAsync(p)));
        root.Subcommands.Add(check);

        var certHost = new Argument<string>("host") { Description = "The virtual host, e.g. localhost" };
        var force = new Option<bool>("--force") { Description = "Replace an existing certificate." };
        var generate = new Command("generate", "Generate a self-signed certificate for a host (where the config expects it).") { certHost, force };
        generate.SetAction((p, ct) => RunGuarded(p, () =>
        {
            var config = LoadConfig(p);
            var hostName = p.GetValue(certHost)!;
            if (!Xmpp.Jid.TryNormalizeDomain(hostName, out var normalized)) throw new AdminException($"'{hostName}' is not a valid domain name");
            var host = config.FindHost(normalized) ?? new HostOptions { Name = normalized };
            var certPath = config.CertificatePath(host);
            var keyPath = config.KeyPath(host);
            if ((File.Exists(certPath) || File.Exists(keyPath)) && !p.GetValue(force))
                throw new AdminException($"{certPath} already exists; add --force to replace it");
            CertificateManager.Generate(normalized, certPath, keyPath);
            Console.WriteLine($"certificate: {certPath}");
            Console.WriteLine($"key:         {keyPath}");
            if (config.FindHost(normalized) is null) Console.WriteLine($"note: {normalized} is not in Hosts; add it to the config to serve it");
            return Task.FromResult(0);
        }));
        var cert = new Command("cert", "Certificate management.") { generate };
        root.Subcommands.Add(cert);

        // --Section:Key=value config overrides reach every command; Overrides() rejects anything else.
        AllowOverrides(root);
        return root;
    }

    private static void AllowOverrides(Command command)
    {
        command.TreatUnmatchedTokensAsErrors = false;
        foreach (var sub in command.Subcommands) AllowOverrides(sub);
    }

    private static readonly List<string> s_overrides = [];

    private static readonly string[] s_ownOptions = ["--config", "--password-stdin", "--force", "--help", "--version", "--host", "--iterations", "--end-sessions"];

    private static bool IsOverride(string arg)
    {
        if (!arg.StartsWith("--", StringComparison.Ordinal)) return false;
        int eq = arg.IndexOf('=', StringComparison.Ordinal);
        return eq > 2 && !s_ownOptions.Contains(arg[..eq]);
    }

    /// <summary>The --Section:Key=value overrides; any other unmatched token is a mistake, said in one line.</summary>
    private static string[] Overrides(ParseResult p)
    {
        foreach (var token in p.UnmatchedTokens)
            throw new AdminException($"unexpected argument '{token}' (config overrides are written --Section:Key=value; see `starling --help`)");
        return [.. s_overrides];
    }

    private static LoadedConfiguration LoadConfig(ParseResult p) =>
        StarlingConfiguration.Load(p.GetValue(ConfigOption), Overrides(p));

    private static async Task<(LoadedConfiguration, AccountAdmin, SqliteStorage)> OpenAdminAsync(ParseResult p)
    {
        var config = LoadConfig(p);
        SqliteStorage? storage = null;
        try
        {
            DataPermissions.CreatePrivateDirectory(config.DataDirectory);
            storage = new SqliteStorage(config.DatabasePath);
            await storage.MigrateAsync();
            return (config, new AccountAdmin(config, storage), storage);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            if (storage is not null) await storage.DisposeAsync();
            // The data is the server's user's only (0700/0600): the usual cause is running as someone else.
            throw new AdminException($"cannot open the database {config.DatabasePath}: {ex.Message} (run starling as the user the server runs as)");
        }
    }

    /// <summary>
    /// Asks the running server through its control socket; null when none runs (the caller then works on the
    /// database itself). The server's refusal is an <see cref="AdminException"/> with its reason.
    /// </summary>
    private static async Task<ControlResponse?> AskServerAsync(LoadedConfiguration config, ControlRequest request)
    {
        var response = await ControlClient.TrySendAsync(config, request);
        if (response is { Ok: false }) throw new AdminException(response.Error ?? "the server refused the request");
        return response;
    }

    private static async Task<int> StatusAsync(ParseResult p)
    {
        var config = LoadConfig(p);
        var answer = await AskServerAsync(config, new ControlRequest { Command = "status" });
        if (answer?.Status is not { } s)
        {
            Console.Error.WriteLine($"starling: no server is running (nothing answers on {config.ControlSocketPath})");
            return 3; // LSB init scripts: "program is not running"
        }
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        Console.WriteLine($"Starling {s.Version} running (pid {s.ProcessId})");
        Console.WriteLine($"  uptime:      {Uptime(s.UptimeSeconds)}");
        Console.WriteLine($"  connections: {s.Connections}");
        Console.WriteLine($"  sessions:    {s.Sessions}");
        Console.WriteLine(string.Create(invariant, $"  memory:      {s.MemoryBytes / 1048576.0:F1} MB resident, {s.ManagedHeapBytes / 1048576.0:F1} MB managed heap"));
        if (s.Collections.Count == 3)
            Console.WriteLine(string.Create(invariant, $"  gc:          {s.Collections[0]} gen0, {s.Collections[1]} gen1, {s.Collections[2]} gen2 collections; {s.GcPauseMilliseconds:F1} ms paused in all"));
        Console.WriteLine(string.Create(invariant, $"  allocated:   {s.AllocatedBytes / 1048576.0:F1} MB since start; last young collection: {s.LastYoungPauseMilliseconds:F1} ms, heap {s.LastYoungHeapBeforeBytes / 1048576.0:F1} MB before, {s.LastYoungPromotedBytes / 1048576.0:F1} MB promoted"));
        Console.WriteLine($"  hosts:       {string.Join(", ", s.Hosts)}");
        return 0;
    }

    private static async Task<int> ReloadAsync(ParseResult p)
    {
        var config = LoadConfig(p);
        // Not AskServerAsync: a partial failure still carries every host's line, which the admin needs to see.
        var answer = await ControlClient.TrySendAsync(config, new ControlRequest { Command = "reload" });
        if (answer is null)
        {
            Console.Error.WriteLine($"starling: no server is running (nothing answers on {config.ControlSocketPath}); the certificates are read when it starts");
            return 3;
        }
        foreach (var line in answer.Lines ?? []) Console.WriteLine(line);
        if (answer.Ok) return 0;
        Console.Error.WriteLine($"starling: {answer.Error}");
        return 1;
    }

    private static string Uptime(long seconds)
    {
        var t = TimeSpan.FromSeconds(seconds);
        if (t.TotalDays >= 1) return $"{(int)t.TotalDays} d {t.Hours} h {t.Minutes} min";
        if (t.TotalHours >= 1) return $"{t.Hours} h {t.Minutes} min {t.Seconds} s";
        return t.TotalMinutes >= 1 ? $"{t.Minutes} min {t.Seconds} s" : $"{t.Seconds} s";
    }

    private static StreamReader OpenText(string path)
    {
        try
        {
            return new StreamReader(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AdminException($"cannot read {path}: {ex.Message}");
        }
    }

    private static async Task<int> RunGuarded(ParseResult p, Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception ex) when (ex is ConfigurationException or AdminException or ListenException or Server.Storage.StorageSchemaException)
        {
            Console.Error.WriteLine($"starling: {ex.Message}");
            return 1;
        }
    }

    private static async Task<int> StartAsync(ParseResult p, CancellationToken ct)
    {
        var config = LoadConfig(p);
        var started = System.Diagnostics.Stopwatch.StartNew();
        Console.WriteLine($"Starling {Version} starting");
        Console.WriteLine($"  config:   {config.FilePath ?? "(built-in defaults)"}");
        Console.WriteLine($"  data:     {config.DataDirectory}");
        Console.WriteLine($"  database: {config.DatabasePath}");
        await using var host = await StarlingHost.StartAsync(config, report: line => Console.WriteLine("  " + line));
        foreach (var h in config.Options.Hosts)
        {
            var c = host.Server.Certificates.Get(h.Name)!;
            Console.WriteLine($"  host {h.Name}: certificate {c.Path}{(h.RequireEncryption ? "" : " (plaintext allowed)")}");
        }
        Console.WriteLine($"  modules: {string.Join(", ", host.Server.Modules.Enabled)}");
        foreach (var ep in host.C2sEndPoints) Console.WriteLine($"  listening for clients (c2s) on {Describe(ep)}");
        Console.WriteLine($"ready in {started.ElapsedMilliseconds} ms; Ctrl+C to stop");
        await host.WaitForShutdownAsync(ct);
        Console.WriteLine("stopping");
        return 0;
    }

    private static string Describe(IPEndPoint ep) =>
        ep.Address.Equals(IPAddress.IPv6Any) ? $"port {ep.Port} (all addresses)" : ep.ToString();

    private static async Task<int> CheckAsync(ParseResult p)
    {
        int problems = 0;
        void Bad(string message) { problems++; Console.WriteLine("problem: " + message); }
        LoadedConfiguration config;
        try
        {
            config = LoadConfig(p);
        }
        catch (ConfigurationException ex)
        {
            Console.WriteLine("problem: " + ex.Message);
            return 1;
        }
        Console.WriteLine($"ok: configuration {config.FilePath ?? "(built-in defaults)"}");
        foreach (var warning in config.Warnings) Console.WriteLine("warning: " + warning);
        foreach (var host in config.Options.Hosts)
            Console.WriteLine($"ok: host {host.Name}: modules {string.Join(", ", Server.Modules.ModuleCatalog.EnabledNames(config.Options, host))}");
        foreach (var host in config.Options.Hosts)
        {
            var certPath = config.CertificatePath(host);
            var keyPath = config.KeyPath(host);
            if (!File.Exists(certPath) || !File.Exists(keyPath))
            {
                if (string.IsNullOrWhiteSpace(host.Certificate)) Console.WriteLine($"note: no certificate for {host.Name} yet; one is generated at first start (or run `starling cert generate {host.Name}`)");
                else Bad($"host {host.Name}: {(File.Exists(certPath) ? keyPath : certPath)} does not exist (Hosts: Certificate/Key)");
                continue;
            }
            try
            {
                using var cert = CertificateManager.LoadPem(certPath, keyPath);
                var now = DateTime.Now;
                if (cert.NotAfter < now) Bad($"host {host.Name}: certificate {certPath} expired on {cert.NotAfter:yyyy-MM-dd}");
                else if (cert.NotBefore > now) Bad($"host {host.Name}: certificate {certPath} is not valid before {cert.NotBefore:yyyy-MM-dd}");
                else if (!cert.MatchesHostname(host.Name)) Bad($"host {host.Name}: certificate {certPath} is for '{cert.GetNameInfo(X509NameType.DnsName, false)}', not {host.Name}");
                else Console.WriteLine($"ok: host {host.Name}: certificate {certPath}, valid until {cert.NotAfter:yyyy-MM-dd}{(cert.Subject == cert.Issuer ? " (self-signed)" : "")}");
            }
            catch (ConfigurationException ex)
            {
                Bad(ex.Message);
            }
        }
        try
        {
            DataPermissions.CreatePrivateDirectory(config.DataDirectory);
            await using var storage = new SqliteStorage(config.DatabasePath);
            var version = await storage.GetSchemaVersionAsync();
            await storage.MigrateAsync();
            Console.WriteLine($"ok: database {config.DatabasePath} (schema version {(version == 0 ? "new" : version)})");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException or Server.Storage.StorageSchemaException)
        {
            Bad($"database {config.DatabasePath}: {ex.Message}");
        }
        // Database, keys and message content are for the server's user only (issue #13: world-readable data).
        var loose = DataPermissions.FindLoosePermissions(config);
        foreach (var line in loose) Bad(line);
        if (loose.Count == 0 && !OperatingSystem.IsWindows()) Console.WriteLine($"ok: {config.DataDirectory} and the database are accessible to their owner only");
        var port = config.Options.C2s.Port;
        try
        {
            using var probe = new TcpListener(IPAddress.Any, port);
            probe.Start();
            probe.Stop();
            Console.WriteLine($"ok: c2s port {port} is free");
        }
        catch (SocketException ex)
        {
            if (ex.SocketErrorCode == SocketError.AddressAlreadyInUse) Console.WriteLine($"note: c2s port {port} is in use (by a running Starling? otherwise stop the other program or set C2s:Port)");
            else Bad($"c2s port {port}: {ex.Message}");
        }
        Console.WriteLine(problems == 0 ? "all checks passed" : $"{problems} problem(s) found");
        return problems == 0 ? 0 : 1;
    }

    private static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>From stdin (one line) or a terminal prompt without echo, asked twice.</summary>
    private static string ReadPassword(bool fromStdin, bool confirm)
    {
        if (fromStdin)
        {
            var line = Console.In.ReadLine() ?? throw new AdminException("no password on standard input");
            return line.TrimEnd('\r');
        }
        if (Console.IsInputRedirected)
            throw new AdminException("no terminal to ask the password on; pass it on standard input with --password-stdin");
        var first = Prompt("Password: ");
        if (confirm)
        {
            var second = Prompt("Repeat password: ");
            if (first != second) throw new AdminException("the passwords do not match; nothing was changed");
        }
        return first;
    }

    private static string Prompt(string label)
    {
        Console.Write(label);
        var chars = new System.Text.StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter) break;
            if (key.Key == ConsoleKey.Backspace)
            {
                if (chars.Length > 0) chars.Length--;
                continue;
            }
            if (key.KeyChar != '\0') chars.Append(key.KeyChar);
        }
        Console.WriteLine();
        return chars.ToString();
    }
}
