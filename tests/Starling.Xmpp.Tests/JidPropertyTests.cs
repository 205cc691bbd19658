using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Starling.Xmpp.Tests;

/// <summary>
/// RFC 7622 properties over random JIDs (FsCheck): normalisation is idempotent, ToString and TryParse round-trip,
/// and the bare/full relations hold. The alphabet mixes what PRECIS maps (case, width, Σ/ς), what it forbids
/// (controls, spaces in localparts), separators and IDN labels, so both accepted and rejected inputs occur.
/// </summary>
public class JidPropertyTests
{
    private static readonly string[] Pieces =
    [
        "a", "B", "z9", "juliet", "-", ".", "_", "@", "/", " ", "\t", "\\20", "ß", "Σ", "ς", "é", "e\u0301", "Ａ", "ℌ",
        "中", "\u265A", "😀", "\u0000", "\u200B", "xn--", "example", "com", "localhost", "..", "'", "\"", "&", "<",
    ];

    private static Gen<string> PartGen(int max) =>
        from n in Gen.Choose(0, max)
        from parts in Gen.Elements(Pieces).ListOf(n)
        select string.Concat(parts);

    private static Arbitrary<string> JidTexts() =>
        (from local in PartGen(3)
         from domain in Gen.Elements("example.com", "EXAMPLE.com", "localhost", "Ｅxample.com", "münchen.de", "a..b", "", "[::1]", "127.0.0.1", "xn--mnchen-3ya.de")
         from resource in PartGen(4)
         from shape in Gen.Choose(0, 3)
         select shape switch
         {
             0 => domain,
             1 => local + "@" + domain,
             2 => domain + "/" + resource,
             _ => local + "@" + domain + "/" + resource,
         }).ToArbitrary();

    [Property(MaxTest = 500)]
    public Property Parsed_jids_round_trip_through_their_string_form() =>
        Prop.ForAll(JidTexts(), text =>
        {
            if (!Jid.TryParse(text, out var jid)) return;
            var written = jid.ToString();
            Assert.True(Jid.TryParse(written, out var again, out var error), $"'{written}' (from '{text}') does not parse: {error}");
            Assert.Equal(jid, again);
            Assert.Equal(written, again.ToString());
            Assert.Equal(jid.GetHashCode(), again.GetHashCode());
        });

    [Property(MaxTest = 500)]
    public Property Normalisation_is_idempotent_for_every_part() =>
        Prop.ForAll(PartGen(5).ToArbitrary(), part =>
        {
            if (Jid.TryNormalizeLocal(part, out var local))
            {
                Assert.True(Jid.TryNormalizeLocal(local, out var twice) && twice == local, $"localpart '{part}' -> '{local}' -> '{twice}'");
            }
            if (Jid.TryNormalizeResource(part, out var resource))
            {
                Assert.True(Jid.TryNormalizeResource(resource, out var twice) && twice == resource, $"resourcepart '{part}' -> '{resource}' -> '{twice}'");
            }
            var domain = part + ".example";
            if (Jid.TryNormalizeDomain(domain, out var d))
            {
                Assert.True(Jid.TryNormalizeDomain(d, out var twice) && twice == d, $"domain '{domain}' -> '{d}' -> '{twice}'");
            }
        });

    [Property(MaxTest = 500)]
    public Property Bare_and_full_jids_relate_as_RFC_7622_says() =>
        Prop.ForAll(JidTexts(), text =>
        {
            if (!Jid.TryParse(text, out var jid)) return;
            var bare = jid.Bare;
            Assert.True(bare.IsBare);
            Assert.Null(bare.Resource);
            Assert.Equal(jid.Local, bare.Local);
            Assert.Equal(jid.Domain, bare.Domain);
            Assert.Equal(bare, bare.Bare);
            Assert.Equal(jid.IsBare, jid == bare);
            Assert.Equal(jid, bare.WithResource(jid.Resource));
            if (!jid.IsBare) Assert.Equal(bare.ToString() + "/" + jid.Resource, jid.ToString());
            Assert.Equal(jid.Local is null ? jid.Domain : jid.Local + "@" + jid.Domain, bare.ToString());
        });
}
