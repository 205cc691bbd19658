using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Starling.Xmpp.Sasl;

/// <summary>The SCRAM functions of RFC 5802 §2.2 and the message syntax helpers shared by client and server.</summary>
internal static class ScramPrimitives
{
    public const int SaltLength = 16;
    public const int NonceRandomBytes = 24;

    /// <summary>Strict UTF-8: SCRAM messages are UTF-8 and invalid sequences are a syntax error.</summary>
    public static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static readonly byte[] ClientKeyLabel = "Client Key"u8.ToArray();
    public static readonly byte[] ServerKeyLabel = "Server Key"u8.ToArray();

    public static int HashLength(ScramHash hash) => hash switch
    {
        ScramHash.Sha1 => SHA1.HashSizeInBytes,
        ScramHash.Sha256 => SHA256.HashSizeInBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(hash)),
    };

    // CA5350: SHA-1 is what SCRAM-SHA-1 (RFC 5802, mandatory-to-implement in RFC 6120) is defined with;
    // it is used here as HMAC/PBKDF2 primitive, where collisions do not matter.
#pragma warning disable CA5350
    public static byte[] H(ScramHash hash, ReadOnlySpan<byte> data) => hash switch
    {
        ScramHash.Sha1 => SHA1.HashData(data),
        ScramHash.Sha256 => SHA256.HashData(data),
        _ => throw new ArgumentOutOfRangeException(nameof(hash)),
    };

    public static byte[] Hmac(ScramHash hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) => hash switch
    {
        ScramHash.Sha1 => HMACSHA1.HashData(key, data),
        ScramHash.Sha256 => HMACSHA256.HashData(key, data),
        _ => throw new ArgumentOutOfRangeException(nameof(hash)),
    };
#pragma warning restore CA5350

    /// <summary>Hi(str, salt, i) = PBKDF2 with HMAC as PRF and one block of output (see <see cref="ScramPbkdf2"/>).</summary>
    public static byte[] Hi(ScramHash hash, string preparedPassword, byte[] salt, int iterations)
    {
        byte[] password = Encoding.UTF8.GetBytes(preparedPassword);
        try
        {
            return ScramPbkdf2.Derive(hash, password, salt, iterations);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    /// <summary>SaltedPassword -> (ClientKey, StoredKey, ServerKey).</summary>
    public static (byte[] ClientKey, byte[] StoredKey, byte[] ServerKey) Keys(ScramHash hash, byte[] saltedPassword)
    {
        byte[] clientKey = Hmac(hash, saltedPassword, ClientKeyLabel);
        return (clientKey, H(hash, clientKey), Hmac(hash, saltedPassword, ServerKeyLabel));
    }

    public static string EncodeSaslName(string value) =>
        value.Contains('=', StringComparison.Ordinal) || value.Contains(',', StringComparison.Ordinal)
            ? value.Replace("=", "=3D", StringComparison.Ordinal).Replace(",", "=2C", StringComparison.Ordinal)
            : value;

    /// <summary>saslname = 1*(value-safe-char / "=2C" / "=3D"); no NUL, no bare '=' (',' cannot occur: it delimits).</summary>
    public static bool TryDecodeSaslName(string value, [NotNullWhen(true)] out string? decoded)
    {
        decoded = null;
        if (value.Length == 0 || value.Contains('\0', StringComparison.Ordinal))
            return false;
        if (!value.Contains('=', StringComparison.Ordinal))
        {
            decoded = value;
            return true;
        }

        var sb = new StringBuilder(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (c != '=')
            {
                sb.Append(c);
                continue;
            }

            if (i + 2 >= value.Length)
                return false;
            if (value[i + 1] == '2' && value[i + 2] == 'C')
                sb.Append(',');
            else if (value[i + 1] == '3' && value[i + 2] == 'D')
                sb.Append('=');
            else
                return false;
            i += 2;
        }

        decoded = sb.ToString();
        return true;
    }

    /// <summary>printable = %x21-2B / %x2D-7E.</summary>
    public static bool IsPrintable(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty)
            return false;
        foreach (char c in value)
        {
            if (c is < (char)0x21 or > (char)0x7E or ',')
                return false;
        }

        return true;
    }

    /// <summary>An attribute "x=value" with a single ASCII letter name. Returns the name or '\0'.</summary>
    public static char AttributeName(ReadOnlySpan<char> attribute) =>
        attribute.Length >= 2 && attribute[1] == '=' && char.IsAsciiLetter(attribute[0]) ? attribute[0] : '\0';

    public static bool TryDecodeBase64(ReadOnlySpan<char> value, [NotNullWhen(true)] out byte[]? bytes)
    {
        bytes = null;
        if (value.IsEmpty)
        {
            bytes = [];
            return true;
        }

        foreach (char c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '='))
                return false; // Convert would skip whitespace; SCRAM allows none.
        }

        byte[] buffer = new byte[value.Length * 3 / 4];
        if (!Convert.TryFromBase64Chars(value, buffer, out int written))
            return false;
        bytes = written == buffer.Length ? buffer : buffer[..written];
        return true;
    }

    public static byte[] Xor(byte[] a, byte[] b)
    {
        byte[] result = new byte[a.Length];
        for (int i = 0; i < a.Length; i++)
            result[i] = (byte)(a[i] ^ b[i]);
        return result;
    }

    public static string NewNonce() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(NonceRandomBytes));
}
