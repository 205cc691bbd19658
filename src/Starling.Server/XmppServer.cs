using Microsoft.Extensions.Logging;
using Starling.Server.Configuration;
using Starling.Server.Modules;
using Starling.Server.Pipeline;
using Starling.Server.Routing;
using Starling.Server.Sessions;
using Starling.Server.Storage;
using Starling.Server.Tls;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server;

/// <summary>
/// The server's composition root: configuration, storage, certificates, the session directory, the router
/// and the modules. Transports (Kestrel connection handlers) hand connections to it.
/// </summary>
public sealed class XmppServer : IAsyncDisposable
{
    private readonly Dictionary<string, Jid> _hosts;
    private readonly Timer _timer;

    private XmppServer(LoadedConfiguration config, IStorage storage, CertificateManager certificates, ILoggerFactory loggerFactory)
    {
        Config = config;
        Storage = storage;
        Certificates = certificates;
        LoggerFactory = loggerFactory;
        Log = loggerFactory.CreateLogger<XmppServer>();
        _hosts = config.Options.Hosts.ToDictionary(h => h.Name, h => Jid.Create(null, h.Name), StringComparer.Ordinal);
        XmlTrace = config.Options.Log.Xml;
        XmlLimits = new XmlLimits
        {
            MaxStanzaBytes = config.Options.Limits.MaxStanzaBytes,
            MaxDepth = config.Options.Limits.MaxDepth,
            MaxAttributes = config.Options.Limits.MaxAttributes,
            MaxElements = config.Options.Limits.MaxElementsPerStanza,
            MaxNamespaceDeclarations = config.Options.Limits.MaxNamespaceDeclarations,
            MaxNamespaces = config.Options.Limits.MaxNamespacesPerStanza,
            MaxNamespaceBytes = config.Options.Limits.MaxNamespaceBytes,
        };
        Router = new LocalRouter(this);
        IqTracker = new IqTracker((iq, from, to) => Router.RouteAsync(iq, from, to));
        AuthThrottle = new AuthThrottle(config.Options.Auth);
        ScramStandIns = new Xmpp.Sasl.ScramStandIns(AuthSecret.LoadOrCreate(config.DataDirectory));
        Connections = new ConnectionRegistry(config.Options.Limits);
        _timer = new Timer(_ => Tick(), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));
    }

    public LoadedConfiguration Config { get; }

    public StarlingOptions Options => Config.Options;

    public IStorage Storage { get; }

    public CertificateManager Certificates { get; }

    public ILoggerFactory LoggerFactory { get; }

    private ILogger Log { get; }

    public SessionManager Sessions { get; } = new();

    public ConnectionRegistry Connections { get; }

    public AuthThrottle AuthThrottle { get; }

    /// <summary>SCRAM credentials shown for accounts that do not exist (keyed by a secret in the data directory).</summary>
    public Xmpp.Sasl.ScramStandIns ScramStandIns { get; }

    public LocalRouter Router { get; }

    /// <summary>Iq requests the server sent and the answers they wait for (see <see cref="SendIqAsync"/>).</summary>
    public IqTracker IqTracker { get; }

    public ModuleRegistry Modules { get; } = new();

    public XmlLimits XmlLimits { get; }

    /// <summary>Log every element sent and received (Log:Xml).</summary>
    public bool XmlTrace { get; }

    /// <summary>True once a shutdown began: lost connections end their sessions instead of hibernating (XEP-0198).</summary>
    public bool IsStopping => Volatile.Read(ref _stopping) != 0;

    private int _stopping;

    public static string Version { get; } =
        typeof(XmppServer).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>
    /// Creates the server: storage migrated, certificates ready, the router's defaults and the modules registered, the
    /// stanza pipeline frozen. <paramref name="extraModules"/> are registered after the built-in ones (tests).
    /// </summary>
    public static async Task<XmppServer> CreateAsync(LoadedConfiguration config, IStorage storage, CertificateManager certificates, ILoggerFactory loggerFactory, IEnumerable<IModule>? extraModules = null)
    {
        await storage.MigrateAsync();
        var server = new XmppServer(config, storage, certificates, loggerFactory);
        foreach (var warning in config.Warnings) server.Log.LogWarning("configuration: {Warning}", warning);
        server.Router.RegisterDefaults(server.Modules);
        ModuleCatalog.RegisterAll(server, extraModules);
        server.Modules.Freeze(loggerFactory.CreateLogger("Starling.Pipeline"),
            (c, condition, text) => server.Router.Bounce(c.Stanza, c.From, c.ExplicitTo ? c.To : null, condition, text));
        return server;
    }

    /// <summary>
    /// Sends an iq request (get or set, with its payload) from <paramref name="from"/> (a host, or an account's bare JID)
    /// to <paramref name="to"/> with a fresh unguessable id, and returns how it ended: the result or error stanza, a
    /// timeout, a cancellation, or Refused when too many requests are waiting.
    /// </summary>
    public Task<IqOutcome> SendIqAsync(XmlElement iq, Jid from, Jid to, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        IqTracker.SendAsync(iq, from, to, timeout, cancellationToken);

    /// <summary>
    /// Re-reads every host's certificate and key (SIGHUP, `starling reload`): new connections get the new ones,
    /// established connections keep theirs; a host whose files do not load keeps its previous certificate. Logs and
    /// returns one line per host.
    /// </summary>
    public CertificateReloadResult ReloadCertificates()
    {
        var result = Certificates.Reload();
        foreach (var line in result.Lines)
        {
            if (line.Contains(": kept the previous certificate", StringComparison.Ordinal)) Log.LogWarning("certificate reload: {Line}", line);
            else Log.LogInformation("certificate reload: {Line}", line);
        }
        return result;
    }

    public bool IsLocalHost(string domain) => _hosts.ContainsKey(domain);

    /// <summary>The JID of a domain (a local host's is cached; others are parsed).</summary>
    public Jid HostJid(string domain) => _hosts.TryGetValue(domain, out var jid) ? jid : Jid.Create(null, domain);

    /// <summary>True if the bare JID names an account on a local host.</summary>
    public async ValueTask<bool> AccountExistsAsync(Jid bare)
    {
        if (bare.Local is null || !IsLocalHost(bare.Domain)) return false;
        if (Sessions.GetSessions(bare).Length > 0) return true;
        return await Storage.Accounts.GetAsync(bare.Domain, bare.Local) is not null;
    }

    /// <summary>Negotiation timeouts, idle timeouts and keepalives for every connection (one timer for all).</summary>
    private long _allocatedAtLastTrim;
    private long _allocatedAtLastTick;

    /// <summary>
    /// After a burst (e.g. thousands of logins) the heap holds the burst's garbage and free regions until the next
    /// full collection, which an idle server may never reach: RSS stays at the peak. Once allocation has calmed down
    /// after a burst at least as large as the live heap (and 16 MB), one compacting collection gives that memory back
    /// to the OS (Prosody's Lua GC and ejabberd's per-process heaps do the equivalent continuously).
    /// </summary>
    private void TrimAfterBurst()
    {
        long allocated = GC.GetTotalAllocatedBytes();
        long sinceTick = allocated - _allocatedAtLastTick;
        _allocatedAtLastTick = allocated;
        bool quiet = sinceTick < 4 * 1024 * 1024; // under ~0.8 MB/s over the last tick
        long threshold = Math.Max(16L * 1024 * 1024, GC.GetGCMemoryInfo().HeapSizeBytes);
        if (quiet && allocated - _allocatedAtLastTrim > threshold) Trim();
    }

    /// <summary>One compacting collection that also returns free memory to the OS, then the same for the C heap.</summary>
    public void Trim()
    {
        _allocatedAtLastTrim = GC.GetTotalAllocatedBytes();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Tls.NativeHeap.TrimNativeHeap(); // and the C heap: freed TLS handshake and record buffers
    }

    private void Tick()
    {
        try
        {
            TrimAfterBurst();
            var now = Environment.TickCount64;
            var c2s = Options.C2s;
            long negotiation = c2s.NegotiationTimeoutSeconds * 1000L;
            long idle = c2s.IdleTimeoutSeconds * 1000L;
            long keepalive = c2s.KeepaliveSeconds * 1000L;
            long closeDeadline = c2s.CloseTimeoutSeconds * 1000L;
            foreach (var stream in Connections.Snapshot())
            {
                if (stream.IsClosed)
                {
                    // Closing only queues our last bytes; a peer that stopped reading would keep them (and its
                    // socket) forever. Every close gets a deadline, checked here rather than with a timer each.
                    stream.AbortIfCloseOverdue(now, closeDeadline);
                    continue;
                }
                if (stream is C2sStream { Session: null })
                {
                    if (now - stream.Opened > negotiation) stream.Close(StreamErrors.ConnectionTimeout, "negotiation took too long");
                    continue;
                }
                if (stream is C2sStream { IsDetached: true }) continue; // its session moved on (XEP-0198 resume); it is closing
                long silentIn = now - stream.LastReceived;
                if (silentIn > 2 * idle)
                {
                    stream.Close(StreamErrors.ConnectionTimeout, "no data received for too long");
                    continue;
                }
                if (stream is C2sStream { Session: { } bound })
                {
                    // XEP-0199 §4.2: a silent client is pinged once; if it stays silent, the stream times out above.
                    if (silentIn < idle) bound.IdlePinged = false;
                    else if (!bound.IdlePinged)
                    {
                        bound.IdlePinged = true;
                        bound.SendPing();
                        continue;
                    }
                }
                if (now - stream.LastSent > keepalive) stream.SendKeepalive();
            }
        }
        catch (Exception ex)
        {
            Log.LogError(ex, "timer tick failed");
        }
    }

    /// <summary>Closes every stream with system-shutdown (RFC 6120 §4.9.3.17) and refuses new ones.</summary>
    public void Shutdown()
    {
        Interlocked.Exchange(ref _stopping, 1);
        Connections.StopAdmitting();
        foreach (var stream in Connections.Snapshot()) stream.Close(StreamErrors.SystemShutdown, "the server is shutting down");
    }

    /// <summary>
    /// Graceful stop: no new connections, every stream closed with system-shutdown, then waits until every stream
    /// has ended and handled its end — stanzas queued but never written are re-routed, messages stored offline —
    /// so nothing accepted is lost when storage closes next. Streams whose peers do not let go are dropped after
    /// C2s:CloseTimeoutSeconds; <paramref name="timeout"/> bounds the whole wait.
    /// </summary>
    public async Task ShutdownAsync(TimeSpan timeout)
    {
        Interlocked.Exchange(ref _stopping, 1);
        Connections.StopAdmitting();
        try
        {
            // Modules settle what only they hold while every stream is still up (XEP-0198: acks asked for, unacknowledged
            // messages of live and hibernating sessions re-routed or stored offline).
            await Modules.RaiseServerStoppingAsync();
        }
        catch (Exception ex)
        {
            Log.LogError(ex, "a module failed while the server was stopping");
        }
        Shutdown();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long closeDeadline = Options.C2s.CloseTimeoutSeconds * 1000L;
        while (Connections.Count > 0 && clock.Elapsed < timeout)
        {
            await Task.Delay(20);
            // Streams still closing late (a peer that stopped reading): no need to wait for the timer's next tick.
            var now = Environment.TickCount64;
            foreach (var stream in Connections.Snapshot())
            {
                if (clock.ElapsedMilliseconds >= closeDeadline) stream.Abort();
                else stream.AbortIfCloseOverdue(now, closeDeadline);
            }
        }
        if (Connections.Count > 0) Log.LogWarning("{Count} connections still ending after {Seconds} s; stopping anyway", Connections.Count, (int)timeout.TotalSeconds);
        // Sessions without a connection (hibernating, XEP-0198) are not in Connections: end any left, so what they
        // hold is re-routed (stored offline) before the storage closes.
        foreach (var session in Sessions.All())
        {
            if (session.IsHibernating) await session.EndAsync([]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _timer.DisposeAsync();
        await Storage.DisposeAsync();
    }
}
