using System.Collections.Frozen;
using Microsoft.Extensions.Logging;
using Starling.Server.Negotiation;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;

namespace Starling.Server.Modules;

/// <summary>
/// The handlers and features the enabled modules registered, each tagged with its module. Registration happens while
/// the server starts; then <see cref="ResolveHosts"/> builds what each host offers and <see cref="Freeze"/> the stanza
/// pipeline's chains and the nonza table. Lookups are allocation-free.
/// </summary>
public sealed class ModuleRegistry
{
    private readonly Dictionary<(IqType, IqAddress, string), (IqHandler Handler, int Module)> _iq = [];
    private readonly List<(string Feature, bool Account, int Module)> _features = [];
    private Dictionary<(string, string), NonzaHandler>? _nonzaBuilder = [];
    private Dictionary<(string, string), PreBindNonzaHandler>? _preBindBuilder = [];
    private FrozenDictionary<(string, string), PreBindNonzaHandler> _preBind = FrozenDictionary<(string, string), PreBindNonzaHandler>.Empty;
    private StanzaPipelineBuilder? _hooks = new();
    private FrozenDictionary<(string, string), NonzaHandler> _nonzas = FrozenDictionary<(string, string), NonzaHandler>.Empty;

    // The iq handlers by host: one entry per host that runs the handler's module, so dispatch stays one lookup (the
    // host's domain is part of the key) and a module a host does not run is simply not found there.
    private FrozenDictionary<(string Host, IqType, IqAddress, string), IqHandler> _iqByHost = FrozenDictionary<(string, IqType, IqAddress, string), IqHandler>.Empty;
    private FrozenDictionary<string, HostModules> _hosts = FrozenDictionary<string, HostModules>.Empty;

    /// <summary>The modules registered: those that at least one host runs.</summary>
    public IReadOnlyList<string> Enabled { get; internal set; } = [];

    // ---- negotiation: SASL mechanisms and stream features per stage (Negotiation/) ----

    /// <summary>The SASL mechanisms offered, strongest first: the built-in SCRAM and PLAIN, and any a module adds.</summary>
    public SaslMechanismRegistry SaslMechanisms { get; } = SaslMechanismRegistry.WithBuiltIns();

    /// <summary>The stream features of each stage: STARTTLS, SASL and bind (C2sStream), then what modules add.</summary>
    public StreamFeatureRegistry StreamFeatures { get; } = C2sStream.CreateStreamFeatures();

    // ---- end of negotiation ----

    /// <summary>The frozen stanza pipeline (built by <see cref="Freeze"/>).</summary>
    public StanzaPipeline Pipeline { get; private set; } = null!;

    internal event Func<C2sSession, ValueTask>? SessionAvailable;

    internal event Func<C2sSession, ValueTask>? SessionClosed;

    /// <summary>Raised once when a graceful shutdown begins, before the streams are closed (XmppServer.ShutdownAsync).</summary>
    internal event Func<ValueTask>? ServerStopping;

    internal void Hook(StanzaEvent e, StanzaHandler handler, int priority) => Builder(_hooks).Hook(e, handler, priority);

    internal void AddIqHandler(IqType type, IqAddress address, string ns, IqHandler handler, int module)
    {
        if (!_iq.TryAdd((type, address, ns), (handler, module)))
            throw new InvalidOperationException($"two modules handle iq-{type}/{address}/{ns}".ToLowerInvariant());
    }

    internal void AddNonzaHandler(string ns, string name, NonzaHandler handler)
    {
        if (ns == Starling.Xmpp.Namespaces.Client) throw new ArgumentException("jabber:client elements are stanzas, not nonzas", nameof(ns));
        if (!Builder(_nonzaBuilder).TryAdd((ns, name), handler))
            throw new InvalidOperationException($"two modules handle the nonza {{{ns}}}{name}");
    }

    internal void AddPreBindNonzaHandler(string ns, string name, PreBindNonzaHandler handler)
    {
        if (ns == Starling.Xmpp.Namespaces.Client) throw new ArgumentException("jabber:client elements are stanzas, not nonzas", nameof(ns));
        if (!Builder(_preBindBuilder).TryAdd((ns, name), handler))
            throw new InvalidOperationException($"two modules handle the nonza {{{ns}}}{name} before binding");
    }

    internal void AddDiscoFeature(string feature, bool alsoAccount, int module) => _features.Add((feature, alsoAccount, module));

    /// <summary>What <paramref name="host"/> (a local domain) offers; null for a domain that is not served.</summary>
    public HostModules? ForHost(string host) => _hosts.GetValueOrDefault(host);

    /// <summary>The handler of iq-{type}/{address}/{namespace} on <paramref name="host"/>, if the host runs a module that registered it: one frozen-dictionary lookup.</summary>
    public IqHandler? FindIqHandler(IqType type, IqAddress address, string ns, string host) =>
        _iqByHost.GetValueOrDefault((host, type, address, ns));

    /// <summary>The handler of a nonza, or null (the stream is then closed with unsupported-stanza-type).</summary>
    public NonzaHandler? FindNonzaHandler(string ns, string name) => _nonzas.GetValueOrDefault((ns, name));

    /// <summary>The handler of a nonza allowed before binding (XEP-0198 &lt;resume/&gt;), or null.</summary>
    public PreBindNonzaHandler? FindPreBindNonzaHandler(string ns, string name) => _preBind.GetValueOrDefault((ns, name));

    /// <summary>Builds, once after every module registered, each host's iq table and disco features (stream features and hooks are gated by ModuleContext).</summary>
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
        _iqByHost = iq.ToFrozenDictionary();
        _hosts = resolved.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Ends registration: the chains and tables are built once and never change while the server runs.</summary>
    internal void Freeze(ILogger log, StanzaBounce bounce)
    {
        Pipeline = Builder(_hooks).Build(log, bounce);
        _nonzas = Builder(_nonzaBuilder).ToFrozenDictionary();
        _preBind = Builder(_preBindBuilder).ToFrozenDictionary();
        _hooks = null;
        _nonzaBuilder = null;
        _preBindBuilder = null;
    }

    private static T Builder<T>(T? builder) where T : class =>
        builder ?? throw new InvalidOperationException("modules register while the server starts; the pipeline is frozen now");

    internal async ValueTask RaiseSessionAvailableAsync(C2sSession session)
    {
        var handlers = SessionAvailable;
        if (handlers is null) return;
        foreach (Func<C2sSession, ValueTask> h in handlers.GetInvocationList()) await h(session);
    }

    internal async ValueTask RaiseServerStoppingAsync()
    {
        var handlers = ServerStopping;
        if (handlers is null) return;
        foreach (Func<ValueTask> h in handlers.GetInvocationList()) await h();
    }

    internal async ValueTask RaiseSessionClosedAsync(C2sSession session)
    {
        var handlers = SessionClosed;
        if (handlers is null) return;
        foreach (Func<C2sSession, ValueTask> h in handlers.GetInvocationList()) await h(session);
    }
}
