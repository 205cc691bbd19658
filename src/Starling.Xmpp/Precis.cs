using System.Buffers;
using System.Globalization;
using System.Text;

namespace Starling.Xmpp;

/// <summary>
/// PRECIS string classes and the two profiles XMPP addresses use (RFC 8264, RFC 8265):
/// UsernameCaseMapped for localparts and OpaqueString for resourceparts.
/// </summary>
/// <remarks>
/// Derived properties are computed from the runtime's Unicode data (category, NFKC) instead of a
/// generated table, so the Unicode version follows the runtime. Known simplifications, all on the
/// conservative side (they reject rather than accept):
/// <list type="bullet">
/// <item>CONTEXTJ (ZWJ/ZWNJ) is accepted only directly after a virama from a fixed list; the
/// Arabic joining-type alternative of RFC 5892 A.1 is not implemented.</item>
/// <item>The Bidi Rule (RFC 5893) is approximated by code point ranges of right-to-left scripts.</item>
/// </list>
/// </remarks>
internal static class Precis
{
    public const int MaxPartOctets = 1023;

    /// <summary>Inputs longer than this (in UTF-16 units) cannot normalise to 1023 octets in practice; rejected before any work.</summary>
    public const int MaxInputChars = 4 * MaxPartOctets;

    private enum CodePointClass
    {
        Pvalid,
        FreeformOnly,
        ContextJ,
        ContextO,
        Disallowed,
    }

    /// <summary>UsernameCaseMapped (RFC 8265 §3.3) plus the RFC 7622 §3.3.1 localpart exclusions.</summary>
    public static string? NormalizeLocal(string input, out string? error)
    {
        const string Part = "localpart";
        if (input.Length == 0)
        {
            error = "empty localpart";
            return null;
        }

        if (input.Length > MaxInputChars)
        {
            error = "localpart too long";
            return null;
        }

        // Fast path: printable ASCII only. Already-normalised input is returned as is.
        bool hasUpper = false;
        bool ascii = true;
        foreach (char c in input)
        {
            if (c >= 0x80)
            {
                ascii = false;
                break;
            }

            if (c is <= ' ' or (char)0x7F || IsLocalExcluded(c))
            {
                error = InvalidCharacter(c, Part);
                return null;
            }

            hasUpper |= c is >= 'A' and <= 'Z';
        }

        string result;
        if (ascii)
        {
            result = hasUpper ? input.ToLowerInvariant() : input;
        }
        else
        {
            error = CheckSurrogates(input, Part);
            if (error is not null)
                return null;

            // Width mapping, case mapping (toLowerCase), NFC; then validate against IdentifierClass.
            string s = MapWidth(input);
            string? nfc = TryNormalize(s.ToLowerInvariant(), NormalizationForm.FormC);
            if (nfc is null)
            {
                error = NormalizationFailure("invalid character in localpart");
                return null;
            }

            s = nfc;
            if (s.Length == 0)
            {
                error = "empty localpart";
                return null;
            }

            error = Validate(s, identifier: true, Part);
            if (error is not null)
                return null;

            if (!PassesBidiRule(s))
            {
                error = "localpart violates the bidi rule";
                return null;
            }

            result = string.Equals(s, input, StringComparison.Ordinal) ? input : s;
        }

        if (Encoding.UTF8.GetByteCount(result) > MaxPartOctets)
        {
            error = "localpart too long";
            return null;
        }

        error = null;
        return result;
    }

    /// <summary>OpaqueString (RFC 8265 §4.2).</summary>
    public static string? NormalizeResource(string input, out string? error)
    {
        const string Part = "resource";
        if (input.Length == 0)
        {
            error = "empty resource";
            return null;
        }

        if (input.Length > MaxInputChars)
        {
            error = "resource too long";
            return null;
        }

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
                error = InvalidCharacter(c, Part);
                return null;
            }
        }

        string result;
        if (ascii)
        {
            result = input;
        }
        else
        {
            error = CheckSurrogates(input, Part);
            if (error is not null)
                return null;

            string? s = TryNormalize(MapNonAsciiSpaces(input), NormalizationForm.FormC);
            if (s is null)
            {
                error = NormalizationFailure("invalid character in resource");
                return null;
            }

            error = Validate(s, identifier: false, Part);
            if (error is not null)
                return null;
            result = string.Equals(s, input, StringComparison.Ordinal) ? input : s;
        }

        if (Encoding.UTF8.GetByteCount(result) > MaxPartOctets)
        {
            error = "resource too long";
            return null;
        }

        error = null;
        return result;
    }

    internal static bool IsLocalExcluded(char c) => c is '"' or '&' or '\'' or '/' or ':' or '<' or '>' or '@';

    /// <summary>
    /// Why normalisation gave no result: <paramref name="invalidInput"/>, unless the reason is that this machine has no
    /// ICU for non-ASCII text.
    /// </summary>
    internal static string NormalizationFailure(string invalidInput) =>
        Icu.IsAvailable ? invalidInput : "non-ASCII text needs ICU (libicu), which is not installed";

    internal static string InvalidCharacter(int cp, string part) =>
        cp is > 0x20 and < 0x7F
            ? string.Create(CultureInfo.InvariantCulture, $"invalid character '{(char)cp}' in {part}")
            : string.Create(CultureInfo.InvariantCulture, $"invalid character U+{cp:X4} in {part}");

    /// <summary>Ill-formed UTF-16 (a lone surrogate) cannot be normalised; returns an error for it, or null.</summary>
    internal static string? CheckSurrogates(string s, string part)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (!char.IsSurrogate(c))
                continue;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                i++;
                continue;
            }

            return InvalidCharacter(c, part);
        }

        return null;
    }

    /// <summary>
    /// NFC/NFKC through <see cref="Icu"/>; null for ill-formed input (unpaired surrogates, U+FFFE/U+FFFF, which every
    /// profile disallows anyway) or when non-ASCII text cannot be normalized because ICU is missing.
    /// </summary>
    internal static string? TryNormalize(string s, NormalizationForm form) =>
        Icu.Normalize(s, compatibility: form == NormalizationForm.FormKC);

    /// <summary>RFC 8265 width mapping: fullwidth and halfwidth forms to their decompositions.</summary>
    private static string MapWidth(string s)
    {
        int first = -1;
        for (int i = 0; i < s.Length; i++)
        {
            if (IsWidthVariant(s[i]))
            {
                first = i;
                break;
            }
        }

        if (first < 0)
            return s;

        var sb = new StringBuilder(s.Length);
        sb.Append(s, 0, first);
        for (int i = first; i < s.Length; i++)
        {
            char c = s[i];
            if (IsWidthVariant(c))
                sb.Append(TryNormalize(c.ToString(), NormalizationForm.FormKC) ?? c.ToString());
            else
                sb.Append(c);
        }

        return sb.ToString();
    }

    // U+3000 is <wide> SPACE; FF01..FFEE are the Halfwidth and Fullwidth Forms block.
    private static bool IsWidthVariant(char c) => c is '\u3000' or (>= '\uFF01' and <= '\uFFEE');

    /// <summary>OpaqueString additional mapping: non-ASCII space (Zs) to U+0020.</summary>
    private static string MapNonAsciiSpaces(string s)
    {
        char[]? buffer = null;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c > 0x7F && CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.SpaceSeparator)
            {
                buffer ??= s.ToCharArray();
                buffer[i] = ' ';
            }
        }

        return buffer is null ? s : new string(buffer);
    }

    /// <summary>Checks every code point against IdentifierClass or FreeformClass, including contextual rules. Returns an error or null.</summary>
    private static string? Validate(string s, bool identifier, string part)
    {
        ReadOnlySpan<char> span = s;
        int index = 0;
        while (index < span.Length)
        {
            if (Rune.DecodeFromUtf16(span[index..], out Rune rune, out int consumed) != OperationStatus.Done)
                return InvalidCharacter(span[index], part);

            int cp = rune.Value;
            if (identifier && cp < 0x80 && IsLocalExcluded((char)cp))
                return InvalidCharacter(cp, part);

            bool ok = Classify(rune) switch
            {
                CodePointClass.Pvalid => true,
                CodePointClass.FreeformOnly => !identifier,
                CodePointClass.ContextJ => ContextJAllowed(span, index),
                CodePointClass.ContextO => ContextOAllowed(span, index, cp),
                _ => false,
            };

            if (!ok)
                return InvalidCharacter(cp, part);

            index += consumed;
        }

        return null;
    }

    /// <summary>RFC 8264 §8 derivation, in order.</summary>
    private static CodePointClass Classify(Rune rune)
    {
        int cp = rune.Value;

        // Exceptions (RFC 5892 §2.6).
        switch (cp)
        {
            case 0x00DF or 0x03C2 or 0x06FD or 0x06FE or 0x0F0B or 0x3007:
                return CodePointClass.Pvalid;
            case 0x00B7 or 0x0375 or 0x05F3 or 0x05F4 or 0x30FB or (>= 0x0660 and <= 0x0669) or (>= 0x06F0 and <= 0x06F9):
                return CodePointClass.ContextO;
            case 0x0640 or 0x07FA or 0x302E or 0x302F or (>= 0x3031 and <= 0x3035) or 0x303B:
                return CodePointClass.Disallowed;
        }

        UnicodeCategory category = Rune.GetUnicodeCategory(rune);
        if (category == UnicodeCategory.OtherNotAssigned)
            return CodePointClass.Disallowed; // Unassigned (and noncharacters).

        if (cp is >= 0x21 and <= 0x7E)
            return CodePointClass.Pvalid; // ASCII7

        if (cp is 0x200C or 0x200D)
            return CodePointClass.ContextJ;

        if (IsOldHangulJamo(cp) || IsDefaultIgnorable(cp) || IsNoncharacter(cp) || category == UnicodeCategory.Control)
            return CodePointClass.Disallowed;

        if (cp >= 0x80 && !Icu.IsNormalized(rune.ToString(), compatibility: true))
            return CodePointClass.FreeformOnly; // HasCompat

        switch (category)
        {
            case UnicodeCategory.LowercaseLetter or UnicodeCategory.UppercaseLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ModifierLetter
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark:
                return CodePointClass.Pvalid; // LetterDigits
            case UnicodeCategory.TitlecaseLetter or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
                or UnicodeCategory.EnclosingMark: // OtherLetterDigits
            case UnicodeCategory.SpaceSeparator: // Spaces
            case UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
                or UnicodeCategory.OtherSymbol: // Symbols
            case UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
                or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation: // Punctuation
                return CodePointClass.FreeformOnly;
            default:
                return CodePointClass.Disallowed; // Format, separators, surrogates, private use.
        }
    }

    private static bool IsOldHangulJamo(int cp) =>
        cp is (>= 0x1100 and <= 0x11FF) or (>= 0xA960 and <= 0xA97C) or (>= 0xD7B0 and <= 0xD7C6) or (>= 0xD7CB and <= 0xD7FB);

    internal static bool IsNoncharacter(int cp) => cp is >= 0xFDD0 and <= 0xFDEF || (cp & 0xFFFE) == 0xFFFE;

    private static bool IsDefaultIgnorable(int cp) =>
        cp is 0x00AD or 0x034F or 0x061C or 0x115F or 0x1160 or 0x17B4 or 0x17B5 or (>= 0x180B and <= 0x180F)
            or (>= 0x200B and <= 0x200F) or (>= 0x202A and <= 0x202E) or (>= 0x2060 and <= 0x206F)
            or 0x3164 or (>= 0xFE00 and <= 0xFE0F) or 0xFEFF or 0xFFA0 or (>= 0xFFF0 and <= 0xFFF8)
            or (>= 0x1BCA0 and <= 0x1BCA3) or (>= 0x1D173 and <= 0x1D17A) or (>= 0xE0000 and <= 0xE0FFF);

    // Viramas (Canonical_Combining_Class 9) of the scripts where ZWJ/ZWNJ are used in practice.
    private static bool IsVirama(int cp) =>
        cp is 0x094D or 0x09CD or 0x0A4D or 0x0ACD or 0x0B4D or 0x0BCD or 0x0C4D or 0x0CCD or 0x0D4D or 0x0DCA
            or 0x0E3A or 0x0F84 or 0x1039 or 0x103A or 0x1714 or 0x1734 or 0x17D2 or 0x1A60 or 0x1B44
            or 0x1BAA or 0x1BAB or 0x1BF2 or 0x1BF3 or 0x2D7F or 0xA806 or 0xA8C4 or 0xA953 or 0xA9C0
            or 0xAAF6 or 0xABED;

    private static bool ContextJAllowed(ReadOnlySpan<char> s, int index) =>
        index > 0 && Rune.DecodeLastFromUtf16(s[..index], out Rune before, out _) == OperationStatus.Done && IsVirama(before.Value);

    private static bool ContextOAllowed(ReadOnlySpan<char> s, int index, int cp)
    {
        switch (cp)
        {
            case 0x00B7: // MIDDLE DOT: between two 'l'.
                return index > 0 && index + 1 < s.Length && s[index - 1] == 'l' && s[index + 1] == 'l';
            case 0x0375: // GREEK LOWER NUMERAL SIGN: followed by Greek.
                return index + 1 < s.Length && Rune.DecodeFromUtf16(s[(index + 1)..], out Rune next, out _) == OperationStatus.Done && IsGreek(next.Value);
            case 0x05F3 or 0x05F4: // HEBREW GERESH/GERSHAYIM: preceded by Hebrew.
                return index > 0 && Rune.DecodeLastFromUtf16(s[..index], out Rune prev, out _) == OperationStatus.Done && IsHebrew(prev.Value);
            case 0x30FB: // KATAKANA MIDDLE DOT: some Hiragana, Katakana or Han in the string.
                foreach (Rune r in s.EnumerateRunes())
                {
                    if (r.Value != 0x30FB && IsHiraganaKatakanaHan(r.Value))
                        return true;
                }

                return false;
            case >= 0x0660 and <= 0x0669: // ARABIC-INDIC digits: not mixed with extended ones.
                return !ContainsRange(s, '\u06F0', '\u06F9');
            case >= 0x06F0 and <= 0x06F9:
                return !ContainsRange(s, '\u0660', '\u0669');
            default:
                return false;
        }
    }

    private static bool ContainsRange(ReadOnlySpan<char> s, char from, char to)
    {
        foreach (char c in s)
        {
            if (c >= from && c <= to)
                return true;
        }

        return false;
    }

    private static bool IsGreek(int cp) => cp is (>= 0x0370 and <= 0x03FF and not 0x0375) or (>= 0x1F00 and <= 0x1FFF);

    private static bool IsHebrew(int cp) => cp is (>= 0x0590 and <= 0x05FF) or (>= 0xFB1D and <= 0xFB4F);

    private static bool IsHiraganaKatakanaHan(int cp) =>
        cp is (>= 0x3040 and <= 0x30FF) or (>= 0x31F0 and <= 0x31FF) or (>= 0xFF66 and <= 0xFF9F)
            or (>= 0x3400 and <= 0x4DBF) or (>= 0x4E00 and <= 0x9FFF) or (>= 0xF900 and <= 0xFAFF)
            or (>= 0x20000 and <= 0x3FFFF) or 0x3005 or 0x3006 or 0x3007 or (>= 0x3021 and <= 0x3029);

    /// <summary>Blocks of right-to-left scripts (Hebrew, Arabic, Syriac, Thaana, NKo, ... and their presentation forms).</summary>
    internal static bool IsRightToLeftBlock(int cp) =>
        cp is (>= 0x0590 and <= 0x08FF) or (>= 0xFB1D and <= 0xFDFF) or (>= 0xFE70 and <= 0xFEFF)
            or (>= 0x10800 and <= 0x10FFF) or (>= 0x1E800 and <= 0x1EFFF);

    /// <summary>
    /// Approximation of the Bidi Rule (RFC 5893) / stringprep §6: a string with right-to-left letters
    /// must start with one, end with one (or, unless <paramref name="stringprep"/>, a digit or mark),
    /// and contain no left-to-right letters. With <paramref name="stringprep"/> the stricter RFC 3454 §6 ending applies.
    /// </summary>
    internal static bool PassesBidiRule(string s, bool stringprep = false)
    {
        bool hasRtl = false;
        bool hasLtr = false;
        foreach (Rune r in s.EnumerateRunes())
        {
            if (!Rune.IsLetter(r))
                continue;
            if (IsRightToLeftBlock(r.Value))
                hasRtl = true;
            else
                hasLtr = true;
        }

        if (!hasRtl)
            return true;
        if (hasLtr)
            return false;

        Rune.DecodeFromUtf16(s, out Rune first, out _);
        Rune.DecodeLastFromUtf16(s, out Rune last, out _);
        if (!(Rune.IsLetter(first) && IsRightToLeftBlock(first.Value)))
            return false;

        if (Rune.IsLetter(last) && IsRightToLeftBlock(last.Value))
            return true;

        return !stringprep && (Rune.IsDigit(last)
            || Rune.GetUnicodeCategory(last) == UnicodeCategory.NonSpacingMark);
    }
}
