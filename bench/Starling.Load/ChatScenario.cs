using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Starling.Xml;

namespace Starling.Load;

/// <summary>Counters of one chat step (one target rate).</summary>
internal sealed class ChatStep
{
    public ChatStep(int step, double rate)
    {
        Step = step;
        Rate = rate;
    }

    public int Step { get; }

    public double Rate { get; }

    /// <summary>Messages whose intended send time is at or after this (Stopwatch ticks) are measured (warmup excluded).</summary>
    public long MeasureFrom = long.MaxValue;

    public long Sent;
    public long SentMeasured;
    public long SendFailures;
    public long Received;
    public long ReceivedMeasured;
    public long MaxLagTicks;

    /// <summary>Receive time minus actual send time (µs): what the server (and the wire) added.</summary>
    public LatencyHistogram Latency { get; } = new();

    /// <summary>Receive time minus intended send time (µs): also counts the scheduler's own lag (coordinated-omission-free view).</summary>
    public LatencyHistogram LatencyFromIntended { get; } = new();

    /// <summary>Stopwatch timestamp of the last scheduled send.</summary>
    public long LastSend;

    /// <summary>How late the scheduler sent each message versus its intended time (µs): the loadgen's own lag.</summary>
    public LatencyHistogram SendLag { get; } = new();

    public ConcurrentDictionary<string, long> Errors { get; } = new();

    /// <summary>Counts a failed send once <paramref name="send"/> completes (writes are fire-and-forget: never awaited).</summary>
    public void CountFailure(Task<bool> send)
    {
        if (send.IsCompleted)
        {
            if (!send.IsCompletedSuccessfully || !send.Result) Interlocked.Increment(ref SendFailures);
            return;
        }
        _ = send.ContinueWith(static (t, state) =>
        {
            if (!t.IsCompletedSuccessfully || !t.Result) Interlocked.Increment(ref ((ChatStep)state!).SendFailures);
        }, this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}

/// <summary>
/// The body every chat message carries: "RUN STEP SEQ INTENDED ACTUAL " padded with 'x' to --body-bytes, where INTENDED
/// is the Stopwatch timestamp the schedule gave the message and ACTUAL the one at which the scheduler sent it
/// (open loop: it never waits for the server; the difference is the loadgen's own lag)
/// RUN (random per process) filters out stale messages, e.g. offline messages from an earlier run delivered at login.
/// </summary>
internal static class ChatBody
{
    public static string Format(int run, int step, long seq, long intended, long ticks, int size)
    {
        var sb = new StringBuilder(size);
        sb.Append(run.ToString(CultureInfo.InvariantCulture)).Append(' ')
            .Append(step.ToString(CultureInfo.InvariantCulture)).Append(' ')
            .Append(seq.ToString(CultureInfo.InvariantCulture)).Append(' ')
            .Append(intended.ToString(CultureInfo.InvariantCulture)).Append(' ')
            .Append(ticks.ToString(CultureInfo.InvariantCulture)).Append(' ');
        if (sb.Length < size) sb.Append('x', size - sb.Length);
        return sb.ToString();
    }

    public static bool TryParse(ReadOnlySpan<char> body, out int run, out int step, out long seq, out long intended, out long ticks)
    {
        run = step = 0;
        seq = intended = ticks = 0;
        Span<Range> parts = stackalloc Range[6];
        int n = body.Split(parts, ' ');
        return n >= 5
            && int.TryParse(body[parts[0]], NumberStyles.None, CultureInfo.InvariantCulture, out run)
            && int.TryParse(body[parts[1]], NumberStyles.None, CultureInfo.InvariantCulture, out step)
            && long.TryParse(body[parts[2]], NumberStyles.None, CultureInfo.InvariantCulture, out seq)
            && long.TryParse(body[parts[3]], NumberStyles.None, CultureInfo.InvariantCulture, out intended)
            && long.TryParse(body[parts[4]], NumberStyles.None, CultureInfo.InvariantCulture, out ticks);
    }

    /// <summary>Finds the body inside raw stanza bytes (relay payloads are the XML stanza, unparsed).</summary>
    public static bool TryParseStanzaBytes(ReadOnlySpan<byte> stanza, out int run, out int step, out long seq, out long intended, out long ticks)
    {
        run = step = 0;
        seq = intended = ticks = 0;
        int at = stanza.IndexOf("<body>"u8);
        if (at < 0) return false;
        var rest = stanza[(at + 6)..];
        int end = rest.IndexOf((byte)'<');
        if (end >= 0) rest = rest[..end];
        if (rest.Length > 96) rest = rest[..96];
        Span<char> chars = stackalloc char[rest.Length];
        for (int i = 0; i < rest.Length; i++) chars[i] = (char)rest[i];
        return TryParse(chars, out run, out step, out seq, out intended, out ticks);
    }
}

/// <summary>How the chat scenario reaches users: real XMPP sessions, or the relay floor.</summary>
internal interface IChatDriver : IAsyncDisposable
{
    /// <summary>Logged-in / connected users (slots 0..Online-1).</summary>
    int Online { get; }

    /// <summary>Sends one message; the task says whether the write succeeded.</summary>
    Task<bool> SendAsync(int fromSlot, int toSlot, byte[] xmlStanzaWithoutTo, string body);

    byte[] BuildStanza(int toSlot, long seq, string body);

    int ConnectedDropped();
}

internal static class ChatScenario
{
    internal static readonly int RunId = Random.Shared.Next(1, int.MaxValue);

    public static async Task<int> RunAsync(LoadOptions o, Reporter reporter, CancellationToken ct)
    {
        var server = await LoginPool.ResolveAsync(o);
        var steps = new ConcurrentDictionary<int, ChatStep>();

        void OnBody(int run, int step, long seq, long intended, long ticks)
        {
            long now = Stopwatch.GetTimestamp();
            if (run != RunId || !steps.TryGetValue(step, out var st)) return;
            Interlocked.Increment(ref st.Received);
            if (intended >= st.MeasureFrom)
            {
                Interlocked.Increment(ref st.ReceivedMeasured);
                st.Latency.Record((long)((now - ticks) * 1_000_000.0 / Stopwatch.Frequency));
                st.LatencyFromIntended.Record((long)((now - intended) * 1_000_000.0 / Stopwatch.Frequency));
            }
        }

        void OnError(int step, string condition)
        {
            if (steps.TryGetValue(step, out var st)) st.Errors.AddOrUpdate(condition, 1, (_, v) => v + 1);
        }

        IChatDriver driver;
        LoginRun? loginRun = null;
        if (o.Protocol == ChatProtocol.Xmpp)
        {
            var xmpp = await XmppChatDriver.CreateAsync(o, server, OnBody, OnError, ct);
            loginRun = xmpp.Run;
            driver = xmpp;
            var line = new ResultLine("chat-login").Set("server", $"{o.Host}:{o.Port}").Set("protocol", "xmpp");
            if (o.Label is not null) line.Set("label", o.Label);
            xmpp.Run.AddTo(line);
            reporter.Emit(line);
            if (xmpp.Online < 2)
            {
                await driver.DisposeAsync();
                Reporter.Progress("setup failure: fewer than two users online");
                return ExitCodes.SetupFailure;
            }
        }
        else
        {
            var relay = await RelayChatDriver.CreateAsync(o, server, OnBody, ct);
            driver = relay;
            if (relay.Online < 2)
            {
                await driver.DisposeAsync();
                Reporter.Progress("setup failure: could not connect to the relay");
                return ExitCodes.SetupFailure;
            }
        }

        var memory = ServerMemory.Create(o);
        double rate = o.Rate;
        double? best = null;
        string? stopReason = null;
        int maxSteps = o.Search ? o.SearchMaxSteps : 1;
        try
        {
            for (int s = 0; s < maxSteps && !ct.IsCancellationRequested; s++)
            {
                var st = new ChatStep(s, rate);
                steps[s] = st;
                var line = await RunStepAsync(o, driver, memory, st, ct);
                bool lossFree = Convert.ToInt64(line.Get("lost"), CultureInfo.InvariantCulture) == 0;
                double p99 = Convert.ToDouble(line.Get("p99_ms"), CultureInfo.InvariantCulture);
                double delivered = Convert.ToDouble(line.Get("delivered_per_s"), CultureInfo.InvariantCulture);
                var reasons = new List<string>();
                if (!lossFree) reasons.Add("loss");
                if (p99 >= o.P99LimitMs) reasons.Add($"p99>={o.P99LimitMs}ms");
                if (delivered < 0.95 * rate) reasons.Add("delivered<95%");
                // The offered load was not applied on schedule: the loadgen (or the machine) is the limit, not a pass.
                if (Convert.ToDouble(line.Get("send_lag_p99_ms"), CultureInfo.InvariantCulture) >= o.P99LimitMs) reasons.Add("loadgen-behind-schedule");
                line.Set("pass", reasons.Count == 0);
                if (reasons.Count > 0) line.Set("fail_reasons", string.Join(",", reasons));
                reporter.Emit(line);
                steps.TryRemove(s, out _);
                if (reasons.Count > 0)
                {
                    stopReason = $"{rate:F0} msgs/s failed: {string.Join(",", reasons)}";
                    break;
                }
                best = rate;
                rate = o.SearchStep > 0 ? rate + o.SearchStep : rate * o.SearchFactor;
            }
            if (o.Search)
            {
                var summary = new ResultLine("chat-search").Set("label", o.Label).Set("protocol", o.Protocol == ChatProtocol.Relay ? "relay" : "xmpp")
                    .Set("users", driver.Online).Set("highest_passing_rate", best)
                    .Set("stopped_because", stopReason ?? "max steps reached")
                    .Set("criteria", $"no loss, p99<{o.P99LimitMs}ms, delivered>=95% of target");
                reporter.Emit(summary);
            }
        }
        finally
        {
            await driver.DisposeAsync();
        }
        return ExitCodes.Ok;
    }

    private static async Task<ResultLine> RunStepAsync(LoadOptions o, IChatDriver driver, ServerMemory memory, ChatStep st, CancellationToken ct)
    {
        double seconds = o.Warmup + o.Duration;
        Reporter.Progress($"chat step {st.Step}: {st.Rate:F0} msgs/s for {o.Warmup:F0}+{o.Duration:F0} s over {driver.Online} users");
        long serverCpu0 = memory.SampleCpuTicks();
        var self0 = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();

        // Open loop: a dedicated thread sends each message at its scheduled time, whatever the replies do.
        var scheduler = new Thread(() => Schedule(o, driver, st, seconds, ct)) { IsBackground = true, Name = "chat-scheduler" };
        scheduler.Start();
        var progress = Stopwatch.StartNew();
        long lastRecv = 0;
        while (scheduler.IsAlive)
        {
            await Task.Delay(200, CancellationToken.None);
            if (progress.Elapsed.TotalSeconds >= o.ProgressSeconds)
            {
                long r = Interlocked.Read(ref st.Received);
                Reporter.Progress($"chat step {st.Step}: sent {Interlocked.Read(ref st.Sent)}, received {r} "
                    + $"({(r - lastRecv) / progress.Elapsed.TotalSeconds:F0}/s), errors {st.Errors.Values.Sum()}, send failures {Interlocked.Read(ref st.SendFailures)}");
                lastRecv = r;
                progress.Restart();
            }
        }
        double sendSeconds = wall.Elapsed.TotalSeconds;
        var selfCpu = Process.GetCurrentProcess().TotalProcessorTime - self0;
        long serverCpu = memory.SampleCpuTicks() - serverCpu0;

        // Drain: wait (bounded) for stragglers.
        var drain = Stopwatch.StartNew();
        while (drain.Elapsed.TotalSeconds < o.Drain
            && Interlocked.Read(ref st.Received) + st.Errors.Values.Sum() < Interlocked.Read(ref st.Sent) - Interlocked.Read(ref st.SendFailures))
            await Task.Delay(50, CancellationToken.None);

        long sent = Interlocked.Read(ref st.Sent);
        long received = Interlocked.Read(ref st.Received);
        // The measured window runs from the end of warmup to the last send (longer than --duration if the scheduler lagged).
        double measured = Math.Max(0.001, Math.Max(o.Duration, (st.LastSend - st.MeasureFrom) / (double)Stopwatch.Frequency));
        var line = new ResultLine("chat");
        if (o.Label is not null) line.Set("label", o.Label);
        line.Set("server", $"{o.Host}:{o.Port}")
            .Set("protocol", o.Protocol == ChatProtocol.Relay ? "relay" : "xmpp")
            .Set("step", st.Step)
            .Set("users", driver.Online)
            .Set("rate_target", st.Rate)
            .Set("duration_s", o.Duration)
            .Set("warmup_s", o.Warmup)
            .Set("message_bytes", driver.BuildStanza(1, 0, ChatBody.Format(RunId, st.Step, 0, Stopwatch.GetTimestamp(), Stopwatch.GetTimestamp(), o.BodyBytes)).Length)
            .Set("sent", sent)
            .Set("received", received)
            .Set("lost", sent - received)
            .Set("send_failures", Interlocked.Read(ref st.SendFailures))
            .Set("sent_per_s", Interlocked.Read(ref st.SentMeasured) / measured)
            .Set("delivered_per_s", Interlocked.Read(ref st.ReceivedMeasured) / measured)
            .Set("p50_ms", st.Latency.Percentile(50) / 1000.0)
            .Set("p99_ms", st.Latency.Percentile(99) / 1000.0)
            .Set("p999_ms", st.Latency.Percentile(99.9) / 1000.0)
            .Set("max_ms", st.Latency.Max / 1000.0)
            .Set("errors", new Dictionary<string, long>(st.Errors))
            .Set("p99_from_intended_ms", st.LatencyFromIntended.Percentile(99) / 1000.0)
            .Set("p999_from_intended_ms", st.LatencyFromIntended.Percentile(99.9) / 1000.0)
            .Set("send_lag_p99_ms", st.SendLag.Percentile(99) / 1000.0)
            .Set("max_send_lag_ms", Interlocked.Read(ref st.MaxLagTicks) * 1000.0 / Stopwatch.Frequency)
            .Set("loadgen_cpu_pct", selfCpu.TotalSeconds / sendSeconds * 100)
            .Set("dropped_connections", driver.ConnectedDropped());
        if (memory.Enabled)
            line.Set("server_pids", string.Join(",", memory.Pids)).Set("server_cpu_pct", serverCpu * 100.0 / ServerMemory.ClockTicksPerSecond / sendSeconds)
                .Set("server_rss_mb", memory.SampleRssBytes() / (1024.0 * 1024.0));
        return line;
    }

    private static void Schedule(LoadOptions o, IChatDriver driver, ChatStep st, double seconds, CancellationToken ct)
    {
        int n = driver.Online;
        double interval = Stopwatch.Frequency / st.Rate;
        long total = (long)(st.Rate * seconds);
        long start = Stopwatch.GetTimestamp();
        st.MeasureFrom = start + (long)(o.Warmup * Stopwatch.Frequency);
        var rnd = new Random(o.Seed + st.Step);
        long seq = 0;
        while (seq < total && !ct.IsCancellationRequested)
        {
            long now = Stopwatch.GetTimestamp();
            long due = Math.Min(total, (long)((now - start) / interval) + 1);
            while (seq < due)
            {
                long intended = start + (long)(seq * interval);
                int from = rnd.Next(n);
                int to = rnd.Next(n - 1);
                if (to >= from) to++;
                // Stamped with the actual send time: the scheduler never waits on the server (writes are fire-and-forget,
                // queued per connection), so this hides no server stall; the scheduler's own lag is reported separately.
                long stamp = Stopwatch.GetTimestamp();
                string body = ChatBody.Format(RunId, st.Step, seq, intended, stamp, o.BodyBytes);
                st.LastSend = stamp;
                byte[] stanza = driver.BuildStanza(to, seq, body);
                Interlocked.Increment(ref st.Sent);
                if (intended >= st.MeasureFrom) Interlocked.Increment(ref st.SentMeasured);
                st.CountFailure(driver.SendAsync(from, to, stanza, body));
                seq++;
                long lag = stamp - intended;
                if (lag > st.MaxLagTicks) st.MaxLagTicks = lag;
                st.SendLag.Record((long)(lag * 1_000_000.0 / Stopwatch.Frequency));
            }
            // ~1 ms ticks: messages due within the same tick go out as a burst (no busy-waiting, which would
            // take a core from the server on a small machine).
            Thread.Sleep(1);
        }
    }

    /// <summary>Chat over real XMPP sessions.</summary>
    internal sealed class XmppChatDriver : IChatDriver
    {
        private readonly XmppClient[] _online;

        private XmppChatDriver(LoginRun run, XmppClient[] online)
        {
            Run = run;
            _online = online;
        }

        public LoginRun Run { get; }

        public int Online => _online.Length;

        public string BareJidOf(int slot) => _online[slot].BareJid;

        public static async Task<XmppChatDriver> CreateAsync(LoadOptions o, IPEndPoint server,
            Action<int, int, long, long, long> onBody, Action<int, string> onError, CancellationToken ct)
        {
            var run = await LoginPool.LoginAllAsync(o, server, keep: true, online: async (c, r) =>
            {
                c.OnMessage = (_, m) =>
                {
                    string? text = m.ElementText("body", m.Namespace);
                    if (text is null || !ChatBody.TryParse(text, out int runId, out int step, out long seq, out long intended, out long ticks))
                        return;
                    if (m.GetAttribute("type") == "error")
                    {
                        if (runId == RunId) onError(step, XmppClient.ErrorCondition(m));
                        return;
                    }
                    onBody(runId, step, seq, intended, ticks);
                };
                var loop = c.ReceiveLoopAsync(ct);
                lock (r.ReceiveLoops) r.ReceiveLoops.Add(loop);
                await c.SendInitialPresenceAsync(ct);
            }, ct);
            var online = run.Clients.Where(c => c is not null).Select(c => c!).ToArray();
            return new XmppChatDriver(run, online);
        }

        public byte[] BuildStanza(int toSlot, long seq, string body) =>
            Encoding.UTF8.GetBytes("<message to='" + XmppClient.Escape(_online[toSlot].BareJid) + "' type='chat' id='m"
                + seq.ToString(CultureInfo.InvariantCulture) + "'><body>" + body + "</body></message>");

        public Task<bool> SendAsync(int fromSlot, int toSlot, byte[] xmlStanzaWithoutTo, string body) =>
            _online[fromSlot].SendQuietlyAsync(xmlStanzaWithoutTo);

        public int ConnectedDropped() => _online.Count(c => c.Closed);

        public async ValueTask DisposeAsync() => await LoginPool.CloseAllAsync(Run);
    }

    /// <summary>Chat over the relay floor: same payload bytes (the XML stanza), index addressing, no XML work.</summary>
    private sealed class RelayChatDriver : IChatDriver
    {
        private readonly RelayClient[] _clients;
        private readonly List<Task> _loops;

        private RelayChatDriver(RelayClient[] clients, List<Task> loops)
        {
            _clients = clients;
            _loops = loops;
        }

        public int Online => _clients.Length;

        public static async Task<RelayChatDriver> CreateAsync(LoadOptions o, IPEndPoint server, Action<int, int, long, long, long> onBody, CancellationToken ct)
        {
            var clients = new RelayClient?[o.Users];
            var loops = new List<Task>();
            long failed = 0;
            using var gate = new SemaphoreSlim(o.Concurrency);
            await Task.WhenAll(Enumerable.Range(0, o.Users).Select(async i =>
            {
                await gate.WaitAsync(ct);
                try
                {
                    var c = new RelayClient(i);
                    c.OnFrame = (_, payload) =>
                    {
                        bool ok;
                        int run, step;
                        long seq, intended, ticks;
                        if (payload.IsSingleSegment)
                        {
                            ok = ChatBody.TryParseStanzaBytes(payload.FirstSpan, out run, out step, out seq, out intended, out ticks);
                        }
                        else
                        {
                            byte[] copy = ArrayPool<byte>.Shared.Rent((int)payload.Length);
                            payload.CopyTo(copy);
                            ok = ChatBody.TryParseStanzaBytes(copy.AsSpan(0, (int)payload.Length), out run, out step, out seq, out intended, out ticks);
                            ArrayPool<byte>.Shared.Return(copy);
                        }
                        if (ok) onBody(run, step, seq, intended, ticks);
                    };
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    timeout.CancelAfter(TimeSpan.FromSeconds(o.Timeout));
                    await c.ConnectAsync(server, LoginPool.SourceFor(o, i), timeout.Token);
                    clients[i] = c;
                    lock (loops) loops.Add(c.ReceiveLoopAsync(ct));
                }
                catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
                {
                    Interlocked.Increment(ref failed);
                }
                finally
                {
                    gate.Release();
                }
            }));
            if (failed > 0) Reporter.Progress($"relay: {failed} connections failed");
            // Slots must be dense: keep only connected clients, in index order (relay addressing uses the index).
            var connected = clients.Where(c => c is not null).Select(c => c!).ToArray();
            // Let the relay register every HELLO before traffic starts.
            await Task.Delay(200, ct);
            return new RelayChatDriver(connected, loops);
        }

        public byte[] BuildStanza(int toSlot, long seq, string body) =>
            Encoding.UTF8.GetBytes("<message to='user" + _clients[toSlot].Index.ToString(CultureInfo.InvariantCulture)
                + "@localhost' type='chat' id='m" + seq.ToString(CultureInfo.InvariantCulture) + "'><body>" + body + "</body></message>");

        public Task<bool> SendAsync(int fromSlot, int toSlot, byte[] xmlStanzaWithoutTo, string body) =>
            _clients[fromSlot].SendAsync(RelayFraming.Frame(_clients[toSlot].Index, xmlStanzaWithoutTo));

        public int ConnectedDropped() => _clients.Count(c => c.CloseReason is not null);

        public async ValueTask DisposeAsync()
        {
            foreach (var c in _clients) await c.DisposeAsync();
            await Task.WhenAny(Task.WhenAll(_loops), Task.Delay(2000));
        }
    }
}
