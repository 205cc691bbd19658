using System.Buffers;
using System.Net;
using System.Text;
using Starling.Load;

namespace Starling.Load.Tests;

public class HistogramTests
{
    [Fact]
    public void Percentiles_of_1_to_10000_are_within_bucket_precision()
    {
        var h = new LatencyHistogram();
        for (long v = 1; v <= 10_000; v++) h.Record(v);
        Assert.Equal(10_000, h.Count);
        Assert.Equal(1, h.Min);
        Assert.Equal(10_000, h.Max);
        AssertClose(5_000, h.Percentile(50));
        AssertClose(9_900, h.Percentile(99));
        AssertClose(9_990, h.Percentile(99.9));
        Assert.Equal(10_000, h.Percentile(100));
    }

    [Fact]
    public void Small_values_are_exact()
    {
        var h = new LatencyHistogram();
        foreach (long v in new long[] { 0, 1, 2, 3, 63 }) h.Record(v);
        Assert.Equal(2, h.Percentile(50));
        Assert.Equal(63, h.Percentile(100));
    }

    [Fact]
    public void Buckets_are_contiguous_and_bound_their_values()
    {
        long previousUpper = -1;
        for (int b = 0; b < 1900; b++)
        {
            long upper = LatencyHistogram.UpperBound(b);
            Assert.True(upper > previousUpper);
            Assert.Equal(b, LatencyHistogram.BucketOf(previousUpper + 1));
            Assert.Equal(b, LatencyHistogram.BucketOf(upper));
            previousUpper = upper;
            if (upper > long.MaxValue / 4) break;
        }
        Assert.True(LatencyHistogram.BucketOf(long.MaxValue) < 1952);
    }

    [Fact]
    public void Empty_histogram_reports_zero() => Assert.Equal(0, new LatencyHistogram().Percentile(99));

    private static void AssertClose(long expected, long actual) =>
        Assert.InRange(actual, expected, expected + expected / 32 + 1);
}

public class RelayFramingTests
{
    [Fact]
    public void Frame_round_trips_even_when_split_byte_by_byte()
    {
        byte[] payload = Encoding.UTF8.GetBytes("<message><body>1 2 3 4 5</body></message>");
        byte[] frame = RelayFraming.Frame(42, payload);
        Assert.StartsWith("42 " + payload.Length + "\n", Encoding.ASCII.GetString(frame), StringComparison.Ordinal);

        var received = new List<byte>();
        for (int cut = 0; cut <= frame.Length; cut++)
        {
            var partial = new ReadOnlySequence<byte>(frame, 0, cut);
            bool complete = RelayFraming.TryReadFrame(ref partial, out int peer, out var body);
            Assert.Equal(cut == frame.Length, complete);
            if (complete)
            {
                Assert.Equal(42, peer);
                Assert.Equal(payload, body.ToArray());
                Assert.Equal(0, partial.Length);
            }
        }
    }

    [Fact]
    public void Two_frames_in_one_buffer_are_both_read()
    {
        byte[] both = [.. RelayFraming.Frame(1, "ab"u8), .. RelayFraming.Frame(7, ""u8)];
        var seq = new ReadOnlySequence<byte>(both);
        Assert.True(RelayFraming.TryReadFrame(ref seq, out int a, out var p1));
        Assert.Equal(1, a);
        Assert.Equal("ab", Encoding.ASCII.GetString(p1.ToArray()));
        Assert.True(RelayFraming.TryReadFrame(ref seq, out int b, out var p2));
        Assert.Equal(7, b);
        Assert.Equal(0, p2.Length);
        Assert.False(RelayFraming.TryReadFrame(ref seq, out _, out _));
    }

    [Theory]
    [InlineData("x 3\nabc")]
    [InlineData("1 -3\nabc")]
    [InlineData("13\nabc")]
    public void Malformed_headers_are_rejected(string text)
    {
        var seq = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(text));
        Assert.Throws<FormatException>(() => RelayFraming.TryReadFrame(ref seq, out _, out _));
    }

    [Fact]
    public void Hello_line_is_parsed()
    {
        Assert.True(RelayFraming.TryParseHello("HELLO 17"u8, out int i));
        Assert.Equal(17, i);
        Assert.False(RelayFraming.TryParseHello("HELLO x"u8, out _));
        Assert.False(RelayFraming.TryParseHello("HI 1"u8, out _));
    }

    [Fact]
    public async Task Relay_forwards_a_payload_between_two_clients()
    {
        var server = new RelayServer();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var portReady = new TaskCompletionSource<int>();
        var run = server.RunAsync(new IPEndPoint(IPAddress.Loopback, 0), p => portReady.SetResult(p), cts.Token);
        int port = await portReady.Task;
        var endpoint = new IPEndPoint(IPAddress.Loopback, port);

        await using var a = new RelayClient(1);
        await using var b = new RelayClient(2);
        var got = new TaskCompletionSource<(int, string)>();
        b.OnFrame = (from, payload) => got.TrySetResult((from, Encoding.UTF8.GetString(payload.ToArray())));
        await a.ConnectAsync(endpoint, null, cts.Token);
        await b.ConnectAsync(endpoint, null, cts.Token);
        var loop = b.ReceiveLoopAsync(cts.Token);
        while (server.Connections < 2) await Task.Delay(10, cts.Token);

        Assert.True(await a.SendAsync(RelayFraming.Frame(2, "hello"u8)));
        var (fromIndex, text) = await got.Task.WaitAsync(cts.Token);
        Assert.Equal(1, fromIndex);
        Assert.Equal("hello", text);

        await cts.CancelAsync();
        await run;
    }
}

public class ChatBodyAndOptionsTests
{
    [Fact]
    public void Body_round_trips_and_is_padded()
    {
        string body = ChatBody.Format(9, 2, 12345, 111, 222, 80);
        Assert.Equal(80, body.Length);
        Assert.True(ChatBody.TryParse(body, out int run, out int step, out long seq, out long intended, out long ticks));
        Assert.Equal((9, 2, 12345L, 111L, 222L), (run, step, seq, intended, ticks));

        byte[] stanza = Encoding.UTF8.GetBytes("<message to='a@b' type='chat'><body>" + body + "</body></message>");
        Assert.True(ChatBody.TryParseStanzaBytes(stanza, out run, out _, out seq, out _, out _));
        Assert.Equal(9, run);
        Assert.Equal(12345, seq);
    }

    [Fact]
    public void Options_parse_common_flags()
    {
        var o = LoadOptions.Parse(["--port", "25222", "--users=7", "--tls", "starttls", "--mechanism", "scram-sha-256",
            "--server-pid", "1", "--server-pid", "2", "--source-addresses", "3"]);
        Assert.Equal(25222, o.Port);
        Assert.Equal(7, o.Users);
        Assert.Equal(TlsMode.StartTls, o.Tls);
        Assert.Equal("SCRAM-SHA-256", o.Mechanism);
        Assert.Equal([1, 2], o.ServerPids);
        Assert.Equal("user5", o.UserName(5));
        Assert.Equal("pass5", o.Password(5));
        Assert.Equal(IPAddress.Parse("127.0.0.4"), LoginPool.SourceFor(o, 5));
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--bogus"]));
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--mechanism", "DIGEST-MD5"]));
    }

    [Fact]
    public void Soak_burst_options_parse_and_refuse_nonsense()
    {
        var o = LoadOptions.Parse(["--burst-logins", "3500", "--burst-every=40"]);
        Assert.Equal(3500, o.BurstLogins);
        Assert.Equal(40, o.BurstEvery);
        Assert.Equal(0, LoadOptions.Parse([]).BurstLogins); // steady churn unless asked
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--burst-logins", "-1"]));
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--burst-every", "0"]));
    }
}
