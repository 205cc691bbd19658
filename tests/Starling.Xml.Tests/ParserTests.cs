using System.Buffers;
using static Starling.Xml.Tests.TestSupport;

namespace Starling.Xml.Tests;

public class ParserTests
{
    private const string Session =
        "<?xml version='1.0' encoding='UTF-8'?>\n" + Header + "\n" +
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>\n" +
        "<iq type='set' id='bind_1'>\r\n  <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind>\r\n</iq> \t\n" +
        "<message from='juliet@example.com/balcony' to='romeo@example.net' type=\"chat\" id='m-1' xml:lang='fr'>" +
        "<body>Ça va ? &lt;3 &amp; &#x1F600; &#233;t&#xE9; 日本語 \"q\" &apos;s &gt; 😀</body>" +
        "<request xmlns='urn:xmpp:receipts'/><x:y xmlns:x='urn:example:x' x:a='1' a='&quot;2&quot;'>t<![CDATA[<raw> & ]] stuff]]>u</x:y></message>" +
        "<presence/>" +
        "</stream:stream>";

    private static readonly byte[] SessionBytes = Utf8(Session);

    [Fact]
    public void Session_parses_into_expected_events()
    {
        var events = RunWhole(SessionBytes);
        Assert.Equal(6, events.Count);
        Assert.StartsWith("open <{http://etherx.jabber.org/streams}stream {}to=\"example.com\" {}version=\"1.0\" {http://www.w3.org/XML/1998/namespace}lang=\"en\"></> default=jabber:client", events[0]);
        Assert.Equal("element <{urn:ietf:params:xml:ns:xmpp-sasl}auth {}mechanism=\"PLAIN\">T(AGp1bGlldAByMG0zMG15cjBtMzA=)</>", events[1]);
        Assert.Equal("element <{jabber:client}iq {}type=\"set\" {}id=\"bind_1\">T(\\u000a  )<{urn:ietf:params:xml:ns:xmpp-bind}bind><{urn:ietf:params:xml:ns:xmpp-bind}resource>T(balcony)</></>T(\\u000a)</>", events[2]);
        Assert.Equal(
            "element <{jabber:client}message {}from=\"juliet@example.com/balcony\" {}to=\"romeo@example.net\" {}type=\"chat\" {}id=\"m-1\" {http://www.w3.org/XML/1998/namespace}lang=\"fr\">" +
            "<{jabber:client}body>T(Ça va ? \\<3 & 😀 été 日本語 \\\"q\\\" 's \\> 😀)</>" +
            "<{urn:xmpp:receipts}request></>" +
            "<{urn:example:x}y {urn:example:x}a=\"1\" {}a=\"\\\"2\\\"\">T(t\\<raw\\> & ]] stuffu)</></>",
            events[3]);
        Assert.Equal("element <{jabber:client}presence></>", events[4]);
        Assert.Equal("close", events[5]);
    }

    [Fact]
    public void Session_gives_same_result_at_every_split_point()
    {
        var expected = RunWhole(SessionBytes);
        for (int split = 1; split < SessionBytes.Length; split++)
        {
            bool first = true;
            int s = split;
            var events = Run(new XmlStreamParser(), SessionBytes, () =>
            {
                if (!first) return SessionBytes.Length;
                first = false;
                return s;
            });
            Assert.Equal(expected, events);
        }
    }

    [Fact]
    public void Session_gives_same_result_byte_by_byte_and_in_random_chunks()
    {
        var expected = RunWhole(SessionBytes);
        Assert.Equal(expected, RunByteByByte(SessionBytes));
        for (int seed = 0; seed < 200; seed++)
        {
            Assert.Equal(expected, RunRandomChunks(SessionBytes, seed, maxChunk: 1 + (seed % 40)));
        }
    }

    [Fact]
    public void Sequence_reader_handles_multi_segment_input_like_a_pipe()
    {
        var expected = RunWhole(SessionBytes);
        for (int seed = 0; seed < 50; seed++)
        {
            var random = new Random(seed);
            var parser = new XmlStreamParser();
            var events = new List<string>();
            // Unconsumed bytes stay in "pending"; each round appends a random chunk split into random segments.
            var pending = new List<byte>();
            int fed = 0;
            while (fed < SessionBytes.Length || pending.Count > 0)
            {
                int n = Math.Min(random.Next(1, 60), SessionBytes.Length - fed);
                pending.AddRange(SessionBytes.AsSpan(fed, n).ToArray());
                fed += n;
                var seq = Segmented(pending.ToArray(), random);
                var ev = parser.Read(seq, out var consumed);
                int used = (int)seq.Slice(0, consumed).Length;
                pending.RemoveRange(0, used);
                if (ev == XmlStreamEvent.NeedMoreData)
                {
                    Assert.Empty(pending);
                    continue;
                }
                events.Add(Describe(parser, ev));
            }
            Assert.Equal(expected, events);
        }
    }

    private static ReadOnlySequence<byte> Segmented(byte[] data, Random random)
    {
        if (data.Length == 0) return ReadOnlySequence<byte>.Empty;
        Segment? first = null, last = null;
        int pos = 0;
        while (pos < data.Length)
        {
            int n = Math.Min(random.Next(0, 8), data.Length - pos); // empty segments too
            var seg = new Segment(data.AsMemory(pos, n));
            if (first is null) first = last = seg;
            else last = last!.Append(seg);
            pos += n;
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(Segment next)
        {
            next.RunningIndex = RunningIndex + Memory.Length;
            Next = next;
            return next;
        }
    }

    [Fact]
    public void Read_stops_right_after_each_event()
    {
        var head = Utf8(Header);
        var starttls = Utf8("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        byte[] tls = [0x16, 0x03, 0x01, 0x02, 0x00, 0xFF, 0xFE, (byte)'<'];
        var data = head.Concat(starttls).Concat(tls).ToArray();

        var parser = new XmlStreamParser();
        Assert.Equal(XmlStreamEvent.StreamOpen, parser.Read(data, out int consumed));
        Assert.Equal(head.Length, consumed);
        Assert.Equal(XmlStreamEvent.Element, parser.Read(data.AsSpan(consumed), out int consumed2));
        Assert.Equal(starttls.Length, consumed2);
        Assert.Equal("starttls", parser.TakeElement().Name);
        Assert.Equal(head.Length + starttls.Length, parser.BytesConsumed);
    }

    [Fact]
    public void Reset_restarts_the_stream_after_sasl_success()
    {
        var parser = new XmlStreamParser();
        var first = Utf8(Header + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>");
        var second = Utf8("<?xml version='1.0'?>" + Header.Replace("jabber:client", "jabber:server", StringComparison.Ordinal) + "<iq type='get' id='1'/>");

        Assert.Equal(["open", "element"], Run(parser, first, () => 7).Select(e => e.Split(" ")[0]));
        parser.Reset();
        Assert.Null(parser.StreamHeader);
        Assert.Equal(0, parser.BytesConsumed);
        var events = Run(parser, second, () => 3);
        Assert.Equal(2, events.Count);
        Assert.EndsWith("default=jabber:server", events[0]);
        Assert.Equal("element <{jabber:server}iq {}type=\"get\" {}id=\"1\"></>", events[1]);
    }

    [Fact]
    public void Reset_clears_an_error()
    {
        var parser = new XmlStreamParser();
        Assert.Equal(XmlStreamEvent.Error, parser.Read(Utf8("<!-- hi -->"), out _));
        Assert.Equal(XmlStreamErrorCondition.RestrictedXml, parser.Error);
        Assert.Equal(XmlStreamEvent.Error, parser.Read(Utf8(Header), out int c));
        Assert.Equal(0, c);
        parser.Reset();
        Assert.Equal(XmlStreamErrorCondition.None, parser.Error);
        Assert.Null(parser.ErrorDetail);
        Assert.Equal(XmlStreamEvent.StreamOpen, parser.Read(Utf8(Header), out _));
    }

    [Fact]
    public void Whitespace_keepalives_between_stanzas_are_ignored()
    {
        var events = RunWhole(Utf8(Header + " \n\t\r\n <presence/>   \n  <presence/>\n "));
        Assert.Equal(3, events.Count);
        Assert.Equal("element <{jabber:client}presence></>", events[1]);
    }

    [Fact]
    public void Empty_stream_root_opens_then_closes()
    {
        var parser = new XmlStreamParser();
        var data = Utf8("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>");
        Assert.Equal(XmlStreamEvent.StreamOpen, parser.Read(data, out int c));
        Assert.Equal(data.Length, c);
        Assert.Equal(XmlStreamEvent.StreamClose, parser.Read([], out c));
        Assert.Equal(0, c);
        Assert.Equal(string.Empty, parser.StreamDefaultNamespace);
    }

    [Fact]
    public void Line_endings_and_attribute_values_are_normalised()
    {
        var e = XmlStreamParser.ParseElement("<a x='a\tb\r\nc\rd\ne&#10;f&#9;g&#13;'>1\r\n2\r3\n4&#13;5<![CDATA[6\r\n7]]></a>");
        Assert.Equal("a b c d e\nf\tg\r", e.GetAttribute("x"));
        Assert.Equal("1\n2\n3\n4\r56\n7", e.Text);
        Assert.Single(e.Children);
    }

    [Fact]
    public void Cr_lf_split_across_reads_is_one_newline()
    {
        var data = Utf8(Header + "<m x='a\r\nb'>a\r\nb</m>");
        var expected = RunWhole(data);
        Assert.Contains("{}x=\"a b\">T(a\\u000ab)", expected[1], StringComparison.Ordinal);
        Assert.Equal(expected, RunByteByByte(data));
    }

    [Fact]
    public void Adjacent_text_cdata_and_references_merge_into_one_text_node()
    {
        var e = XmlStreamParser.ParseElement("<body>a&amp;b<![CDATA[<c>]]>&#x64;e</body>");
        var t = Assert.IsType<XmlText>(Assert.Single(e.Children));
        Assert.Equal("a&b<c>de", t.Value);
    }

    [Fact]
    public void Xmlns_declarations_are_not_attributes_and_scope_is_per_element()
    {
        var e = XmlStreamParser.ParseElement(
            "<a xmlns='urn:a' xmlns:p='urn:p'><p:b p:x='1' xml:lang='de'><c xmlns='urn:c'/><d/></p:b><p:e xmlns:p='urn:p2'/></a>");
        Assert.Empty(e.Attributes);
        Assert.Equal("<{urn:a}a><{urn:p}b {urn:p}x=\"1\" {http://www.w3.org/XML/1998/namespace}lang=\"de\"><{urn:c}c></><{urn:a}d></></><{urn:p2}e></></>", Canon(e));
    }

    [Fact]
    public void Xmlns_empty_undeclares_the_default_namespace()
    {
        var e = XmlStreamParser.ParseElement("<a xmlns='urn:a'><b xmlns=''/></a>");
        Assert.Equal("<{urn:a}a><{}b></></>", Canon(e));
    }

    [Fact]
    public void Top_level_elements_inherit_the_stream_default_namespace()
    {
        var events = RunWhole(Utf8(Header + "<message><body>x</body></message>"));
        Assert.Equal("element <{jabber:client}message><{jabber:client}body>T(x)</></>", events[1]);
    }

    [Fact]
    public void Two_values_whose_hashes_share_a_cache_slot_are_both_kept()
    {
        // String hashing is randomised per process: find, in this process, a value that lands in the slot of "a@b".
        const int Slots = 64;
        int target = string.GetHashCode("a@b".AsSpan()) & (Slots - 1);
        string other = "";
        for (int n = 0; ; n++)
        {
            other = "v" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if ((string.GetHashCode(other.AsSpan()) & (Slots - 1)) == target) break;
        }
        var cache = new StringCache(seeded: false);
        var a = cache.Get("a@b");
        var b = cache.Get(other);
        for (int i = 0; i < 3; i++)
        {
            Assert.Same(a, cache.Get("a@b"));
            Assert.Same(b, cache.Get(other));
        }
    }

    [Fact]
    public void Common_names_are_not_allocated_per_stanza()
    {
        var parser = new XmlStreamParser();
        var data = Utf8(Header + "<message to='a@b' type='chat'><body>x</body></message><message to='a@b' type='chat'><body>y</body></message>");
        Assert.Equal(XmlStreamEvent.StreamOpen, parser.Read(data, out int c));
        int pos = c;
        Assert.Equal(XmlStreamEvent.Element, parser.Read(data.AsSpan(pos), out c));
        pos += c;
        var m1 = parser.TakeElement();
        Assert.Equal(XmlStreamEvent.Element, parser.Read(data.AsSpan(pos), out _));
        var m2 = parser.TakeElement();
        Assert.Same(m1.Name, m2.Name);
        Assert.Same(m1.Namespace, m2.Namespace);
        Assert.Same(m1.Attributes[0].Name, m2.Attributes[0].Name);
        Assert.Same(m1.GetAttribute("type"), m2.GetAttribute("type"));
        Assert.Same(m1.GetAttribute("to"), m2.GetAttribute("to"));
    }

    [Fact]
    public void TakeElement_without_an_element_throws()
    {
        Assert.Throws<InvalidOperationException>(() => new XmlStreamParser().TakeElement());
    }

    [Fact]
    public void Content_after_stream_close_is_an_error()
    {
        var events = RunWhole(Utf8(Header + "</stream:stream>  <a/>"));
        Assert.Equal("close", events[1]);
        Assert.Equal(XmlStreamErrorCondition.NotWellFormed, ErrorOf(events));
    }

    // ------------------------------------------------------------ ParseElement

    [Fact]
    public void ParseElement_parses_utf8_and_string()
    {
        var fromString = XmlStreamParser.ParseElement("  <query xmlns='jabber:iq:roster' ver='1'><item jid='a@b' name='Ä &amp; B'/></query>\n");
        var fromBytes = XmlStreamParser.ParseElement(Utf8("<?xml version='1.0'?><query xmlns='jabber:iq:roster' ver='1'><item jid='a@b' name='Ä &amp; B'/></query>"));
        Assert.Equal(Canon(fromString), Canon(fromBytes));
        Assert.Equal("Ä & B", fromBytes.Element("item", "jabber:iq:roster")!.GetAttribute("name"));
    }

    [Theory]
    [InlineData("", "No element")]
    [InlineData("   ", "No element")]
    [InlineData("<a>", "Incomplete")]
    [InlineData("<a/><b/>", "after the element")]
    [InlineData("<a/>text", "after the element")]
    [InlineData("text<a/>", "bad-format")]
    [InlineData("<a><!-- c --></a>", "restricted-xml")]
    [InlineData("<a></b>", "not-well-formed")]
    [InlineData("<p:a/>", "invalid-namespace")]
    [InlineData("</a>", "not-well-formed")]
    public void ParseElement_throws_FormatException_with_a_clear_message(string xml, string message)
    {
        var ex = Assert.Throws<FormatException>(() => XmlStreamParser.ParseElement(xml));
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseElement_respects_limits()
    {
        var ex = Assert.Throws<FormatException>(() => XmlStreamParser.ParseElement("<a><b><c/></b></a>", new XmlLimits { MaxDepth = 2 }));
        Assert.Contains("policy-violation", ex.Message, StringComparison.Ordinal);
    }
}
