using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Starling.Xmpp;

/// <summary>
/// An XMPP address (RFC 7622): [localpart@]domainpart[/resourcepart], validated and normalised.
/// </summary>
/// <remarks>
/// <para>Localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3) and without <c>" &amp; ' / : &lt; &gt; @</c>.
/// Resourcepart: PRECIS OpaqueString (RFC 8265 §4.2). See <see cref="Precis"/> for the simplifications.</para>
/// <para>Domainpart: one trailing dot is stripped; an IPv6 literal in brackets is kept in its canonical
/// textual form; otherwise the name is validated through IDNA (UTS #46 via <see cref="Icu"/>, STD3 rules) and
/// kept in lower-case Unicode (U-label) form, so "xn--bcher-kva.example" and "Bücher.EXAMPLE" both become
/// "bücher.example". U-labels are what users see and what RFC 7622 §3.2.2 compares; the A-label form
/// is only needed at the DNS boundary. Plain ASCII names must be LDH labels of 1..63 octets.</para>
/// <para>Every part is at most 1023 UTF-8 octets after normalisation. Already-normalised ASCII input is
/// returned without allocating.</para>
/// </remarks>
public sealed class Jid : IEquatable<Jid>
{
    private const int MaxLabelOctets = 63;

    private string? _text;
    private Jid? _bare;
    private int _hash;

    private Jid(string? local, string domain, string? resource)
    {
        Local = local;
        Domain = domain;
        Resource = resource;
    }

    private Jid(string? local, string domain, string? resource, string? text)
        : this(local, domain, resource)
    {
        _text = text;
    }

    public string? Local { get; }
    public string Domain { get; }
    public string? Resource { get; }
    public bool IsBare => Resource is null;
    public bool IsDomain => Local is null && Resource is null;

    /// <summary>This address without its resource (the same instance when already bare).</summary>
    public Jid Bare => Resource is null ? this : _bare ??= new Jid(Local, Domain, null);

    public static bool TryParse(string? text, [NotNullWhen(true)] out Jid? jid) => TryParse(text, out jid, out _);

    /// <summary>Parses and normalises <paramref name="text"/>; on failure <paramref name="error"/> is a short reason.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out Jid? jid, out string? error)
    {
        jid = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "empty JID";
            return false;
        }

        // RFC 7622 §3.1: the first '/' starts the resourcepart; in what precedes it, the first '@' ends the localpart.
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        string? resource = null;
        if (slash >= 0)
        {
            if (slash == text.Length - 1)
            {
                error = "empty resource";
                return false;
            }

            resource = text[(slash + 1)..];
        }

        int headLength = slash >= 0 ? slash : text.Length;
        int at = text.IndexOf('@', 0, headLength);
        string? local = null;
        if (at >= 0)
        {
            if (at == 0)
            {
                error = "empty localpart";
                return false;
            }

            local = text[..at];
        }

        int domainStart = at + 1;
        if (domainStart == headLength)
        {
            error = "empty domain";
            return false;
        }

        string domain = text[domainStart..headLength];
        if (!TryNormalizeParts(ref local, ref domain, ref resource, out bool unchanged, out error))
            return false;

        jid = new Jid(local, domain, resource, unchanged ? text : null);
        return true;
    }

    public static Jid Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out Jid? jid, out string? error) ? jid : throw new FormatException($"Invalid JID: {error}");
    }

    /// <summary>Builds a JID from its parts; a null part is absent, an empty one is invalid.</summary>
    public static bool TryCreate(string? local, string domain, string? resource, [NotNullWhen(true)] out Jid? jid, out string? error)
    {
        jid = null;
        if (domain is null)
        {
            error = "empty domain";
            return false;
        }

        if (!TryNormalizeParts(ref local, ref domain, ref resource, out _, out error))
            return false;

        jid = new Jid(local, domain, resource);
        return true;
    }

    public static Jid Create(string? local, string domain, string? resource = null) =>
        TryCreate(local, domain, resource, out Jid? jid, out string? error) ? jid : throw new ArgumentException($"Invalid JID: {error}");

    public static bool TryNormalizeLocal(string local, [NotNullWhen(true)] out string? normalized) =>
        (normalized = local is null ? null : Precis.NormalizeLocal(local, out _)) is not null;

    public static bool TryNormalizeDomain(string domain, [NotNullWhen(true)] out string? normalized) =>
        (normalized = domain is null ? null : NormalizeDomain(domain, out _)) is not null;

    public static bool TryNormalizeResource(string resource, [NotNullWhen(true)] out string? normalized) =>
        (normalized = resource is null ? null : Precis.NormalizeResource(resource, out _)) is not null;

    /// <summary>Normalises a localpart, giving the reason on failure.</summary>
    public static bool TryNormalizeLocal(string local, [NotNullWhen(true)] out string? normalized, out string? error)
    {
        ArgumentNullException.ThrowIfNull(local);
        normalized = Precis.NormalizeLocal(local, out error);
        return normalized is not null;
    }

    /// <summary>Normalises a domainpart, giving the reason on failure.</summary>
    public static bool TryNormalizeDomain(string domain, [NotNullWhen(true)] out string? normalized, out string? error)
    {
        ArgumentNullException.ThrowIfNull(domain);
        normalized = NormalizeDomain(domain, out error);
        return normalized is not null;
    }

    /// <summary>Normalises a resourcepart, giving the reason on failure.</summary>
    public static bool TryNormalizeResource(string resource, [NotNullWhen(true)] out string? normalized, out string? error)
    {
        ArgumentNullException.ThrowIfNull(resource);
        normalized = Precis.NormalizeResource(resource, out error);
        return normalized is not null;
    }

    /// <summary>The same bare address with another resource (null: the bare JID). Throws <see cref="ArgumentException"/> for an invalid resource.</summary>
    public Jid WithResource(string? resource)
    {
        if (resource is null)
            return Bare;

        string normalized = Precis.NormalizeResource(resource, out string? error)
            ?? throw new ArgumentException($"Invalid JID: {error}", nameof(resource));
        if (string.Equals(normalized, Resource, StringComparison.Ordinal))
            return this;
        return new Jid(Local, Domain, normalized) { _bare = Bare };
    }

    public bool Equals(Jid? other) =>
        other is not null
        && (ReferenceEquals(this, other)
            || (string.Equals(Domain, other.Domain, StringComparison.Ordinal)
                && string.Equals(Local, other.Local, StringComparison.Ordinal)
                && string.Equals(Resource, other.Resource, StringComparison.Ordinal)));

    public override bool Equals(object? obj) => Equals(obj as Jid);

    public override int GetHashCode()
    {
        int hash = _hash;
        if (hash == 0)
        {
            hash = HashCode.Combine(
                Local is null ? 0 : StringComparer.Ordinal.GetHashCode(Local),
                StringComparer.Ordinal.GetHashCode(Domain),
                Resource is null ? 0 : StringComparer.Ordinal.GetHashCode(Resource));
            if (hash == 0)
                hash = 1;
            _hash = hash;
        }

        return hash;
    }

    public override string ToString() => _text ??= Format();

    public static bool operator ==(Jid? a, Jid? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(Jid? a, Jid? b) => !(a == b);

    private string Format()
    {
        if (Local is null && Resource is null)
            return Domain;
        int length = Domain.Length + (Local is null ? 0 : Local.Length + 1) + (Resource is null ? 0 : Resource.Length + 1);
        return string.Create(length, this, static (span, jid) =>
        {
            int pos = 0;
            if (jid.Local is not null)
            {
                jid.Local.CopyTo(span);
                pos = jid.Local.Length;
                span[pos++] = '@';
            }

            jid.Domain.CopyTo(span[pos..]);
            pos += jid.Domain.Length;
            if (jid.Resource is not null)
            {
                span[pos++] = '/';
                jid.Resource.CopyTo(span[pos..]);
            }
        });
    }

    private static bool TryNormalizeParts(ref string? local, ref string domain, ref string? resource, out bool unchanged, out string? error)
    {
        unchanged = false;
        string? normalizedLocal = null;
        if (local is not null)
        {
            normalizedLocal = Precis.NormalizeLocal(local, out error);
            if (normalizedLocal is null)
                return false;
        }

        string? normalizedDomain = NormalizeDomain(domain, out error);
        if (normalizedDomain is null)
            return false;

        string? normalizedResource = null;
        if (resource is not null)
        {
            normalizedResource = Precis.NormalizeResource(resource, out error);
            if (normalizedResource is null)
                return false;
        }

        unchanged = ReferenceEquals(local, normalizedLocal)
            && ReferenceEquals(domain, normalizedDomain)
            && ReferenceEquals(resource, normalizedResource);
        local = normalizedLocal;
        domain = normalizedDomain;
        resource = normalizedResource;
        return true;
    }

    /// <summary>RFC 7622 §3.2 domainpart. Returns <paramref name="input"/> itself when it is already normalised ASCII.</summary>
    internal static string? NormalizeDomain(string input, out string? error)
    {
        if (input.Length == 0)
        {
            error = "empty domain";
            return null;
        }

        if (input.Length > Precis.MaxInputChars)
        {
            error = "domain too long";
            return null;
        }

        if (input[0] == '[')
            return NormalizeIpLiteral(input, out error);

        string s = input;
        bool strippedDot = false;
        if (s[^1] == '.')
        {
            s = s[..^1];
            strippedDot = true;
            if (s.Length == 0)
            {
                error = "empty domain";
                return null;
            }
        }

        // Fast path: ASCII LDH labels without A-labels.
        bool ascii = true;
        bool hasUpper = false;
        bool hasALabel = false;
        int labelStart = 0;
        for (int i = 0; i <= s.Length; i++)
        {
            char c = i < s.Length ? s[i] : '.';
            if (c >= 0x80)
            {
                ascii = false;
                break;
            }

            if (c == '.')
            {
                int labelLength = i - labelStart;
                if (labelLength == 0)
                {
                    error = "empty label in domain";
                    return null;
                }

                if (labelLength > MaxLabelOctets)
                {
                    error = "domain label too long";
                    return null;
                }

                if (s[labelStart] == '-' || s[i - 1] == '-')
                {
                    error = "domain label starts or ends with '-'";
                    return null;
                }

                if (labelLength >= 4 && s[labelStart + 2] == '-' && s[labelStart + 3] == '-'
                    && (s[labelStart] | 0x20) == 'x' && (s[labelStart + 1] | 0x20) == 'n')
                {
                    hasALabel = true;
                }

                labelStart = i + 1;
                continue;
            }

            if (c is >= 'A' and <= 'Z')
            {
                hasUpper = true;
                continue;
            }

            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
            {
                error = Precis.InvalidCharacter(c, "domain");
                return null;
            }
        }

        if (ascii && !hasALabel)
        {
            if (s.Length > Precis.MaxPartOctets)
            {
                error = "domain too long";
                return null;
            }

            error = null;
            if (hasUpper)
                return s.ToLowerInvariant();
            return strippedDot ? s : input;
        }

        return NormalizeInternationalDomain(s, strippedDot, out error);
    }

    private static string? NormalizeInternationalDomain(string s, bool strippedDot, out string? error)
    {
        string? asciiForm = Icu.IdnToAscii(s);
        if (asciiForm is null)
        {
            error = Precis.NormalizationFailure("invalid domain");
            return null;
        }

        // IDNA maps ideographic full stops to '.', so a trailing one only shows up now.
        if (asciiForm.Length > 0 && asciiForm[^1] == '.')
        {
            if (strippedDot)
            {
                error = "empty label in domain";
                return null;
            }

            asciiForm = asciiForm[..^1];
        }

        if (asciiForm.Length == 0)
        {
            error = "empty domain";
            return null;
        }

        foreach (Range label in asciiForm.AsSpan().Split('.'))
        {
            int length = label.End.GetOffset(asciiForm.Length) - label.Start.GetOffset(asciiForm.Length);
            if (length == 0)
            {
                error = "empty label in domain";
                return null;
            }

            if (length > MaxLabelOctets)
            {
                error = "domain label too long";
                return null;
            }
        }

        string? unicode = Icu.IdnToUnicode(asciiForm);
        if (unicode is null)
        {
            error = "invalid domain";
            return null;
        }

        unicode = Precis.TryNormalize(unicode.ToLowerInvariant(), NormalizationForm.FormC) ?? "";
        if (unicode.Length == 0)
        {
            error = "invalid domain";
            return null;
        }

        if (Encoding.UTF8.GetByteCount(unicode) > Precis.MaxPartOctets)
        {
            error = "domain too long";
            return null;
        }

        error = null;
        return string.Equals(unicode, s, StringComparison.Ordinal) && !strippedDot ? s : unicode;
    }

    private static string? NormalizeIpLiteral(string input, out string? error)
    {
        error = "invalid IP literal in domain";
        if (input.Length < 3 || input[^1] != ']')
            return null;

        ReadOnlySpan<char> inner = input.AsSpan(1, input.Length - 2);
        if (inner.Contains('%') || !IPAddress.TryParse(inner, out IPAddress? address)
            || address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return null;
        }

        error = null;
        string canonical = address.ToString();
        return inner.SequenceEqual(canonical) ? input : "[" + canonical + "]";
    }
}
