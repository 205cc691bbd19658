using System.Diagnostics;
using System.Text;
using static Starling.Xml.Tests.TestSupport;

namespace Starling.Xml.Tests;

/// <summary>The per-stanza caps on elements and namespaces, the settable stanza limit, and the cost of namespace lookup.</summary>
public class NamespaceLimitTests
{
    private static XmlStreamErrorCondition Parse(string body, XmlLimits? limits = null, string? header = null)
    {
        var data = Utf8((header ?? Header) + body);
        var whole = RunWhole(data, limits);
        Assert.Equal(whole, RunRandomChunks(data, 7, maxChunk: 300, limits: limits));
        return ErrorOf(whole);
    }

    private static string Repeat(string s, int n) => new StringBuilder(s.Length * n).Insert(0, s, n).ToString();

    [Fact]
    public void Elements_per_stanza_are_capped_and_the_count_restarts_with_each_stanza()
    {
        var limits = new XmlLimits { MaxElements = 10 };
        var nine = "<message>" + Repeat("<x/>", 9) + "</message>"; // 10 elements with the stanza
        Assert.Equal(XmlStreamErrorCondition.None, Parse(nine + nine, limits));
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, Parse("<message>" + Repeat("<x/>", 10) + "</message>", limits));
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, Parse("<message>" + Repeat("<x/>", 60_000) + "</message>"));
    }

    [Fact]
    public void Namespace_declarations_per_stanza_are_capped()
    {
        var limits = new XmlLimits { MaxNamespaceDeclarations = 3 };
        Assert.Equal(XmlStreamErrorCondition.None, Parse("<message>" + Repeat("<x xmlns='urn:a'/>", 3) + "</message><message><x xmlns='urn:a'/></message>", limits));
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, Parse("<message>" + Repeat("<x xmlns:p='urn:a'/>", 4) + "</message>", limits));
    }

    [Fact]
    public void Distinct_namespaces_per_stanza_are_capped_but_repeats_are_not_counted()
    {
        var limits = new XmlLimits { MaxNamespaces = 2 };
        Assert.Equal(XmlStreamErrorCondition.None, Parse("<message>" + Repeat("<x xmlns='urn:a'/><y xmlns='urn:b'/>", 50) + "<z xmlns=''/></message>", limits));
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, Parse("<message><x xmlns='urn:a'/><y xmlns='urn:b'/><z xmlns='urn:c'/></message>", limits));
    }

    [Fact]
    public void Namespace_uri_length_is_capped_in_bytes()
    {
        var limits = new XmlLimits { MaxNamespaceBytes = 300 };
        Assert.Equal(XmlStreamErrorCondition.None, Parse($"<message><x xmlns='{new string('a', 300)}'/></message>", limits));
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, Parse($"<message><x xmlns='{new string('a', 301)}'/></message>", limits));
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, Parse($"<message><x xmlns:p='{new string('é', 151)}'/></message>", limits)); // 302 bytes
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, Parse("", limits, header: Header[..^1] + $" xmlns:p='{new string('a', 301)}'>"));
    }

    [Fact]
    public void Repeated_declarations_of_one_uri_share_one_string()
    {
        var uri = "urn:" + new string('u', 100); // longer than the string cache keeps
        var e = XmlStreamParser.ParseElement($"<m xmlns='jabber:client'><x xmlns='{uri}'/><y xmlns='{uri}'/></m>");
        var children = e.Elements().ToList();
        Assert.Same(children[0].Namespace, children[1].Namespace);
    }

    [Fact]
    public void A_prefix_declared_on_the_stream_header_counts_towards_the_stanza_that_uses_it()
    {
        // The forwarded stanza must carry the declaration the sender left on its header.
        var uri = "urn:" + new string('h', 2000);
        var header = Header[..^1] + $" xmlns:h='{uri}'>";
        const string stanza = "<message><h:x/><h:y/></message>"; // 31 bytes as sent
        Assert.Equal(XmlStreamErrorCondition.None, Parse(stanza, new XmlLimits { MaxStanzaBytes = 2100, MaxNamespaceBytes = 4096 }, header));
        Assert.Equal(XmlStreamErrorCondition.PolicyViolation, Parse(stanza, new XmlLimits { MaxStanzaBytes = 1000, MaxNamespaceBytes = 4096 }, header));
        // The stream prefix itself is cheap and every stanza may use it.
        Assert.Equal(XmlStreamErrorCondition.None, Parse("<message><stream:x/></message>", new XmlLimits { MaxStanzaBytes = 100 }));
    }

    [Fact]
    public void A_new_stanza_limit_applies_from_the_next_stanza_and_survives_a_restart()
    {
        var parser = new XmlStreamParser(new XmlLimits { MaxStanzaBytes = 100_000 }) { MaxStanzaBytes = 1000 };
        var big = "<message><body>" + new string('a', 5000) + "</body></message>";
        var events = Run(parser, Utf8(Header + "<iq/>"), () => 4096);
        Assert.Equal("element <{jabber:client}iq></>", events[1]);
        parser.MaxStanzaBytes = 100_000; // e.g. after resource binding
        Assert.StartsWith("element ", Run(parser, Utf8(big), () => 4096)[0], StringComparison.Ordinal);
        parser.MaxStanzaBytes = 1000;
        parser.Reset();
        Assert.Equal("error PolicyViolation", Run(parser, Utf8(Header + big), () => 4096)[^1]);
    }

    [Fact]
    public void Namespace_lookup_cost_does_not_grow_with_the_bindings_in_scope()
    {
        // 62 nested elements (the depth limit) with 63 prefixes each (~3,900 bindings), then 20,000 elements using the oldest prefix
        // (the last a scan from the innermost binding finds) or the newest (the first it finds). Lookup must cost the
        // same: before, the oldest took a 4,000-entry scan per element.
        var limits = new XmlLimits { MaxElements = 1_000_000 };
        var oldest = Hostile("p00_00");
        var newest = Hostile("p61_62");
        Assert.Equal(oldest.Length, newest.Length);
        double tOldest = double.MaxValue, tNewest = double.MaxValue;
        for (int round = 0; round < 5; round++)
        {
            tOldest = Math.Min(tOldest, Time(oldest, limits));
            tNewest = Math.Min(tNewest, Time(newest, limits));
        }
        Assert.True(tOldest < 4 * tNewest + 5, $"oldest prefix {tOldest:F1} ms, newest {tNewest:F1} ms");
    }

    private static byte[] Hostile(string usedPrefix)
    {
        var sb = new StringBuilder(Header).Append("<message>");
        for (int d = 0; d < 62; d++)
        {
            sb.Append("<e");
            for (int k = 0; k < 63; k++) sb.Append(System.Globalization.CultureInfo.InvariantCulture, $" xmlns:p{d:D2}_{k:D2}='urn:u'");
            sb.Append('>');
        }
        sb.Insert(sb.Length, "<" + usedPrefix + ":x/>", 20_000);
        for (int d = 0; d < 62; d++) sb.Append("</e>");
        sb.Append("</message>");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static double Time(byte[] data, XmlLimits limits)
    {
        var parser = new XmlStreamParser(limits with { MaxStanzaBytes = 4 * 1024 * 1024 });
        var watch = Stopwatch.StartNew();
        var events = Run(parser, data, () => 4096);
        watch.Stop();
        Assert.StartsWith("element ", events[^1], StringComparison.Ordinal);
        return watch.Elapsed.TotalMilliseconds;
    }
}
