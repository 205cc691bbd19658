using System.Buffers;
using static Starling.Xml.Tests.TestSupport;

namespace Starling.Xml.Tests;

public class WriterTests
{
    private static XmlElement Sample()
    {
        var message = new XmlElement("message", "jabber:client")
            .SetAttribute("to", "romeo@example.net")
            .SetAttribute("type", "chat")
            .SetAttribute("id", "a\"b'c<d>&e\tf\ng\rh")
            .SetAttribute("lang", "fr", XmlNames.XmlNamespace)
            .SetAttribute("foreign", "v", "urn:attr");
        message.AddElement("body").AddText("x < y && z > \"w\" 'v'\r\n\t ]]> é 日本 😀");
        message.AddElement("request", "urn:xmpp:receipts");
        var nested = message.AddElement("outer", "urn:o");
        nested.AddElement("inner").AddText("same ns as outer");
        nested.AddElement("back", "jabber:client");
        return message;
    }

    [Fact]
    public void Write_then_parse_gives_an_equal_tree()
    {
        var original = Sample();
        var xml = XmlWriter.ToXmlString(original, parentNamespace: null);
        var parsed = XmlStreamParser.ParseElement(xml);
        Assert.Equal(Canon(original), Canon(parsed));
    }

    [Fact]
    public void Written_stanza_parses_on_a_stream_with_the_inherited_namespace()
    {
        var original = Sample();
        var buffer = new ArrayBufferWriter<byte>();
        XmlWriter.Write(buffer, original, "jabber:client");
        var written = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        Assert.StartsWith("<message to=", written, StringComparison.Ordinal); // no xmlns: inherited from the stream
        var events = RunByteByByte(Utf8(Header + written));
        Assert.Equal("element " + Canon(original), events[1]);
    }

    [Fact]
    public void Namespaces_are_declared_only_where_they_change()
    {
        var xml = XmlWriter.ToXmlString(Sample(), parentNamespace: "jabber:client");
        Assert.DoesNotContain("<message xmlns", xml, StringComparison.Ordinal);
        Assert.Contains("<body>", xml, StringComparison.Ordinal);
        Assert.Contains("<request xmlns=\"urn:xmpp:receipts\"/>", xml, StringComparison.Ordinal);
        Assert.Contains("<outer xmlns=\"urn:o\"><inner>", xml, StringComparison.Ordinal);
        Assert.Contains("<back xmlns=\"jabber:client\"/>", xml, StringComparison.Ordinal);
        Assert.Contains("xml:lang=\"fr\"", xml, StringComparison.Ordinal);
    }

    [Fact]
    public void Stream_namespace_elements_use_the_stream_prefix()
    {
        var features = new XmlElement("features", XmlNames.Streams);
        features.AddElement("starttls", "urn:ietf:params:xml:ns:xmpp-tls").AddElement("required");
        Assert.Equal(
            "<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls></stream:features>",
            XmlWriter.ToXmlString(features, "jabber:client", streamPrefixDeclared: true));
        var standalone = XmlWriter.ToXmlString(features, parentNamespace: null);
        Assert.StartsWith("<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\">", standalone, StringComparison.Ordinal);
        Assert.Equal(Canon(features), Canon(XmlStreamParser.ParseElement(standalone)));
    }

    [Fact]
    public void Escaping_round_trips_every_special_character()
    {
        const string nasty = "&<>\"'\t\n\r\r\n]]>\u00A0\u2028😀";
        var e = new XmlElement("a", "urn:x").SetAttribute("v", nasty).AddText(nasty);
        var parsed = XmlStreamParser.ParseElement(XmlWriter.ToUtf8(e, parentNamespace: null, streamPrefixDeclared: false));
        Assert.Equal(nasty, parsed.GetAttribute("v"));
        Assert.Equal(nasty, parsed.Text);
    }
}
