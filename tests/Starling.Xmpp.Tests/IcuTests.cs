namespace Starling.Xmpp.Tests;

/// <summary>The ICU binding that replaces the runtime's globalization (the suite runs invariant, as the server does).</summary>
public class IcuTests
{
    [Fact]
    public void Icu_is_found_on_this_machine()
    {
        Assert.True(Icu.IsAvailable, "libicuuc.so.<N> was not found; non-ASCII JIDs would be refused");
    }

    [Theory]
    [InlineData("e\u0301", false, "\u00E9")]            // combining acute composes
    [InlineData("\u212B", false, "\u00C5")]             // ANGSTROM SIGN is a singleton decomposition
    [InlineData("\uFB01", false, "\uFB01")]             // NFC keeps the ligature...
    [InlineData("\uFB01", true, "fi")]                  // ...NFKC expands it
    [InlineData("\uFF21\uFF22", true, "AB")]            // fullwidth forms
    [InlineData("\u2163", true, "IV")]                  // ROMAN NUMERAL FOUR
    [InlineData("\u1E9B\u0323", false, "\u1E9B\u0323")] // UAX #15 example
    [InlineData("\u1E9B\u0323", true, "\u1E69")]
    [InlineData("plain ascii", true, "plain ascii")]
    public void Normalizes(string input, bool compatibility, string expected)
    {
        Assert.Equal(expected, Icu.Normalize(input, compatibility));
        Assert.True(Icu.IsNormalized(expected, compatibility));
    }

    [Fact]
    public void Long_expansions_grow_the_buffer()
    {
        // U+FDFA expands to 18 characters under NFKC: 200 of them overflow the first buffer guess.
        string input = new('\uFDFA', 200);
        string? result = Icu.Normalize(input, compatibility: true);
        Assert.NotNull(result);
        Assert.Equal(200 * 18, result.Length);
    }

    [Theory]
    [InlineData(0)] // unpaired high surrogate
    [InlineData(1)] // unpaired low surrogate
    [InlineData(2)] // noncharacter
    public void Ill_formed_text_is_refused(int which)
    {
        // Built here: xunit's test-case serialization would turn lone surrogates into U+FFFD.
        string input = which switch { 0 => "a" + '\uD800' + "b", 1 => "a" + '\uDC00', _ => "x" + '\uFFFE' };
        Assert.Null(Icu.Normalize(input, compatibility: false));
        Assert.False(Icu.IsNormalized(input, compatibility: false));
    }

    [Theory]
    [InlineData("b\u00FCcher.example", "xn--bcher-kva.example")]
    [InlineData("B\u00DCCHER.example", "xn--bcher-kva.example")]
    [InlineData("fa\u00DF.de", "xn--fa-hia.de")] // non-transitional: ß is kept, not mapped to "ss"
    [InlineData("\u03B5\u03BB.example", "xn--qxam.example")]
    public void Converts_domains_to_a_labels_and_back(string unicode, string ascii)
    {
        Assert.Equal(ascii, Icu.IdnToAscii(unicode));
        Assert.Equal(unicode.ToLowerInvariant(), Icu.IdnToUnicode(ascii));
    }

    [Theory]
    [InlineData("b\u00FCcher_.example")]      // STD3: '_' is not LDH
    [InlineData("xn--zz-\u00FF.example")]     // not a valid A-label
    [InlineData("a\u200Db.example")]          // ZWJ outside its CONTEXTJ rule
    [InlineData("\u05D0a.example")]           // Bidi rule: RTL label with an LTR letter
    public void Refuses_invalid_domains(string domain)
    {
        Assert.Null(Icu.IdnToAscii(domain));
    }
}
