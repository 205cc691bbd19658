namespace Starling.Xml;

/// <summary>
/// Limits that protect the server from hostile input. Exceeding one is a <c>policy-violation</c> stream error
/// (RFC 6120 §4.9.3.14). Defaults follow what Prosody and ejabberd ship (256 KiB stanzas for c2s); the per-stanza
/// element and namespace caps leave several times the largest payloads real clients send (an OMEMO bundle is ~300
/// elements, a big bookmark set ~1,000-2,000, a vCard with an avatar a few dozen elements and a long text).
/// </summary>
public sealed record XmlLimits
{
    /// <summary>Maximum bytes of one top-level element (stanza), markup included.</summary>
    public int MaxStanzaBytes { get; init; } = 256 * 1024;

    /// <summary>Maximum bytes of the stream header.</summary>
    public int MaxHeaderBytes { get; init; } = 8 * 1024;

    /// <summary>Maximum element nesting depth below the stream root.</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Maximum attributes on one element.</summary>
    public int MaxAttributes { get; init; } = 64;

    /// <summary>Maximum length in bytes of one name (element, attribute or prefix).</summary>
    public int MaxNameBytes { get; init; } = 256;

    /// <summary>Maximum elements in one stanza, the stanza itself included (10,000: five times a big bookmark set).</summary>
    public int MaxElements { get; init; } = 10_000;

    /// <summary>
    /// Maximum namespace declarations (<c>xmlns</c>, <c>xmlns:p</c>) in one stanza. Real stanzas declare at most one
    /// per payload element; 4,096 is twice a big bookmark set that declares its namespace on every item.
    /// </summary>
    public int MaxNamespaceDeclarations { get; init; } = 4_096;

    /// <summary>
    /// Maximum distinct namespace URIs declared in one stanza. A Jingle session-initiate, the richest ordinary
    /// stanza, uses about a dozen; each distinct namespace may cost the writer one declaration on the stanza.
    /// </summary>
    public int MaxNamespaces { get; init; } = 64;

    /// <summary>
    /// Maximum bytes (UTF-8) of one namespace URI. XMPP's namespaces are under 64 bytes; 1,024 leaves room for
    /// vendor URLs while bounding what one declaration can make the server repeat.
    /// </summary>
    public int MaxNamespaceBytes { get; init; } = 1_024;

    public static XmlLimits Default { get; } = new();

    /// <summary>
    /// For XML this server wrote itself (its database), never for network input: no caps. What the writer
    /// produces from an accepted stanza can exceed the network limits (escaping, declarations on the root), and
    /// stored data must always read back, or a stored message would be lost.
    /// </summary>
    public static XmlLimits Trusted { get; } = new()
    {
        MaxStanzaBytes = int.MaxValue,
        MaxHeaderBytes = int.MaxValue,
        MaxDepth = int.MaxValue - 1,
        MaxAttributes = int.MaxValue,
        MaxNameBytes = int.MaxValue,
        MaxElements = int.MaxValue,
        MaxNamespaceDeclarations = int.MaxValue,
        MaxNamespaces = int.MaxValue,
        MaxNamespaceBytes = int.MaxValue,
    };
}
