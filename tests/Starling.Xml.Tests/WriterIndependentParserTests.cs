using System.Buffers;
using System.Text;
using static Starling.Xml.Tests.TestSupport;

namespace Starling.Xml.Tests;

/// <summary>
/// The writer's output read back by System.Xml rather than by our own parser, so that a bug shared by our writer
/// and our parser (a namespace both get wrong the same way) cannot hide.
/// </summary>
public class WriterIndependentParserTests
{
    private static void AssertSystemXmlReads(XmlElement original, string? parentNamespace = null)
    {
        var buffer = new ArrayBufferWriter<byte>();
        XmlWriter.Write(buffer, original, parentNamespace, streamPrefixDeclared: parentNamespace is not null);
        var written = Encoding.UTF8.GetString(buffer.WrittenSpan);
        var parsed = SystemXml.Parse(written, parentNamespace);
        Assert.True(Canon(original) == Canon(parsed), $"System.Xml reads something else:\n{written}\nexpected {Canon(original)}\nactual   {Canon(parsed)}");
    }

    [Fact]
    public void Namespaces_escaping_and_attributes_read_the_same_in_System_Xml()
    {
        var message = new XmlElement("message", "jabber:client")
            .SetAttribute("to", "romeo@example.net")
            .SetAttribute("id", "a\"b'c<d>&e\tf\ng\rh")
            .SetAttribute("lang", "fr", XmlNames.XmlNamespace)
            .SetAttribute("foreign", "v", "urn:attr")
            .SetAttribute("other", "w", "urn:attr");
        message.AddElement("body").AddText("x < y && z > \"w\" 'v'\r\n\t ]]> é 日本 😀");
        message.AddElement("request", "urn:xmpp:receipts");
        var outer = message.AddElement("outer", "urn:o");
        outer.AddElement("inner").SetAttribute("deep", "1", "urn:attr").AddText("same ns as outer");
        outer.AddElement("none", "");
        outer.AddElement("back", "jabber:client");
        AssertSystemXmlReads(message);
        AssertSystemXmlReads(message, "jabber:client");
    }

    [Fact]
    public void Stream_prefix_reads_as_the_stream_namespace_in_System_Xml()
    {
        var features = new XmlElement("features", XmlNames.Streams);
        features.AddElement("starttls", "urn:ietf:params:xml:ns:xmpp-tls").AddElement("required");
        features.AddElement("error", XmlNames.Streams).SetAttribute("a", "b", XmlNames.Streams);
        AssertSystemXmlReads(features);
        AssertSystemXmlReads(features, "jabber:client");
        var message = new XmlElement("message", "jabber:client");
        message.AddElement("x", XmlNames.Streams);
        message.AddElement("y", XmlNames.Streams);
        AssertSystemXmlReads(message);
    }

    [Fact]
    public void Repeated_long_namespaces_written_with_a_prefix_read_the_same_in_System_Xml()
    {
        var ns = "urn:example:" + new string('n', 100);
        var message = new XmlElement("message", "jabber:client");
        var wrapper = message.AddElement("wrapper", "urn:w");
        for (int i = 0; i < 5; i++)
        {
            var x = wrapper.AddElement("x", ns).SetAttribute("a", i.ToString(System.Globalization.CultureInfo.InvariantCulture), ns);
            x.AddElement("child").AddElement("grandchild", "urn:w");
            x.AddElement("empty", "");
        }
        message.AddElement("y", ns);
        var written = XmlWriter.ToXmlString(message, "jabber:client", streamPrefixDeclared: true);
        Assert.Equal(1, CountOccurrences(written, ns)); // declared once, on the stanza
        AssertSystemXmlReads(message);
        AssertSystemXmlReads(message, "jabber:client");
    }

    [Fact]
    public void A_tree_with_a_hundred_distinct_namespaces_reads_the_same_in_System_Xml()
    {
        var message = new XmlElement("message", "jabber:client");
        for (int i = 0; i < 100; i++)
        {
            var ns = "urn:example:distinct:" + new string('d', 40) + ":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            message.AddElement("x", ns).SetAttribute("a", "v", ns);
            message.AddElement("y", ns).AddElement("z", "urn:z");
        }
        AssertSystemXmlReads(message);
        AssertSystemXmlReads(message, "jabber:client");
    }

    [Fact]
    public void Random_trees_of_the_differential_test_read_the_same_in_System_Xml()
    {
        for (int seed = 0; seed < 1000; seed++)
        {
            var xml = new DifferentialTests.DocumentGenerator(seed).Element();
            var parsed = XmlStreamParser.ParseElement(xml);
            var written = XmlWriter.ToXmlString(parsed, parentNamespace: null);
            var reread = SystemXml.Parse(written);
            Assert.True(Canon(parsed) == Canon(reread), $"seed {seed}\n{xml}\n{written}");
            var inStream = SystemXml.Parse(XmlWriter.ToXmlString(parsed, "jabber:client", streamPrefixDeclared: true), "jabber:client");
            Assert.True(Canon(parsed) == Canon(inStream), $"seed {seed} in a stream\n{xml}");
        }
    }

    private static int CountOccurrences(string s, string what)
    {
        int n = 0;
        for (int i = s.IndexOf(what, StringComparison.Ordinal); i >= 0; i = s.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
