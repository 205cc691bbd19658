using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace Starling.Xmpp.Sasl;

/// <summary>
/// SASLprep (RFC 4013): the stringprep profile for user names and passwords in SASL mechanisms.
/// </summary>
/// <remarks>
/// Mapping: non-ASCII spaces to U+0020, "commonly mapped to nothing" (RFC 3454 B.1) removed; NFKC;
/// prohibited output (controls, private use, noncharacters, surrogates, C.6–C.9) rejected; bidi check
/// (RFC 3454 §6, with right-to-left detection by script block). Unassigned code points are allowed
/// (the "query" behaviour); the runtime's Unicode version is not 3.2, so "unassigned in 3.2" is not knowable here.
/// </remarks>
public static class SaslPrep
{
    /// <summary>Prepares <paramref name="input"/>; throws <see cref="ArgumentException"/> if it contains prohibited output.</summary>
    public static string Normalize(string input) =>
        TryNormalize(input, out string? normalized, out string? error) ? normalized : throw new ArgumentException($"SASLprep: {error}", nameof(input));

    public static bool TryNormalize(string input, [NotNullWhen(true)] out string? normalized) => TryNormalize(input, out normalized, out _);

    public static bool TryNormalize(string input, [NotNullWhen(true)] out string? normalized, out string? error)
    {
        ArgumentNullException.ThrowIfNull(input);
        normalized = null;

        bool ascii = true;
        foreach (char c in input)
        {
            if (c >= 0x80)
            {
                ascii = false;
                break;
            }

            if (c is < ' ' or (char)0x7F)
            {
                error = Precis.InvalidCharacter(c, "string");
                return false;
            }
        }

        if (ascii)
        {
            normalized = input;
            error = null;
            return true;
        }

        error = Precis.CheckSurrogates(input, "string");
        if (error is not null)
            return false;

        // Mapping (RFC 4013 §2.1).
        var sb = new StringBuilder(input.Length);
        foreach (Rune r in input.EnumerateRunes())
        {
            int cp = r.Value;
            if (IsMappedToNothing(cp))
                continue;
            if (cp > 0x7F && Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator)
                sb.Append(' ');
            else
                sb.Append(r);
        }

        // Normalization (§2.2).
        string? s = Precis.TryNormalize(sb.ToString(), NormalizationForm.FormKC);
        if (s is null)
        {
            error = Precis.NormalizationFailure("invalid character in string");
            return false;
        }


        // Prohibited output (§2.3).
        ReadOnlySpan<char> span = s;
        int index = 0;
        while (index < span.Length)
        {
            if (Rune.DecodeFromUtf16(span[index..], out Rune rune, out int consumed) != OperationStatus.Done || IsProhibited(rune))
            {
                error = Precis.InvalidCharacter(rune.Value, "string");
                return false;
            }

            index += consumed;
        }

        // Bidi (§2.4, RFC 3454 §6).
        if (!Precis.PassesBidiRule(s, stringprep: true))
        {
            error = "string violates the bidi rule";
            return false;
        }

        normalized = string.Equals(s, input, StringComparison.Ordinal) ? input : s;
        error = null;
        return true;
    }

    // RFC 3454 B.1.
    private static bool IsMappedToNothing(int cp) =>
        cp is 0x00AD or 0x034F or 0x1806 or (>= 0x180B and <= 0x180D) or (>= 0x200B and <= 0x200D)
            or 0x2060 or (>= 0xFE00 and <= 0xFE0F) or 0xFEFF;

    private static bool IsProhibited(Rune rune)
    {
        int cp = rune.Value;
        if (cp < 0x20 || cp == 0x7F)
            return true; // C.2.1
        if (cp < 0x80)
            return false;

        UnicodeCategory category = Rune.GetUnicodeCategory(rune);
        return category is UnicodeCategory.SpaceSeparator // C.1.2 (already mapped; NFKC does not produce them)
                or UnicodeCategory.Control // C.2.2 (0080-009F)
                or UnicodeCategory.PrivateUse // C.3
                or UnicodeCategory.Surrogate // C.5
            || Precis.IsNoncharacter(cp) // C.4
            || cp is 0x06DD or 0x070F or 0x180E or 0x200C or 0x200D or 0x2028 or 0x2029 // C.2.2
                or (>= 0x2060 and <= 0x2063) or (>= 0x206A and <= 0x206F) or 0xFEFF
                or (>= 0xFFF9 and <= 0xFFFC) or (>= 0x1D173 and <= 0x1D17A)
            || cp is (>= 0xFFF9 and <= 0xFFFD) // C.6
            || cp is (>= 0x2FF0 and <= 0x2FFB) // C.7
            || cp is 0x0340 or 0x0341 or 0x200E or 0x200F or (>= 0x202A and <= 0x202E) // C.8
            || cp is 0xE0001 or (>= 0xE0020 and <= 0xE007F); // C.9
    }
}
