namespace Starling.Xml.Tests;

/// <summary>
/// Inputs found by the SharpFuzz/AFL++ harness of the stream parser (fuzz/Starling.Fuzz/XmlStreamHarness.cs),
/// fed as the harness feeds them. The findings are described in fuzz/README.md.
/// </summary>
public sealed class FuzzRegressionTests
{
    // The harness's limits: small, so that short inputs reach every limit check.
    private static readonly XmlLimits FuzzLimits = new()
    {
        MaxStanzaBytes = 2048,
        MaxHeaderBytes = 512,
        MaxDepth = 12,
        MaxAttributes = 12,
        MaxNameBytes = 48,
    };

    /// <summary>
    /// Finding 1 (accepted behaviour): a name that is both too long and malformed UTF-8 is rejected whole or split,
    /// but for either reason: the length limit is checked per run of name bytes, the UTF-8 per byte.
    /// </summary>
    [Theory]
    // afl-fuzz crash id:000000 (first parser run): a stream header whose name holds invalid UTF-8 and runs past 48 bytes.
    [InlineData("PHN0cmX///+WdHJqYWJiZXI6Y2xpZXh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHgufCcgeG1sbnM6c3RyZWFtYmVBLm9yZwFzdHJlaWVufCcgq21sj3M6c2xoIHhtZDpsXW5nPSdlbic+PGZvbzpiYXIvPg==")]
    // The same reduced: '<', one invalid byte, then 60 name characters.
    [InlineData("PP9hYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE+")]
    public void Overlong_name_with_invalid_UTF8_is_rejected_whole_and_split(string base64)
    {
        byte[] data = Convert.FromBase64String(base64);
        var whole = TestSupport.RunWhole(data, FuzzLimits);
        var split = TestSupport.RunByteByByte(data, FuzzLimits);

        Assert.Contains(TestSupport.ErrorOf(whole), new[] { XmlStreamErrorCondition.PolicyViolation, XmlStreamErrorCondition.NotWellFormed });
        Assert.Contains(TestSupport.ErrorOf(split), new[] { XmlStreamErrorCondition.PolicyViolation, XmlStreamErrorCondition.NotWellFormed });
        Assert.Equal(whole[..^1], split[..^1]);
    }

    /// <summary>
    /// Finding 2 (fixed): a UTF-8 sequence split across two reads was checked only once it was complete, so
    /// "&lt;\xE8" then "N" read as "need more data" where the same bytes in one read are not-well-formed at once.
    /// Not a crash and nothing malformed was accepted (the next byte failed it), but split and whole input disagreed.
    /// XmlStreamParser.AppendUtf8 now validates an incomplete sequence as it grows.
    /// </summary>
    [Theory]
    // afl-fuzz crash id:000000 (second parser run): "<\xE8N" split as "<", "\xE8", "N".
    [InlineData(new byte[] { 0xE8 }, new byte[] { (byte)'N' })]
    // A surrogate's prefix (ED A0..BF is never valid UTF-8).
    [InlineData(new byte[] { 0xED }, new byte[] { 0xA0 })]
    // A four-byte lead followed by a second lead byte.
    [InlineData(new byte[] { 0xF0, 0x9F }, new byte[] { 0xF0 })]
    public void Invalid_UTF8_sequence_split_across_reads_is_rejected_at_once(byte[] first, byte[] second)
    {
        byte[] prefix = TestSupport.Utf8(TestSupport.Header + "<");
        byte[] whole = [.. prefix, .. first, .. second];
        Assert.Equal(XmlStreamErrorCondition.NotWellFormed, TestSupport.ErrorOf(TestSupport.RunWhole(whole)));

        var parser = new XmlStreamParser();
        Assert.Equal(XmlStreamEvent.StreamOpen, parser.Read(prefix, out int consumed));
        Assert.Equal(XmlStreamEvent.NeedMoreData, parser.Read(prefix.AsSpan(consumed), out _));
        Assert.Equal(XmlStreamEvent.NeedMoreData, parser.Read(first, out _));
        Assert.Equal(XmlStreamEvent.Error, parser.Read(second, out _));
        Assert.Equal(XmlStreamErrorCondition.NotWellFormed, parser.Error);
    }
}
