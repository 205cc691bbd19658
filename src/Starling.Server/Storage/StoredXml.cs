using System.Text;
using Starling.Xml;

namespace Starling.Server.Storage;

/// <summary>Reading back XML the server stored itself (offline messages, private XML fragments).</summary>
public static class StoredXml
{
    /// <summary>
    /// Limits for re-parsing a stored row: bounded by the row's own size (every name, attribute and level of nesting
    /// takes at least one byte of it), not by the client limits in force. The row was accepted once under whatever
    /// limits were configured then, and the serialiser may have grown it (escaping, namespace declarations); with the
    /// client limits it could fail to load forever (issue #13, offline storage poisoning).
    /// </summary>
    public static XmlLimits LimitsFor(string xml)
    {
        ArgumentNullException.ThrowIfNull(xml);
        int bytes = Encoding.UTF8.GetByteCount(xml);
        int bound = bytes < int.MaxValue / 2 ? bytes + 16 : int.MaxValue / 2;
        return new XmlLimits { MaxStanzaBytes = bound, MaxDepth = bound, MaxAttributes = bound, MaxNameBytes = bound };
    }

    /// <summary>Parses a stored row with <see cref="LimitsFor"/>; throws <see cref="FormatException"/> if it is not XML.</summary>
    public static XmlElement Parse(string xml) => XmlStreamParser.ParseElement(xml, LimitsFor(xml));
}
