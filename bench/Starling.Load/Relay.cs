using System.Buffers;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Starling.Load;

/// <summary>
/// The relay wire format: a client first sends <c>HELLO &lt;index&gt;\n</c>, then frames
/// <c>&lt;to-index&gt; &lt;length&gt;\n&lt;payload&gt;</c>; the relay forwards each payload as
/// <c>&lt;from-index&gt; &lt;length&gt;\n&lt;payload&gt;</c> to the connection that said HELLO with to-index.
/// </summary>
internal static class RelayFraming
{
    public const int MaxPayload = 1 << 20;

    /// <summary>Writes one frame header + payload.</summary>
    public static void WriteFrame(IBufferWriter<byte> output, int peer, ReadOnlySequence<byte> payload)
    {
        WriteHeader(output, peer, (int)payload.Length);
        foreach (var segment in payload) output.Write(segment.Span);
    }

    public static void WriteHeader(IBufferWriter<byte> output, int peer, int length)
    {
        var span = output.GetSpan(24);
        Utf8Formatter.TryFormat(peer, span, out int a);
        span[a++] = (byte)' ';
        Utf8Formatter.TryFormat(length, span[a..], out int b);
        a += b;
        span[a++] = (byte)'\n';
        output.Advance(a);
    }

    public static byte[] Frame(int peer, ReadOnlySpan<byte> payload)
    {
        var w = new ArrayBufferWriter<byte>(payload.Length + 24);
        WriteHeader(w, peer, payload.Length);
        w.Write(payload);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Tries to take one complete frame from <paramref name="buffer"/>. Returns false when more bytes are needed;
    /// throws <see cref="FormatException"/> on a malformed header.
    /// </summary>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out int peer, out ReadOnlySequence<byte> payload)
    {
        peer = 0;
        payload = default;
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySpan<byte> header, (byte)'\n'))
        {
            if (buffer.Length > 64) throw new FormatException("relay frame header too long");
            return false;
        }
        int space = header.IndexOf((byte)' ');
        if (space <= 0
            || !Utf8Parser.TryParse(header[..space], out peer, out int used1) || used1 != space
            || !Utf8Parser.TryParse(header[(space + 1)..], out int length, out int used2) || used2 != header.Length - space - 1
            || length < 0 || length > MaxPayload)
            throw new FormatException("bad relay frame header");
        if (reader.Remaining < length) return false;
        payload = reader.UnreadSequence.Slice(0, length);
        buffer = buffer.Slice(payload.End);
        return true;
    }

    /// <summary>Parses <c>HELLO &lt;index&gt;</c> (without the newline).</summary>
    public static bool TryParseHello(ReadOnlySpan<byte> line, out int index)
    {
        index = -1;
        return line.StartsWith("HELLO "u8) && Utf8Parser.TryParse(line[6..], out index, out int used) && used == line.Length - 6 && index >= 0;
    }
}

/// <summary>The relay server: no XML, just index-addressed forwarding, to measure the machine's routing floor.</summary>
internal sealed class RelayServer
{
    private readonly ConcurrentDictionary<int, Connection> _connections = new();
    private long _forwarded;
    private long _dropped;
    private long _bytes;

    public long Forwarded => Interlocked.Read(ref _forwarded);

    public long Dropped => Interlocked.Read(ref _dropped);

    public int Connections => _connections.Count;

    /// <summary>Accepts on <paramref name="endpoint"/> until <paramref name="ct"/> is cancelled; <paramref name="ready"/> gets the bound port.</summary>
    public async Task RunAsync(IPEndPoint endpoint, Action<int>? ready, CancellationToken ct)
    {
        using var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(endpoint);
        listener.Listen(4096);
        ready?.Invoke(((IPEndPoint)listener.LocalEndPoint!).Port);
        var tasks = new List<Task>();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var socket = await listener.AcceptAsync(ct);
                socket.NoDelay = true;
                tasks.Add(ServeAsync(socket, ct));
                if (tasks.Count > 1024) tasks.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (OperationCanceledException)
        {
        }
        foreach (var c in _connections.Values) c.Close();
        await Task.WhenAll(tasks);
    }

    private async Task ServeAsync(Socket socket, CancellationToken ct)
    {
        using var stream = new NetworkStream(socket, ownsSocket: true);
        var input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16384));
        Connection? self = null;
        try
        {
            // HELLO line.
            while (self is null)
            {
                var result = await input.ReadAsync(ct);
                var buffer = result.Buffer;
                var reader = new SequenceReader<byte>(buffer);
                if (reader.TryReadTo(out ReadOnlySpan<byte> line, (byte)'\n'))
                {
                    if (!RelayFraming.TryParseHello(line, out int index)) return;
                    self = new Connection(index, stream);
                    if (_connections.TryGetValue(index, out var old)) old.Close();
                    _connections[index] = self;
                    self.StartPump();
                    input.AdvanceTo(reader.Position);
                }
                else
                {
                    if (result.IsCompleted || buffer.Length > 64) return;
                    input.AdvanceTo(buffer.Start, buffer.End);
                }
            }

            while (true)
            {
                var result = await input.ReadAsync(ct);
                var buffer = result.Buffer;
                while (RelayFraming.TryReadFrame(ref buffer, out int to, out var payload))
                {
                    if (_connections.TryGetValue(to, out var target) && target.Enqueue(self.Index, payload))
                    {
                        Interlocked.Increment(ref _forwarded);
                        Interlocked.Add(ref _bytes, payload.Length);
                    }
                    else
                    {
                        Interlocked.Increment(ref _dropped);
                    }
                }
                input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or FormatException or ObjectDisposedException)
        {
        }
        finally
        {
            await input.CompleteAsync();
            if (self is not null)
            {
                _connections.TryRemove(new KeyValuePair<int, Connection>(self.Index, self));
                self.Close();
            }
        }
    }

    /// <summary>One accepted client: frames for it are copied into a pipe under a lock, and a pump writes the pipe to the socket (batching).</summary>
    private sealed class Connection
    {
        private readonly Pipe _out = new(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
        private readonly Stream _stream;
        private readonly Lock _lock = new();
        private bool _closed;

        public Connection(int index, Stream stream)
        {
            Index = index;
            _stream = stream;
        }

        public int Index { get; }

        public void StartPump() => _ = PumpAsync();

        public bool Enqueue(int from, ReadOnlySequence<byte> payload)
        {
            lock (_lock)
            {
                if (_closed) return false;
                RelayFraming.WriteFrame(_out.Writer, from, payload);
                // pauseWriterThreshold 0: the flush never waits, it only wakes the pump.
                var flush = _out.Writer.FlushAsync();
                if (flush.IsCompleted) flush.GetAwaiter().GetResult();
                else _ = flush.AsTask();
                return true;
            }
        }

        private async Task PumpAsync()
        {
            var reader = _out.Reader;
            try
            {
                while (true)
                {
                    var result = await reader.ReadAsync();
                    foreach (var segment in result.Buffer) await _stream.WriteAsync(segment);
                    reader.AdvanceTo(result.Buffer.End);
                    if (result.IsCompleted) break;
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
            }
            finally
            {
                Close();
                await reader.CompleteAsync();
            }
        }

        public void Close()
        {
            lock (_lock)
            {
                if (_closed) return;
                _closed = true;
                _out.Writer.Complete();
            }
            try
            {
                _stream.Dispose();
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>`relay serve`: runs until --duration elapses or Ctrl-C/SIGTERM; prints a status line every --progress seconds.</summary>
    public static async Task<int> ServeCommandAsync(LoadOptions o)
    {
        var server = new RelayServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(o.Duration));
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            cts.Cancel();
        });
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        var ip = IPAddress.Parse(o.Host);
        var run = server.RunAsync(new IPEndPoint(ip, o.Port), port =>
            Reporter.Progress($"relay listening on {ip}:{port} for at most {o.Duration:F0} s (pid {Environment.ProcessId})"), cts.Token);
        long last = 0;
        while (!run.IsCompleted)
        {
            await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(o.ProgressSeconds)));
            long now = server.Forwarded;
            Reporter.Progress($"relay: {server.Connections} connections, {(now - last) / o.ProgressSeconds:F0} frames/s, forwarded {now}, dropped {server.Dropped}");
            last = now;
        }
        await run;
        return 0;
    }
}

/// <summary>Client side of the relay protocol (the `chat --protocol relay` driver).</summary>
internal sealed class RelayClient : IAsyncDisposable
{
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private Socket? _socket;
    private NetworkStream? _stream;

    public RelayClient(int index) => Index = index;

    public int Index { get; }

    /// <summary>Called from the receive loop for each payload (the sequence is valid only during the call).</summary>
    public Action<int, ReadOnlySequence<byte>>? OnFrame { get; set; }

    public string? CloseReason { get; private set; }

    public async Task ConnectAsync(IPEndPoint server, IPAddress? source, CancellationToken ct)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket = socket;
        if (source is not null)
        {
            XmppClient.TryBindAddressNoPort(socket);
            socket.Bind(new IPEndPoint(source, 0));
        }
        await socket.ConnectAsync(server, ct);
        _stream = new NetworkStream(socket, ownsSocket: true);
        await _stream.WriteAsync(Encoding.ASCII.GetBytes("HELLO " + Index.ToString(CultureInfo.InvariantCulture) + "\n"), ct);
    }

    public async Task ReceiveLoopAsync(CancellationToken ct)
    {
        var input = PipeReader.Create(_stream!, new StreamPipeReaderOptions(bufferSize: 16384));
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(ct);
                var buffer = result.Buffer;
                while (RelayFraming.TryReadFrame(ref buffer, out int from, out var payload)) OnFrame?.Invoke(from, payload);
                input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    CloseReason = "closed-by-relay";
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or FormatException)
        {
            CloseReason ??= "io:" + ex.GetType().Name;
        }
        finally
        {
            await input.CompleteAsync();
        }
    }

    public async Task<bool> SendAsync(ReadOnlyMemory<byte> frame)
    {
        var stream = _stream;
        if (stream is null) return false;
        await _writeLock.WaitAsync();
        try
        {
            await stream.WriteAsync(frame);
            return true;
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            _socket?.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        _stream?.Dispose();
        _socket?.Dispose();
        _writeLock.Dispose();
        return ValueTask.CompletedTask;
    }
}
