using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Starling.Server.Sessions;
using Starling.Server.Tests.Functional;

namespace Starling.Server.Tests.Sessions;

/// <summary>
/// The replies to one received batch leave in one flush (one send on a socket): the stream header and its
/// features, for example, which are two round trips' worth of syscalls otherwise. Stanzas are unchanged.
/// </summary>
public sealed class ReplyBatchingTests
{
    [Fact]
    public async Task Stream_header_and_features_are_written_in_one_flush()
    {
        await using var server = await TestServer.StartAsync();
        await using var connection = new MemoryConnection();
        var session = new C2sStream(server.Server, connection.Context).RunAsync();

        await connection.SendAsync($"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{TestServer.Domain}' version='1.0'>");
        string text = await connection.ReceiveUntilAsync("</stream:features>");

        Assert.StartsWith("<?xml version='1.0'?><stream:stream ", text, StringComparison.Ordinal);
        Assert.Equal(1, connection.Output.Flushes);

        // A stanza before authentication: the stream error and the closing tag leave together.
        await connection.SendAsync("<iq type='get' id='a'><ping xmlns='urn:xmpp:ping'/></iq>");
        text = await connection.ReceiveUntilAsync("</stream:stream>");
        Assert.Contains("<not-authorized", text, StringComparison.Ordinal);
        Assert.Equal(2, connection.Output.Flushes);

        await connection.SendAsync("</stream:stream>");
        await connection.CompleteInputAsync();
        await session.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>A connection made of two in-memory pipes; the server's output counts its flushes that carried bytes.</summary>
    private sealed class MemoryConnection : IAsyncDisposable
    {
        private readonly Pipe _toServer = new();
        private readonly Pipe _fromServer = new();
        private readonly StringBuilder _received = new();

        public MemoryConnection()
        {
            Output = new CountingWriter(_fromServer.Writer);
            Context = new DefaultConnectionContext("test-" + Guid.NewGuid().ToString("N"), new DuplexPipe(_toServer.Reader, Output), new DuplexPipe(_fromServer.Reader, _toServer.Writer));
        }

        public DefaultConnectionContext Context { get; }

        public CountingWriter Output { get; }

        public async Task SendAsync(string xml)
        {
            await _toServer.Writer.WriteAsync(Encoding.UTF8.GetBytes(xml));
        }

        public Task CompleteInputAsync() => _toServer.Writer.CompleteAsync().AsTask();

        /// <summary>Reads what the server wrote until <paramref name="marker"/> was seen; returns it and clears the buffer.</summary>
        public async Task<string> ReceiveUntilAsync(string marker)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (!_received.ToString().Contains(marker, StringComparison.Ordinal))
            {
                var result = await _fromServer.Reader.ReadAsync(timeout.Token);
                foreach (var segment in result.Buffer) _received.Append(Encoding.UTF8.GetString(segment.Span));
                _fromServer.Reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) break;
            }
            string text = _received.ToString();
            _received.Clear();
            return text;
        }

        public async ValueTask DisposeAsync()
        {
            await _toServer.Writer.CompleteAsync();
            await _fromServer.Reader.CompleteAsync();
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>Counts flushes that had bytes written since the previous one.</summary>
    private sealed class CountingWriter(PipeWriter inner) : PipeWriter
    {
        private long _pending;
        private int _flushes;

        public int Flushes => Volatile.Read(ref _flushes);

        public override void Advance(int bytes)
        {
            _pending += bytes;
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            if (_pending > 0) Interlocked.Increment(ref _flushes);
            _pending = 0;
            return inner.FlushAsync(cancellationToken);
        }
    }
}
