using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Starling.Xmpp;

namespace Starling.Xml.Tests;

/// <summary>
/// The writer never amplifies: whatever the parser accepts, what the server writes for it — the stanza forwarded on
/// a stream, the stanza stand-alone as offline storage keeps it, the error bounce that copies its children — is at
/// most <see cref="Factor"/> times the bytes received, plus a small constant. The constant covers what the server
/// adds: the stanza's own namespace when it inherited it from the stream, and the &lt;error/&gt; of a bounce.
/// </summary>
public class WriterBoundTests
{
    /// <summary>Escaping a quote in an attribute value costs 6 bytes for 1 received; nothing else costs more per byte.</summary>
    private const int Factor = 8;
    private const int Constant = 64;
    private const int BounceConstant = 512;

    /// <summary>The network limits, with the element and declaration caps lifted: the bound must not depend on them.</summary>
    private static readonly XmlLimits Lifted = new() { MaxElements = 1_000_000, MaxNamespaceDeclarations = 1_000_000, MaxNamespaceBytes = 1024 * 1024 };

    private static void AssertBounded(string received, string what)
    {
        int receivedBytes = Encoding.UTF8.GetByteCount(received);
        var stanza = XmlStreamParser.ParseElement(received, Lifted);
        long limit = (long)Factor * receivedBytes + Constant;
        int onStream = XmlWriter.ToUtf8(stanza, "jabber:client").Length;
        Assert.True(onStream <= limit, $"{what}: {receivedBytes} bytes received, {onStream} written on a stream");
        int stored = Encoding.UTF8.GetByteCount(XmlWriter.ToXmlString(stanza, parentNamespace: null));
        Assert.True(stored <= limit, $"{what}: {receivedBytes} bytes received, {stored} stored (stand-alone)");
        var bounce = StanzaError.CreateReply(stanza, StanzaErrorCondition.ServiceUnavailable, "the recipient is offline and their offline storage is full");
        int bounced = XmlWriter.ToUtf8(bounce, "jabber:client").Length;
        Assert.True(bounced <= limit + BounceConstant, $"{what}: {receivedBytes} bytes received, {bounced} bounced");
    }

    private static string Repeat(string s, int n) => new StringBuilder(s.Length * n).Insert(0, s, n).ToString();

    /// <summary>
    /// Found by the property below (CI, seed 17423498767261910083): a quote-heavy namespace used by one element and by
    /// attributes elsewhere was declared twice, as the attributes' prefix and as the element's default, each quote
    /// escaped to six bytes.
    /// </summary>
    [Theory]
    [InlineData("\"", 278)]
    [InlineData("u", 1_000)]
    public void A_namespace_used_by_an_element_and_by_attributes_is_declared_once(string uriChar, int uriLength)
    {
        var uri = "urn:" + Repeat(uriChar, uriLength);
        var received = $"<message xmlns='jabber:client' xmlns:p='{uri}'><w xmlns='urn:w'><p:v><w xmlns='urn:w'><x p:a='1'/><x p:a='1'/><x p:a='1'/></w></p:v></w></message>";
        AssertBounded(received, "element and attribute namespace");
        var written = XmlWriter.ToXmlString(XmlStreamParser.ParseElement(received), "jabber:client");
        Assert.Equal(1, CountOccurrences(written, uriChar == "\"" ? "urn:&quot;" : "urn:u"));
    }

    private static int CountOccurrences(string text, string part)
    {
        int n = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    [Fact]
    public void Long_namespace_on_20000_prefixed_children_is_written_once()
    {
        var uri = "urn:x:" + new string('u', 130_000); // ~250 KB with the children
        var received = $"<message xmlns='jabber:client' xmlns:p='{uri}' to='bob@localhost'>{Repeat("<p:x/>", 20_000)}</message>";
        AssertBounded(received, "prefixed children");
        var written = XmlWriter.ToXmlString(XmlStreamParser.ParseElement(received, Lifted), "jabber:client", streamPrefixDeclared: true);
        Assert.True(written.Length < received.Length * 2, $"{written.Length} bytes written for {received.Length}");
    }

    [Fact]
    public void Namespaced_attributes_on_10000_children_declare_their_prefix_once()
    {
        var uri = "urn:x:" + new string('u', 60_000);
        var received = $"<message xmlns='jabber:client' xmlns:p='{uri}'>{Repeat("<x p:a='' p:b=''/>", 10_000)}</message>";
        AssertBounded(received, "namespaced attributes");
    }

    [Fact]
    public void Unprefixed_children_of_a_prefixed_parent_stay_bounded()
    {
        // <p:b> switches the default namespace in the plain form, so every <x/> would redeclare the outer one.
        foreach (var outer in new[] { "urn:ietf:params:xml:ns:xmpp-stanzas", "urn:" + new string('o', 40), "urn:o" })
        {
            var received = $"<message xmlns='jabber:client'><a xmlns='{outer}' xmlns:p='urn:p'><p:b>{Repeat("<x/>", 20_000)}</p:b></a></message>";
            AssertBounded(received, "children of a prefixed parent, outer " + outer.Length);
            var alternating = $"<message xmlns='jabber:client'><a xmlns='{outer}' xmlns:p='urn:p'>{Repeat("<p:b><x/></p:b>", 10_000)}</a></message>";
            AssertBounded(alternating, "alternating, outer " + outer.Length);
        }
    }

    [Fact]
    public void Escaping_heavy_input_stays_within_the_factor()
    {
        AssertBounded($"<message xmlns='jabber:client' a='{new string('"', 50_000)}'/>", "quotes in an attribute");
        AssertBounded($"<message xmlns='jabber:client'><body>{new string('>', 50_000)}</body></message>", "'>' in text");
        var quotes = new string('"', 500);
        AssertBounded($"<message xmlns='jabber:client' xmlns:p='{quotes}'><w xmlns='urn:w'>{Repeat("<p:x/><y/>", 2_000)}</w></message>", "a namespace of quotes");
    }

    [Fact]
    public void Ordinary_stanzas_are_written_as_before()
    {
        const string message = "<message to='romeo@example.net' type='chat' id='1'><body>hi</body><request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>";
        var parsed = XmlStreamParser.ParseElement(message.Replace("<message ", "<message xmlns='jabber:client' ", StringComparison.Ordinal));
        Assert.Equal(message.Replace('\'', '"'), XmlWriter.ToXmlString(parsed, "jabber:client", streamPrefixDeclared: true));
        var bounce = StanzaError.CreateReply(parsed, StanzaErrorCondition.ServiceUnavailable, "x");
        Assert.Equal(
            "<message id=\"1\" from=\"romeo@example.net\" type=\"error\"><body>hi</body><request xmlns=\"urn:xmpp:receipts\"/><active xmlns=\"http://jabber.org/protocol/chatstates\"/>" +
            "<error type=\"cancel\"><service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><text xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\" xml:lang=\"en\">x</text></error></message>",
            XmlWriter.ToXmlString(bounce, "jabber:client", streamPrefixDeclared: true));
    }

    [Fact]
    public void Random_documents_of_the_differential_test_stay_within_the_bound()
    {
        for (int seed = 0; seed < 1000; seed++) AssertBounded(new DifferentialTests.DocumentGenerator(seed).Element(), "seed " + seed);
    }

    /// <summary>Hostile shapes: a long (maybe escaping-heavy) namespace, many children using it as element or attribute namespace, in several forms.</summary>
    [Property(MaxTest = 150)]
    public Property Hostile_stanzas_are_written_within_the_bound() =>
        Prop.ForAll(HostileStanzas().ToArbitrary(), received => AssertBounded(received, received.Length > 300 ? received[..300] + "…" : received));

    private static Gen<string> HostileStanzas() =>
        from uriLength in Gen.Choose(1, 1200)
        from uriChar in Gen.Elements("u", "\"", "&amp;", "é", "'")
        from children in Gen.Choose(1, 3000)
        from form in Gen.Choose(0, 5)
        from depth in Gen.Choose(0, 3)
        select Build(uriLength, uriChar, children, form, depth);

    private static string Build(int uriLength, string uriChar, int children, int form, int depth)
    {
        var uri = "urn:" + Repeat(uriChar == "'" ? "&apos;" : uriChar, uriLength);
        var child = form switch
        {
            0 => "<p:x/>",
            1 => "<x p:a='1'/>",
            2 => "<p:b><x/></p:b>",
            3 => "<x xmlns='urn:d'><p:y p:a='&quot;'/></x>",
            4 => "<p:x>&gt;</p:x><y/>",
            _ => "<q:x xmlns:q='urn:q'/><p:x/>",
        };
        var sb = new StringBuilder("<message xmlns='jabber:client' xmlns:p='").Append(uri).Append("'>");
        for (int i = 0; i < depth; i++) sb.Append(i % 2 == 0 ? "<w xmlns='urn:w'>" : "<p:v>");
        sb.Insert(sb.Length, child, children);
        for (int i = depth - 1; i >= 0; i--) sb.Append(i % 2 == 0 ? "</w>" : "</p:v>");
        return sb.Append("</message>").ToString();
    }

    [Fact]
    public void Bound_constants_match_the_writer()
    {
        // The proof in XmlWriter's remarks: a repeated short declaration (≤ 19 bytes + ` xmlns=""`) on the smallest
        // element (`<x/>`, 4 bytes) stays within the factor, and the stanza error namespace twice fits the budget.
        Assert.True(4 + XmlWriter.ShortNamespaceBytes + 9 <= Factor * 4);
        Assert.True(2 * (XmlWriter.EscapedAttributeBytes("urn:ietf:params:xml:ns:xmpp-stanzas") + 9) <= XmlWriter.RepeatedDeclarationBudget);
        Assert.Equal(6, XmlWriter.EscapedAttributeBytes("\""));
        Assert.Equal(5, XmlWriter.EscapedAttributeBytes("\r"));
    }
}
