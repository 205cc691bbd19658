using Starling.Server.Negotiation;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules;

/// <summary>The handlers and features the enabled modules registered. Lookups are allocation-free.</summary>
public sealed class ModuleRegistry
{
    private readonly Dictionary<(IqType, IqAddress, string), IqHandler> _iq = [];
    private readonly List<string> _hostFeatures = [];
    private readonly List<string> _accountFeatures = [];

    public IReadOnlyList<string> HostFeatures => _hostFeatures;

    public IReadOnlyList<string> AccountFeatures => _accountFeatures;

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

    internal void AddIqHandler(IqType type, IqAddress address, string ns, IqHandler handler)
    {
        if (!_iq.TryAdd((type, address, ns), handler))
            throw new InvalidOperationException($"two modules handle iq-{type}/{address}/{ns}".ToLowerInvariant());
    }

    internal void AddDiscoFeature(string feature, bool alsoAccount)
    {
        if (!_hostFeatures.Contains(feature)) _hostFeatures.Add(feature);
        if (alsoAccount && !_accountFeatures.Contains(feature)) _accountFeatures.Add(feature);
    }

    public IqHandler? FindIqHandler(IqType type, IqAddress address, string ns) =>
        _iq.GetValueOrDefault((type, address, ns));

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
