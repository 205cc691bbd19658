using System.Collections.Concurrent;
using System.Net;
using Starling.Server.Configuration;

namespace Starling.Server.Sessions;

/// <summary>Why a new connection was turned away (or that it was not).</summary>
public enum Admission
{
    Admitted,

    /// <summary>Limits:MaxConnections reached.</summary>
    ServerFull,

    /// <summary>Limits:MaxConnectionsPerAddress reached for the client's IPv4 address or IPv6 /64.</summary>
    AddressFull,

    /// <summary>Limits:MaxUnauthenticatedConnections reached.</summary>
    TooManyUnauthenticated,

    /// <summary>The server is stopping.</summary>
    ShuttingDown,
}

/// <summary>What one admitted connection counts against; handed back when it ends.</summary>
public sealed class ConnectionSlot
{
    internal ConnectionSlot(UInt128 address, bool countedPerAddress)
    {
        Address = address;
        CountedPerAddress = countedPerAddress;
    }

    internal UInt128 Address { get; }

    internal bool CountedPerAddress { get; }

    internal bool Authenticated { get; set; }

    internal bool Released { get; set; }
}

/// <summary>
/// Every open stream, for the one server-wide timer that enforces negotiation timeouts, idle timeouts, close deadlines
/// and whitespace keepalives (one timer for all connections costs less memory than one per connection); and the
/// connection caps (Limits:MaxConnections, MaxConnectionsPerAddress, MaxUnauthenticatedConnections), counted when a
/// connection is accepted and when it ends, so a flood of connections is refused before it costs a session.
/// </summary>
public sealed class ConnectionRegistry
{
    /// <summary>A refused address is logged at most once per this interval (a connection flood must not flood the log).</summary>
    private const long RefusalLogIntervalMs = 60_000;

    private readonly ConcurrentDictionary<XmppStream, byte> _streams = new();
    private readonly Lock _sync = new();
    private readonly Dictionary<UInt128, int> _perAddress = [];
    private readonly Dictionary<UInt128, long> _refusalLogged = [];
    private readonly LimitOptions _limits;
    private int _admitted;
    private int _unauthenticated;
    private bool _stopped;
    private long _globalRefusalLogged = -RefusalLogIntervalMs;

    public ConnectionRegistry(LimitOptions limits) => _limits = limits;

    public ConnectionRegistry()
        : this(new LimitOptions())
    {
    }

    /// <summary>Streams running (registered until their end has been handled, re-routing included).</summary>
    public int Count => _streams.Count;

    /// <summary>Connections admitted and not yet ended.</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>Admitted connections that have not authenticated.</summary>
    public int Unauthenticated => Volatile.Read(ref _unauthenticated);

    public void Register(XmppStream stream) => _streams.TryAdd(stream, 0);

    public void Unregister(XmppStream stream)
    {
        _streams.TryRemove(stream, out _);
        if (stream.Slot is { } slot) Release(slot);
    }

    public ICollection<XmppStream> Snapshot() => _streams.Keys;

    /// <summary>
    /// Counts a new connection from <paramref name="remote"/> against the caps; on <see cref="Admission.Admitted"/>
    /// the slot must be released when the connection ends (<see cref="Unregister"/> does it for its stream).
    /// </summary>
    public Admission Admit(EndPoint? remote, out ConnectionSlot? slot)
    {
        slot = null;
        var ip = (remote as IPEndPoint)?.Address;
        var key = ip is null ? UInt128.Zero : AddressKey(ip);
        bool perAddress = ip is not null && !(_limits.ExemptLoopbackFromAddressCap && IPAddress.IsLoopback(ip));
        lock (_sync)
        {
            if (_stopped) return Admission.ShuttingDown;
            if (_admitted >= _limits.MaxConnections) return Admission.ServerFull;
            if (_unauthenticated >= _limits.MaxUnauthenticatedConnections) return Admission.TooManyUnauthenticated;
            if (perAddress)
            {
                _perAddress.TryGetValue(key, out int n);
                if (n >= _limits.MaxConnectionsPerAddress) return Admission.AddressFull;
                _perAddress[key] = n + 1;
            }
            _admitted++;
            _unauthenticated++;
        }
        slot = new ConnectionSlot(key, perAddress);
        return Admission.Admitted;
    }

    /// <summary>The connection authenticated: it no longer counts against Limits:MaxUnauthenticatedConnections.</summary>
    public void Authenticated(ConnectionSlot slot)
    {
        lock (_sync)
        {
            if (slot.Authenticated || slot.Released) return;
            slot.Authenticated = true;
            _unauthenticated--;
        }
    }

    public void Release(ConnectionSlot slot)
    {
        lock (_sync)
        {
            if (slot.Released) return;
            slot.Released = true;
            _admitted--;
            if (!slot.Authenticated) _unauthenticated--;
            if (slot.CountedPerAddress && _perAddress.TryGetValue(slot.Address, out int n))
            {
                if (n <= 1) _perAddress.Remove(slot.Address);
                else _perAddress[slot.Address] = n - 1;
            }
        }
    }

    /// <summary>From now on every new connection is refused with system-shutdown.</summary>
    public void StopAdmitting()
    {
        lock (_sync) _stopped = true;
    }

    /// <summary>
    /// True if a refusal for <paramref name="remote"/> should be logged now: once per address (per IPv6 /64) per
    /// minute for the per-address cap, once per minute server-wide for the others.
    /// </summary>
    public bool ShouldLogRefusal(Admission reason, EndPoint? remote)
    {
        long now = Environment.TickCount64;
        lock (_sync)
        {
            if (reason != Admission.AddressFull)
            {
                if (now - _globalRefusalLogged < RefusalLogIntervalMs) return false;
                _globalRefusalLogged = now;
                return true;
            }
            var key = (remote as IPEndPoint)?.Address is { } ip ? AddressKey(ip) : UInt128.Zero;
            if (_refusalLogged.TryGetValue(key, out long last) && now - last < RefusalLogIntervalMs) return false;
            // Many refused addresses: forget those logged long ago rather than grow without bound.
            if (_refusalLogged.Count >= 4096) PruneRefusals(now);
            _refusalLogged[key] = now;
            return true;
        }
    }

    private void PruneRefusals(long now)
    {
        List<UInt128>? old = null;
        foreach (var (k, t) in _refusalLogged)
        {
            if (now - t >= RefusalLogIntervalMs) (old ??= []).Add(k);
        }
        if (old is null)
        {
            _refusalLogged.Clear();
            return;
        }
        foreach (var k in old) _refusalLogged.Remove(k);
    }

    /// <summary>
    /// The unit a per-address cap counts: an IPv4 address (IPv4-mapped IPv6 included), or the /64 of an IPv6 address
    /// (one subscriber's LAN gets a /64, RFC 6177, and can pick any address in it). The two kinds never collide:
    /// IPv6 keys have a zero low half, IPv4 keys a low half of at least 2^32.
    /// </summary>
    public static UInt128 AddressKey(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out int written)) return UInt128.Zero;
        if (written == 4)
        {
            ulong v4 = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes);
            return new UInt128(0, (1UL << 32) | v4);
        }
        return new UInt128(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes), 0);
    }
}
