using System.Collections.Concurrent;

namespace Starling.Xmpp.Sasl;

/// <summary>
/// Client-side cache of SCRAM salted passwords by (hash, password, salt, iterations): what a reconnecting client keeps
/// so that only its first login pays for PBKDF2 (RFC 5802 §5.1). Thread-safe. Holds secrets: keep it in memory only.
/// </summary>
public sealed class ScramKeyCache
{
    private readonly ConcurrentDictionary<(ScramHash, string, string, int), byte[]> _salted = new();

    public int Count => _salted.Count;

    public byte[] GetOrDerive(ScramHash hash, string preparedPassword, byte[] salt, int iterations) =>
        _salted.GetOrAdd((hash, preparedPassword, Convert.ToBase64String(salt), iterations),
            static (key, s) => ScramPrimitives.Hi(key.Item1, key.Item2, s, key.Item4), salt);
}
