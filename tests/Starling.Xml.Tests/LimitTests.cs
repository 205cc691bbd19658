using static Starling.Xml.Tests.TestSupport;

namespace Starling.Xml.Tests;

public class LimitTests
{
    private static void AssertBothWays(string body, XmlLimits limits, XmlStreamErrorCondition expected, string? header = null)
    {
        var data = Utf8((header ?? Header) + body);
        var whole = RunWhole(data, limits);
        Assert.Equal(expected, ErrorOf(whole));
        Assert.Equal(whole, RunByteByByte(data, limits));
        Assert.Equal(whole, RunRandomChunks(data, 42, limits: limits));
    }

    [Fact]
    public void Stanza_size_counts_each_top_level_element()
    {
        const string stanza = "<message to='a@b'><body>0123456789</body></message>"; // 51 bytes
        Assert.Equal(51, stanza.Length);
        AssertBothWays(stanza + " " + stanza, new XmlLimits { MaxStanzaBytes = 51 }, XmlStreamErrorCondition.None);
        AssertBothWays(stanza, new XmlLimits { MaxStanzaBytes = 50 }, XmlStreamErrorCondition.PolicyViolation);
        // Keepalive whitespace between stanzas does not count towards either stanza.
        AssertBothWays(stanza + new string(' ', 500) + stanza, new XmlLimits { MaxStanzaBytes = 51 }, XmlStreamErrorCondition.None);
    }

    [Fact]
    public void Unterminated_huge_stanza_fails_before_it_ends()
    {
        var parser = new XmlStreamParser(new XmlLimits { MaxStanzaBytes = 1000 });
        Assert.Equal(XmlStreamEvent.StreamOpen, parser.Read(Utf8(Header), out _));
        Assert.Equal(XmlStreamEvent.NeedMoreData, parser.Read(Utf8("<message><body>"), out _));
        var chunk = Utf8(new string('x', 100));
        XmlStreamEvent ev = XmlStreamEvent.NeedMoreData;
        int rounds = 0;
        while (ev == XmlStreamEvent.NeedMoreData && rounds++ < 100) ev = parser.Read(chunk, out _);
        Assert.Equal(XmlStreamEvent.Error, ev);
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, parser.Error);
        Assert.InRange(rounds, 9, 11);
    }

    [Fact]
    public void Header_size_is_limited()
    {
        AssertBothWays("", new XmlLimits { MaxHeaderBytes = Header.Length }, XmlStreamErrorCondition.None);
        AssertBothWays("", new XmlLimits { MaxHeaderBytes = Header.Length - 1 }, XmlStreamErrorCondition.PolicyViolation);
        // Whitespace before the header counts too: a peer cannot stall us forever with it.
        AssertBothWays("", new XmlLimits { MaxHeaderBytes = 100 }, XmlStreamErrorCondition.PolicyViolation, header: new string('\n', 101));
    }

    [Fact]
    public void Depth_is_limited()
    {
        var limits = new XmlLimits { MaxDepth = 3 };
        AssertBothWays("<a><b><c/></b></a>", limits, XmlStreamErrorCondition.None);
        AssertBothWays("<a><b><c><d/></c></b></a>", limits, XmlStreamErrorCondition.PolicyViolation);
    }

    private const string SmallHeader = "<stream xmlns='http://etherx.jabber.org/streams'>";

    [Fact]
    public void Attribute_count_is_limited()
    {
        var limits = new XmlLimits { MaxAttributes = 2 };
        AssertBothWays("<a x='1' xmlns='urn:a'/>", limits, XmlStreamErrorCondition.None, SmallHeader);
        AssertBothWays("<a x='1' y='2' z='3'/>", limits, XmlStreamErrorCondition.PolicyViolation, SmallHeader);
        AssertBothWays("<a x='1' y='2' xmlns='urn:a'/>", limits, XmlStreamErrorCondition.PolicyViolation, SmallHeader);
        // The header is an element too.
        AssertBothWays("", limits, XmlStreamErrorCondition.PolicyViolation);
    }

    [Fact]
    public void Name_length_is_limited()
    {
        var limits = new XmlLimits { MaxNameBytes = 6 };
        AssertBothWays("<abcdef abcdef='1'></abcdef>", limits, XmlStreamErrorCondition.None, SmallHeader);
        AssertBothWays("<abcdefg/>", limits, XmlStreamErrorCondition.PolicyViolation, SmallHeader);
        AssertBothWays("<a abcdefg='1'/>", limits, XmlStreamErrorCondition.PolicyViolation, SmallHeader);
        AssertBothWays("<a></abcdefg>", limits, XmlStreamErrorCondition.PolicyViolation, SmallHeader);
        AssertBothWays("<a><éééé/></a>", limits, XmlStreamErrorCondition.PolicyViolation, SmallHeader); // 8 bytes
        AssertBothWays("", limits, XmlStreamErrorCondition.PolicyViolation); // stream:stream
    }
}
