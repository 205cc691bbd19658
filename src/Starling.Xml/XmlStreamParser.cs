using System.Buffers;

namespace Starling.Xml;

/// <summary>What <see cref="XmlStreamParser.Read(ReadOnlySpan{byte}, out int)"/> found.</summary>
public enum XmlStreamEvent
{
    /// <summary>All input was consumed without completing an event: feed more bytes.</summary>
    NeedMoreData = 0,
    /// <summary>The stream header (the opening tag of the root) is complete: see <see cref="XmlStreamParser.StreamHeader"/>.</summary>
    StreamOpen,
    /// <summary>A complete top-level child of the root: take it with <see cref="XmlStreamParser.TakeElement"/>.</summary>
    Element,
    /// <summary>The root was closed (&lt;/stream:stream&gt;).</summary>
    StreamClose,
    /// <summary>The input violates the XML subset or a limit: see <see cref="XmlStreamParser.Error"/>. The parser stays failed until <see cref="XmlStreamParser.Reset"/>.</summary>
    Error,
}

/// <summary>
/// Incremental, namespace-aware push parser for the XML subset XMPP allows (RFC 6120 §11).
/// CONTRACT STUB: implementation in progress.
/// </summary>
public sealed class XmlStreamParser
{
    public XmlStreamParser(XmlLimits? limits = null)
    {
        Limits = limits ?? XmlLimits.Default;
    }

    public XmlLimits Limits { get; }

    public XmlElement? StreamHeader { get; private set; }

    public string StreamDefaultNamespace { get; private set; } = string.Empty;

    public XmlStreamErrorCondition Error { get; private set; }

    public string? ErrorDetail { get; private set; }

    public XmlStreamEvent Read(ReadOnlySpan<byte> input, out int consumed) => throw new NotImplementedException();

    public XmlStreamEvent Read(in ReadOnlySequence<byte> input, out SequencePosition consumed) => throw new NotImplementedException();

    public XmlElement TakeElement() => throw new NotImplementedException();

    public void Reset() => throw new NotImplementedException();

    public static XmlElement ParseElement(ReadOnlySpan<byte> utf8, XmlLimits? limits = null) => throw new NotImplementedException();

    public static XmlElement ParseElement(string xml, XmlLimits? limits = null) => throw new NotImplementedException();
}
