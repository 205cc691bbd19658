using System.Collections.Concurrent;
using System.Net;

namespace Starling.Server.Sessions;

/// <summary>
/// Slows down password guessing per remote address: after a few failures within a window, each further
/// failure is answered later (up to a cap). Successful logins clear the address.
/// </summary>
public sealed class AuthThrottle
{
    private const int FreeFailures = 3;
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<IPAddress, Entry> _failures = new();

    private sealed class Entry
    {
        public int Count;
        public long WindowStart;
    }

    /// <summary>Records a failure; returns how long to wait before answering it.</summary>
    public TimeSpan Failed(EndPoint? remote)
    {
        if (remote is not IPEndPoint ip) return TimeSpan.Zero;
        var now = Environment.TickCount64;
        var entry = _failures.GetOrAdd(ip.Address, _ => new Entry { WindowStart = now });
        int count;
        lock (entry)
        {
            if (now - entry.WindowStart > Window.TotalMilliseconds)
            {
                entry.WindowStart = now;
                entry.Count = 0;
            }
            count = ++entry.Count;
        }
        if (_failures.Count > 100_000) Prune(now);
        if (count <= FreeFailures) return TimeSpan.Zero;
        var delay = Step * (count - FreeFailures);
        return delay > Cap ? Cap : delay;
    }

    public void Succeeded(EndPoint? remote)
    {
        if (remote is IPEndPoint ip) _failures.TryRemove(ip.Address, out _);
    }

    private void Prune(long now)
    {
        foreach (var kv in _failures)
        {
            if (now - kv.Value.WindowStart > Window.TotalMilliseconds) _failures.TryRemove(kv.Key, out _);
        }
    }
}
