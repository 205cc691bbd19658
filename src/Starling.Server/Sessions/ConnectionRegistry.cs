using System.Collections.Concurrent;

namespace Starling.Server.Sessions;

/// <summary>
/// Every open stream, for the one server-wide timer that enforces negotiation timeouts, idle timeouts and
/// whitespace keepalives (one timer for all connections costs less memory than one per connection).
/// </summary>
public sealed class ConnectionRegistry
{
    private readonly ConcurrentDictionary<XmppStream, byte> _streams = new();

    public int Count => _streams.Count;

    public void Register(XmppStream stream) => _streams.TryAdd(stream, 0);

    public void Unregister(XmppStream stream) => _streams.TryRemove(stream, out _);

    public ICollection<XmppStream> Snapshot() => _streams.Keys;
}
