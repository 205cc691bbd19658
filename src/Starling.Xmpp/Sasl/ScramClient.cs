using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Starling.Xmpp.Sasl;

/// <summary>
/// Client side of one SCRAM exchange (RFC 5802, RFC 7677), for tests and the load generator.
/// </summary>
/// <remarks>
/// Call <see cref="ClientFirst"/>, <see cref="ClientFinal"/>, <see cref="VerifyServerFinal"/> in that order.
/// Invalid server messages throw <see cref="FormatException"/>; out-of-order calls throw <see cref="InvalidOperationException"/>.
/// The password is SASLprep-ed; the username is sent as given (XMPP servers map it as a localpart).
/// </remarks>
public sealed class ScramClient
{
    /// <summary>Upper bound on the server's iteration count, so a hostile server cannot make us spin.</summary>
    public const int MaxIterations = 10_000_000;

    /// <summary>RFC 7677 §4: the iteration count a server announces SHOULD be at least 4096; a real client refuses less.</summary>
    public const int DefaultMinIterations = 4096;

    private readonly ScramHash _hash;
    private readonly string _username;
    private readonly string _password;
    private readonly string? _channelBindingType;
    private readonly byte[]? _channelBindingData;
    private readonly string _clientNonce;

    private int _step;
    private string? _gs2Header;
    private string? _clientFirstBare;
    private byte[]? _expectedServerSignature;

    /// <param name="hash">SHA-1 or SHA-256.</param>
    /// <param name="username">Authentication identity.</param>
    /// <param name="password">Password (SASLprep is applied).</param>
    /// <param name="channelBindingType">Channel binding type for the -PLUS mechanism (e.g. "tls-server-end-point"), or null.</param>
    /// <param name="channelBindingData">Channel binding data for that type.</param>
    /// <exception cref="ArgumentException">Password prohibited by SASLprep, or binding type without data.</exception>
    public ScramClient(ScramHash hash, string username, string password, string? channelBindingType = null, byte[]? channelBindingData = null)
        : this(hash, username, password, channelBindingType, channelBindingData, clientNonce: null)
    {
    }

    /// <summary>Test hook: a fixed client nonce.</summary>
    internal ScramClient(ScramHash hash, string username, string password, string? channelBindingType, byte[]? channelBindingData, string? clientNonce)
    {
        ArgumentNullException.ThrowIfNull(username);
        ArgumentNullException.ThrowIfNull(password);
        ArgumentException.ThrowIfNullOrEmpty(username);
        _ = ScramPrimitives.HashLength(hash);
        if (channelBindingType is not null)
        {
            if (!ScramServer.IsChannelBindingName(channelBindingType))
                throw new ArgumentException("Invalid channel binding type.", nameof(channelBindingType));
            ArgumentNullException.ThrowIfNull(channelBindingData);
            // RFC 5929: binding data is a hash or key material, never empty; empty data would bind to nothing.
            if (channelBindingData.Length == 0)
                throw new ArgumentException("Channel binding data is empty.", nameof(channelBindingData));
        }

        _hash = hash;
        _username = username;
        _password = SaslPrep.Normalize(password);
        _channelBindingType = channelBindingType;
        _channelBindingData = channelBindingData;
        _clientNonce = clientNonce ?? ScramPrimitives.NewNonce();
    }

    /// <summary>Authorization identity to request in the GS2 header (a=), or null.</summary>
    public string? AuthorizationId { get; init; }

    /// <summary>
    /// Salted passwords kept from earlier logins (RFC 5802 §5.1: a client may cache the result of Hi() for a salt and
    /// iteration count, as reconnecting clients do), so repeated logins skip PBKDF2. Null: derive every time.
    /// </summary>
    public ScramKeyCache? KeyCache { get; init; }

    /// <summary>
    /// Lowest iteration count accepted from the server (a weak count makes a captured exchange cheap to brute-force).
    /// </summary>
    public int MinIterations { get; init; } = DefaultMinIterations;

    /// <summary>
    /// Without a channel binding type: send 'y' ("I could bind, but think you cannot") instead of 'n'.
    /// A server that does offer -PLUS must then refuse (downgrade protection).
    /// </summary>
    public bool ClaimsChannelBindingSupport { get; init; }

    /// <summary>
    /// XEP-0474: the mechanisms and channel-binding types the server advertised on this stream, as composed by
    /// <see cref="ScramDowngradeProtection.Compose"/>. When set and the server-first-message carries "h", the client
    /// checks it and fails the exchange (<see cref="FormatException"/>) if it does not match: the lists were tampered with.
    /// </summary>
    public string? AdvertisedLists { get; init; }

    /// <summary>XEP-0474: true once the server-first-message carried an "h" attribute that matched <see cref="AdvertisedLists"/>.</summary>
    public bool DowngradeProtectionVerified { get; private set; }

    /// <summary>The mechanism this client speaks.</summary>
    public string MechanismName => ScramServer.GetMechanismName(_hash, _channelBindingType is not null);

    /// <summary>The client-first-message.</summary>
    public byte[] ClientFirst()
    {
        Expect(0);
        string flag = _channelBindingType is not null ? "p=" + _channelBindingType : ClaimsChannelBindingSupport ? "y" : "n";
        string authzid = AuthorizationId is null ? "" : "a=" + ScramPrimitives.EncodeSaslName(AuthorizationId);
        _gs2Header = flag + "," + authzid + ",";
        _clientFirstBare = "n=" + ScramPrimitives.EncodeSaslName(_username) + ",r=" + _clientNonce;
        _step = 1;
        return Encoding.UTF8.GetBytes(_gs2Header + _clientFirstBare);
    }

    /// <summary>The client-final-message answering <paramref name="serverFirst"/>.</summary>
    /// <exception cref="FormatException">The server-first-message is invalid or its nonce does not extend ours.</exception>
    public byte[] ClientFinal(ReadOnlySpan<byte> serverFirst)
    {
        Expect(1);
        _step = 3; // any failure below ends the exchange
        string message = Decode(serverFirst);

        string? nonce = null;
        byte[]? salt = null;
        int iterations = 0;
        string? downgradeHash = null;
        int index = 0;
        foreach (Range range in message.AsSpan().Split(','))
        {
            ReadOnlySpan<char> attribute = message.AsSpan()[range];
            char name = ScramPrimitives.AttributeName(attribute);
            ReadOnlySpan<char> value = name == '\0' ? default : attribute[2..];
            switch (index++)
            {
                case 0 when name == 'r' && ScramPrimitives.IsPrintable(value):
                    nonce = value.ToString();
                    break;
                case 1 when name == 's' && ScramPrimitives.TryDecodeBase64(value, out salt) && salt.Length > 0:
                    break;
                case 2 when name == 'i' && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out iterations)
                    && iterations is > 0 and <= MaxIterations:
                    break;
                case > 2 when name == 'h':
                    downgradeHash = value.ToString();
                    break;
                case > 2 when name != '\0':
                    break;
                default:
                    throw new FormatException("Invalid SCRAM server-first-message.");
            }
        }

        if (nonce is null || salt is null || iterations == 0)
            throw new FormatException("Invalid SCRAM server-first-message.");
        if (iterations < MinIterations)
            throw new FormatException("SCRAM iteration count below the client's minimum.");
        if (nonce.Length <= _clientNonce.Length || !nonce.StartsWith(_clientNonce, StringComparison.Ordinal))
            throw new FormatException("SCRAM server nonce does not extend the client nonce.");

        // XEP-0474 §4.2: the server's hash of what it advertised must be the hash of what we saw advertised.
        if (downgradeHash is not null && AdvertisedLists is not null)
        {
            string expected = ScramDowngradeProtection.HashValue(_hash, AdvertisedLists);
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(downgradeHash)))
                throw new FormatException("SCRAM downgrade protection (XEP-0474): the advertised mechanisms or channel-binding types were changed in transit.");
            DowngradeProtectionVerified = true;
        }

        byte[] header = Encoding.UTF8.GetBytes(_gs2Header!);
        byte[] cbind = _channelBindingType is not null ? [.. header, .. _channelBindingData!] : header;
        string withoutProof = "c=" + Convert.ToBase64String(cbind) + ",r=" + nonce;
        byte[] authMessage = Encoding.UTF8.GetBytes(_clientFirstBare + "," + message + "," + withoutProof);

        byte[] salted = KeyCache is { } cache
            ? cache.GetOrDerive(_hash, _password, salt, iterations)
            : ScramPrimitives.Hi(_hash, _password, salt, iterations);
        (byte[] clientKey, byte[] storedKey, byte[] serverKey) = ScramPrimitives.Keys(_hash, salted);
        byte[] proof = ScramPrimitives.Xor(clientKey, ScramPrimitives.Hmac(_hash, storedKey, authMessage));
        _expectedServerSignature = ScramPrimitives.Hmac(_hash, serverKey, authMessage);
        if (KeyCache is null) CryptographicOperations.ZeroMemory(salted);
        CryptographicOperations.ZeroMemory(clientKey);

        _step = 2;
        return Encoding.UTF8.GetBytes(withoutProof + ",p=" + Convert.ToBase64String(proof));
    }

    /// <summary>True if <paramref name="serverFinal"/> carries the expected server signature (false for e=... or a wrong one).</summary>
    public bool VerifyServerFinal(ReadOnlySpan<byte> serverFinal)
    {
        Expect(2);
        _step = 3;
        string message;
        try
        {
            message = Decode(serverFinal);
        }
        catch (FormatException)
        {
            return false;
        }

        int comma = message.IndexOf(',', StringComparison.Ordinal);
        ReadOnlySpan<char> first = comma < 0 ? message : message.AsSpan(0, comma);
        return ScramPrimitives.AttributeName(first) == 'v'
            && ScramPrimitives.TryDecodeBase64(first[2..], out byte[]? signature)
            && CryptographicOperations.FixedTimeEquals(signature, _expectedServerSignature);
    }

    private void Expect(int step)
    {
        if (_step != step)
            throw new InvalidOperationException("SCRAM client step out of order.");
    }

    private static string Decode(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return ScramPrimitives.Utf8.GetString(bytes);
        }
        catch (DecoderFallbackException ex)
        {
            throw new FormatException("SCRAM message is not valid UTF-8.", ex);
        }
    }
}
