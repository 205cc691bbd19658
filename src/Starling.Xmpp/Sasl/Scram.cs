using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Starling.Xmpp.Sasl;

/// <summary>The hash a SCRAM mechanism family uses (RFC 5802 SHA-1, RFC 7677 SHA-256).</summary>
public enum ScramHash
{
    Sha1,
    Sha256,
}

/// <summary>
/// What the server stores for one SCRAM mechanism: never the password (RFC 5802 §5).
/// </summary>
public sealed record ScramCredential(ScramHash Hash, byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    public const int DefaultIterations = 4096;

    /// <summary>Derives the stored keys from a password (SASLprep-normalised, RFC 4013) with a fresh random salt.</summary>
    /// <exception cref="ArgumentException">The password contains characters SASLprep prohibits.</exception>
    public static ScramCredential Create(ScramHash hash, string password, int iterations = DefaultIterations) =>
        Derive(hash, password, RandomNumberGenerator.GetBytes(ScramPrimitives.SaltLength), iterations);

    /// <summary>Derives the stored keys from a password with the given salt.</summary>
    /// <exception cref="ArgumentException">The password contains characters SASLprep prohibits.</exception>
    public static ScramCredential Derive(ScramHash hash, string password, byte[] salt, int iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(salt);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        _ = ScramPrimitives.HashLength(hash);

        byte[] salted = ScramPrimitives.Hi(hash, SaslPrep.Normalize(password), salt, iterations);
        (byte[] clientKey, byte[] storedKey, byte[] serverKey) = ScramPrimitives.Keys(hash, salted);
        CryptographicOperations.ZeroMemory(salted);
        CryptographicOperations.ZeroMemory(clientKey);
        return new ScramCredential(hash, (byte[])salt.Clone(), iterations, storedKey, serverKey);
    }

    /// <summary>True if <paramref name="password"/> matches (for SASL PLAIN), in constant time.</summary>
    public bool Verify(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        if (!SaslPrep.TryNormalize(password, out string? prepared))
            return false;

        byte[] salted = ScramPrimitives.Hi(Hash, prepared, Salt, Iterations);
        (byte[] clientKey, byte[] storedKey, byte[] serverKey) = ScramPrimitives.Keys(Hash, salted);
        bool ok = CryptographicOperations.FixedTimeEquals(storedKey, StoredKey)
            & CryptographicOperations.FixedTimeEquals(serverKey, ServerKey);
        CryptographicOperations.ZeroMemory(salted);
        CryptographicOperations.ZeroMemory(clientKey);
        return ok;
    }
}

/// <summary>Outcome of one SASL step.</summary>
public enum SaslStepResult
{
    Continue,
    Success,
    Failure,
}

/// <summary>
/// Server side of one SCRAM exchange (RFC 5802 §5, RFC 7677), with optional channel binding (the -PLUS variants).
/// </summary>
/// <remarks>
/// Call order: <see cref="HandleClientFirst"/>, <see cref="CreateServerFirst"/>, <see cref="HandleClientFinal"/>;
/// anything else throws <see cref="InvalidOperationException"/>, as does any call after a step returned
/// <see cref="SaslStepResult.Failure"/> or <see cref="SaslStepResult.Success"/>.
/// <see cref="Username"/> is the decoded SCRAM username as sent; mapping it to an account (e.g. localpart
/// normalisation) and authorising <see cref="AuthorizationId"/> are the caller's job.
/// </remarks>
public sealed class ScramServer
{
    public const string NotAuthorized = "not-authorized";
    public const string MalformedRequest = "malformed-request";

    private const int MaxMessageLength = 8192;

    private enum State
    {
        Initial,
        ClientFirstReceived,
        ServerFirstSent,
        Done,
    }

    private readonly ScramHash _hash;
    private readonly bool _plus;
    private readonly IReadOnlyList<ScramChannelBinding>? _channelBindings;
    private readonly bool _offersChannelBinding;
    private readonly string? _fixedServerNonce;

    private State _state;
    private string? _gs2Header;
    private bool _clientUsesChannelBinding;
    private byte[]? _channelBindingData;
    private string? _clientFirstBare;
    private string? _clientNonce;
    private string? _serverFirst;
    private string? _combinedNonce;
    private ScramCredential? _credential;
    private bool _knownUser;

    /// <param name="hash">SHA-1 or SHA-256.</param>
    /// <param name="plus">True for the -PLUS mechanism (channel binding required).</param>
    /// <param name="channelBindingType">Type offered by this connection (e.g. "tls-server-end-point"), or null when the connection has none.</param>
    /// <param name="channelBindingData">The channel binding data of this connection for that type, or null.</param>
    public ScramServer(ScramHash hash, bool plus, string? channelBindingType, byte[]? channelBindingData)
        : this(hash, plus, channelBindingType, channelBindingData, serverNonce: null)
    {
    }

    /// <summary>Test hook: a fixed server nonce part (appended to the client's nonce) instead of a random one.</summary>
    internal ScramServer(ScramHash hash, bool plus, string? channelBindingType, byte[]? channelBindingData, string? serverNonce)
        : this(hash, plus, channelBindingType is null || channelBindingData is null ? null : [new ScramChannelBinding(channelBindingType, channelBindingData)], channelBindingType is not null, serverNonce)
    {
    }

    /// <param name="hash">SHA-1 or SHA-256.</param>
    /// <param name="plus">True for the -PLUS mechanism (channel binding required).</param>
    /// <param name="channelBindings">The channel-binding types this connection offers, with their data (RFC 5802 §6: the client names one in its GS2 header); null or empty when it has none.</param>
    public ScramServer(ScramHash hash, bool plus, IReadOnlyList<ScramChannelBinding>? channelBindings)
        : this(hash, plus, channelBindings, channelBindings is { Count: > 0 }, serverNonce: null)
    {
    }

    private ScramServer(ScramHash hash, bool plus, IReadOnlyList<ScramChannelBinding>? channelBindings, bool offersChannelBinding, string? serverNonce)
    {
        _ = ScramPrimitives.HashLength(hash);
        _hash = hash;
        _plus = plus;
        _channelBindings = channelBindings is { Count: > 0 } ? channelBindings : null;
        _offersChannelBinding = offersChannelBinding;
        _fixedServerNonce = serverNonce;
    }

    /// <summary>
    /// XEP-0474: the advertised mechanisms and channel-binding types as composed by
    /// <see cref="ScramDowngradeProtection.Compose"/>; the server-first-message then carries their hash as "h".
    /// Null (default): no "h" attribute.
    /// </summary>
    public string? DowngradeProtection { get; init; }

    /// <summary>The authentication identity (username, after SCRAM's =2C/=3D decoding) once the client-first message is parsed.</summary>
    public string? Username { get; private set; }

    /// <summary>The authorization identity requested in the GS2 header, if any.</summary>
    public string? AuthorizationId { get; private set; }

    /// <summary>RFC 6120 §6.5 failure condition when a step returns <see cref="SaslStepResult.Failure"/> (e.g. "not-authorized", "malformed-request").</summary>
    public string? FailureCondition { get; private set; }

    /// <summary>True until the client-first-message was handled: the next client message is client-first.</summary>
    public bool AwaitsClientFirst => _state == State.Initial;

    /// <summary>True once the server-first-message was sent and before the exchange ended: the next client message is client-final.</summary>
    public bool AwaitsClientFinal => _state == State.ServerFirstSent;

    /// <summary>The mechanism name: SCRAM-SHA-1, SCRAM-SHA-256, with "-PLUS" for channel binding.</summary>
    public static string GetMechanismName(ScramHash hash, bool plus) => (hash, plus) switch
    {
        (ScramHash.Sha1, false) => "SCRAM-SHA-1",
        (ScramHash.Sha1, true) => "SCRAM-SHA-1-PLUS",
        (ScramHash.Sha256, false) => "SCRAM-SHA-256",
        (ScramHash.Sha256, true) => "SCRAM-SHA-256-PLUS",
        _ => throw new ArgumentOutOfRangeException(nameof(hash)),
    };

    /// <summary>Recognises a SCRAM mechanism name (case-sensitive, as SASL mechanism names are upper-case).</summary>
    public static bool TryParseMechanismName(string? name, out ScramHash hash, out bool plus)
    {
        (bool ok, hash, plus) = name switch
        {
            "SCRAM-SHA-1" => (true, ScramHash.Sha1, false),
            "SCRAM-SHA-1-PLUS" => (true, ScramHash.Sha1, true),
            "SCRAM-SHA-256" => (true, ScramHash.Sha256, false),
            "SCRAM-SHA-256-PLUS" => (true, ScramHash.Sha256, true),
            _ => (false, default, false),
        };
        return ok;
    }

    /// <summary>Step 1: parse client-first-message. Continue means: look up the user's credential, then call <see cref="CreateServerFirst"/>.</summary>
    public SaslStepResult HandleClientFirst(ReadOnlySpan<byte> clientFirst)
    {
        Expect(State.Initial);
        if (!TryDecode(clientFirst, out string? message))
            return Fail(MalformedRequest);

        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        int pos;
        char flag;
        string? cbName = null;
        if (message.StartsWith("n,", StringComparison.Ordinal) || message.StartsWith("y,", StringComparison.Ordinal))
        {
            flag = message[0];
            pos = 1;
        }
        else if (message.StartsWith("p=", StringComparison.Ordinal))
        {
            flag = 'p';
            pos = message.IndexOf(',', 2);
            if (pos < 0)
                return Fail(MalformedRequest);
            cbName = message[2..pos];
            if (!IsChannelBindingName(cbName))
                return Fail(MalformedRequest);
        }
        else
        {
            return Fail(MalformedRequest);
        }

        pos++; // past the ',' after the flag
        string? authzid = null;
        if (message.AsSpan(pos).StartsWith("a=", StringComparison.Ordinal))
        {
            int end = message.IndexOf(',', pos);
            if (end < 0 || !ScramPrimitives.TryDecodeSaslName(message[(pos + 2)..end], out authzid))
                return Fail(MalformedRequest);
            pos = end;
        }

        if (pos >= message.Length || message[pos] != ',')
            return Fail(MalformedRequest);
        pos++;

        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        string bare = message[pos..];
        string? username = null;
        string? nonce = null;
        int index = 0;
        foreach (Range range in bare.AsSpan().Split(','))
        {
            ReadOnlySpan<char> attribute = bare.AsSpan()[range];
            char name = ScramPrimitives.AttributeName(attribute);
            switch (index++)
            {
                case 0:
                    // 'm' is reserved for mandatory extensions; we know none, so we must fail.
                    if (name != 'n' || !ScramPrimitives.TryDecodeSaslName(attribute[2..].ToString(), out username))
                        return Fail(MalformedRequest);
                    break;
                case 1:
                    if (name != 'r' || !ScramPrimitives.IsPrintable(attribute[2..]))
                        return Fail(MalformedRequest);
                    nonce = attribute[2..].ToString();
                    break;
                default:
                    if (name == '\0')
                        return Fail(MalformedRequest);
                    break; // Optional extensions are ignored.
            }
        }

        if (username is null || nonce is null)
            return Fail(MalformedRequest);

        Username = username;
        AuthorizationId = authzid;

        // Channel binding negotiation (RFC 5802 §6): the client names the type in its GS2 header; the data it must
        // prove is this connection's for that type (tls-exporter and tls-server-end-point differ).
        byte[]? bindingData = flag == 'p' ? FindChannelBinding(cbName!) : null;
        switch (flag)
        {
            case 'p' when !_plus:
                return Fail(MalformedRequest); // Binding requested with the non-PLUS mechanism.
            case 'p' when bindingData is null:
                return Fail(NotAuthorized); // Binding type this connection cannot provide.
            case 'n' or 'y' when _plus:
                return Fail(MalformedRequest); // -PLUS without binding.
            case 'y' when _offersChannelBinding:
                return Fail(NotAuthorized); // Client could bind and we offer PLUS: downgrade attack.
        }

        _gs2Header = message[..pos];
        _clientUsesChannelBinding = flag == 'p';
        _channelBindingData = bindingData;
        _clientFirstBare = bare;
        _clientNonce = nonce;
        _state = State.ClientFirstReceived;
        return SaslStepResult.Continue;
    }

    /// <summary>
    /// Step 2: the server-first-message. For an unknown account pass a null <paramref name="credential"/> and its
    /// <paramref name="standIn"/> (<see cref="ScramStandIns.For"/>): the exchange then looks the same on the wire (salt,
    /// iteration count, nonce) and fails only at the proof, as a wrong password does (RFC 5802 §7 has e=unknown-user, which would tell which accounts exist).
    /// </summary>
    public byte[] CreateServerFirst(ScramCredential? credential, ScramCredential? standIn = null)
    {
        Expect(State.ClientFirstReceived);
        if (credential is null && standIn is null)
            throw new ArgumentNullException(nameof(standIn), "An unknown account needs a stand-in credential.");
        ScramCredential used = credential ?? standIn!;
        if (used.Hash != _hash)
            throw new ArgumentException("Credential is for another SCRAM hash.", credential is null ? nameof(standIn) : nameof(credential));

        _knownUser = credential is not null;
        _credential = used;
        _combinedNonce = _clientNonce + (_fixedServerNonce ?? ScramPrimitives.NewNonce());
        _serverFirst = string.Create(
            CultureInfo.InvariantCulture,
            $"r={_combinedNonce},s={Convert.ToBase64String(_credential.Salt)},i={_credential.Iterations}");
        // XEP-0474 §4.1: the hash of what was advertised, signed along with the rest of the AuthMessage.
        if (DowngradeProtection is not null)
            _serverFirst += ",h=" + ScramDowngradeProtection.HashValue(_hash, DowngradeProtection);
        _state = State.ServerFirstSent;
        return ScramPrimitives.Utf8.GetBytes(_serverFirst);
    }

    /// <summary>Step 3: verify client-final-message; on Success <paramref name="serverFinal"/> holds the server-final-message (v=...).</summary>
    public SaslStepResult HandleClientFinal(ReadOnlySpan<byte> clientFinal, out byte[]? serverFinal)
    {
        Expect(State.ServerFirstSent);
        serverFinal = null;
        if (!TryDecode(clientFinal, out string? message))
            return Fail(MalformedRequest);

        // client-final-message = client-final-message-without-proof "," proof; proof is last.
        int proofAt = message.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0)
            return Fail(MalformedRequest);
        string withoutProof = message[..proofAt];
        ReadOnlySpan<char> proofText = message.AsSpan(proofAt + 3);
        if (proofText.Contains(',') || !ScramPrimitives.TryDecodeBase64(proofText, out byte[]? proof)
            || proof.Length != ScramPrimitives.HashLength(_hash))
        {
            return Fail(MalformedRequest);
        }

        byte[]? cbind = null;
        string? nonce = null;
        int index = 0;
        foreach (Range range in withoutProof.AsSpan().Split(','))
        {
            ReadOnlySpan<char> attribute = withoutProof.AsSpan()[range];
            char name = ScramPrimitives.AttributeName(attribute);
            switch (index++)
            {
                case 0:
                    if (name != 'c' || !ScramPrimitives.TryDecodeBase64(attribute[2..], out cbind))
                        return Fail(MalformedRequest);
                    break;
                case 1:
                    if (name != 'r' || !ScramPrimitives.IsPrintable(attribute[2..]))
                        return Fail(MalformedRequest);
                    nonce = attribute[2..].ToString();
                    break;
                default:
                    if (name == '\0')
                        return Fail(MalformedRequest);
                    break;
            }
        }

        if (cbind is null || nonce is null)
            return Fail(MalformedRequest);

        // c= must repeat the GS2 header, plus the channel binding data when binding.
        byte[] header = Encoding.UTF8.GetBytes(_gs2Header!);
        byte[] expectedCbind = _clientUsesChannelBinding ? [.. header, .. _channelBindingData!] : header;
        bool bindingOk = CryptographicOperations.FixedTimeEquals(cbind, expectedCbind);
        bool nonceOk = string.Equals(nonce, _combinedNonce, StringComparison.Ordinal);

        ScramCredential credential = _credential!;
        byte[] authMessage = Encoding.UTF8.GetBytes(_clientFirstBare + "," + _serverFirst + "," + withoutProof);
        byte[] clientSignature = ScramPrimitives.Hmac(_hash, credential.StoredKey, authMessage);
        byte[] clientKey = ScramPrimitives.Xor(proof, clientSignature);
        bool proofOk = CryptographicOperations.FixedTimeEquals(ScramPrimitives.H(_hash, clientKey), credential.StoredKey);
        CryptographicOperations.ZeroMemory(clientKey);

        if (!(proofOk & bindingOk & nonceOk & _knownUser))
            return Fail(NotAuthorized);

        byte[] serverSignature = ScramPrimitives.Hmac(_hash, credential.ServerKey, authMessage);
        serverFinal = ScramPrimitives.Utf8.GetBytes("v=" + Convert.ToBase64String(serverSignature));
        _state = State.Done;
        return SaslStepResult.Success;
    }

    private byte[]? FindChannelBinding(string type)
    {
        if (_channelBindings is null) return null;
        for (int i = 0; i < _channelBindings.Count; i++)
        {
            if (string.Equals(_channelBindings[i].Type, type, StringComparison.Ordinal)) return _channelBindings[i].Data;
        }
        return null;
    }

    private void Expect(State state)
    {
        if (_state != state)
            throw new InvalidOperationException($"SCRAM step out of order (state {_state}, expected {state}).");
    }

    private SaslStepResult Fail(string condition)
    {
        FailureCondition = condition;
        _state = State.Done;
        return SaslStepResult.Failure;
    }

    private static bool TryDecode(ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out string? message)
    {
        message = null;
        if (bytes.IsEmpty || bytes.Length > MaxMessageLength)
            return false;
        try
        {
            message = ScramPrimitives.Utf8.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    /// <summary>cb-name = 1*(ALPHA / DIGIT / "." / "-").</summary>
    internal static bool IsChannelBindingName(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty)
            return false;
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-'))
                return false;
        }

        return true;
    }
}
