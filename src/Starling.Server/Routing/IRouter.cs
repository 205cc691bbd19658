using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Routing;

/// <summary>
/// Decides where a stanza goes (shared/ARCHITECTURE.md §4). The stanza's 'from' is already stamped and trusted.
/// The local implementation serves this node's domains; a cluster implementation will plug in behind this interface.
/// </summary>
public interface IRouter
{
    /// <summary>Routes a stanza from <paramref name="from"/> to <paramref name="to"/> (never null here: the session resolves defaults).</summary>
    ValueTask RouteAsync(XmlElement stanza, Jid from, Jid to);
}
