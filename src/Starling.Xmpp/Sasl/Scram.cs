namespace Starling.Xmpp.Sasl;

/// <summary>The hash a SCRAM mechanism family uses (RFC 5802 SHA-1, RFC 7677 SHA-256).</summary>
public enum ScramHash
{
    Sha1,
    Sha256,
}

/// <summary>
/// What the server stores for one SCRAM mechanism: never the password (RFC 5802 §5).
/// CONTRACT STUB: implementation in progress.
/// </summary>
public sealed record ScramCredential(ScramHash Hash, byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    public const int DefaultIterations = 4096;

    /// <summary>Derives the stored keys from a password (SASLprep-normalised, RFC 4013) with a fresh random salt.</summary>
    public static ScramCredential Create(ScramHash hash, string password, int iterations = DefaultIterations) => throw new NotImplementedException();

    /// <summary>Derives the stored keys from a password with the given salt.</summary>
    public static ScramCredential Derive(ScramHash hash, string password, byte[] salt, int iterations) => throw new NotImplementedException();

    /// <summary>True if <paramref name="password"/> matches (for SASL PLAIN), in constant time.</summary>
    public bool Verify(string password) => throw new NotImplementedException();
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
/// CONTRACT STUB: implementation in progress.
/// </summary>
public sealed class ScramServer
{
    /// <param name="hash">SHA-1 or SHA-256.</param>
    /// <param name="plus">True for the -PLUS mechanism (channel binding required).</param>
    /// <param name="channelBindingType">Type offered by this connection (e.g. "tls-server-end-point"), or null when the connection has none.</param>
    /// <param name="channelBindingData">The channel binding data of this connection for that type, or null.</param>
    public ScramServer(ScramHash hash, bool plus, string? channelBindingType, byte[]? channelBindingData) => throw new NotImplementedException();

    /// <summary>The authentication identity (username, after SCRAM's =2C/=3D decoding) once the client-first message is parsed.</summary>
    public string? Username => throw new NotImplementedException();

    /// <summary>The authorization identity requested in the GS2 header, if any.</summary>
    public string? AuthorizationId => throw new NotImplementedException();

    /// <summary>RFC 6120 §6.5 failure condition when a step returns <see cref="SaslStepResult.Failure"/> (e.g. "not-authorized", "malformed-request").</summary>
    public string? FailureCondition => throw new NotImplementedException();

    /// <summary>Step 1: parse client-first-message. Continue means: look up the user's credential, then call <see cref="CreateServerFirst"/>.</summary>
    public SaslStepResult HandleClientFirst(ReadOnlySpan<byte> clientFirst) => throw new NotImplementedException();

    /// <summary>Step 2: the server-first-message. With a null credential (unknown user) a deterministic fake salt is used so the exchange fails only at the proof, without revealing which users exist.</summary>
    public byte[] CreateServerFirst(ScramCredential? credential) => throw new NotImplementedException();

    /// <summary>Step 3: verify client-final-message; on Success <paramref name="serverFinal"/> holds the server-final-message (v=...).</summary>
    public SaslStepResult HandleClientFinal(ReadOnlySpan<byte> clientFinal, out byte[]? serverFinal) => throw new NotImplementedException();
}
