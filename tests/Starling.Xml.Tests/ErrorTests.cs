using static Starling.Xml.Tests.TestSupport;

namespace Starling.Xml.Tests;

public class ErrorTests
{
    /// <summary>Input fed after a valid stream header.</summary>
    [Theory]
    // not-well-formed
    [InlineData("<a>\u0001</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a b='\u001f'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a></b>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a><b></a></b>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<p:a xmlns:p='urn:p'></q:a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a></a:a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<1a/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<-a/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a 1b='x'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a:b:c xmlns:a='urn:a'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a: xmlns:a='urn:a'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("< a/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a b=c/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a b/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a b='<'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a b='1'c='2'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a b='1' b='2'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a xmlns='urn:x' xmlns='urn:y'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a xmlns:p='urn:u' xmlns:q='urn:u' p:x='1' q:x='2'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&#0;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&#x1;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&#xD800;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&#xFFFE;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&#x110000;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&#99999999999999;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&#x;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&#12a;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a b='&#0;'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>&;</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>a & b</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>a &amp b</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>x]]>y</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a>\uFFFE</a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a b='\uFFFF'/>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a/ >", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a></ a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<a><![CDATX[x]]></a>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("</stream:foo>", XmlStreamErrorCondition.NotWellFormed)]
    // restricted-xml
    [InlineData("<a><!-- c --></a>", XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<!-- c -->", XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<a><?pi data?></a>", XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<?xml version='1.0'?>", XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<a><!ENTITY x 'y'></a>", XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<a>&foo;</a>", XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<a b='&nbsp;'/>", XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<a>&averyveryverylongentityname;</a>", XmlStreamErrorCondition.RestrictedXml)]
    // invalid-namespace
    [InlineData("<p:a/>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<a p:b='1'/>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<a><p:b xmlns:p='urn:p'/><p:c/></a>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<a xmlns:p=''/>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<a xmlns:xml='urn:other'/>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<a xmlns:xmlns='urn:other'/>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>", XmlStreamErrorCondition.InvalidNamespace)]
    // bad-format
    [InlineData("hello", XmlStreamErrorCondition.BadFormat)]
    [InlineData("  <a/> x <b/>", XmlStreamErrorCondition.BadFormat)]
    [InlineData("&amp;", XmlStreamErrorCondition.BadFormat)]
    [InlineData("<![CDATA[text]]>", XmlStreamErrorCondition.BadFormat)]
    public void Errors_after_the_header_have_the_right_condition(string body, XmlStreamErrorCondition expected)
    {
        var data = Utf8(Header + body);
        var whole = RunWhole(data);
        Assert.Equal(expected, ErrorOf(whole));
        Assert.Equal(whole, RunByteByByte(data));
        Assert.Equal(whole, RunRandomChunks(data, seed: body.Length));
    }

    /// <summary>Input fed as the whole stream (prolog and header problems).</summary>
    [Theory]
    [InlineData("<?xml version='1.0' encoding='ISO-8859-1'?>" + Header, XmlStreamErrorCondition.UnsupportedEncoding)]
    [InlineData("<?xml version='1.0' encoding='UTF-16'?>" + Header, XmlStreamErrorCondition.UnsupportedEncoding)]
    [InlineData("<?xml version='1.0' encoding='utf-8' standalone='yes'?>" + Header, XmlStreamErrorCondition.None)]
    [InlineData("<?xml version=\"1.0\"?>" + Header, XmlStreamErrorCondition.None)]
    [InlineData("<?xml encoding='UTF-8'?>" + Header, XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<?xml version='2.0'?>" + Header, XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<?xml version='1.0'encoding='UTF-8'?>" + Header, XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<?xml-stylesheet href='a'?>" + Header, XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<?php echo 1; ?>" + Header, XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<!DOCTYPE stream [<!ENTITY lol 'lol'>]>" + Header, XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<!-- hello -->" + Header, XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("<?xml version='1.0'?><?xml version='1.0'?>" + Header, XmlStreamErrorCondition.RestrictedXml)]
    [InlineData("hello" + Header, XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("</stream:stream>", XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<![CDATA[x]]>" + Header, XmlStreamErrorCondition.NotWellFormed)]
    [InlineData("<stream:stream xmlns:stream='urn:wrong'>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<stream xmlns='jabber:client'>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<stream:stream>", XmlStreamErrorCondition.InvalidNamespace)]
    [InlineData("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>", XmlStreamErrorCondition.BadFormat)]
    [InlineData("<stream xmlns='http://etherx.jabber.org/streams'>", XmlStreamErrorCondition.None)]
    [InlineData("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='a' to='b'>", XmlStreamErrorCondition.NotWellFormed)]
    public void Prolog_and_header_errors_have_the_right_condition(string stream, XmlStreamErrorCondition expected)
    {
        var data = Utf8(stream);
        var whole = RunWhole(data);
        Assert.Equal(expected, ErrorOf(whole));
        if (expected == XmlStreamErrorCondition.None) Assert.StartsWith("open ", whole[0], StringComparison.Ordinal);
        Assert.Equal(whole, RunByteByByte(data));
    }

    public static TheoryData<byte[]> InvalidUtf8 => new()
    {
        new byte[] { 0xC3, 0x28 },             // bad continuation
        new byte[] { 0xC0, 0xAF },             // overlong
        new byte[] { 0xE0, 0x80, 0xAF },       // overlong
        new byte[] { 0xED, 0xA0, 0x80 },       // surrogate
        new byte[] { 0xF4, 0x90, 0x80, 0x80 }, // above U+10FFFF
        new byte[] { 0xFF },
        new byte[] { 0x80 },                   // lone continuation
        new byte[] { 0xE2, 0x82 },             // truncated, then '<'
        new byte[] { 0xEF, 0xBF, 0xBE },       // U+FFFE is not an XML character
    };

    [Theory]
    [MemberData(nameof(InvalidUtf8))]
    public void Invalid_utf8_is_not_well_formed_in_text_attributes_and_names(byte[] bad)
    {
        byte[][] docs =
        [
            [.. Utf8(Header + "<a>x"), .. bad, .. Utf8("</a>")],
            [.. Utf8(Header + "<a b='x"), .. bad, .. Utf8("'/>")],
            [.. Utf8(Header + "<a"), .. bad, .. Utf8("/>")],
            [.. Utf8(Header + "<a><![CDATA["), .. bad, .. Utf8("]]></a>")],
        ];
        foreach (var data in docs)
        {
            var whole = RunWhole(data);
            Assert.Equal(XmlStreamErrorCondition.NotWellFormed, ErrorOf(whole));
            Assert.Equal(whole, RunByteByByte(data));
        }
    }

    [Fact]
    public void Non_ascii_names_are_accepted()
    {
        var e = XmlStreamParser.ParseElement("<café xmlns='urn:x' ж='1'><日本/></café>");
        Assert.Equal("café", e.Name);
        Assert.Equal("1", e.GetAttribute("ж"));
        Assert.Equal("日本", e.FirstElement()!.Name);
    }

    [Fact]
    public void Error_detail_is_set()
    {
        var parser = new XmlStreamParser();
        Assert.Equal(XmlStreamEvent.Error, parser.Read(Utf8("<!DOCTYPE x>"), out _));
        Assert.False(string.IsNullOrEmpty(parser.ErrorDetail));
        Assert.Equal("restricted-xml", parser.Error.ToElementName());
    }
}
