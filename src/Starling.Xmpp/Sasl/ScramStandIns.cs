using System.Security.Cryptography;
using System.Text;

namespace Starling.Xmpp.Sasl;

/// <summary>
/// Stand-in SCRAM credentials for accounts that do not exist, so that a client cannot tell unknown accounts from
/// known ones by what the server says (RFC 5802 §7 offers e=unknown-user; answering with it, or failing early, would tell which accounts exist).
/// </summary>
/// <remarks>
/// A real account has a random salt per hash (SHA-1 and SHA-256 salts differ) that never changes. A stand-in's salt is
/// therefore derived, never random: HMAC-SHA-256 keyed by a server secret over (hash, host, normalised username), so
/// the same unknown name gets the same salt on every attempt and after every restart (the caller persists the key),
/// different salts per hash, and the same salt for every spelling that normalises to the same account.
/// The iteration count follows what real accounts use (<see cref="Observe"/>). The stored keys are derived too: no
/// proof can match them (the server fails the exchange for unknown accounts in any case), but they make PLAIN's
/// check for an unknown account cost exactly one PBKDF2 run, as a known account's does.
/// </remarks>
public sealed class ScramStandIns
{
    /// <summary>Length of the secret key, in bytes.</summary>
    public const int KeyLength = 32;

    private static readonly byte[] SaltLabel = "starling scram stand-in salt\0"u8.ToArray();
    private static readonly byte[] StoredKeyLabel = "starling scram stand-in stored key\0"u8.ToArray();
    private static readonly byte[] ServerKeyLabel = "starling scram stand-in server key\0"u8.ToArray();

    private readonly byte[] _key;
    private int _sha1Iterations = ScramCredential.DefaultIterations;
    private int _sha256Iterations = ScramCredential.DefaultIterations;

    /// <param name="key">The server's secret (<see cref="KeyLength"/> bytes), stable across restarts.</param>
    public ScramStandIns(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length != KeyLength)
            throw new ArgumentException($"The stand-in key must be {KeyLength} bytes.", nameof(key));
        _key = (byte[])key.Clone();
    }

    /// <summary>
    /// Remembers the iteration count of a real credential: stand-ins then announce the count the site's accounts have
    /// (4096 unless accounts were imported with another), so i= does not single out unknown accounts.
    /// </summary>
    public void Observe(ScramCredential credential)
    {
        ArgumentNullException.ThrowIfNull(credential);
        if (credential.Hash == ScramHash.Sha1) Volatile.Write(ref _sha1Iterations, credential.Iterations);
        else Volatile.Write(ref _sha256Iterations, credential.Iterations);
    }

    /// <summary>The iteration count stand-ins for <paramref name="hash"/> announce now.</summary>
    public int Iterations(ScramHash hash) =>
        hash == ScramHash.Sha1 ? Volatile.Read(ref _sha1Iterations) : Volatile.Read(ref _sha256Iterations);

    /// <summary>The stand-in credential for <paramref name="username"/> (normalised as accounts are) on <paramref name="host"/>.</summary>
    public ScramCredential For(ScramHash hash, string host, string username)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(username);
        int length = ScramPrimitives.HashLength(hash);
        byte[] input = Input(hash, host, username);
        byte[] salt = Derive(SaltLabel, input)[..ScramPrimitives.SaltLength];
        byte[] storedKey = Derive(StoredKeyLabel, input)[..length];
        byte[] serverKey = Derive(ServerKeyLabel, input)[..length];
        return new ScramCredential(hash, salt, Iterations(hash), storedKey, serverKey);
    }

    private static byte[] Input(ScramHash hash, string host, string username)
    {
        // Unambiguous framing: the hash as one byte, then host NUL username (neither can contain NUL after RFC 7622 / PRECIS).
        var bytes = new byte[1 + Encoding.UTF8.GetByteCount(host) + 1 + Encoding.UTF8.GetByteCount(username)];
        bytes[0] = (byte)hash;
        int n = 1 + Encoding.UTF8.GetBytes(host, bytes.AsSpan(1));
        bytes[n++] = 0;
        Encoding.UTF8.GetBytes(username, bytes.AsSpan(n));
        return bytes;
    }

    private byte[] Derive(byte[] label, byte[] input)
    {
        byte[] message = [.. label, .. input];
        return HMACSHA256.HashData(_key, message);
    }
}
