using System.Net;
using Starling.Server.Admin;
using Starling.Server.Configuration;
using Starling.Server.Hosting;
using Microsoft.Extensions.Logging;
using Starling.Server.Tls;

using Starling.Xml;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// A real Starling (Kestrel, SQLite, TLS, modules) running in-process on 127.0.0.1 and a free port, with its own
/// temporary data folder. Configuration comes only from the overrides given here: an empty config file in the
/// temp folder is named explicitly, so ./starling.json and STARLING_CONFIG are never read, and every key the
/// tests rely on is set on the command line (which wins over STARLING_* variables).
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string Domain = "localhost";
    public const string Password = "secret-password";

    private readonly List<XmppTestClient> _clients = [];
    private readonly string _directory;
    private int _disposed;

    private TestServer(StarlingHost host, string directory, LoadedConfiguration config, LogCapture logs)
    {
        Host = host;
        Logs = logs;
        _directory = directory;
        Config = config;
        Admin = new AccountAdmin(config, host.Server.Storage);
        EndPoint = host.C2sEndPoints[0];
    }

    public StarlingHost Host { get; }

    public XmppServer Server => Host.Server;

    public LoadedConfiguration Config { get; }

    /// <summary>Everything the server logged at or above Log:Level (Warning unless a test overrides it).</summary>
    public LogCapture Logs { get; }

    public AccountAdmin Admin { get; }

    /// <summary>The c2s endpoint actually bound (port 0 was configured).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>
    /// Starts a server. Defaults: host "localhost" without mandatory TLS, warnings-only logging to nowhere.
    /// <paramref name="extra"/> are further --Key=Value overrides; later ones win.
    /// </summary>
    /// <summary>A server with the accounts alice and bob (see <see cref="AddUserAsync"/> for their passwords).</summary>
    public static async Task<TestServer> StartWithAliceAndBobAsync(params string[] extra)
    {
        var server = await StartAsync(extra);
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        return server;
    }

    /// <summary>A message whose body is <paramref name="body"/>.</summary>
    public static bool IsMessage(XmlElement e, string body) => e.Name == "message" && e.ElementText("body", "jabber:client") == body;

    public static Task<TestServer> StartAsync(params string[] extra) => StartAsync(wrapStorage: null, extra);

    /// <summary>A server whose storage is wrapped by <paramref name="wrapStorage"/> (failure injection).</summary>
    public static Task<TestServer> StartAsync(Func<Starling.Server.Storage.IStorage, Starling.Server.Storage.IStorage>? wrapStorage, params string[] extra) =>
        StartAsync(wrapStorage, modules: null, extra);

    /// <summary>A server with test modules registered after the built-in ones.</summary>
    public static Task<TestServer> StartWithModulesAsync(IEnumerable<Starling.Server.Modules.IModule> modules, params string[] extra) =>
        StartAsync(wrapStorage: null, modules, extra);

    private static async Task<TestServer> StartAsync(Func<Starling.Server.Storage.IStorage, Starling.Server.Storage.IStorage>? wrapStorage, IEnumerable<Starling.Server.Modules.IModule>? modules, string[] extra)
    {
        var directory = Path.Combine(Path.GetTempPath(), "starling-ft-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            var configFile = Path.Combine(directory, "starling.json");
            await File.WriteAllTextAsync(configFile, "{}");
            SharedCertificate.CopyTo(Path.Combine(directory, "certs"));
            string[] overrides =
            [
                "--DataDirectory=" + directory,
                "--C2s:Port=0",
                "--C2s:Addresses:0=127.0.0.1",
                "--Hosts:0:Name=" + Domain,
                "--Hosts:0:RequireEncryption=false",
                "--Log:Level=Warning",
                .. extra,
            ];
            var config = StarlingConfiguration.Load(configFile, overrides);
            var logs = new LogCapture();
            var host = await StarlingHost.StartAsync(config, configureLogging: b => b.AddProvider(logs), wrapStorage: wrapStorage, extraModules: modules);
            return new TestServer(host, directory, config, logs);
        }
        catch
        {
            TryDelete(directory);
            throw;
        }
    }

    /// <summary>Creates user@localhost with <see cref="Password"/> (or the given password) through the admin API.</summary>
    public async Task AddUserAsync(string user, string password = Password) =>
        await Admin.AddUserAsync(Admin.ParseAccount(user + "@" + Domain), password);

    public static string Bare(string user) => user + "@" + Domain;

    /// <summary>A TCP connection to the server (no stream opened yet); disposed with the server.</summary>
    public async Task<XmppTestClient> ConnectAsync(IPAddress? from = null)
    {
        var client = await XmppTestClient.ConnectAsync(EndPoint, Domain, from);
        client.PinnedCertificate = Server.Certificates.Get(Domain)!.Certificate.RawData;
        lock (_clients) _clients.Add(client);
        return client;
    }

    /// <summary>Connects, authenticates (SCRAM-SHA-256), binds <paramref name="resource"/> and, unless told otherwise, sends initial presence and waits for its echo.</summary>
    public async Task<XmppTestClient> LoginAsync(string user, string resource, bool available = true, int? priority = null, string password = Password, IPAddress? from = null)
    {
        var client = await ConnectAsync(from);
        await client.LoginAsync(user, password, resource);
        if (available) await client.SendPresenceAsync(priority);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        XmppTestClient[] clients;
        lock (_clients) clients = [.. _clients];
        foreach (var c in clients) await c.DisposeAsync();
        try
        {
            await Host.DisposeAsync();
        }
        finally
        {
            TryDelete(_directory);
        }
    }

    private static void TryDelete(string directory)
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
                return;
            }
            catch (IOException)
            {
                Thread.Sleep(50);
            }
            catch (UnauthorizedAccessException)
            {
                Thread.Sleep(50);
            }
        }
    }

    /// <summary>One self-signed certificate for "localhost" generated per test run (RSA key generation is the slow part of a start), copied into each server's data folder.</summary>
    private static class SharedCertificate
    {
        private static readonly Lazy<(string Cert, string Key)> Pem = new(Generate);

        public static void CopyTo(string certDirectory)
        {
            Directory.CreateDirectory(certDirectory);
            var (cert, key) = Pem.Value;
            File.WriteAllText(Path.Combine(certDirectory, Domain + ".crt"), cert);
            File.WriteAllText(Path.Combine(certDirectory, Domain + ".key"), key);
        }

        private static (string, string) Generate()
        {
            var dir = Path.Combine(Path.GetTempPath(), "starling-ft-cert-" + Guid.NewGuid().ToString("N"));
            try
            {
                var certPath = Path.Combine(dir, Domain + ".crt");
                var keyPath = Path.Combine(dir, Domain + ".key");
                CertificateManager.Generate(Domain, certPath, keyPath);
                return (File.ReadAllText(certPath), File.ReadAllText(keyPath));
            }
            finally
            {
                TryDelete(dir);
            }
        }
    }
}

