using Starling.Xmpp.Sasl;

namespace Starling.Server.Negotiation;

/// <summary>
/// The SASL mechanisms this server offers, strongest first: the built-in ones (<see cref="WithBuiltIns"/>) and any a
/// module registers (<c>ModuleContext.AddSaslMechanism</c>). Filled at start; a registration publishes a new sorted
/// array, so readers on the connection threads never lock and a look-up allocates nothing.
/// </summary>
public sealed class SaslMechanismRegistry
{
    /// <summary>Strengths of the built-in mechanisms: channel binding first, then the stronger hash (RFC 7677 §4), PLAIN last.</summary>
    public const int ScramSha256PlusStrength = 400;
    public const int ScramSha1PlusStrength = 300;
    public const int ScramSha256Strength = 200;
    public const int ScramSha1Strength = 100;
    public const int PlainStrength = 0;

    private readonly Lock _gate = new();
    private Entry[] _entries = [];

    private readonly record struct Entry(ISaslMechanism Mechanism, int Strength);

    /// <summary>A registry holding SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS) and PLAIN, in that order.</summary>
    public static SaslMechanismRegistry WithBuiltIns()
    {
        var registry = new SaslMechanismRegistry();
        registry.Add(new ScramMechanism(ScramHash.Sha256, plus: true), ScramSha256PlusStrength);
        registry.Add(new ScramMechanism(ScramHash.Sha1, plus: true), ScramSha1PlusStrength);
        registry.Add(new ScramMechanism(ScramHash.Sha256, plus: false), ScramSha256Strength);
        registry.Add(new ScramMechanism(ScramHash.Sha1, plus: false), ScramSha1Strength);
        registry.Add(new PlainMechanism(), PlainStrength);
        return registry;
    }

    /// <summary>
    /// Registers a mechanism. Higher <paramref name="strength"/> is offered first (clients pick the first they support);
    /// equal strengths keep the order of registration.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not a valid SASL mechanism name (RFC 4422 §3.1).</exception>
    /// <exception cref="InvalidOperationException">A mechanism of that name is already registered.</exception>
    public void Add(ISaslMechanism mechanism, int strength)
    {
        ArgumentNullException.ThrowIfNull(mechanism);
        if (!IsValidName(mechanism.Name))
            throw new ArgumentException($"'{mechanism.Name}' is not a SASL mechanism name (RFC 4422 §3.1: 1-20 of A-Z, 0-9, '-', '_')", nameof(mechanism));
        lock (_gate)
        {
            var old = _entries;
            foreach (var e in old)
            {
                if (e.Mechanism.Name == mechanism.Name) throw new InvalidOperationException($"two SASL mechanisms are named {mechanism.Name}");
            }
            var entries = new Entry[old.Length + 1];
            int i = 0;
            for (; i < old.Length && old[i].Strength >= strength; i++) entries[i] = old[i];
            entries[i] = new Entry(mechanism, strength);
            for (; i < old.Length; i++) entries[i + 1] = old[i];
            Volatile.Write(ref _entries, entries);
        }
    }

    /// <summary>Number of registered mechanisms.</summary>
    public int Count => Volatile.Read(ref _entries).Length;

    /// <summary>The registered mechanism at <paramref name="index"/>, strongest first.</summary>
    public ISaslMechanism this[int index] => Volatile.Read(ref _entries)[index].Mechanism;

    /// <summary>The names this stream is offered, strongest first (what &lt;mechanisms/&gt; lists).</summary>
    public List<string> OfferedNames(ISaslStream stream)
    {
        var entries = Volatile.Read(ref _entries);
        var names = new List<string>(entries.Length);
        foreach (var e in entries)
        {
            if (e.Mechanism.IsOffered(stream)) names.Add(e.Mechanism.Name);
        }
        return names;
    }

    /// <summary>The mechanism named <paramref name="name"/> if this stream is offered it; null otherwise (RFC 6120 §6.5.5 invalid-mechanism).</summary>
    public ISaslMechanism? FindOffered(string name, ISaslStream stream)
    {
        foreach (var e in Volatile.Read(ref _entries))
        {
            // Ordinal and case-sensitive: SASL mechanism names are upper-case (RFC 4422 §3.1).
            if (string.Equals(e.Mechanism.Name, name, StringComparison.Ordinal)) return e.Mechanism.IsOffered(stream) ? e.Mechanism : null;
        }
        return null;
    }

    private static bool IsValidName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 20) return false;
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c is '-' or '_')) return false;
        }
        return true;
    }
}
