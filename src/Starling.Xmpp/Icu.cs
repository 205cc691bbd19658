using System.Runtime.InteropServices;

namespace Starling.Xmpp;

/// <summary>
/// Unicode normalization (UAX #15: NFC, NFKC) and IDNA2008 domain-name processing (UTS #46, non-transitional, STD3
/// rules, Bidi and CONTEXTJ checks) from the system's ICU library, loaded the first time a non-ASCII string needs it.
/// <para>
/// Starling runs with invariant globalization: nothing else in the server needs ICU, and loading it at start-up (as the
/// runtime does otherwise) costs ~5 MB of resident memory. ASCII text is always normalized and ASCII domain names are
/// handled in <see cref="Jid"/>, so a server whose users, resources and domains are ASCII never loads ICU at all.
/// </para>
/// <para>
/// Without ICU on the machine (it is a dependency of .NET on Linux, so this is rare) non-ASCII JIDs and passwords
/// are refused as invalid instead of being compared unnormalized; <see cref="IsAvailable"/> tells which case applies.
/// </para>
/// </summary>
internal static unsafe class Icu
{
    // unicode/uidna.h
    private const uint UseStd3Rules = 0x2;
    private const uint CheckBidi = 0x4;
    private const uint CheckContextJ = 0x8;
    private const uint NontransitionalToAscii = 0x10;
    private const uint NontransitionalToUnicode = 0x20;

    // unicode/utypes.h: U_BUFFER_OVERFLOW_ERROR; failures are > 0.
    private const int BufferOverflow = 15;

    [StructLayout(LayoutKind.Sequential)]
    private struct IdnaInfo
    {
        public short Size;
        public byte IsTransitionalDifferent;
        public byte Reserved1;
        public uint Errors;
        public int Reserved2;
        public int Reserved3;
    }

    private sealed class Api
    {
        public nint Nfc;
        public nint Nfkc;
        public nint Idna;
        public delegate* unmanaged<nint, char*, int, char*, int, int*, int> Normalize;
        public delegate* unmanaged<nint, char*, int, int*, sbyte> IsNormalized;
        public delegate* unmanaged<nint, char*, int, char*, int, IdnaInfo*, int*, int> NameToAscii;
        public delegate* unmanaged<nint, char*, int, char*, int, IdnaInfo*, int*, int> NameToUnicode;
    }

    private static readonly Lazy<Api?> Loaded = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Whether ICU could be loaded (loads it).</summary>
    public static bool IsAvailable => Loaded.Value is not null;

    /// <summary>Whether ICU has been loaded by this process so far (diagnostics and tests; does not load it).</summary>
    public static bool IsLoaded => Loaded.IsValueCreated && Loaded.Value is not null;

    /// <summary>
    /// <paramref name="s"/> in NFC (or NFKC with <paramref name="compatibility"/>); <paramref name="s"/> itself when it
    /// already is. Null for ill-formed UTF-16 (unpaired surrogates), for U+FFFE/U+FFFF, and when ICU is unavailable.
    /// </summary>
    public static string? Normalize(string s, bool compatibility)
    {
        if (System.Text.Ascii.IsValid(s))
            return s;
        if (!IsWellFormed(s) || Loaded.Value is not { } api)
            return null;

        nint form = compatibility ? api.Nfkc : api.Nfc;
        fixed (char* source = s)
        {
            int error = 0;
            if (api.IsNormalized(form, source, s.Length, &error) != 0 && error <= 0)
                return s;

            int capacity = s.Length * 3 + 16;
            while (true)
            {
                char[] buffer = new char[capacity];
                fixed (char* destination = buffer)
                {
                    error = 0;
                    int length = api.Normalize(form, source, s.Length, destination, capacity, &error);
                    if (error == BufferOverflow && length > capacity)
                    {
                        capacity = length;
                        continue;
                    }

                    return error > 0 ? null : new string(destination, 0, length);
                }
            }
        }
    }

    /// <summary>Whether <paramref name="s"/> is in NFC (or NFKC); false when it cannot be normalized at all.</summary>
    public static bool IsNormalized(string s, bool compatibility)
    {
        if (System.Text.Ascii.IsValid(s))
            return true;
        if (!IsWellFormed(s) || Loaded.Value is not { } api)
            return false;

        fixed (char* source = s)
        {
            int error = 0;
            return api.IsNormalized(compatibility ? api.Nfkc : api.Nfc, source, s.Length, &error) != 0 && error <= 0;
        }
    }

    /// <summary>UTS #46 ToASCII of a whole domain name (A-labels); null if IDNA2008 rejects it or ICU is unavailable.</summary>
    public static string? IdnToAscii(string domain) => Idna(domain, toAscii: true);

    /// <summary>UTS #46 ToUnicode of a whole domain name (U-labels); null if IDNA2008 rejects it or ICU is unavailable.</summary>
    public static string? IdnToUnicode(string domain) => Idna(domain, toAscii: false);

    private static string? Idna(string domain, bool toAscii)
    {
        if (domain.Length == 0 || !IsWellFormed(domain) || Loaded.Value is not { } api)
            return null;

        int capacity = domain.Length * 4 + 16;
        fixed (char* source = domain)
        {
            while (true)
            {
                char[] buffer = new char[capacity];
                fixed (char* destination = buffer)
                {
                    int error = 0;
                    var info = new IdnaInfo { Size = (short)sizeof(IdnaInfo) };
                    int length = toAscii
                        ? api.NameToAscii(api.Idna, source, domain.Length, destination, capacity, &info, &error)
                        : api.NameToUnicode(api.Idna, source, domain.Length, destination, capacity, &info, &error);
                    if (error == BufferOverflow && length > capacity)
                    {
                        capacity = length;
                        continue;
                    }

                    return error > 0 || info.Errors != 0 ? null : new string(destination, 0, length);
                }
            }
        }
    }

    /// <summary>No unpaired surrogate and no U+FFFE/U+FFFF (which ICU would pass through but no profile allows).</summary>
    private static bool IsWellFormed(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 == s.Length || !char.IsLowSurrogate(s[i + 1]))
                    return false;
                i++;
            }
            else if (char.IsLowSurrogate(c) || c is '\uFFFE' or '\uFFFF')
            {
                return false;
            }
        }

        return true;
    }

    private static Api? Load()
    {
        // Distributions ship libicuuc.so.<major> with the major version appended to every symbol (e.g.
        // unorm2_normalize_72); some builds leave the symbols unsuffixed.
        for (int major = 99; major >= 50; major--)
        {
            if (!NativeLibrary.TryLoad($"libicuuc.so.{major}", out nint library))
                continue;

            foreach (string suffix in new[] { $"_{major}", "" })
            {
                if (TryBind(library, suffix) is { } api)
                    return api;
            }
        }

        return null;
    }

    private static Api? TryBind(nint library, string suffix)
    {
        nint Export(string name) => NativeLibrary.TryGetExport(library, name + suffix, out nint address) ? address : 0;

        nint getNfc = Export("unorm2_getNFCInstance");
        nint getNfkc = Export("unorm2_getNFKCInstance");
        nint normalize = Export("unorm2_normalize");
        nint isNormalized = Export("unorm2_isNormalized");
        nint openUts46 = Export("uidna_openUTS46");
        nint toAscii = Export("uidna_nameToASCII");
        nint toUnicode = Export("uidna_nameToUnicode");
        if (getNfc == 0 || getNfkc == 0 || normalize == 0 || isNormalized == 0 || openUts46 == 0 || toAscii == 0 || toUnicode == 0)
            return null;

        int error = 0;
        nint nfc = ((delegate* unmanaged<int*, nint>)getNfc)(&error);
        if (error > 0 || nfc == 0) return null;
        nint nfkc = ((delegate* unmanaged<int*, nint>)getNfkc)(&error);
        if (error > 0 || nfkc == 0) return null;
        // One immutable (thread-safe) IDNA instance for the life of the process.
        nint idna = ((delegate* unmanaged<uint, int*, nint>)openUts46)(
            UseStd3Rules | CheckBidi | CheckContextJ | NontransitionalToAscii | NontransitionalToUnicode, &error);
        if (error > 0 || idna == 0) return null;

        return new Api
        {
            Nfc = nfc,
            Nfkc = nfkc,
            Idna = idna,
            Normalize = (delegate* unmanaged<nint, char*, int, char*, int, int*, int>)normalize,
            IsNormalized = (delegate* unmanaged<nint, char*, int, int*, sbyte>)isNormalized,
            NameToAscii = (delegate* unmanaged<nint, char*, int, char*, int, IdnaInfo*, int*, int>)toAscii,
            NameToUnicode = (delegate* unmanaged<nint, char*, int, char*, int, IdnaInfo*, int*, int>)toUnicode,
        };
    }
}
