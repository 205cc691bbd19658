using System.Text;
using Starling.Xmpp;

namespace Starling.Fuzz;

/// <summary>
/// JID parsing and the PRECIS/IDNA normalisation (src/Starling.Xmpp/Jid.cs, Precis.cs) on hostile strings.
/// </summary>
/// <remarks>
/// <para>Input: UTF-8 text (invalid sequences become U+FFFD), or, after a leading 0x01 byte, UTF-16LE code units, so
/// lone surrogates reach the code too (strings that did not come through a UTF-8 decoder: configuration, the CLI).</para>
/// <para>Invariants (RFC 7622 §3): <c>TryParse</c> never throws and gives a reason when it fails; a parsed JID's
/// string re-parses to an equal JID with the same string and hash; its bare JID and its parts re-create it; every
/// normalisation function is idempotent (its output normalises to itself) and never throws.</para>
/// </remarks>
public static class JidHarness
{
    public static void Run(ReadOnlySpan<byte> input)
    {
        string text = input.Length > 0 && input[0] == 0x01
            ? new string(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, char>(input[1..(1 + ((input.Length - 1) & ~1))]))
            : Encoding.UTF8.GetString(input);

        CheckParse(text);
        CheckIdempotent("local", text, Jid.TryNormalizeLocal);
        CheckIdempotent("domain", text, Jid.TryNormalizeDomain);
        CheckIdempotent("resource", text, Jid.TryNormalizeResource);
    }

    private delegate bool Normalizer(string input, out string? normalized, out string? error);

    private static void CheckParse(string text)
    {
        if (!Jid.TryParse(text, out Jid? jid, out string? error))
        {
            if (error is null)
                throw new FuzzFindingException($"TryParse failed without a reason: {ScramHarness.Escape(text)}");
            return;
        }

        string formatted = jid.ToString();
        if (!Jid.TryParse(formatted, out Jid? again, out string? againError))
            throw new FuzzFindingException($"a parsed JID's string does not re-parse ({againError}): {ScramHarness.Escape(text)} -> {ScramHarness.Escape(formatted)}");
        if (!jid.Equals(again) || !again.Equals(jid) || jid.GetHashCode() != again.GetHashCode())
            throw new FuzzFindingException($"a parsed JID's string re-parses to another JID: {ScramHarness.Escape(text)} -> {Describe(jid)} -> {Describe(again)}");
        if (!string.Equals(again.ToString(), formatted, StringComparison.Ordinal))
            throw new FuzzFindingException($"a JID's string is not stable: {ScramHarness.Escape(formatted)} -> {ScramHarness.Escape(again.ToString())}");

        Jid bare = jid.Bare;
        if (!Jid.TryParse(bare.ToString(), out Jid? bareAgain, out _) || !bare.Equals(bareAgain) || bare.Resource is not null)
            throw new FuzzFindingException($"the bare JID does not round-trip: {Describe(jid)}");

        if (!Jid.TryCreate(jid.Local, jid.Domain, jid.Resource, out Jid? created, out string? createError) || !jid.Equals(created))
            throw new FuzzFindingException($"the parts of a JID do not re-create it ({createError}): {Describe(jid)}");

        if (jid.Resource is { } resource && !jid.Equals(bare.WithResource(resource)))
            throw new FuzzFindingException($"WithResource(own resource) gave another JID: {Describe(jid)}");
    }

    private static void CheckIdempotent(string part, string text, Normalizer normalize)
    {
        if (!normalize(text, out string? normalized, out string? error))
        {
            if (error is null)
                throw new FuzzFindingException($"{part} normalisation failed without a reason: {ScramHarness.Escape(text)}");
            return;
        }

        if (!normalize(normalized!, out string? again, out string? againError))
            throw new FuzzFindingException($"{part} normalisation rejects its own output ({againError}): {ScramHarness.Escape(text)} -> {ScramHarness.Escape(normalized!)}");
        if (!string.Equals(normalized, again, StringComparison.Ordinal))
            throw new FuzzFindingException($"{part} normalisation is not idempotent: {ScramHarness.Escape(text)} -> {ScramHarness.Escape(normalized!)} -> {ScramHarness.Escape(again!)}");
    }

    private static string Describe(Jid jid) =>
        $"[local={(jid.Local is null ? "null" : ScramHarness.Escape(jid.Local))} domain={ScramHarness.Escape(jid.Domain)} resource={(jid.Resource is null ? "null" : ScramHarness.Escape(jid.Resource))}]";
}
