using Starling.Xml;

namespace Starling.Xmpp;

/// <summary>RFC 6120 §4.9.3 stream error conditions.</summary>
public static class StreamErrors
{
    public const string BadFormat = "bad-format";
    public const string Conflict = "conflict";
    public const string ConnectionTimeout = "connection-timeout";
    public const string HostUnknown = "host-unknown";
    public const string InternalServerError = "internal-server-error";
    public const string InvalidFrom = "invalid-from";
    public const string InvalidNamespace = "invalid-namespace";
    public const string NotAuthorized = "not-authorized";
    public const string NotWellFormed = "not-well-formed";
    public const string PolicyViolation = "policy-violation";
    public const string ResourceConstraint = "resource-constraint";
    public const string RestrictedXml = "restricted-xml";
    public const string SystemShutdown = "system-shutdown";
    public const string UndefinedCondition = "undefined-condition";
    public const string UnsupportedStanzaType = "unsupported-stanza-type";
    public const string UnsupportedVersion = "unsupported-version";
    public const string UnsupportedEncoding = "unsupported-encoding";

    /// <summary>&lt;stream:error&gt;&lt;condition/&gt;&lt;text/&gt;&lt;/stream:error&gt;</summary>
    /// <remarks>RFC 6120 §4.9.4: an application-specific condition follows the text (XEP-0198 handled-count-too-high).</remarks>
    public static XmlElement Create(string condition, string? text = null, XmlElement? applicationCondition = null)
    {
        var error = new XmlElement("error", Namespaces.Streams);
        error.Add(new XmlElement(condition, Namespaces.StreamErrors));
        if (text is not null)
        {
            var t = new XmlElement("text", Namespaces.StreamErrors);
            t.SetAttribute("lang", "en", XmlNames.XmlNamespace);
            t.AddText(text);
            error.Add(t);
        }
        if (applicationCondition is not null) error.Add(applicationCondition);
        return error;
    }
}
