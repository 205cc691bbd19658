using Starling.Server.Modules.Offline;
using Starling.Server.Modules.Presence;
using Starling.Server.Modules.Private;
using Starling.Server.Modules.Roster;
using Starling.Server.Modules.StreamManagement;
using Starling.Server.Modules.Version;

namespace Starling.Server.Configuration;

/// <summary>
/// The whole configuration, bound from the config file (JSON with comments), then environment variables
/// <c>STARLING_Section__Key</c>, then <c>--Section:Key=value</c> arguments (later sources win).
/// Every key is documented in config/starling.example.json; <see cref="StarlingOptionsValidator"/> checks it at start.
/// </summary>
public sealed class StarlingOptions
{
    /// <summary>Folder for the database, certificates and other state. Relative paths are relative to the config file's folder (or the working directory without a file).</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>Virtual hosts served. Default: one host, "localhost".</summary>
    public List<HostOptions> Hosts { get; set; } = [];

    public C2sOptions C2s { get; set; } = new();

    public AuthOptions Auth { get; set; } = new();

    public StorageOptions Storage { get; set; } = new();

    public LimitOptions Limits { get; set; } = new();

    public ModuleOptions Modules { get; set; } = new();

    public LogOptions Log { get; set; } = new();

    public ControlOptions Control { get; set; } = new();
}

public sealed class HostOptions
{
    /// <summary>Domain name of the host (RFC 7622 domainpart).</summary>
    public string Name { get; set; } = "";

    /// <summary>PEM certificate file; empty: data/certs/NAME.crt, generated self-signed on first start.</summary>
    public string? Certificate { get; set; }

    /// <summary>PEM private key file; empty: data/certs/NAME.key.</summary>
    public string? Key { get; set; }

    /// <summary>Require TLS before authentication (RFC 6120 §5.3.1). True by default; false allows plaintext streams, as in the lab's capture.</summary>
    public bool RequireEncryption { get; set; } = true;

    /// <summary>Allow SASL PLAIN on a stream without TLS (only meaningful when RequireEncryption is false).</summary>
    public bool AllowPlainWithoutTls { get; set; }

    /// <summary>Which modules this host runs, relative to the server-wide Modules:Disabled.</summary>
    public HostModuleOptions Modules { get; set; } = new();
}

/// <summary>
/// Hosts:N:Modules. A host runs every module except those in Modules:Disabled and in its own Disabled, plus those in its
/// own Enabled (a module off server-wide, on for this host). What a host does not run is not offered on it.
/// </summary>
public sealed class HostModuleOptions
{
    /// <summary>Modules turned off on this host, besides those in Modules:Disabled.</summary>
    public List<string> Disabled { get; set; } = [];

    /// <summary>Modules turned on for this host although Modules:Disabled turns them off server-wide.</summary>
    public List<string> Enabled { get; set; } = [];
}

public sealed class C2sOptions
{
    /// <summary>Client-to-server port (RFC 6120 §14.7: 5222).</summary>
    public int Port { get; set; } = 5222;

    /// <summary>Addresses to listen on ("::" and "0.0.0.0" mean all interfaces).</summary>
    public List<string> Addresses { get; set; } = [];

    /// <summary>What to do when a client binds a resource that is already bound: "replace" (the old session is closed with a conflict stream error, as Prosody and ejabberd do by default) or "reject" (the new bind fails with conflict).</summary>
    public string ResourceConflict { get; set; } = "replace";

    /// <summary>Seconds a connection may take to authenticate and bind before it is closed.</summary>
    public int NegotiationTimeoutSeconds { get; set; } = 60;

    /// <summary>Seconds without any byte from the client before the server pings it; twice this closes the stream with connection-timeout.</summary>
    public int IdleTimeoutSeconds { get; set; } = 300;

    /// <summary>Seconds of outbound silence after which a whitespace keepalive is sent (RFC 6120 §4.6.1).</summary>
    public int KeepaliveSeconds { get; set; } = 60;

    /// <summary>Seconds a closing stream may take to flush its close before the connection is dropped (a peer that stops reading cannot hold it open).</summary>
    public int CloseTimeoutSeconds { get; set; } = 10;

    /// <summary>Offer SCRAM-*-PLUS over TLS with tls-server-end-point (RFC 5929) and, on TLS 1.3, tls-exporter (RFC 9266) channel binding (XEP-0440).</summary>
    public bool ChannelBinding { get; set; } = true;

    /// <summary>Failed SASL attempts allowed on one stream before it is closed (RFC 6120 §6.4.5 suggests 2–5).</summary>
    public int MaxAuthFailures { get; set; } = 3;

    /// <summary>
    /// Read budget of one connection on this listener, bytes per second (a token bucket, as Prosody's mod_limits and
    /// ejabberd's shapers): past it the server stops reading that connection for a while, so TCP pushes back on a
    /// flooder instead of it starving others. 0 turns the budget off.
    /// </summary>
    public int ReadBytesPerSecond { get; set; } = 256 * 1024;

    /// <summary>Bytes a connection may send at once above its rate (the bucket's size); at least one stanza of Limits:MaxStanzaBytes.</summary>
    public int ReadBurstBytes { get; set; } = 1024 * 1024;
}

/// <summary>
/// Throttling of failed SASL authentication (Sessions/AuthThrottle.cs): per address block and per account.
/// A normal client (a typo or two) never meets it.
/// </summary>
public sealed class AuthOptions
{
    /// <summary>Failed attempts from one address block (IPv4 /32, IPv6 /64) before further attempts are refused for a while.</summary>
    public int AddressFreeFailures { get; set; } = 5;

    /// <summary>Penalty per failure past the free ones, in milliseconds: the block's n-th extra failure bars new attempts for n times this.</summary>
    public int AddressDelayMilliseconds { get; set; } = 1000;

    /// <summary>Longest penalty for an address block, in seconds.</summary>
    public int AddressMaxDelaySeconds { get; set; } = 60;

    /// <summary>Failed attempts on one account (from any address) before each further attempt on it is delayed.</summary>
    public int AccountFreeFailures { get; set; } = 10;

    /// <summary>Delay per failure past the free ones on an account, in milliseconds (attempts queue one delay apart).</summary>
    public int AccountDelayMilliseconds { get; set; } = 1000;

    /// <summary>Longest an attempt on an account waits, in seconds; attempts that would wait longer are refused.</summary>
    public int AccountMaxDelaySeconds { get; set; } = 30;

    /// <summary>Seconds without a failed attempt after which an address block or an account is forgotten.</summary>
    public int ForgetAfterSeconds { get; set; } = 900;

    /// <summary>Address blocks and accounts tracked at most (each table); the least recently active are dropped first.</summary>
    public int MaxTrackedEntries { get; set; } = 100_000;
}

public sealed class StorageOptions
{
    /// <summary>"sqlite" (embedded, default).</summary>
    public string Provider { get; set; } = "sqlite";

    /// <summary>SQLite database file; relative paths are relative to DataDirectory.</summary>
    public string SqlitePath { get; set; } = "starling.db";

    /// <summary>
    /// SQLite PRAGMA synchronous: "normal" (WAL; survives a process crash, the last commits may be lost on power loss) or
    /// "full" (syncs every commit; survives power loss, slower writes). docs/operations.md, "Durability".
    /// </summary>
    public string SqliteSynchronous { get; set; } = "normal";
}

public sealed class LimitOptions
{
    /// <summary>Largest stanza accepted, in bytes (larger: policy-violation stream error).</summary>
    public int MaxStanzaBytes { get; set; } = 256 * 1024;

    /// <summary>Deepest element nesting accepted in a stanza.</summary>
    public int MaxDepth { get; set; } = 64;

    /// <summary>Most attributes accepted on one element.</summary>
    public int MaxAttributes { get; set; } = 64;

    /// <summary>Largest stanza accepted before resource binding, in bytes: only negotiation (SASL, bind) is legitimate then, and it is small (as Prosody and ejabberd do).</summary>
    public int MaxStanzaBytesBeforeBind { get; set; } = 10_000;

    /// <summary>Most elements in one stanza (an OMEMO bundle has ~300, a big bookmark set ~1,000-2,000).</summary>
    public int MaxElementsPerStanza { get; set; } = 10_000;

    /// <summary>Most namespace declarations in one stanza.</summary>
    public int MaxNamespaceDeclarations { get; set; } = 4_096;

    /// <summary>Most distinct namespaces declared in one stanza.</summary>
    public int MaxNamespacesPerStanza { get; set; } = 64;

    /// <summary>Longest namespace URI accepted, in bytes.</summary>
    public int MaxNamespaceBytes { get; set; } = 1_024;


    /// <summary>
    /// Bytes queued for a client that reads too slowly before it is disconnected (queued messages are then re-routed,
    /// not lost). Counted as an upper bound of the serialised size (XmppStream.EstimateBytes).
    /// </summary>
    public int MaxOutboundQueueBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Connections open at once, server-wide; past it new ones get a resource-constraint stream error.</summary>
    public int MaxConnections { get; set; } = 100_000;

    /// <summary>Connections open at once from one IPv4 address or one IPv6 /64; past it new ones get a policy-violation stream error.</summary>
    public int MaxConnectionsPerAddress { get; set; } = 1_000;

    /// <summary>Loopback clients (127.0.0.0/8, ::1: local proxies, load tests) are not counted against MaxConnectionsPerAddress.</summary>
    public bool ExemptLoopbackFromAddressCap { get; set; } = true;

    /// <summary>Connections that have not authenticated yet, server-wide; past it new ones get a resource-constraint stream error.</summary>
    public int MaxUnauthenticatedConnections { get; set; } = 10_000;

    /// <summary>Deprecated alias of Modules:offline:QuotaMessages (accepted with a warning for one release).</summary>
    public int? OfflineQuota { get; set; }

    /// <summary>Resources one account may bind at once.</summary>
    public int MaxResourcesPerUser { get; set; } = 64;

    // ---- deprecated aliases of module options (per-user storage quotas of issue #13, now in each module's options):
    // accepted with a warning for one release; StarlingConfiguration.DeprecatedAliases maps each to its new key ----

    /// <summary>Deprecated alias of Modules:offline:QuotaBytes.</summary>
    public long? OfflineQuotaBytes { get; set; }

    /// <summary>Deprecated alias of Modules:roster:MaxItems.</summary>
    public int? MaxRosterItems { get; set; }

    /// <summary>Deprecated alias of Modules:roster:MaxNameLength.</summary>
    public int? MaxRosterNameLength { get; set; }

    /// <summary>Deprecated alias of Modules:roster:MaxGroups.</summary>
    public int? MaxRosterGroups { get; set; }

    /// <summary>Deprecated alias of Modules:roster:MaxGroupNameLength.</summary>
    public int? MaxRosterGroupNameLength { get; set; }

    /// <summary>Deprecated alias of Modules:private:MaxFragments.</summary>
    public int? MaxPrivateFragments { get; set; }

    /// <summary>Deprecated alias of Modules:private:MaxFragmentBytes.</summary>
    public int? MaxPrivateFragmentBytes { get; set; }

    /// <summary>Deprecated alias of Modules:presence:MaxDirectedPresence.</summary>
    public int? MaxDirectedPresence { get; set; }
}

/// <summary>
/// The Modules section: which modules run, and each module's typed options in a section named after it
/// (Modules:offline:QuotaMessages). The options types live next to their modules (Modules/NAME/NAMEOptions.cs);
/// ModuleCatalog says which property belongs to which module. A property per module (not a dictionary) keeps the binding
/// generated code and lets the binder reject unknown keys inside each module's section.
/// </summary>
public sealed class ModuleOptions
{
    /// <summary>Modules to turn off by name (e.g. "version", "offline"); all are on by default. Hosts:N:Modules adjusts it per host.</summary>
    public List<string> Disabled { get; set; } = [];

    /// <summary>Deprecated alias of Modules:version:ShowOs.</summary>
    public bool? VersionShowOs { get; set; }

    public VersionOptions Version { get; set; } = new();

    public RosterOptions Roster { get; set; } = new();

    public PrivateOptions Private { get; set; } = new();

    public PresenceOptions Presence { get; set; } = new();

    public OfflineOptions Offline { get; set; } = new();

    public StreamManagementOptions Sm { get; set; } = new();
}

public sealed class LogOptions
{
    /// <summary>Minimum level: Trace, Debug, Information, Warning, Error.</summary>
    public string Level { get; set; } = "Information";

    /// <summary>"text" (one line per event) or "json" (one JSON object per line, for log collectors).</summary>
    public string Format { get; set; } = "text";

    /// <summary>Log every XML element sent and received (at Information level), with SASL payloads and passwords redacted.</summary>
    public bool Xml { get; set; }
}

public sealed class ControlOptions
{
    /// <summary>Serve the local control socket that `starling deluser/passwd/status` use to reach the running server.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Unix socket path; relative to DataDirectory. Empty: DataDirectory/control/starling.sock (its folder is created 0700).</summary>
    public string SocketPath { get; set; } = "";
}
