using System.Globalization;
using System.Text;

namespace Starling.Xml.Tests;

/// <summary>Feeds bytes to a parser the way a connection would and renders results as comparable strings.</summary>
internal static class TestSupport
{
    public const string Header =
        "<stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>";

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>
    /// Feeds <paramref name="data"/> in chunks whose sizes <paramref name="nextChunk"/> chooses; after each event the
    /// unconsumed rest of the chunk is fed again (as a caller must). Stops at the first error.
    /// </summary>
    public static List<string> Run(XmlStreamParser parser, byte[] data, Func<int> nextChunk)
    {
        var events = new List<string>();
        int fed = 0;
        while (fed < data.Length)
        {
            int n = Math.Min(Math.Max(1, nextChunk()), data.Length - fed);
            var chunk = data.AsSpan(fed, n);
            fed += n;
            while (true)
            {
                var ev = parser.Read(chunk, out int consumed);
                Assert.InRange(consumed, 0, chunk.Length);
                chunk = chunk[consumed..];
                if (ev == XmlStreamEvent.NeedMoreData)
                {
                    Assert.True(chunk.IsEmpty, "NeedMoreData must consume everything");
                    break;
                }
                events.Add(Describe(parser, ev));
                if (ev == XmlStreamEvent.Error) return events;
            }
        }
        return events;
    }

    public static List<string> RunWhole(byte[] data, XmlLimits? limits = null) =>
        Run(new XmlStreamParser(limits), data, () => data.Length);

    public static List<string> RunByteByByte(byte[] data, XmlLimits? limits = null) =>
        Run(new XmlStreamParser(limits), data, () => 1);

    public static List<string> RunRandomChunks(byte[] data, int seed, int maxChunk = 17, XmlLimits? limits = null)
    {
        var random = new Random(seed);
        return Run(new XmlStreamParser(limits), data, () => random.Next(1, maxChunk + 1));
    }

    public static string Describe(XmlStreamParser parser, XmlStreamEvent ev) => ev switch
    {
        XmlStreamEvent.StreamOpen => "open " + Canon(parser.StreamHeader!) + " default=" + parser.StreamDefaultNamespace,
        XmlStreamEvent.Element => "element " + Canon(parser.TakeElement()),
        XmlStreamEvent.StreamClose => "close",
        XmlStreamEvent.Error => "error " + parser.Error,
        _ => ev.ToString(),
    };

    /// <summary>The first error condition in the event list, or None.</summary>
    public static XmlStreamErrorCondition ErrorOf(List<string> events)
    {
        var last = events.Count > 0 ? events[^1] : "";
        return last.StartsWith("error ", StringComparison.Ordinal)
            ? Enum.Parse<XmlStreamErrorCondition>(last["error ".Length..])
            : XmlStreamErrorCondition.None;
    }

    /// <summary>An unambiguous rendering of a tree: names, namespaces, attributes in order, text.</summary>
    public static string Canon(XmlElement e)
    {
        var sb = new StringBuilder();
        Canon(e, sb);
        return sb.ToString();
    }

    private static void Canon(XmlElement e, StringBuilder sb)
    {
        sb.Append("<{").Append(Escape(e.Namespace)).Append('}').Append(Escape(e.Name));
        foreach (var a in e.Attributes)
        {
            sb.Append(" {").Append(Escape(a.Namespace)).Append('}').Append(Escape(a.Name)).Append("=\"").Append(Escape(a.Value)).Append('"');
        }
        sb.Append('>');
        foreach (var c in e.Children)
        {
            if (c is XmlElement child) Canon(child, sb);
            else if (c is XmlText t) sb.Append("T(").Append(Escape(t.Value)).Append(')');
        }
        sb.Append("</>");
    }

    private static string Escape(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s)
        {
            if (c is '\\' or '"' or '(' or ')' or '<' or '>' or '{' or '}') sb.Append('\\').Append(c);
            else if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
