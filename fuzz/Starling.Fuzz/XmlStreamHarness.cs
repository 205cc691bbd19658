using System.Buffers;
using System.Globalization;
using System.Text;
using Starling.Xml;

namespace Starling.Fuzz;

/// <summary>
/// The XML stream parser (src/Starling.Xml/XmlStreamParser.cs) fed the input as a c2s stream, and the writer's round
/// trip on every element it accepts.
/// </summary>
/// <remarks>
/// <para>The input is parsed twice: whole, and in chunks whose sizes come from a generator seeded by a hash of the
/// input (so every mutation also moves the split points). Both runs must see the same events, since the parser keeps
/// all token state in fields and may be split at any byte.</para>
/// <para>Invariants: <c>Read</c> never throws (errors are values: <see cref="XmlStreamEvent.Error"/> with a
/// condition); <c>consumed</c> stays within the input and NeedMoreData consumes everything; a failed parser stays
/// failed; <c>TakeElement</c> works after every Element event; an accepted element serialises to XML that re-parses
/// to the same tree, and serialising that tree again gives the same bytes.</para>
/// <para>After an element named <c>auth</c> or <c>starttls</c> the parser is <c>Reset</c> as a server does on a
/// stream restart (RFC 6120 §5.3.4, §6.4.6), so the rest of the input can start a new stream.</para>
/// </remarks>
public static class XmlStreamHarness
{
    // Small limits so short inputs reach every limit check (and the code right at the boundaries).
    public static readonly XmlLimits Limits = new()
    {
        MaxStanzaBytes = 2048,
        MaxHeaderBytes = 512,
        MaxDepth = 12,
        MaxAttributes = 12,
        MaxNameBytes = 48,
    };

    // Re-parsing the writer's output: escaping and namespace declarations make it larger than what was read.
    private static readonly XmlLimits RoundTripLimits = new()
    {
        MaxStanzaBytes = 1 << 24,
        MaxDepth = 64,
        MaxAttributes = 4096,
        MaxNameBytes = 4096,
    };

    public static void Run(ReadOnlySpan<byte> input)
    {
        string whole = Feed(input, seed: 0);
        uint hash = 2166136261;
        foreach (byte b in input)
            hash = (hash ^ b) * 16777619;
        string chunked = Feed(input, seed: hash | 1);
        if (!SameOutcome(whole, chunked) && !SplitUtf8ErrorStillPending(input, whole, chunked))
        {
            throw new FuzzFindingException(
                $"chunked input gave other events than whole input (chunk seed {hash | 1}):\nwhole:   {whole}\nchunked: {chunked}");
        }
    }

    /// <summary>
    /// Equal transcripts, or equal up to a final error where one run hit a limit (policy-violation) and the other a
    /// syntax error: limits are checked per run of bytes (a name, the stanza's byte count) and syntax per byte, so an
    /// input that breaks both at once is rejected for either depending on where the packets split. Both are
    /// specified stream errors (RFC 6120 §4.9.3.14, §4.9.3.13) that close the stream; which one is reported is not
    /// part of the contract (finding 1 in fuzz/README.md).
    /// </summary>
    private static bool SameOutcome(string whole, string chunked)
    {
        if (string.Equals(whole, chunked, StringComparison.Ordinal))
            return true;
        int a = LastLineStart(whole);
        int b = LastLineStart(chunked);
        string lastWhole = whole[a..];
        string lastChunked = chunked[b..];
        const string Limit = "error policy-violation\n";
        return lastWhole.StartsWith("error ", StringComparison.Ordinal)
            && lastChunked.StartsWith("error ", StringComparison.Ordinal)
            && (lastWhole == Limit || lastChunked == Limit)
            && string.Equals(whole[..a], chunked[..b], StringComparison.Ordinal);
    }

    /// <summary>
    /// The whole run rejected a malformed UTF-8 sequence that the chunked run still holds as an incomplete one at
    /// the end of the input (finding 2 in fuzz/README.md: a split sequence is validated only once it is complete).
    /// Tolerated so that the fuzzer keeps looking for other faults; the skipped regression test
    /// Invalid_UTF8_sequence_split_across_reads_is_rejected_at_once pins it.
    /// </summary>
    private static bool SplitUtf8ErrorStillPending(ReadOnlySpan<byte> input, string whole, string chunked)
    {
        int a = LastLineStart(whole);
        return whole[a..] == "error not-well-formed\n"
            && string.Equals(whole[..a], chunked, StringComparison.Ordinal)
            && input[Math.Max(0, input.Length - 3)..].IndexOfAnyInRange((byte)0xC0, (byte)0xFF) >= 0;
    }

    private static int LastLineStart(string transcript) =>
        transcript.Length < 2 ? 0 : transcript.LastIndexOf('\n', transcript.Length - 2) + 1;

    /// <summary>Feeds the input as a connection would and returns a transcript of the events. Seed 0: in one piece.</summary>
    public static string Feed(ReadOnlySpan<byte> input, uint seed)
    {
        var parser = new XmlStreamParser(Limits);
        var transcript = new StringBuilder();
        uint random = seed;
        int fed = 0;
        long consumedSinceReset = 0;
        while (fed < input.Length)
        {
            int size = input.Length - fed;
            if (seed != 0)
            {
                // xorshift32; mostly small chunks (splits inside tokens), sometimes large ones.
                random ^= random << 13;
                random ^= random >> 17;
                random ^= random << 5;
                int max = (random & 7) == 0 ? 512 : 9;
                size = Math.Min(size, 1 + (int)((random >> 8) % (uint)max));
            }

            ReadOnlySpan<byte> chunk = input.Slice(fed, size);
            fed += size;
            while (true)
            {
                var ev = parser.Read(chunk, out int consumed);
                if (consumed < 0 || consumed > chunk.Length)
                    throw new FuzzFindingException($"Read consumed {consumed} of {chunk.Length} bytes");
                chunk = chunk[consumed..];
                consumedSinceReset += consumed;
                if (parser.BytesConsumed != consumedSinceReset)
                    throw new FuzzFindingException($"BytesConsumed {parser.BytesConsumed}, fed {consumedSinceReset}");

                switch (ev)
                {
                    case XmlStreamEvent.NeedMoreData:
                        if (!chunk.IsEmpty)
                            throw new FuzzFindingException($"NeedMoreData with {chunk.Length} bytes left unconsumed");
                        break;
                    case XmlStreamEvent.StreamOpen:
                        var header = parser.StreamHeader ?? throw new FuzzFindingException("StreamOpen without a StreamHeader");
                        transcript.Append("open ");
                        Canon(header, transcript);
                        transcript.Append(" default=").Append(parser.StreamDefaultNamespace).Append('\n');
                        break;
                    case XmlStreamEvent.Element:
                        var element = parser.TakeElement();
                        transcript.Append("element ");
                        Canon(element, transcript);
                        transcript.Append('\n');
                        RoundTrip(element);
                        if (element.Name is "auth" or "starttls")
                        {
                            parser.Reset();
                            consumedSinceReset = 0;
                            transcript.Append("reset\n");
                        }

                        break;
                    case XmlStreamEvent.StreamClose:
                        transcript.Append("close\n");
                        break;
                    case XmlStreamEvent.Error:
                        if (parser.Error == XmlStreamErrorCondition.None)
                            throw new FuzzFindingException("Error event with condition None");
                        if (parser.Read(chunk, out int again) != XmlStreamEvent.Error || again != 0)
                            throw new FuzzFindingException("a failed parser did not stay failed");
                        transcript.Append("error ").Append(parser.Error.ToElementName()).Append('\n');
                        return transcript.ToString();
                    default:
                        throw new FuzzFindingException($"unknown event {ev}");
                }

                if (ev == XmlStreamEvent.NeedMoreData)
                    break;
            }
        }

        return transcript.ToString();
    }

    /// <summary>Writer round trip: serialise stand-alone, re-parse, compare trees; serialise again, compare bytes.</summary>
    public static void RoundTrip(XmlElement element)
    {
        byte[] written = XmlWriter.ToUtf8(element, parentNamespace: null, streamPrefixDeclared: false);
        XmlElement reparsed;
        try
        {
            reparsed = XmlStreamParser.ParseElement(written, RoundTripLimits);
        }
        catch (FormatException ex)
        {
            throw new FuzzFindingException($"the writer's output does not re-parse: {Encoding.UTF8.GetString(written)}", ex);
        }

        string before = Canon(element);
        string after = Canon(reparsed);
        if (!string.Equals(before, after, StringComparison.Ordinal))
            throw new FuzzFindingException($"round trip changed the element:\nread:     {before}\nwritten:  {Encoding.UTF8.GetString(written)}\nre-read:  {after}");

        byte[] rewritten = XmlWriter.ToUtf8(reparsed, parentNamespace: null, streamPrefixDeclared: false);
        if (!written.AsSpan().SequenceEqual(rewritten))
            throw new FuzzFindingException($"writing the re-read element gave other bytes:\n{Encoding.UTF8.GetString(written)}\n{Encoding.UTF8.GetString(rewritten)}");
    }

    /// <summary>An unambiguous rendering of a tree; adjacent text nodes are merged and empty ones dropped (XML does not keep text node boundaries).</summary>
    public static string Canon(XmlElement element)
    {
        var sb = new StringBuilder();
        Canon(element, sb);
        return sb.ToString();
    }

    private static void Canon(XmlElement e, StringBuilder sb)
    {
        sb.Append("<{");
        Escape(e.Namespace, sb);
        sb.Append('}');
        Escape(e.Name, sb);
        foreach (var a in e.Attributes)
        {
            sb.Append(" {");
            Escape(a.Namespace, sb);
            sb.Append('}');
            Escape(a.Name, sb);
            sb.Append("=\"");
            Escape(a.Value, sb);
            sb.Append('"');
        }

        sb.Append('>');
        bool inText = false;
        foreach (var child in e.Children)
        {
            if (child is XmlText text)
            {
                if (text.Value.Length == 0)
                    continue;
                if (!inText)
                    sb.Append("T(");
                inText = true;
                Escape(text.Value, sb);
                continue;
            }

            if (inText)
                sb.Append(')');
            inText = false;
            if (child is XmlElement childElement)
                Canon(childElement, sb);
        }

        if (inText)
            sb.Append(')');
        sb.Append("</>");
    }

    private static readonly SearchValues<char> Specials = SearchValues.Create("\\\"(){}<>");

    private static void Escape(string s, StringBuilder sb)
    {
        foreach (char c in s)
        {
            if (Specials.Contains(c))
                sb.Append('\\').Append(c);
            else if (c < 0x20 || char.IsSurrogate(c))
                sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else
                sb.Append(c);
        }
    }
}
