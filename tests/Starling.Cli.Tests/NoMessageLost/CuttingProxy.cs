using System.Net;
using System.Net.Sockets;

namespace Starling.Cli.Tests.NoMessageLost;

/// <summary>
/// A loopback TCP proxy between a client and the server that forwards bytes both ways until told to cut:
/// <see cref="Reset"/> ends both sides with a TCP reset (what the server sees when a phone's connection is torn down),
/// <see cref="SilentDrop"/> stops forwarding in both directions but keeps the server's side open (a phone out of
/// coverage: the server learns only through its own timeouts and ping) while the client's side is closed so the client
/// reconnects. A connection that arrives while the server is down is closed at once (the client retries).
/// </summary>
public sealed class CuttingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Pair> _pairs = [];
    private readonly List<Socket> _dropped = [];
    private readonly Task _accepting;
    private int _disposed;

    public CuttingProxy(IPEndPoint upstream)
    {
        _upstream = upstream;
        _listener.Start();
        EndPoint = (IPEndPoint)_listener.LocalEndpoint;
        _accepting = AcceptLoopAsync();
    }

    /// <summary>Where clients connect.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Connections forwarded so far.</summary>
    public int Accepted { get; private set; }

    /// <summary>Connections being forwarded now.</summary>
    public int Active
    {
        get
        {
            lock (_pairs) return _pairs.Count;
        }
    }

    /// <summary>Server-side sockets of silently dropped connections still held open (the server has not closed them yet, or we did not read that it did).</summary>
    public int HeldOpen
    {
        get
        {
            lock (_pairs) return _dropped.Count;
        }
    }

    /// <summary>Resets every forwarded connection, both sides (SO_LINGER 0: RST instead of FIN). Returns how many.</summary>
    public int Reset()
    {
        var pairs = TakePairs();
        foreach (var pair in pairs)
        {
            pair.Forwarding = false;
            Abort(pair.Client);
            Abort(pair.Server);
        }
        return pairs.Count;
    }

    /// <summary>
    /// Stops forwarding on every connection: nothing more is read from either side, so what the server writes stays in
    /// socket buffers that nobody reads, and the server's socket stays open. The client's side is reset so the client
    /// notices at once and reconnects. Returns how many.
    /// </summary>
    public int SilentDrop()
    {
        var pairs = TakePairs();
        foreach (var pair in pairs)
        {
            pair.Forwarding = false;
            pair.StopReading.Cancel();
            Abort(pair.Client);
            lock (_pairs) _dropped.Add(pair.Server);
        }
        return pairs.Count;
    }

    private List<Pair> TakePairs()
    {
        lock (_pairs)
        {
            var taken = new List<Pair>(_pairs);
            _pairs.Clear();
            return taken;
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        client.NoDelay = true;
        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await server.ConnectAsync(_upstream, _stop.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The server is down (restarting): the client sees its connection end and tries again.
            Abort(client);
            server.Dispose();
            return;
        }
        var pair = new Pair(client, server);
        lock (_pairs)
        {
            if (_stop.IsCancellationRequested)
            {
                Abort(client);
                Abort(server);
                return;
            }
            _pairs.Add(pair);
            Accepted++;
        }
        var up = PumpAsync(pair, client, server);
        var down = PumpAsync(pair, server, client);
        await Task.WhenAny(up, down);
        // One side ended by itself (the client or the server closed): end the other side too, as a plain proxy does.
        // A cut pair was already taken out of the list and its sockets are handled by the cut.
        bool mine;
        lock (_pairs) mine = _pairs.Remove(pair);
        if (mine)
        {
            client.Dispose();
            server.Dispose();
        }
        await Task.WhenAll(up, down);
    }

    private static async Task PumpAsync(Pair pair, Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, pair.StopReading.Token);
                if (n == 0 || !pair.Forwarding) return;
                int sent = 0;
                while (sent < n) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None);
                if (!pair.Forwarding) return;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static void Abort(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        socket.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Reset();
        lock (_pairs)
        {
            foreach (var socket in _dropped) Abort(socket);
            _dropped.Clear();
        }
        _stop.Dispose();
    }

    private sealed class Pair(Socket client, Socket server)
    {
        public Socket Client { get; } = client;
        public Socket Server { get; } = server;
        public CancellationTokenSource StopReading { get; } = new();
        public volatile bool Forwarding = true;
    }
}
