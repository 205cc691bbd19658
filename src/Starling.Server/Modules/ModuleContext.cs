using Microsoft.Extensions.Logging;
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
    /// <summary>Name used in config (Modules:Disabled).</summary>
    string Name { get; }

    /// <summary>Declares the module's features and handlers.</summary>
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
public sealed class ModuleContext
{
    internal ModuleContext(XmppServer server, string moduleName)
    {
        Server = server;
        Logger = server.LoggerFactory.CreateLogger("Starling.Modules." + moduleName);
    }

    public XmppServer Server { get; }

    public ILogger Logger { get; }

    /// <summary>Registers the handler of iq-{type}/{address}/{namespace}: the namespace of the iq's payload element.</summary>
    public void OnIq(IqType type, IqAddress address, string ns, IqHandler handler) =>
        Server.Modules.AddIqHandler(type, address, ns, handler);

    /// <summary>A XEP-0030 feature of the server (and of account bare JIDs when <paramref name="alsoAccount"/>).</summary>
    public void AddDiscoFeature(string feature, bool alsoAccount = false) => Server.Modules.AddDiscoFeature(feature, alsoAccount);

    /// <summary>A stream feature offered after resource binding prerequisites (e.g. roster versioning).</summary>
    public void AddStreamFeature(Func<C2sSession, XmlElement?> feature) => Server.Modules.AddStreamFeature(feature);

    /// <summary>Raised when a session sends its initial available presence (RFC 6121 §4.2).</summary>
    public event Func<C2sSession, ValueTask>? SessionAvailable
    {
        add => Server.Modules.SessionAvailable += value;
        remove => Server.Modules.SessionAvailable -= value;
    }

    /// <summary>Raised once when a bound session ends, after it is unbound.</summary>
    public event Func<C2sSession, ValueTask>? SessionClosed
    {
        add => Server.Modules.SessionClosed += value;
        remove => Server.Modules.SessionClosed -= value;
    }

    /// <summary>
    /// Adds a handler to a pipeline event (<c>pre-message/bare</c>, <c>message/offline</c>, <c>presence/full</c>…).
    /// Higher priorities run first; the router's defaults sit at 0; returning true stops the chain.
    /// </summary>
    public void Hook(StanzaEvent e, StanzaHandler handler, int priority = 0) => Server.Modules.Hook(e, handler, priority);

    /// <summary>Handles the top-level element {<paramref name="ns"/>}<paramref name="name"/> on a bound c2s stream (XEP-0198, XEP-0352…).</summary>
    public void OnNonza(string ns, string name, NonzaHandler handler) => Server.Modules.AddNonzaHandler(ns, name, handler);
}
