using System.Collections.Frozen;
using Microsoft.Extensions.Logging;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Xml;

namespace Starling.Server.Modules;

/// <summary>
/// The handlers and features the enabled modules registered. Registration happens while the server starts; then
/// <see cref="Freeze"/> builds the stanza pipeline's chains and the iq and nonza tables, and lookups are allocation-free.
/// </summary>
public sealed class ModuleRegistry
{
    private readonly List<string> _hostFeatures = [];
    private readonly List<string> _accountFeatures = [];
    private readonly List<Func<C2sSession, XmlElement?>> _streamFeatures = [];
    private Dictionary<(IqType, IqAddress, string), IqHandler>? _iqBuilder = [];
    private Dictionary<(string, string), NonzaHandler>? _nonzaBuilder = [];
    private StanzaPipelineBuilder? _hooks = new();
    private FrozenDictionary<(IqType, IqAddress, string), IqHandler> _iq = FrozenDictionary<(IqType, IqAddress, string), IqHandler>.Empty;
    private FrozenDictionary<(string, string), NonzaHandler> _nonzas = FrozenDictionary<(string, string), NonzaHandler>.Empty;

    public IReadOnlyList<string> HostFeatures => _hostFeatures;

    public IReadOnlyList<string> AccountFeatures => _accountFeatures;

    public IReadOnlyList<Func<C2sSession, XmlElement?>> StreamFeatures => _streamFeatures;

    public IReadOnlyList<string> Enabled { get; internal set; } = [];

    /// <summary>The frozen stanza pipeline (built by <see cref="Freeze"/>).</summary>
    public StanzaPipeline Pipeline { get; private set; } = null!;

    internal event Func<C2sSession, ValueTask>? SessionAvailable;

    internal event Func<C2sSession, ValueTask>? SessionClosed;

    internal void Hook(StanzaEvent e, StanzaHandler handler, int priority) => Builder(_hooks).Hook(e, handler, priority);

    internal void AddIqHandler(IqType type, IqAddress address, string ns, IqHandler handler)
    {
        if (!Builder(_iqBuilder).TryAdd((type, address, ns), handler))
            throw new InvalidOperationException($"two modules handle iq-{type}/{address}/{ns}".ToLowerInvariant());
    }

    internal void AddNonzaHandler(string ns, string name, NonzaHandler handler)
    {
        if (ns == Starling.Xmpp.Namespaces.Client) throw new ArgumentException("jabber:client elements are stanzas, not nonzas", nameof(ns));
        if (!Builder(_nonzaBuilder).TryAdd((ns, name), handler))
            throw new InvalidOperationException($"two modules handle the nonza {{{ns}}}{name}");
    }

    internal void AddDiscoFeature(string feature, bool alsoAccount)
    {
        if (!_hostFeatures.Contains(feature)) _hostFeatures.Add(feature);
        if (alsoAccount && !_accountFeatures.Contains(feature)) _accountFeatures.Add(feature);
    }

    internal void AddStreamFeature(Func<C2sSession, XmlElement?> feature) => _streamFeatures.Add(feature);

    /// <summary>Ends registration: the chains and tables are built once and never change while the server runs.</summary>
    internal void Freeze(ILogger log, StanzaBounce bounce)
    {
        Pipeline = Builder(_hooks).Build(log, bounce);
        _iq = Builder(_iqBuilder).ToFrozenDictionary();
        _nonzas = Builder(_nonzaBuilder).ToFrozenDictionary();
        _hooks = null;
        _iqBuilder = null;
        _nonzaBuilder = null;
    }

    /// <summary>The module handler of iq-{type}/{address}/{namespace}: one frozen-dictionary lookup.</summary>
    public IqHandler? FindIqHandler(IqType type, IqAddress address, string ns) =>
        _iq.GetValueOrDefault((type, address, ns));

    /// <summary>The handler of a nonza, or null (the stream is then closed with unsupported-stanza-type).</summary>
    public NonzaHandler? FindNonzaHandler(string ns, string name) => _nonzas.GetValueOrDefault((ns, name));

    private static T Builder<T>(T? builder) where T : class =>
        builder ?? throw new InvalidOperationException("modules register while the server starts; the pipeline is frozen now");

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
