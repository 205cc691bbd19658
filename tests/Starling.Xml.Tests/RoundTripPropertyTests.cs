using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using static Starling.Xml.Tests.TestSupport;

namespace Starling.Xml.Tests;

/// <summary>
/// parse ∘ write is the identity on element trees (FsCheck): random names, namespaces (default, prefixed, attribute
/// namespaces, xml:, the stream namespace, long and escaping-heavy URIs), text with XML's special characters, fed to
/// the parser in random chunks as a connection would, and read back by System.Xml too.
/// </summary>
public class RoundTripPropertyTests
{
    private static readonly string[] Names = ["a", "message", "x-y", "_n.1", "é", "中文", "body", "B9"];

    private static readonly string[] ElementNamespaces =
    [
        "", "jabber:client", "urn:a", "urn:xmpp:receipts", "http://example.com/x?y=1&z=2", "urn:\"quoted'<>",
        "urn:long:" + new string('l', 120), XmlNames.Streams,
    ];

    private static readonly string[] AttributeNamespaces = ["", "", "", XmlNames.XmlNamespace, "urn:attr", "urn:a", "urn:long:" + new string('l', 120), "urn:\"q\""];

    private static readonly string[] Texts = ["hi", "&", "<>", "\"'", "\t\n", "\r\n", "]]>", "é😀", " ", "x]]", "\u00A0\u2028"];

    private static Gen<string> TextGen() =>
        from n in Gen.Choose(0, 4)
        from parts in Gen.Elements(Texts).ListOf(n)
        select string.Concat(parts);

    private static Gen<(string, string, string)> AttributeGen() =>
        from name in Gen.Elements(Names)
        from ns in Gen.Elements(AttributeNamespaces)
        from value in TextGen()
        select (name, ns, value);

    private static Gen<XmlElement> ElementGen(int size) =>
        from name in Gen.Elements(Names)
        from ns in Gen.Elements(ElementNamespaces)
        from attributeCount in Gen.Choose(0, 3)
        from attrs in AttributeGen().ListOf(attributeCount)
        from childCount in Gen.Choose(0, Math.Min(size, 5))
        from children in size <= 0 ? Gen.Constant(new List<object>()) : ChildGen(size / 2).ListOf(childCount).Select(l => l.ToList())
        select Build(name, ns, attrs, children);

    private static Gen<object> ChildGen(int size) =>
        Gen.Frequency(
            (2, ElementGen(size).Select(e => (object)e)),
            (1, TextGen().Where(t => t.Length > 0).Select(t => (object)t)));

    private static XmlElement Build(string name, string ns, IEnumerable<(string, string, string)> attrs, List<object> children)
    {
        var e = new XmlElement(name, ns);
        foreach (var (n, ans, value) in attrs)
        {
            if (e.GetAttribute(n, ans) is null) e.SetAttribute(n, value, ans);
        }
        bool lastWasText = false;
        foreach (var c in children)
        {
            if (c is XmlElement child)
            {
                e.Add(child);
                lastWasText = false;
            }
            else if (!lastWasText)
            {
                e.AddText((string)c); // the parser joins adjacent character data into one text node
                lastWasText = true;
            }
        }
        return e;
    }

    private static Arbitrary<XmlElement> Trees() => Gen.Sized(size => ElementGen(Math.Min(size, 40))).ToArbitrary();

    [Property(MaxTest = 300)]
    public Property Written_trees_parse_back_equal_stand_alone() =>
        Prop.ForAll(Trees(), tree =>
        {
            var written = XmlWriter.ToXmlString(tree, parentNamespace: null);
            Assert.Equal(Canon(tree), Canon(XmlStreamParser.ParseElement(written)));
            Assert.Equal(Canon(tree), Canon(SystemXml.Parse(written)));
        });

    [Property(MaxTest = 300)]
    public Property Written_stanzas_parse_back_equal_on_a_stream_in_any_chunking() =>
        Prop.ForAll(Trees(), Gen.Choose(1, 64).ToArbitrary(), (tree, seed) =>
        {
            var written = XmlWriter.ToUtf8(tree, "jabber:client");
            var random = new Random(seed);
            var events = Run(new XmlStreamParser(), Utf8(Header).Concat(written).ToArray(), () => random.Next(1, seed + 1));
            Assert.Equal("element " + Canon(tree), events[1]);
            Assert.Equal(Canon(tree), Canon(SystemXml.Parse(Encoding.UTF8.GetString(written), "jabber:client")));
        });
}
