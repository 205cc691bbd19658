using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;

namespace Starling.Load;

/// <summary>
/// Fairness under a flood (issue #13): user{first} floods its own bare JID at full speed from one resource, a second
/// resource of the same account reads, and user{first+1} pings the server (XEP-0199) one ping at a time. Reports
/// the ping round trip (p50/p99/max), what the flooder got through, and whether the reader or the pinger was cut off.
/// </summary>
internal static class FloodScenario
{
    public static async Task<int> RunAsync(LoadOptions o, Reporter reporter, CancellationToken ct)
    {
        var server = await LoginPool.ResolveAsync(o);
        var flooder = new XmppClient(0, o.UserName(o.First), o.Domain);
        var reader = new XmppClient(1, o.UserName(o.First), o.Domain);
        var pinger = new XmppClient(2, o.UserName(o.First + 1), o.Domain);
        try
        {
            await flooder.LoginAsync(server, null, Settings(o, o.First, "flooder"), ct);
            await reader.LoginAsync(server, null, Settings(o, o.First, "reader"), ct);
            await pinger.LoginAsync(server, null, Settings(o, o.First + 1, "pinger"), ct);
        }
        catch (Exception ex) when (ex is LoginException or IOException or System.Net.Sockets.SocketException)
        {
            Console.Error.WriteLine($"setup failure: {ex.Message}");
            return ExitCodes.SetupFailure;
        }

        long received = 0;
        reader.OnMessage = (_, _) => Interlocked.Increment(ref received);
        TaskCompletionSource<string>? answer = null;
        pinger.OnIqResponse = (_, iq) => Volatile.Read(ref answer)?.TrySetResult(iq.GetAttribute("id") ?? "");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var loops = new[] { flooder.ReceiveLoopAsync(stop.Token), reader.ReceiveLoopAsync(stop.Token), pinger.ReceiveLoopAsync(stop.Token) };
        // The flooder sends no presence: only the reader receives what is sent to the bare JID (RFC 6121 §8.5.2.1.1).
        await reader.SendInitialPresenceAsync(ct);

        var clock = Stopwatch.StartNew();
        long sent = 0;
        var flood = Task.Run(async () =>
        {
            // 16 KB of messages per write: as fast as the client can produce them.
            var body = new string('x', o.BodyBytes);
            var chunk = new StringBuilder();
            for (int i = 0; chunk.Length < 16 * 1024; i++)
                chunk.Append("<message to='").Append(flooder.BareJid).Append("' type='chat'><body>").Append(body).Append("</body></message>");
            var bytes = Encoding.UTF8.GetBytes(chunk.ToString());
            int messages = chunk.ToString().Split("<message").Length - 1;
            while (!stop.IsCancellationRequested && clock.Elapsed.TotalSeconds < o.Duration && !flooder.Closed)
            {
                if (!await flooder.SendQuietlyAsync(bytes)) break;
                Interlocked.Add(ref sent, messages);
            }
        }, CancellationToken.None);

        var rtt = new LatencyHistogram();
        int lost = 0;
        while (clock.Elapsed.TotalSeconds < o.Duration && !ct.IsCancellationRequested && !pinger.Closed)
        {
            var id = pinger.NextIqId();
            var waiting = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref answer, waiting);
            long t0 = Stopwatch.GetTimestamp();
            await pinger.SendQuietlyAsync(Encoding.UTF8.GetBytes($"<iq type='get' id='{id}' to='{o.Domain}'><ping xmlns='urn:xmpp:ping'/></iq>"));
            try
            {
                await waiting.Task.WaitAsync(TimeSpan.FromSeconds(5), ct);
                rtt.Record((long)Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
            catch (TimeoutException)
            {
                lost++;
            }
            await Task.Delay(20, ct);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        await flood;
        bool readerCut = reader.Closed, pingerCut = pinger.Closed, flooderCut = flooder.Closed;
        string? readerWhy = reader.CloseReason, flooderWhy = flooder.CloseReason;
        await stop.CancelAsync();
        foreach (var c in new[] { flooder, reader, pinger }) c.Abort();
        try
        {
            await Task.WhenAll(loops).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        }
        catch (TimeoutException)
        {
        }

        double Ms(double percent) => rtt.Percentile(percent) / 1000.0;
        var line = new ResultLine("flood")
            .Set("server", o.ServerName)
            .Set("label", o.Label)
            .Set("seconds", Math.Round(seconds, 1))
            .Set("flood_sent_per_s", Math.Round(Interlocked.Read(ref sent) / seconds))
            .Set("reader_received_per_s", Math.Round(Interlocked.Read(ref received) / seconds))
            .Set("pings", rtt.Count)
            .Set("pings_lost", lost)
            .Set("ping_p50_ms", Math.Round(Ms(50), 2))
            .Set("ping_p99_ms", Math.Round(Ms(99), 2))
            .Set("ping_max_ms", Math.Round(rtt.Max / 1000.0, 2))
            .Set("reader_disconnected", readerCut ? readerWhy ?? "closed" : null)
            .Set("pinger_disconnected", pingerCut ? pinger.CloseReason ?? "closed" : null)
            .Set("flooder_disconnected", flooderCut ? flooderWhy ?? "closed" : null);
        reporter.Emit(line);
        Reporter.Progress(string.Create(CultureInfo.InvariantCulture,
            $"flood: {Interlocked.Read(ref sent) / seconds:F0} msg/s sent, reader {Interlocked.Read(ref received) / seconds:F0} msg/s, ping p50 {Ms(50):F2} ms p99 {Ms(99):F2} ms max {rtt.Max / 1000.0:F2} ms ({rtt.Count} pings, {lost} lost); reader {(readerCut ? "DISCONNECTED " + readerWhy : "connected")}"));
        return ExitCodes.Ok;
    }

    private static LoginSettings Settings(LoadOptions o, int user, string resource) =>
        new(o.Tls, o.Mechanism, o.Password(user), resource, KeyCache: !o.NoKeyCache);
}
