namespace Starling.Xml;

/// <summary>
/// Limits that protect the server from hostile input. Exceeding one is a <c>policy-violation</c> stream error
/// (RFC 6120 §4.9.3.14). Defaults follow what Prosody and ejabberd ship (256 KiB stanzas for c2s).
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

    public static XmlLimits Default { get; } = new();
}
