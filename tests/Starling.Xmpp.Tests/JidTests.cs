namespace Starling.Xmpp.Tests;

public class JidTests
{
    // RFC 7622 §3.5 (example 18, "juliet@example.com/ foo", was removed by erratum 4560 and is valid).
    [Theory]
    [InlineData("juliet@example.com", "juliet", "example.com", null)]
    [InlineData("juliet@example.com/foo", "juliet", "example.com", "foo")]
    [InlineData("juliet@example.com/foo bar", "juliet", "example.com", "foo bar")]
    [InlineData("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar")]
    [InlineData("foo\\20bar@example.com", "foo\\20bar", "example.com", null)]
    [InlineData("fussball@example.com", "fussball", "example.com", null)]
    [InlineData("fu\u00DFball@example.com", "fu\u00DFball", "example.com", null)]
    [InlineData("\u03C0@example.com", "\u03C0", "example.com", null)]
    [InlineData("\u03A3@example.com/foo", "\u03C3", "example.com", "foo")]
    [InlineData("\u03C3@example.com/foo", "\u03C3", "example.com", "foo")]
    [InlineData("\u03C2@example.com/foo", "\u03C2", "example.com", "foo")]
    [InlineData("king@example.com/\u265A", "king", "example.com", "\u265A")]
    [InlineData("example.com", null, "example.com", null)]
    [InlineData("example.com/foobar", null, "example.com", "foobar")]
    [InlineData("a.example.com/b@example.net", null, "a.example.com", "b@example.net")]
    [InlineData("juliet@example.com/ foo", "juliet", "example.com", " foo")]
    public void Rfc7622_valid_examples(string text, string? local, string domain, string? resource)
    {
        Assert.True(Jid.TryParse(text, out Jid? jid, out string? error), error);
        Assert.Equal(local, jid.Local);
        Assert.Equal(domain, jid.Domain);
        Assert.Equal(resource, jid.Resource);
    }

    // RFC 7622 §3.6 plus a few structural cases.
    [Theory]
    [InlineData("\"juliet\"@example.com", "invalid character '\"' in localpart")]
    [InlineData("foo bar@example.com", "invalid character U+0020 in localpart")]
    [InlineData("@example.com/", "empty resource")]
    [InlineData("@example.com", "empty localpart")]
    [InlineData("henry\u2163@example.com", "invalid character U+2173 in localpart")] // case-mapped to U+2173 first
    [InlineData("\u265A@example.com", "invalid character U+265A in localpart")]
    [InlineData("juliet@", "empty domain")]
    [InlineData("/foobar", "empty domain")]
    [InlineData("", "empty JID")]
    [InlineData("user@@host", "invalid character '@' in domain")]
    [InlineData("a<b@example.com", "invalid character '<' in localpart")]
    [InlineData("a:b@example.com", "invalid character ':' in localpart")]
    [InlineData("user@example.com/a\u0007b", "invalid character U+0007 in resource")]
    [InlineData("user@exa_mple.com", "invalid character '_' in domain")]
    [InlineData("user@example..com", "empty label in domain")]
    [InlineData("user@-example.com", "domain label starts or ends with '-'")]
    [InlineData("user@.", "empty domain")]
    [InlineData("user@[1.2.3.4]", "invalid IP literal in domain")]
    [InlineData("user@[::1", "invalid IP literal in domain")]
    public void Rfc7622_invalid_examples(string text, string expectedError)
    {
        Assert.False(Jid.TryParse(text, out Jid? jid, out string? error));
        Assert.Null(jid);
        Assert.Equal(expectedError, error);
    }

    [Fact]
    public void Parse_throws_FormatException_with_reason()
    {
        var ex = Assert.Throws<FormatException>(() => Jid.Parse("juliet@"));
        Assert.Contains("empty domain", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_throws_ArgumentException_and_builds_valid_jids()
    {
        Assert.Throws<ArgumentException>(() => Jid.Create("", "example.com"));
        Assert.Throws<ArgumentException>(() => Jid.Create("a", "example.com", ""));
        Assert.Throws<ArgumentException>(() => Jid.Create("a b", "example.com"));
        Jid jid = Jid.Create("Romeo", "Example.COM", "Balcony");
        Assert.Equal("romeo@example.com/Balcony", jid.ToString());
        Assert.False(Jid.TryCreate(null, "", null, out _, out string? error));
        Assert.Equal("empty domain", error);
    }

    [Fact]
    public void Case_folding_in_localpart_and_domain_only()
    {
        Jid jid = Jid.Parse("JuLiEt@ExAmPlE.CoM/ReSoUrCe");
        Assert.Equal("juliet", jid.Local);
        Assert.Equal("example.com", jid.Domain);
        Assert.Equal("ReSoUrCe", jid.Resource);
        Assert.Equal("juliet@example.com/ReSoUrCe", jid.ToString());
    }

    [Fact]
    public void Fullwidth_localpart_is_width_mapped()
    {
        Assert.Equal("juliet", Jid.Parse("\uFF2A\uFF35\uFF2C\uFF29\uFF25\uFF34@example.com").Local);
    }

    [Fact]
    public void Localpart_is_nfc_normalised()
    {
        Assert.Equal("\u00E9", Jid.Parse("e\u0301@example.com").Local);
        Assert.Equal("\u00E9", Jid.Parse("E\u0301@example.com").Local);
    }

    [Fact]
    public void Resource_maps_non_ascii_spaces_and_normalises_nfc()
    {
        Jid jid = Jid.Parse("a@example.com/x\u00A0y\u3000z e\u0301");
        Assert.Equal("x y z \u00E9", jid.Resource);
    }

    [Theory]
    [InlineData("\u00C4@B\u00FCcher.EXAMPLE", "\u00E4", "b\u00FCcher.example")]
    [InlineData("x@xn--bcher-kva.example", "x", "b\u00FCcher.example")]
    [InlineData("x@XN--BCHER-KVA.example.", "x", "b\u00FCcher.example")]
    [InlineData("x@b\u00FCcher.example", "x", "b\u00FCcher.example")]
    [InlineData("x@\u4F8B\u3048.\u30C6\u30B9\u30C8", "x", "\u4F8B\u3048.\u30C6\u30B9\u30C8")]
    public void International_domains_normalise_to_lower_case_ulabels(string text, string local, string domain)
    {
        Jid jid = Jid.Parse(text);
        Assert.Equal(local, jid.Local);
        Assert.Equal(domain, jid.Domain);
    }

    [Fact]
    public void Invalid_alabel_is_rejected()
    {
        Assert.False(Jid.TryParse("x@xn--zz-\u00FF.example", out _));
        Assert.False(Jid.TryParse("x@b\u00FCcher_.example", out _));
    }

    [Fact]
    public void Trailing_dot_is_stripped_once()
    {
        Assert.Equal("example.com", Jid.Parse("juliet@example.com./r").Domain);
        Assert.Equal(Jid.Parse("example.com"), Jid.Parse("example.com."));
        Assert.False(Jid.TryParse("example.com..", out _));
    }

    [Theory]
    [InlineData("[::1]", "[::1]")]
    [InlineData("[2001:DB8:0:0:0:0:0:1]", "[2001:db8::1]")]
    [InlineData("192.168.0.1", "192.168.0.1")]
    public void Ip_literals(string domain, string expected)
    {
        Jid jid = Jid.Parse("user@" + domain + "/r");
        Assert.Equal(expected, jid.Domain);
        Assert.Equal("user@" + expected + "/r", jid.ToString());
    }

    [Fact]
    public void Size_limits()
    {
        string max = new('a', 1023);
        Assert.True(Jid.TryParse(max + "@example.com/" + max, out _));
        Assert.False(Jid.TryParse(max + "a@example.com", out _, out string? error));
        Assert.Equal("localpart too long", error);
        Assert.False(Jid.TryParse("a@example.com/" + max + "a", out _, out error));
        Assert.Equal("resource too long", error);

        // 1023 octets of two-byte characters: 512 of them are too many.
        Assert.False(Jid.TryParse(new string('\u00E9', 512) + "@example.com", out _, out error));
        Assert.Equal("localpart too long", error);
        Assert.True(Jid.TryParse(new string('\u00E9', 511) + "@example.com", out _));

        Assert.False(Jid.TryParse("a@" + new string('a', 64) + ".com", out _, out error));
        Assert.Equal("domain label too long", error);
        Assert.True(Jid.TryParse("a@" + new string('a', 63) + ".com", out _));

        string longDomain = string.Join('.', Enumerable.Repeat(new string('a', 63), 16)); // 1023 octets
        Assert.True(Jid.TryParse("a@" + longDomain, out _));
        Assert.False(Jid.TryParse("a@" + longDomain + ".b", out _, out error));
        Assert.Equal("domain too long", error);

        Assert.False(Jid.TryParse(new string('a', 100_000) + "@example.com", out _));
    }

    [Fact]
    public void Equality_and_hash_use_normalised_parts()
    {
        Jid a = Jid.Parse("Juliet@Example.com/Balcony");
        Jid b = Jid.Create("juliet", "example.com.", "Balcony");
        Assert.Equal(a, b);
        Assert.True(a == b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, Jid.Parse("juliet@example.com/balcony"));
        Assert.NotEqual(a, a.Bare);
        Assert.NotEqual(Jid.Parse("example.com"), Jid.Parse("example.com/example.com"));
        Assert.False(a.Equals(null));
        Assert.True(a != null);

        var set = new HashSet<Jid> { a, b, a.Bare, Jid.Parse("juliet@EXAMPLE.com") };
        Assert.Equal(2, set.Count);
    }

    [Fact]
    public void Bare_and_WithResource()
    {
        Jid full = Jid.Parse("juliet@example.com/balcony");
        Assert.False(full.IsBare);
        Jid bare = full.Bare;
        Assert.True(bare.IsBare);
        Assert.False(bare.IsDomain);
        Assert.Same(bare, full.Bare);
        Assert.Same(bare, bare.Bare);
        Assert.Equal("juliet@example.com", bare.ToString());

        Jid other = full.WithResource("chamber");
        Assert.Equal("juliet@example.com/chamber", other.ToString());
        Assert.Same(bare, other.Bare);
        Assert.Same(full, full.WithResource("balcony"));
        Assert.Same(bare, full.WithResource(null));
        Assert.Throws<ArgumentException>(() => full.WithResource(""));
        Assert.Throws<ArgumentException>(() => full.WithResource("a\u0000"));

        Jid domain = Jid.Parse("example.com");
        Assert.True(domain.IsDomain);
        Assert.True(domain.IsBare);
    }

    [Fact]
    public void Normalisers_return_the_same_instance_for_normalised_ascii()
    {
        string local = new('j', 5);
        string domain = string.Concat("example", ".com");
        string resource = string.Concat("res ", "ource");
        Assert.True(Jid.TryNormalizeLocal(local, out string? n1));
        Assert.Same(local, n1);
        Assert.True(Jid.TryNormalizeDomain(domain, out string? n2));
        Assert.Same(domain, n2);
        Assert.True(Jid.TryNormalizeResource(resource, out string? n3));
        Assert.Same(resource, n3);

        Assert.True(Jid.TryNormalizeLocal("JJ", out n1));
        Assert.Equal("jj", n1);
        Assert.False(Jid.TryNormalizeLocal("a/b", out _));
        Assert.False(Jid.TryNormalizeDomain("", out _));
        Assert.False(Jid.TryNormalizeResource("", out _));
        Assert.False(Jid.TryNormalizeLocal("\u265A", out _, out string? error));
        Assert.Equal("invalid character U+265A in localpart", error);
    }

    [Fact]
    public void Normalisers_do_not_allocate_for_normalised_ascii()
    {
        string local = "juliet", domain = "example.com", resource = "balcony";
        for (int i = 0; i < 3; i++)
        {
            Jid.TryNormalizeLocal(local, out _);
            Jid.TryNormalizeDomain(domain, out _);
            Jid.TryNormalizeResource(resource, out _);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            Jid.TryNormalizeLocal(local, out _);
            Jid.TryNormalizeDomain(domain, out _);
            Jid.TryNormalizeResource(resource, out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void ToString_of_normalised_input_is_the_input_and_cached()
    {
        string text = string.Concat("juliet@example.com", "/balcony");
        Jid jid = Jid.Parse(text);
        Assert.Same(text, jid.ToString());
        Jid built = Jid.Create("juliet", "example.com", "balcony");
        Assert.Same(built.ToString(), built.ToString());
        Assert.Equal(text, built.ToString());
    }

    [Theory]
    [InlineData("a@example.com/\uE000")] // private use
    [InlineData("a@example.com/\uFFFF")] // noncharacter
    [InlineData("a@example.com/\u200B")] // default ignorable
    [InlineData("\u0661\u06F1@example.com")] // mixed Arabic-Indic digits
    [InlineData("a\u200Db@example.com")] // ZWJ without virama
    [InlineData("\u05D0a@example.com")] // bidi: RTL and LTR letters mixed
    public void Disallowed_code_points_and_contexts(string text)
    {
        Assert.False(Jid.TryParse(text, out _));
    }

    [Fact]
    public void Lone_surrogates_are_rejected()
    {
        string lone = new(['a', '\uD800']);
        Assert.False(Jid.TryParse("a@example.com/" + lone, out _));
        Assert.False(Jid.TryParse(lone + "@example.com", out _));
        Assert.False(Jid.TryParse("a@" + lone + ".example", out _));
    }

    [Theory]
    [InlineData("l\u00B7l@example.com")] // middle dot between two l
    [InlineData("\u05D0\u05D1@example.com")] // Hebrew
    [InlineData("\u0915\u094D\u200D@example.com")] // ZWJ after virama
    [InlineData("a@example.com/\u2163 \u265A")] // compatibility characters and symbols are fine in a resource
    public void Allowed_contextual_code_points(string text)
    {
        Assert.True(Jid.TryParse(text, out _, out string? error), error);
    }
}
