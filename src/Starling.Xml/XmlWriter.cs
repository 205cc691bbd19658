using System.Buffers;
using System.Text;

namespace Starling.Xml;

/// <summary>
/// Serialises elements as UTF-8 straight into a pooled <see cref="IBufferWriter{T}"/> (no intermediate strings).
/// Namespace declarations are emitted only where an element's namespace differs from its parent's;
/// elements of the stream namespace use the <c>stream:</c> prefix that the stream header declares.
/// </summary>
public static class XmlWriter
{
    private static readonly SearchValues<char> TextSpecials = SearchValues.Create("&<>\r");
    private static readonly SearchValues<char> AttributeSpecials = SearchValues.Create("&<>\"'\r\n\t");

    /// <summary>
    /// Writes <paramref name="element"/> as a child of an element whose namespace is <paramref name="parentNamespace"/>
    /// (for a stanza on a c2s stream: "jabber:client"). With <paramref name="streamPrefixDeclared"/> false,
    /// a stream-namespace element also declares the prefix (stand-alone output).
    /// </summary>
    public static void Write(IBufferWriter<byte> output, XmlElement element, string? parentNamespace, bool streamPrefixDeclared = true)
    {
        WriteElement(output, element, parentNamespace, streamPrefixDeclared, depth: 0);
    }

    public static string ToXmlString(XmlElement element, string? parentNamespace, bool streamPrefixDeclared = false)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, element, parentNamespace, streamPrefixDeclared);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static byte[] ToUtf8(XmlElement element, string? parentNamespace, bool streamPrefixDeclared = true)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, element, parentNamespace, streamPrefixDeclared);
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteElement(IBufferWriter<byte> o, XmlElement e, string? parentNs, bool streamPrefixDeclared, int depth)
    {
        bool streamPrefixed = e.Namespace == XmlNames.Streams;
        WriteRaw(o, "<"u8);
        if (streamPrefixed) WriteRaw(o, "stream:"u8);
        WriteString(o, e.Name);
        if (streamPrefixed)
        {
            if (!streamPrefixDeclared)
            {
                WriteRaw(o, " xmlns:stream=\""u8);
                WriteString(o, XmlNames.Streams);
                WriteRaw(o, "\""u8);
            }
        }
        else if (!string.Equals(e.Namespace, parentNs, StringComparison.Ordinal))
        {
            WriteRaw(o, " xmlns=\""u8);
            WriteEscaped(o, e.Namespace, AttributeSpecials);
            WriteRaw(o, "\""u8);
        }

        var attrs = e.Attributes;
        int generated = 0;
        for (int i = 0; i < attrs.Count; i++)
        {
            var a = attrs[i];
            WriteRaw(o, " "u8);
            if (a.Namespace.Length == 0)
            {
                WriteString(o, a.Name);
            }
            else if (a.Namespace == XmlNames.XmlNamespace)
            {
                WriteRaw(o, "xml:"u8);
                WriteString(o, a.Name);
            }
            else
            {
                // A foreign-namespace attribute needs a prefix; declare a fresh one on this element.
                var prefix = "a" + generated++.ToString(System.Globalization.CultureInfo.InvariantCulture);
                WriteRaw(o, "xmlns:"u8);
                WriteString(o, prefix);
                WriteRaw(o, "=\""u8);
                WriteEscaped(o, a.Namespace, AttributeSpecials);
                WriteRaw(o, "\" "u8);
                WriteString(o, prefix);
                WriteRaw(o, ":"u8);
                WriteString(o, a.Name);
            }
            WriteRaw(o, "=\""u8);
            WriteEscaped(o, a.Value, AttributeSpecials);
            WriteRaw(o, "\""u8);
        }

        var children = e.Children;
        if (children.Count == 0)
        {
            WriteRaw(o, "/>"u8);
            return;
        }
        WriteRaw(o, ">"u8);
        string childParentNs = streamPrefixed ? (parentNs ?? string.Empty) : e.Namespace;
        for (int i = 0; i < children.Count; i++)
        {
            switch (children[i])
            {
                case XmlElement child:
                    WriteElement(o, child, childParentNs, streamPrefixDeclared || streamPrefixed, depth + 1);
                    break;
                case XmlText text:
                    WriteEscaped(o, text.Value, TextSpecials);
                    break;
            }
        }
        WriteRaw(o, "</"u8);
        if (streamPrefixed) WriteRaw(o, "stream:"u8);
        WriteString(o, e.Name);
        WriteRaw(o, ">"u8);
    }

    /// <summary>Writes character data with the escaping XML requires.</summary>
    public static void WriteText(IBufferWriter<byte> o, string text) => WriteEscaped(o, text, TextSpecials);

    /// <summary>Writes an attribute value with the escaping XML requires (quotes, and whitespace kept as character references).</summary>
    public static void WriteAttributeValue(IBufferWriter<byte> o, string value) => WriteEscaped(o, value, AttributeSpecials);

    private static void WriteEscaped(IBufferWriter<byte> o, string value, SearchValues<char> specials)
    {
        ReadOnlySpan<char> rest = value;
        while (rest.Length > 0)
        {
            int i = rest.IndexOfAny(specials);
            if (i < 0)
            {
                WriteString(o, rest);
                return;
            }
            if (i > 0) WriteString(o, rest[..i]);
            WriteRaw(o, rest[i] switch
            {
                '&' => "&amp;"u8,
                '<' => "&lt;"u8,
                '>' => "&gt;"u8,
                '"' => "&quot;"u8,
                '\'' => "&apos;"u8,
                '\r' => "&#13;"u8,
                '\n' => "&#10;"u8,
                _ => "&#9;"u8,
            });
            rest = rest[(i + 1)..];
        }
    }

    public static void WriteRaw(IBufferWriter<byte> o, ReadOnlySpan<byte> bytes)
    {
        var span = o.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        o.Advance(bytes.Length);
    }

    public static void WriteString(IBufferWriter<byte> o, ReadOnlySpan<char> s)
    {
        if (s.IsEmpty) return;
        var span = o.GetSpan(Encoding.UTF8.GetMaxByteCount(s.Length));
        int n = Encoding.UTF8.GetBytes(s, span);
        o.Advance(n);
    }
}
