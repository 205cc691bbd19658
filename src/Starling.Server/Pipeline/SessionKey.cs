namespace Starling.Server.Pipeline;

/// <summary>
/// A typed slot of per-session module state (shared/ARCHITECTURE.md §3: module state lives in typed slots, not in new
/// properties on the session). Created once, as a static field of the module that owns the state; the key is an index
/// into a small array on each session (C2sSession.Get/Set), never a dictionary.
/// </summary>
public sealed class SessionKey<T>
{
    public SessionKey(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        Index = SessionSlots.Allocate();
    }

    /// <summary>For logs and debugging: "presence.directed", "roster.requested".</summary>
    public string Name { get; }

    internal int Index { get; }

    public override string ToString() => Name;
}

/// <summary>
/// Hands out slot indexes (the number of keys the process created sizes each session's slot array) and reads and
/// writes a session's slot array. Reads are lock-free from any thread; a write copies the small array and swaps it in
/// (compare-and-swap), so a reader always sees a complete array and a session needs no lock object. Writes are rare
/// (a roster fetch, the first directed presence), never per stanza.
/// </summary>
internal static class SessionSlots
{
    private static int _count;

    public static int Count => Volatile.Read(ref _count);

    public static int Allocate() => Interlocked.Increment(ref _count) - 1;

    public static T? Get<T>(object?[]? slots, SessionKey<T> key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return slots is not null && key.Index < slots.Length && slots[key.Index] is T value ? value : default;
    }

    public static void Set<T>(ref object?[]? slots, SessionKey<T> key, T? value)
    {
        ArgumentNullException.ThrowIfNull(key);
        while (true)
        {
            var current = Volatile.Read(ref slots);
            var next = new object?[Math.Max(Math.Max(Count, key.Index + 1), current?.Length ?? 0)];
            current?.CopyTo(next, 0);
            next[key.Index] = value;
            if (ReferenceEquals(Interlocked.CompareExchange(ref slots, next, current), current)) return;
        }
    }
}
