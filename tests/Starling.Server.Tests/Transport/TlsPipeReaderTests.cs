using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Starling.Server.Transport;

namespace Starling.Server.Tests.Transport;

/// <summary>The read side of TLS connections: PipeReader semantics over a stream, no buffer held while idle.</summary>
public sealed class TlsPipeReaderTests
{
    private readonly Pipe _pipe = new();

    private TlsPipeReader NewReader() => new(_pipe.Reader.AsStream());

    private async Task WriteAsync(string text) => await _pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes(text));

    private static string Text(in ReadOnlySequence<byte> buffer) => Encoding.UTF8.GetString(buffer);

    [Fact]
    public async Task Unconsumed_bytes_come_back_with_the_next_ones()
    {
        var reader = NewReader();
        await WriteAsync("<message>hel");
        var result = await reader.ReadAsync();
        Assert.Equal("<message>hel", Text(result.Buffer));

        // The parser took the start tag and needs more for the rest.
        reader.AdvanceTo(result.Buffer.GetPosition(9), result.Buffer.End);
        var pending = reader.ReadAsync();
        Assert.False(pending.IsCompleted); // everything was examined: it waits for more bytes
        await WriteAsync("lo</message>");
        result = await pending;
        Assert.Equal("hello</message>", Text(result.Buffer));
        reader.AdvanceTo(result.Buffer.End);
        Assert.False(reader.HoldsBuffer);
    }

    [Fact]
    public async Task Bytes_not_examined_are_returned_without_waiting()
    {
        var reader = NewReader();
        await WriteAsync("<a/><b/>");
        var result = await reader.ReadAsync();
        reader.AdvanceTo(result.Buffer.GetPosition(4), result.Buffer.GetPosition(4));
        Assert.True(reader.TryRead(out var again));
        Assert.Equal("<b/>", Text(again.Buffer));
    }

    [Fact]
    public async Task An_idle_reader_holds_no_buffer()
    {
        var reader = NewReader();
        var pending = reader.ReadAsync();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        Assert.False(reader.HoldsBuffer);
        await WriteAsync("<presence/>");
        var result = await pending;
        Assert.True(reader.HoldsBuffer);
        reader.AdvanceTo(result.Buffer.End);
        Assert.False(reader.HoldsBuffer);
    }

    [Fact]
    public async Task A_token_longer_than_the_buffer_grows_it()
    {
        var reader = NewReader();
        string big = "<body>" + new string('x', 20_000) + "</body>";
        var writing = Task.Run(async () =>
        {
            for (int i = 0; i < big.Length; i += 3000)
            {
                await WriteAsync(big.Substring(i, Math.Min(3000, big.Length - i)));
                await Task.Yield();
            }
        });

        // Consume nothing until the whole element is there, as a parser waiting for one long token does.
        ReadResult result;
        while (true)
        {
            result = await reader.ReadAsync();
            if (result.Buffer.Length == big.Length) break;
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
        Assert.Equal(big, Text(result.Buffer));
        reader.AdvanceTo(result.Buffer.End);
        await writing;
    }

    [Fact]
    public async Task The_end_of_the_stream_completes_with_what_is_left()
    {
        var reader = NewReader();
        await WriteAsync("</stream:stream>");
        await _pipe.Writer.CompleteAsync();
        var result = await reader.ReadAsync();
        while (!result.IsCompleted)
        {
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            result = await reader.ReadAsync();
        }
        Assert.Equal("</stream:stream>", Text(result.Buffer));
        reader.AdvanceTo(result.Buffer.End);
        result = await reader.ReadAsync();
        Assert.True(result.IsCompleted);
        Assert.True(result.Buffer.IsEmpty);
        reader.Complete();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await reader.ReadAsync());
    }

    [Fact]
    public async Task Positions_from_elsewhere_are_refused()
    {
        var reader = NewReader();
        await WriteAsync("<a/>");
        var result = await reader.ReadAsync();
        var other = new ReadOnlySequence<byte>(new byte[4]);
        Assert.Throws<InvalidOperationException>(() => reader.AdvanceTo(other.End));
        reader.AdvanceTo(result.Buffer.End);
    }
}
