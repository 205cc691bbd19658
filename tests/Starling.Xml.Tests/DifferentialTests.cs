using System.Globalization;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using static Starling.Xml.Tests.TestSupport;

namespace Starling.Xml.Tests;

/// <summary>
/// Generates random well-formed streams (seeded: a failure names its seed) and checks that our parser and
/// System.Xml agree on every tree: names, namespaces, attributes and text.
/// </summary>
public class DifferentialTests
{
    private const int Cases = 3000;

    [Fact]
    public void Random_documents_parse_like_System_Xml()
    {
        for (int seed = 0; seed < Cases; seed++)
        {
            var xml = new DocumentGenerator(seed).Stream();
            var bytes = Encoding.UTF8.GetBytes(xml);
            var expected = WithSystemXml(xml);
            var random = new Random(seed);
            var actual = Run(new XmlStreamParser(), bytes, () => random.Next(1, 100));
            if (!expected.SequenceEqual(actual))
            {
                Assert.Fail($"seed {seed}\n{xml}\nexpected:\n{string.Join("\n", expected)}\nactual:\n{string.Join("\n", actual)}");
            }
        }
    }

    [Fact]
    public void Random_elements_round_trip_through_the_writer()
    {
        for (int seed = 0; seed < 1000; seed++)
        {
            var xml = new DocumentGenerator(seed).Element();
            var parsed = XmlStreamParser.ParseElement(xml);
            var written = XmlWriter.ToXmlString(parsed, parentNamespace: null);
            var reparsed = XmlStreamParser.ParseElement(written);
            Assert.True(Canon(parsed) == Canon(reparsed), $"seed {seed}\n{xml}\n{written}");
        }
    }

    private static List<string> WithSystemXml(string xml)
    {
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
        using var reader = XmlReader.Create(new StringReader(xml), settings);
        var doc = XDocument.Load(reader, LoadOptions.PreserveWhitespace);
        var root = doc.Root!;
        var events = new List<string>();
        var header = Convert(root, withChildren: false);
        events.Add("open " + Canon(header) + " default=" + root.GetDefaultNamespace().NamespaceName);
        foreach (var child in root.Elements()) events.Add("element " + Canon(Convert(child, withChildren: true)));
        events.Add("close");
        return events;
    }

    private static XmlElement Convert(XElement x, bool withChildren)
    {
        var e = new XmlElement(x.Name.LocalName, x.Name.NamespaceName);
        foreach (var a in x.Attributes())
        {
            if (a.IsNamespaceDeclaration) continue;
            e.AddAttributeUnchecked(new XmlAttribute(a.Name.LocalName, a.Value, a.Name.NamespaceName));
        }
        if (!withChildren) return e;
        StringBuilder? text = null;
        foreach (var node in x.Nodes())
        {
            if (node is XText t) // XCData is an XText
            {
                (text ??= new StringBuilder()).Append(t.Value);
                continue;
            }
            if (text is { Length: > 0 }) e.AddText(text.ToString());
            text = null;
            if (node is XElement child) e.Add(Convert(child, withChildren: true));
        }
        if (text is { Length: > 0 }) e.AddText(text.ToString());
        return e;
    }

    /// <summary>Random XML text exercising the syntax the parser must handle; valid by construction.</summary>
    internal sealed class DocumentGenerator(int seed)
    {
        private static readonly string[] Namespaces =
        [
            "jabber:client", "urn:a", "urn:b:c", "http://example.com/x?y=1&z=2", "urn:é", "urn:xmpp:receipts", "",
        ];

        private static readonly string[] Prefixes = ["p", "q", "ns1", "x-y", "é"];

        private const string NameStart = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_éжß中";
        private const string NameRest = NameStart + "0123456789-.";
        private const string TextChars = "abc xyz 0123 <>&\"' \t\n\r\r\n]]éüß日本語😀\u00A0\u2028";

        private readonly Random _r = new(seed);
        private readonly StringBuilder _sb = new();

        public string Stream()
        {
            _sb.Clear();
            if (_r.Next(2) == 0) _sb.Append(_r.Next(2) == 0 ? "<?xml version='1.0'?>" : "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
            _sb.Append("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'");
            var scope = new Dictionary<string, string> { ["stream"] = "http://etherx.jabber.org/streams" };
            string defaultNs = "";
            if (_r.Next(4) != 0)
            {
                defaultNs = Pick(["jabber:client", "jabber:server", "urn:a"]);
                _sb.Append(" xmlns='").Append(defaultNs).Append('\'');
            }
            _sb.Append(" to='example.com' version='1.0'");
            if (_r.Next(2) == 0) _sb.Append(" xml:lang='en'");
            _sb.Append(Ws(1)).Append('>');
            int n = _r.Next(1, 4);
            for (int i = 0; i < n; i++)
            {
                _sb.Append(_r.Next(3) == 0 ? Ws(0) : "");
                WriteElement(new Dictionary<string, string>(scope), defaultNs, depth: 0);
            }
            _sb.Append(Ws(0)).Append("</stream:stream>");
            return _sb.ToString();
        }

        public string Element()
        {
            _sb.Clear();
            WriteElement([], "", depth: 0);
            return _sb.ToString();
        }

        private void WriteElement(Dictionary<string, string> scope, string defaultNs, int depth)
        {
            var decls = new List<(string Prefix, string Ns)>();
            // The element's own name: unprefixed (maybe with a new default namespace) or prefixed.
            string? prefix = null;
            int mode = _r.Next(4);
            if (mode == 1)
            {
                defaultNs = Pick(Namespaces);
                decls.Add(("", defaultNs));
            }
            else if (mode == 2)
            {
                prefix = Pick(Prefixes);
                var ns = Pick(Namespaces);
                if (ns.Length == 0) ns = "urn:nonempty";
                decls.Add((prefix, ns));
                scope[prefix] = ns;
            }
            else if (mode == 3 && scope.Count > 0)
            {
                prefix = Pick(scope.Keys.ToArray());
            }
            string local = Name();
            string qname = prefix is null ? local : prefix + ":" + local;
            _sb.Append('<').Append(qname);

            // Attributes, unique after namespace resolution.
            var seen = new HashSet<(string, string)>();
            var attrs = new List<(string QName, string Value)>();
            int count = _r.Next(0, 5);
            for (int i = 0; i < count; i++)
            {
                int kind = _r.Next(6);
                string aPrefix = "", aNs = "", aLocal = Name();
                if (kind == 0)
                {
                    aPrefix = "xml";
                    aNs = "xml";
                    aLocal = _r.Next(2) == 0 ? "lang" : aLocal;
                }
                else if (kind == 1)
                {
                    aPrefix = Pick(Prefixes);
                    // A prefix in scope (declared here or on an ancestor) is reused; otherwise it is declared here.
                    if (!scope.TryGetValue(aPrefix, out var existing))
                    {
                        existing = Pick(Namespaces);
                        if (existing.Length == 0) existing = "urn:attr";
                        decls.Add((aPrefix, existing));
                        scope[aPrefix] = existing;
                    }
                    aNs = existing;
                }
                if (!seen.Add((aNs, aLocal))) continue;
                attrs.Add((aPrefix.Length > 0 ? aPrefix + ":" + aLocal : aLocal, Text(_r.Next(0, 12))));
            }
            foreach (var (p, ns) in decls)
            {
                _sb.Append(Ws(1)).Append(p.Length == 0 ? "xmlns" : "xmlns:" + p).Append(Ws(0)).Append('=').Append(Ws(0));
                AttrValue(ns, raw: true);
            }
            foreach (var (q, v) in attrs)
            {
                _sb.Append(Ws(1)).Append(q).Append(Ws(0)).Append('=').Append(Ws(0));
                AttrValue(v, raw: false);
            }
            _sb.Append(Ws(0));
            if (_r.Next(4) == 0)
            {
                _sb.Append("/>");
                return;
            }
            _sb.Append('>');
            int children = depth >= 4 ? _r.Next(0, 2) : _r.Next(0, 5);
            for (int i = 0; i < children; i++)
            {
                switch (_r.Next(5))
                {
                    case 0 or 1:
                        WriteElement(new Dictionary<string, string>(scope), defaultNs, depth + 1);
                        break;
                    case 2:
                        var cdata = Text(_r.Next(0, 10)).Replace("]]>", "]] >", StringComparison.Ordinal);
                        if (cdata.EndsWith(']')) cdata += "x";
                        _sb.Append("<![CDATA[").Append(cdata).Append("]]>");
                        break;
                    default:
                        CharData(Text(_r.Next(1, 20)));
                        break;
                }
            }
            _sb.Append("</").Append(qname).Append(Ws(0)).Append('>');
        }

        private void AttrValue(string value, bool raw)
        {
            char quote = _r.Next(2) == 0 ? '\'' : '"';
            _sb.Append(quote);
            foreach (var c in Runes(value))
            {
                string s = c.ToString();
                if (c.Value == '&') _sb.Append(raw ? "&amp;" : Ref(c, "&amp;"));
                else if (c.Value == '<') _sb.Append(Ref(c, "&lt;"));
                else if (c.Value == quote) _sb.Append(Ref(c, quote == '"' ? "&quot;" : "&apos;"));
                else if (!raw && _r.Next(8) == 0) _sb.Append(Ref(c, null));
                else _sb.Append(s);
            }
            _sb.Append(quote);
        }

        private void CharData(string text)
        {
            var runes = Runes(text).ToList();
            for (int i = 0; i < runes.Count; i++)
            {
                var c = runes[i];
                if (c.Value == '&') _sb.Append(Ref(c, "&amp;"));
                else if (c.Value == '<') _sb.Append(Ref(c, "&lt;"));
                else if (c.Value == '>') _sb.Append(_sb.Length > 0 && _sb[^1] == ']' ? "&gt;" : Ref(c, ">"));
                else if (_r.Next(8) == 0) _sb.Append(Ref(c, null));
                else _sb.Append(c.ToString());
            }
        }

        /// <summary>A reference for <paramref name="c"/>: the given entity, or a decimal/hex character reference.</summary>
        private string Ref(Rune c, string? entity) => _r.Next(3) switch
        {
            0 when entity is not null => entity,
            1 => "&#" + c.Value.ToString(CultureInfo.InvariantCulture) + ";",
            _ => "&#x" + c.Value.ToString(_r.Next(2) == 0 ? "X" : "x", CultureInfo.InvariantCulture) + ";",
        };

        private static IEnumerable<Rune> Runes(string s)
        {
            foreach (var r in s.EnumerateRunes()) yield return r;
        }

        private string Name()
        {
            int n = _r.Next(1, 8);
            var sb = new StringBuilder();
            sb.Append(NameStart[_r.Next(NameStart.Length)]);
            for (int i = 1; i < n; i++) sb.Append(NameRest[_r.Next(NameRest.Length)]);
            var s = sb.ToString();
            return s.StartsWith("xml", StringComparison.OrdinalIgnoreCase) ? "n" + s : s;
        }

        private string Text(int runs)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < runs; i++)
            {
                // Pick whole elements of TextChars, keeping surrogate pairs and \r\n together.
                int k = _r.Next(TextChars.Length);
                if (char.IsLowSurrogate(TextChars[k])) k--;
                sb.Append(TextChars[k]);
                if (char.IsHighSurrogate(TextChars[k])) sb.Append(TextChars[k + 1]);
            }
            return sb.ToString();
        }

        private string Ws(int min)
        {
            int n = _r.Next(min, min + 2);
            if (n == 0) return "";
            return n == 1 ? " " : Pick([" ", "\n", "\t", "\r\n", "  "]) + " ";
        }

        private T Pick<T>(T[] items) => items[_r.Next(items.Length)];
    }
}
