using Starling.Server.Sessions;
using Starling.Xml;

namespace Starling.Server.Pipeline;

/// <summary>
/// Handles a top-level element outside jabber:client on a bound c2s stream (XEP-0198 &lt;r/&gt;, &lt;a/&gt;,
/// &lt;enable/&gt;; XEP-0352 &lt;active/&gt;, &lt;inactive/&gt;), registered by namespace and name through
/// ModuleContext.OnNonza. Runs in order on the stream's read loop; must not block.
/// </summary>
public delegate ValueTask NonzaHandler(C2sSession session, XmlElement element);

/// <summary>
/// Handles a nonza that may come before resource binding (XEP-0198 &lt;resume/&gt; after SASL, and the answers XEP-0198
/// gives to an early &lt;enable/&gt;), registered through ModuleContext.OnNonzaBeforeBind. It sees the negotiating stream,
/// which may not even be authenticated: the handler checks. Runs on the stream's read loop; must not block.
/// </summary>
public delegate ValueTask PreBindNonzaHandler(C2sStream stream, XmlElement element);
