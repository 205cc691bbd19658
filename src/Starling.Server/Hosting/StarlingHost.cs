using System.Net;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Starling.Server.Configuration;
using Starling.Server.Storage;
using Starling.Server.Storage.Sqlite;
using Starling.Server.Tls;

namespace Starling.Server.Hosting;

/// <summary>Thrown when a listener cannot be opened; the message says which port and what to do.</summary>
public sealed class ListenException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// A running Starling: Kestrel (empty builder, no HTTP pipeline yet) listening with the c2s connection handler,
/// plus the <see cref="XmppServer"/> behind it. Used by `starling start` and by the functional tests.
/// </summary>
public sealed class StarlingHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<ListenOptions> _c2sListeners;
    private readonly PosixSignalRegistration? _reloadSignal;
    private int _disposed;

    private StarlingHost(WebApplication app, XmppServer server, List<ListenOptions> c2s)
    {
        _app = app;
        Server = server;
        _c2sListeners = c2s;
        _reloadSignal = RegisterReloadSignal(server);
    }

    /// <summary>
    /// SIGHUP re-reads the certificates (as Prosody and most Unix daemons do), e.g. from certbot's deploy hook.
    /// Cancel = true: the default action of SIGHUP would end the process.
    /// </summary>
    private static PosixSignalRegistration? RegisterReloadSignal(XmppServer server)
    {
        if (OperatingSystem.IsWindows()) return null;
        if (SighupIgnoredAtStart())
        {
            // A signal ignored when the process started (nohup, some supervisors) stays ignored: the runtime does not
            // install a handler for it, so SIGHUP would do nothing. Say so instead of failing silently.
            server.LoggerFactory.CreateLogger<StarlingHost>().LogWarning(
                "SIGHUP is ignored by this process (started under nohup?): certificates are not reloaded on SIGHUP; use `starling reload`");
            return null;
        }
        try
        {
            return PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                // Off the signal thread: loading keys and the TLS check handshakes take a few milliseconds.
                _ = Task.Run(server.ReloadCertificates);
            });
        }
        catch (Exception ex) when (ex is PlatformNotSupportedException or IOException)
        {
            return null;
        }
    }

    /// <summary>True when SIGHUP is in this process's ignored set (/proc/self/status SigIgn, bit 0 = signal 1).</summary>
    internal static bool SighupIgnoredAtStart()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith("SigIgn:", StringComparison.Ordinal)) continue;
                return ulong.TryParse(line.AsSpan(7).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var mask)
                    && (mask & 1) != 0;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
        return false;
    }

    public XmppServer Server { get; }

    /// <summary>The bound c2s endpoints (with the real port when 0 was configured).</summary>
    public IReadOnlyList<IPEndPoint> C2sEndPoints => _c2sListeners.Select(l => l.IPEndPoint!).ToList();

    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Serves each connection on the socket thread that saw its data (one per core) instead of handing every read to
    /// the thread pool and every write back: a stanza is parsed, routed and written in one go, with no thread wake-up
    /// in between. Measured ~20 % less server CPU per login (docs/benchmarks.md). Handlers therefore must not block:
    /// storage writes move to the thread pool (SqliteStorage.WriteAsync), everything else is CPU work or completes
    /// synchronously. The runtime reads the variable when it creates its first socket, so this runs before Kestrel
    /// starts; an administrator's own setting (0 to turn it off) is kept. Returns whether it is on.
    /// </summary>
    private static bool UseInlineSocketCompletions()
    {
        var value = Environment.GetEnvironmentVariable(InlineCompletionsVariable);
        if (value is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
            return true;
        }
        return value == "1";
    }

    /// <summary>Builds and starts the server; throws <see cref="ListenException"/> or <see cref="ConfigurationException"/> with a clear message.</summary>
    /// <param name="wrapStorage">Wraps the storage (tests inject failures with it).</param>
    /// <param name="extraModules">Modules registered after the built-in ones (tests register test modules with it).</param>
    public static async Task<StarlingHost> StartAsync(LoadedConfiguration config, Action<ILoggingBuilder>? configureLogging = null, Action<string>? report = null, Func<IStorage, IStorage>? wrapStorage = null, IEnumerable<Modules.IModule>? extraModules = null)
    {
        Admin.DataPermissions.CreatePrivateDirectory(config.DataDirectory);
        // The local control socket of `starling deluser/passwd/status` (src/Starling.Server/Control).
        var controlPath = Control.ControlSocket.IsServed(config) ? config.ControlSocketPath : null;
        if (controlPath is not null) Control.ControlSocket.Prepare(controlPath);
        var certificates = CertificateManager.Load(config, report);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = config.DataDirectory });
        builder.Logging.ClearProviders();
        var level = Enum.Parse<LogLevel>(config.Options.Log.Level, ignoreCase: true);
        builder.Logging.SetMinimumLevel(level);
        builder.Logging.AddFilter("Microsoft", level > LogLevel.Warning ? level : LogLevel.Warning);
        if (configureLogging is not null) configureLogging(builder.Logging);
        else if (config.Options.Log.Format == "json") builder.Logging.AddJsonConsole(o => o.TimestampFormat = "O");
        else builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-dd HH:mm:ss.fff ";
        });

        var loggerFactory = builder.Services.BuildServiceProvider().GetRequiredService<ILoggerFactory>();
        IStorage storage = new SqliteStorage(config.DatabasePath, loggerFactory.CreateLogger<SqliteStorage>(), synchronousFull: string.Equals(config.Options.Storage.SqliteSynchronous, "full", StringComparison.OrdinalIgnoreCase));
        if (wrapStorage is not null) storage = wrapStorage(storage);
        var server = await XmppServer.CreateAsync(config, storage, certificates, loggerFactory, extraModules);

        var c2s = new List<ListenOptions>();
        builder.Services.AddSingleton(server);
        if (controlPath is not null) builder.Services.AddSingleton(new Control.ControlService(server));
        builder.Services.AddSingleton<IHostedService>(new GracefulShutdown(server));
        builder.WebHost.UseKestrelCore();
        bool inline = UseInlineSocketCompletions();
        builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = inline);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var port = config.Options.C2s.Port;
            if (config.Options.C2s.Addresses.Count == 0)
            {
                kestrel.ListenAnyIP(port, l => { l.UseConnectionHandler<C2sConnectionHandler>(); c2s.Add(l); });
            }
            else
            {
                foreach (var a in config.Options.C2s.Addresses)
                    kestrel.Listen(IPAddress.Parse(a), port, l => { l.UseConnectionHandler<C2sConnectionHandler>(); c2s.Add(l); });
            }
            if (controlPath is not null) kestrel.ListenUnixSocket(controlPath, l => l.UseConnectionHandler<Control.ControlConnectionHandler>());
        });
        var app = builder.Build();
        try
        {
            await app.StartAsync();
        }
        catch (Exception ex) when (ex is IOException or AddressInUseException or System.Net.Sockets.SocketException)
        {
            await server.DisposeAsync();
            await app.DisposeAsync();
            var port = config.Options.C2s.Port;
            var why = ex.InnerException is AddressInUseException || ex is AddressInUseException || ex.Message.Contains("in use", StringComparison.OrdinalIgnoreCase)
                ? $"port {port} is already in use (another XMPP server running?); stop it or set C2s:Port"
                : $"cannot listen on port {port}: {ex.Message}";
            throw new ListenException(why, ex);
        }
        if (controlPath is not null) Control.ControlSocket.Restrict(controlPath);
        // Start-up garbage (configuration, DI, certificate loading) is not needed again: give it back now rather
        // than at the first collection, so a freshly started server is as small as it can be.
        server.Trim();
        // Work still finishing on other threads just after start can keep start-up garbage alive through that
        // collection (measured: 2.2 MB more heap after it in about one start in three, gone a second later), so
        // collect once more when the server has settled.
        _ = Task.Delay(TimeSpan.FromSeconds(1)).ContinueWith(_ => server.Trim(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return new StarlingHost(app, server, c2s);
    }

    /// <summary>Waits until Ctrl+C / SIGTERM.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>
    /// Graceful stop (SIGTERM, Ctrl+C, tests): new connections are refused with system-shutdown, every stream is closed
    /// with system-shutdown and waited for — what was queued for clients but not written is re-routed or stored offline
    /// (XmppServer.ShutdownAsync) — and only then are the listeners stopped and the database closed (which
    /// checkpoints its WAL).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        _reloadSignal?.Dispose();
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await Server.ShutdownAsync(TimeSpan.FromSeconds(Server.Options.C2s.CloseTimeoutSeconds + 5));
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await _app.StopAsync(cts.Token);
        }
        await _app.DisposeAsync();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// SIGTERM / Ctrl+C stop the host, and the host stops Kestrel, which would wait for connections nobody closes and then
/// drop them. Before any of that (IHostedLifecycleService.StoppingAsync runs ahead of every StopAsync), the streams are
/// closed gracefully: system-shutdown to each client, undelivered messages stored (XmppServer.ShutdownAsync).
/// </summary>
internal sealed class GracefulShutdown(XmppServer server) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) =>
        server.ShutdownAsync(TimeSpan.FromSeconds(server.Options.C2s.CloseTimeoutSeconds + 5));

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
