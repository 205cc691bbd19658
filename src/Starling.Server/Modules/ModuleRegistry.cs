using System.Collections.Frozen;
using Starling.Server.Negotiation;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules;

/// <summary>
/// The handlers and features the enabled modules registered, each tagged with its module, and what each host offers
/// (resolved once at start, <see cref="ResolveHosts"/>). Lookups are allocation-free.
/// </summary>
public sealed class ModuleRegistry
{
    private readonly Dictionary<(IqType, IqAddress, string), (IqHandler Handler, int Module)> _iq = [];
    private readonly List<(string Feature, bool Account, int Module)> _features = [];

    // The iq handlers by host: one entry per host that runs the handler's module, so dispatch stays one lookup (the
    // host's domain is part of the key) and a module a host does not run is simply not found there.
    private Dictionary<(string Host, IqType, IqAddress, string), IqHandler> _iqByHost = [];
    private FrozenDictionary<string, HostModules> _hosts = FrozenDictionary<string, HostModules>.Empty;

    /// <summary>The modules registered: those that at least one host runs.</summary>
    public IReadOnlyList<string> Enabled { get; internal set; } = [];

    // ---- negotiation: SASL mechanisms and stream features per stage (Negotiation/) ----

    /// <summary>The SASL mechanisms offered, strongest first: the built-in SCRAM and PLAIN, and any a module adds.</summary>
    public SaslMechanismRegistry SaslMechanisms { get; } = SaslMechanismRegistry.WithBuiltIns();

    /// <summary>The stream features of each stage: STARTTLS, SASL and bind (C2sSession), then what modules add.</summary>
    public StreamFeatureRegistry StreamFeatures { get; } = C2sSession.CreateStreamFeatures();

    // ---- end of negotiation ----

    internal event Func<C2sSession, ValueTask>? SessionAvailable;

    internal event Func<C2sSession, ValueTask>? SessionClosed;

    internal Func<C2sSession, XmlElement, ValueTask>? ClientPresence { get; set; }

    internal Func<Jid, XmlElement, ValueTask<bool>>? UndeliverableMessage { get; set; }

    internal void AddIqHandler(IqType type, IqAddress address, string ns, IqHandler handler, int module)
    {
        if (!_iq.TryAdd((type, address, ns), (handler, module)))
            throw new InvalidOperationException($"two modules handle iq-{type}/{address}/{ns}".ToLowerInvariant());
    }

    internal void AddDiscoFeature(string feature, bool alsoAccount, int module) => _features.Add((feature, alsoAccount, module));

    /// <summary>What <paramref name="host"/> (a local domain) offers; null for a domain that is not served.</summary>
    public HostModules? ForHost(string host) => _hosts.GetValueOrDefault(host);

    /// <summary>The handler of iq-{type}/{address}/{namespace} on <paramref name="host"/>, if the host runs a module that registered it.</summary>
    public IqHandler? FindIqHandler(IqType type, IqAddress address, string ns, string host) =>
        _iqByHost.GetValueOrDefault((host, type, address, ns));

    /// <summary>Builds, once after every module registered, each host's iq table and disco features (stream features are gated by ModuleContext).</summary>
    internal void ResolveHosts(IReadOnlyList<(string Host, bool[] Enabled)> hosts)
    {
        var iq = new Dictionary<(string, IqType, IqAddress, string), IqHandler>();
        var resolved = new Dictionary<string, HostModules>(StringComparer.Ordinal);
        foreach (var (host, enabled) in hosts)
        {
            foreach (var ((type, address, ns), (handler, module)) in _iq)
            {
                if (enabled[module]) iq.Add((host, type, address, ns), handler);
            }
            var features = new List<string>();
            var accountFeatures = new List<string>();
            foreach (var (feature, account, module) in _features)
            {
                if (!enabled[module]) continue;
                if (!features.Contains(feature)) features.Add(feature);
                if (account && !accountFeatures.Contains(feature)) accountFeatures.Add(feature);
            }
            resolved[host] = new HostModules(host, enabled, features, accountFeatures);
        }
        _iqByHost = iq;
        _hosts = resolved.ToFrozenDictionary(StringComparer.Ordinal);
    }

    internal async ValueTask RaiseSessionAvailableAsync(C2sSession session)
    {
        var handlers = SessionAvailable;
        if (handlers is null) return;
        foreach (Func<C2sSession, ValueTask> h in handlers.GetInvocationList()) await h(session);
    }

    internal async ValueTask RaiseSessionClosedAsync(C2sSession session)
    {
        var handlers = SessionClosed;
        if (handlers is null) return;
        foreach (Func<C2sSession, ValueTask> h in handlers.GetInvocationList()) await h(session);
    }
}
