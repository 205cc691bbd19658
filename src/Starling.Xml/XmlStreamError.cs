namespace Starling.Xml;

/// <summary>The RFC 6120 §4.9.3 stream error conditions the XML layer can detect by itself.</summary>
public enum XmlStreamErrorCondition
{
    None = 0,
    /// <summary>Not well-formed XML (§4.9.3.13), including invalid UTF-8 and characters XML forbids.</summary>
    NotWellFormed,
    /// <summary>Comments, processing instructions, DTDs, entity declarations, unknown entity references (§11.1, §4.9.3.18).</summary>
    RestrictedXml,
    /// <summary>Wrong stream namespace or undeclared prefix (§4.9.3.10).</summary>
    InvalidNamespace,
    /// <summary>Well-formed but not acceptable (§4.9.3.1), e.g. duplicate attributes, a stream root that is not stream:stream.</summary>
    BadFormat,
    /// <summary>A configured limit was exceeded (§4.9.3.14).</summary>
    PolicyViolation,
    /// <summary>Bytes are not UTF-8 (§4.9.3.22, unsupported-encoding), e.g. an encoding declaration other than UTF-8.</summary>
    UnsupportedEncoding,
}

public static class XmlStreamErrorConditionExtensions
{
    /// <summary>The element name of the condition in the urn:ietf:params:xml:ns:xmpp-streams namespace.</summary>
    public static string ToElementName(this XmlStreamErrorCondition c) => c switch
    {
        XmlStreamErrorCondition.NotWellFormed => "not-well-formed",
        XmlStreamErrorCondition.RestrictedXml => "restricted-xml",
        XmlStreamErrorCondition.InvalidNamespace => "invalid-namespace",
        XmlStreamErrorCondition.BadFormat => "bad-format",
        XmlStreamErrorCondition.PolicyViolation => "policy-violation",
        XmlStreamErrorCondition.UnsupportedEncoding => "unsupported-encoding",
        _ => "internal-server-error",
    };
}
