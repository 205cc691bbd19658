using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace Starling.Xml.Tests;

/// <summary>System.Xml (namespace-aware XmlReader) as a parser independent of ours, for checking what the writer produces.</summary>
internal static class SystemXml
{
    /// <summary>
    /// Parses the writer's output for an element written stand-alone (<paramref name="wrapperNamespace"/> null) or as the
    /// child of a stream whose default namespace is <paramref name="wrapperNamespace"/> and which declares <c>stream:</c>.
    /// </summary>
    public static XmlElement Parse(string written, string? wrapperNamespace = null)
    {
        var xml = wrapperNamespace is null
            ? written
            : "<wrapper xmlns='" + wrapperNamespace + "' xmlns:stream='" + XmlNames.Streams + "'>" + written + "</wrapper>";
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, CheckCharacters = true };
        using var reader = XmlReader.Create(new StringReader(xml), settings);
        var root = XDocument.Load(reader, LoadOptions.PreserveWhitespace).Root!;
        return Convert(wrapperNamespace is null ? root : root.Elements().Single());
    }

    public static XmlElement Convert(XElement x)
    {
        var e = new XmlElement(x.Name.LocalName, x.Name.NamespaceName);
        foreach (var a in x.Attributes())
        {
            if (a.IsNamespaceDeclaration) continue;
            e.AddAttributeUnchecked(new XmlAttribute(a.Name.LocalName, a.Value, a.Name.NamespaceName));
        }
        StringBuilder? text = null;
        foreach (var node in x.Nodes())
        {
            if (node is XText t)
            {
                (text ??= new StringBuilder()).Append(t.Value);
                continue;
            }
            if (text is { Length: > 0 }) e.AddText(text.ToString());
            text = null;
            if (node is XElement child) e.Add(Convert(child));
        }
        if (text is { Length: > 0 }) e.AddText(text.ToString());
        return e;
    }
}
