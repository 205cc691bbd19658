using Microsoft.Extensions.Logging;
using Starling.Server.Negotiation;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules;

/// <summary>One XEP or feature, in one class, with one <see cref="Register"/> method (see shared/STYLE.md).</summary>
/// <remarks>
/// Handlers run on the socket thread that received the stanza (one per core, shared by many connections; see
/// StarlingHost.UseInlineSocketCompletions), so they must not block: no synchronous waits or network I/O. Storage is
/// fine: reads are short, and writes move to the thread pool by themselves (SqliteStorage.WriteAsync).
/// </remarks>
public interface IModule
{
    /// <summary>Name used in config (Modules:Disabled, Modules:NAME for its options); the same as in ModuleCatalog.</summary>
    string Name { get; }

    /// <summary>Declares the module's features and handlers, reading its typed options (<see cref="ModuleContext.Options{T}"/>).</summary>
    void Register(ModuleContext context);
}

public enum IqType
{
    Get,
    Set,
}

/// <summary>
/// Who an iq is addressed to, seen from the server (the Prosody naming: iq-get/host/..., iq-set/self/..., iq-get/bare/...).
/// </summary>
public enum IqAddress
{
    /// <summary>The server's domain (to='example.org').</summary>
    Host,
    /// <summary>The sender's own account: no 'to', or to its own bare JID (RFC 6120 §10.3.3).</summary>
    Self,
    /// <summary>Another local account's bare JID: the server answers on that account's behalf.</summary>
    Bare,
}

/// <summary>An iq request being handled.</summary>
public sealed class IqRequest
{
    public required XmlElement Stanza { get; init; }

    /// <summary>The first (payload) child element.</summary>
    public required XmlElement Payload { get; init; }

    public required Jid From { get; init; }

    /// <summary>The addressee: the host, the sender's bare JID, or another bare JID.</summary>
    public required Jid To { get; init; }

    /// <summary>The sending client session when the request came from a local client.</summary>
    public C2sSession? Session { get; init; }

    public IqType Type { get; init; }
}

/// <summary>The answer to an iq: a result (with optional payload) or an error condition.</summary>
public readonly record struct IqReply(XmlElement? Payload, StanzaErrorCondition? Error, string? ErrorText)
{
    public static IqReply Result(XmlElement? payload = null) => new(payload, null, null);

    public static IqReply Fail(StanzaErrorCondition condition, string? text = null) => new(null, condition, text);
}

public delegate ValueTask<IqReply> IqHandler(IqRequest request);

/// <summary>What a module registers through and what it may use. Built once at start; read-only afterwards.</summary>
/// <remarks>
/// One module instance serves every host that runs it. When some host does not (Hosts:N:Modules), what the module
/// registers is tagged with it: iq handlers, disco and stream features are left out of that host's tables
/// (<see cref="HostModules"/>), and its event handlers are skipped for that host's sessions and accounts (one flag read).
/// </remarks>
public sealed class ModuleContext
{
    private readonly ModuleDescriptor _module;
    private readonly IModuleOptions? _options;
    private readonly bool _everywhere;
    private readonly Dictionary<Func<C2sSession, ValueTask>, Func<C2sSession, ValueTask>> _gated = [];

    internal ModuleContext(XmppServer server, ModuleDescriptor module, IModuleOptions? options, bool everywhere)
    {
        Server = server;
        Logger = server.LoggerFactory.CreateLogger("Starling.Modules." + module.Name);
        _module = module;
        _options = options;
        _everywhere = everywhere;
    }

    public XmppServer Server { get; }

    public ILogger Logger { get; }

    /// <summary>
    /// The module's typed options (Modules:NAME), bound and validated at start; the type is the one ModuleCatalog lists
    /// for the module (a mismatch is a programming error, found at the first start).
    /// </summary>
    public T Options<T>() where T : class, IModuleOptions =>
        _options as T ?? throw new InvalidOperationException($"module {_module.Name} has no options of type {typeof(T).Name} in ModuleCatalog");

    /// <summary>Registers the handler of iq-{type}/{address}/{namespace}: the namespace of the iq's payload element.</summary>
    public void OnIq(IqType type, IqAddress address, string ns, IqHandler handler) =>
        Server.Modules.AddIqHandler(type, address, ns, handler, _module.Index);

    /// <summary>A XEP-0030 feature of the server (and of account bare JIDs when <paramref name="alsoAccount"/>).</summary>
    public void AddDiscoFeature(string feature, bool alsoAccount = false) => Server.Modules.AddDiscoFeature(feature, alsoAccount, _module.Index);

    // ---- negotiation (Negotiation/) ----

    /// <summary>A stream feature offered after authentication (e.g. roster versioning), after bind and session.</summary>
    public void AddStreamFeature(Func<C2sStream, XmlElement?> feature) =>
        AddStreamFeature(StreamFeatureStage.Authenticated, StreamFeatureRegistry.DefaultOrder, feature);

    /// <summary>
    /// A stream feature of <paramref name="stage"/>, placed by <paramref name="order"/> (lower first; see StreamFeatureRegistry);
    /// not offered on hosts that do not run the module.
    /// </summary>
    public void AddStreamFeature(StreamFeatureStage stage, int order, Func<C2sStream, XmlElement?> feature)
    {
        if (!_everywhere)
        {
            int module = _module.Index;
            var offered = feature;
            feature = session => session.HostModules is { } host && host.Enables(module) ? offered(session) : null;
        }
        Server.Modules.StreamFeatures.Add(stage, order, feature);
    }

    /// <summary>A SASL mechanism, offered before those of lower <paramref name="strength"/> (see SaslMechanismRegistry).</summary>
    public void AddSaslMechanism(ISaslMechanism mechanism, int strength) => Server.Modules.SaslMechanisms.Add(mechanism, strength);

    // ---- end of negotiation ----

    /// <summary>Raised when a session sends its initial available presence (RFC 6121 §4.2).</summary>
    public event Func<C2sSession, ValueTask>? SessionAvailable
    {
        add => Server.Modules.SessionAvailable += OnItsHosts(value);
        remove => Server.Modules.SessionAvailable -= OnItsHosts(value);
    }

    /// <summary>Raised once when a bound session ends, after it is unbound.</summary>
    public event Func<C2sSession, ValueTask>? SessionClosed
    {
        add => Server.Modules.SessionClosed += OnItsHosts(value);
        remove => Server.Modules.SessionClosed -= OnItsHosts(value);
    }

    /// <summary>
    /// Raised once when a graceful shutdown begins, before any stream is closed and long before storage closes: the
    /// place to settle what only a module holds (XEP-0198 queues of live and hibernating sessions).
    /// </summary>
    public event Func<ValueTask>? ServerStopping
    {
        add => Server.Modules.ServerStopping += value;
        remove => Server.Modules.ServerStopping -= value;
    }

    /// <summary>
    /// Adds a handler to a pipeline event (<c>pre-message/bare</c>, <c>message/offline</c>, <c>presence/full</c>…).
    /// Higher priorities run first; the router's defaults sit at 0; returning true stops the chain.
    /// </summary>
    public void Hook(StanzaEvent e, StanzaHandler handler, int priority = 0)
    {
        if (!_everywhere)
        {
            // On a host without the module the handler lets the chain go on, as if it were not there: pre-events are the
            // sender's (its session's host), delivery events the addressee's.
            int module = _module.Index;
            var inner = handler;
            var modules = Server.Modules;
            handler = e.Stage == StanzaStage.Pre
                ? context => context.Origin?.HostModules is { } host && !host.Enables(module) ? new ValueTask<bool>(false) : inner(context)
                : context => modules.ForHost(context.To.Domain) is { } host && !host.Enables(module) ? new ValueTask<bool>(false) : inner(context);
        }
        Server.Modules.Hook(e, handler, priority);
    }

    /// <summary>Handles the top-level element {<paramref name="ns"/>}<paramref name="name"/> on a bound c2s stream (XEP-0198, XEP-0352…).</summary>
    public void OnNonza(string ns, string name, NonzaHandler handler)
    {
        if (!_everywhere)
        {
            int module = _module.Index;
            var inner = handler;
            // Not the host's module: the element is unknown there (the session closes the stream as for any unhandled one).
            handler = (session, element) => session.HostModules is { } host && !host.Enables(module)
                ? UnhandledNonza(session, element) : inner(session, element);
        }
        Server.Modules.AddNonzaHandler(ns, name, handler);
    }

    /// <summary>
    /// Handles {<paramref name="ns"/>}<paramref name="name"/> on a c2s stream that has no bound session yet (XEP-0198
    /// &lt;resume/&gt; comes after SASL and instead of binding); the handler sees the stream and checks its stage.
    /// </summary>
    public void OnNonzaBeforeBind(string ns, string name, PreBindNonzaHandler handler)
    {
        if (!_everywhere)
        {
            int module = _module.Index;
            var inner = handler;
            handler = (stream, element) =>
            {
                if (stream.HostModules is { } host && !host.Enables(module))
                {
                    stream.Close(StreamErrors.UnsupportedStanzaType, $"element {C2sStream.Echo(element.Name)} in namespace {C2sStream.Echo(element.Namespace)} is not a stanza this server knows");
                    return ValueTask.CompletedTask;
                }
                return inner(stream, element);
            };
        }
        Server.Modules.AddPreBindNonzaHandler(ns, name, handler);
    }

    private static ValueTask UnhandledNonza(C2sSession session, XmlElement element)
    {
        session.Close(StreamErrors.UnsupportedStanzaType, $"element {C2sStream.Echo(element.Name)} in namespace {C2sStream.Echo(element.Namespace)} is not a stanza this server knows");
        return ValueTask.CompletedTask;
    }

    /// <summary>The handler itself when every host runs the module; else one that skips sessions of hosts that do not.</summary>
    private Func<C2sSession, ValueTask>? OnItsHosts(Func<C2sSession, ValueTask>? handler)
    {
        if (handler is null || _everywhere) return handler;
        if (_gated.TryGetValue(handler, out var gated)) return gated;
        int module = _module.Index;
        gated = session => session.HostModules is { } host && host.Enables(module) ? handler(session) : ValueTask.CompletedTask;
        _gated[handler] = gated;
        return gated;
    }
}
