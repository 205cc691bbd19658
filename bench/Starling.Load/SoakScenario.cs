using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;

namespace Starling.Load;

/// <summary>
/// The soak (issue #13): --users chat users stay online and exchange --rate msgs/s (open loop, random bare JIDs) for
/// --duration s, while churn users (user{first+users}..., --churn-users of them) log in at --churn-rate per second, send
/// presence and one message, stay --session-seconds and log out. Every --sample s a "soak-window" line reports that
/// window's messages (sent, delivered, lost, latency), logins and logouts, and the server's RSS and CPU; the closing
/// "soak" line compares the server's peak RSS over the last five minutes with its peak over the five minutes after
/// --warmup and passes when it grew by at most --max-rss-growth percent, nothing was lost and every login succeeded.
/// </summary>
internal static class SoakScenario
{
    /// <summary>How long after a window ends its late messages are still counted.</summary>
    private const double GraceSeconds = 5;

    /// <summary>How long a span the RSS verdict compares: the peak over this long after the warm-up vs at the end.</summary>
    private const double RssSpanSeconds = 300;

    public static async Task<int> RunAsync(LoadOptions o, Reporter reporter, CancellationToken ct)
    {
        if (o.BurstLogins == 0 && o.ChurnRate > 0 && o.ChurnUsers < o.ChurnRate * (o.SessionSeconds + o.Timeout))
            Reporter.Progress($"soak: note: {o.ChurnUsers} churn users may be too few for {o.ChurnRate}/s × ({o.SessionSeconds}+{o.Timeout}) s; "
                + "a login whose user is still busy is skipped and counted");
        var server = await LoginPool.ResolveAsync(o);
        var windows = new ConcurrentDictionary<int, ChatStep>();

        void OnBody(int run, int window, long seq, long intended, long ticks)
        {
            long now = Stopwatch.GetTimestamp();
            if (run != ChatScenario.RunId || !windows.TryGetValue(window, out var w)) return;
            Interlocked.Increment(ref w.Received);
            Interlocked.Increment(ref w.ReceivedMeasured);
            w.Latency.Record((long)((now - ticks) * 1_000_000.0 / Stopwatch.Frequency));
            w.LatencyFromIntended.Record((long)((now - intended) * 1_000_000.0 / Stopwatch.Frequency));
        }

        void OnError(int window, string condition)
        {
            if (windows.TryGetValue(window, out var w)) w.Errors.AddOrUpdate(condition, 1, (_, v) => v + 1);
        }

        var chat = await ChatScenario.XmppChatDriver.CreateAsync(o, server, OnBody, OnError, ct);
        var loginLine = new ResultLine("soak-login").Set("label", o.Label);
        chat.Run.AddTo(loginLine);
        reporter.Emit(loginLine);
        if (chat.Online < 2)
        {
            await chat.DisposeAsync();
            Reporter.Progress("setup failure: fewer than two chat users online");
            return ExitCodes.SetupFailure;
        }

        var memory = ServerMemory.Create(o);
        var churn = new Churn(o, server, chat);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var clock = Stopwatch.StartNew();
        long start = Stopwatch.GetTimestamp();
        int windowCount = (int)Math.Ceiling(o.Duration / o.SampleSeconds);
        for (int k = 0; k < windowCount; k++) windows[k] = new ChatStep(k, o.Rate) { MeasureFrom = 0 };

        var scheduler = new Thread(() => Schedule(o, chat, windows, start, stop.Token)) { IsBackground = true, Name = "soak-scheduler" };
        scheduler.Start();
        var churnTask = churn.RunAsync(start, stop.Token);

        // Window k covers [k·sample, (k+1)·sample). The server's RSS is read every second (a GC heap's sawtooth swings
        // by more than the 10 % the soak allows, so one reading per window would measure the phase of the sawtooth):
        // each window reports its peak and mean, and the verdict compares peaks over spans of several windows.
        var rssPeak = new double?[windowCount];
        var rssSum = new double[windowCount];
        var rssCount = new int[windowCount];
        var serverCpu = new long[windowCount + 1];
        var selfCpu = new TimeSpan[windowCount + 1];
        var churnAt = new ChurnCounts[windowCount + 1];
        serverCpu[0] = memory.SampleCpuTicks();
        selfCpu[0] = Process.GetCurrentProcess().TotalProcessorTime;
        churnAt[0] = churn.Counts();
        int sampled = 0, reported = 0;
        double nextRss = 0;
        var results = new Summary();
        while (reported < windowCount && !ct.IsCancellationRequested)
        {
            await Task.Delay(200, CancellationToken.None);
            double t = clock.Elapsed.TotalSeconds;
            if (t >= nextRss && t < o.Duration && memory.SampleRssBytes() is long bytes)
            {
                nextRss = Math.Floor(t) + 1;
                int k = Math.Min(windowCount - 1, (int)(t / o.SampleSeconds));
                double mb = bytes / (1024.0 * 1024.0);
                rssPeak[k] = Math.Max(rssPeak[k] ?? mb, mb);
                rssSum[k] += mb;
                rssCount[k]++;
            }
            while (sampled < windowCount && t >= Math.Min(o.Duration, (sampled + 1) * o.SampleSeconds))
            {
                serverCpu[sampled + 1] = memory.SampleCpuTicks();
                selfCpu[sampled + 1] = Process.GetCurrentProcess().TotalProcessorTime;
                churnAt[sampled + 1] = churn.Counts();
                sampled++;
            }
            while (reported < sampled && t >= Math.Min(o.Duration, (reported + 1) * o.SampleSeconds) + GraceSeconds)
            {
                int k = reported++;
                windows.TryRemove(k, out var w);
                double begin = k * o.SampleSeconds, end = Math.Min(o.Duration, (k + 1) * o.SampleSeconds);
                double? mean = rssCount[k] > 0 ? rssSum[k] / rssCount[k] : null;
                var line = WindowLine(o, w!, begin, end, rssPeak[k], mean, memory, serverCpu[k + 1] - serverCpu[k],
                    selfCpu[k + 1] - selfCpu[k], churnAt[k + 1].Minus(churnAt[k]), churn.Online, chat.ConnectedDropped());
                results.Add(w!, churnAt[k + 1].Minus(churnAt[k]));
                reporter.Emit(line);
                Reporter.Progress(string.Create(CultureInfo.InvariantCulture,
                    $"soak {end:F0}/{o.Duration:F0} s: delivered {w!.Received}/{w.Sent}, p99 {w.Latency.Percentile(99) / 1000.0:F2} ms, "
                    + $"logins {churnAt[k + 1].Logins - churnAt[k].Logins} (failed {churnAt[k + 1].Failures - churnAt[k].Failures}), rss peak {rssPeak[k]:F1} MiB"));
            }
        }

        await stop.CancelAsync();
        scheduler.Join(TimeSpan.FromSeconds(5));
        await churnTask;
        // The baseline is the peak over the span right after the warm-up, the end the peak over the same span at the end.
        double span = Math.Max(o.SampleSeconds, Math.Min(RssSpanSeconds, (o.Duration - o.Warmup) / 2));
        double? baseline = PeakOver(rssPeak, o, o.Warmup, o.Warmup + span);
        double? last = PeakOver(rssPeak, o, o.Duration - span, o.Duration);
        double? maxAfterWarmup = PeakOver(rssPeak, o, o.Warmup, o.Duration);
        var summary = new ResultLine("soak")
            .Set("label", o.Label)
            .Set("duration_s", o.Duration)
            .Set("warmup_s", o.Warmup)
            .Set("rate_target", o.Rate)
            .Set("users", chat.Online)
            .Set("churn_rate", o.BurstLogins > 0 ? null : o.ChurnRate)
            .Set("burst_logins", o.BurstLogins > 0 ? o.BurstLogins : null)
            .Set("burst_every_s", o.BurstLogins > 0 ? o.BurstEvery : null)
            .Set("session_seconds", o.SessionSeconds)
            .Set("sent", results.Sent)
            .Set("received", results.Received)
            .Set("lost", results.Sent - results.Received)
            .Set("errors", results.Errors)
            .Set("p99_ms_worst_window", results.WorstP99Ms)
            .Set("p999_ms_worst_window", results.WorstP999Ms)
            .Set("logins", results.Churn.Logins)
            .Set("login_failures", results.Churn.Failures)
            .Set("login_failure_reasons", new Dictionary<string, long>(churn.FailureReasons))
            .Set("logouts", results.Churn.Logouts)
            .Set("churn_skipped", results.Churn.Skipped)
            .Set("churn_dropped", results.Churn.Dropped)
            .Set("chat_connections_dropped", chat.ConnectedDropped())
            .Set("rss_span_s", span)
            .Set("rss_after_warmup_mb", baseline)
            .Set("rss_max_after_warmup_mb", maxAfterWarmup)
            .Set("rss_end_mb", last);
        var reasons = new List<string>();
        if (baseline is double b && last is double l)
        {
            double growth = (l - b) / b * 100;
            summary.Set("rss_growth_pct", growth);
            if (growth > o.MaxRssGrowthPercent) reasons.Add($"rss grew {growth:F1}% > {o.MaxRssGrowthPercent}%");
        }
        else if (memory.Enabled)
        {
            reasons.Add("no rss after warm-up (duration shorter than warm-up?)");
        }
        if (results.Sent != results.Received) reasons.Add($"{results.Sent - results.Received} messages lost");
        if (results.Churn.Failures > 0) reasons.Add($"{results.Churn.Failures} logins failed");
        if (chat.ConnectedDropped() > 0 || results.Churn.Dropped > 0) reasons.Add("connections dropped");
        summary.Set("pass", reasons.Count == 0);
        if (reasons.Count > 0) summary.Set("fail_reasons", string.Join("; ", reasons));
        reporter.Emit(summary);
        await chat.DisposeAsync();
        return ExitCodes.Ok;
    }

    /// <summary>The highest RSS peak of the windows that lie within [from, to] (windows are whole: partly inside counts).</summary>
    private static double? PeakOver(double?[] peaks, LoadOptions o, double from, double to)
    {
        double? peak = null;
        for (int k = 0; k < peaks.Length; k++)
        {
            double begin = k * o.SampleSeconds, end = Math.Min(o.Duration, (k + 1) * o.SampleSeconds);
            if (end <= from || begin >= to || peaks[k] is not double p) continue;
            peak = Math.Max(peak ?? p, p);
        }
        return peak;
    }

    private static ResultLine WindowLine(LoadOptions o, ChatStep w, double begin, double end, double? rssPeakMb, double? rssMeanMb, ServerMemory memory,
        long serverCpuTicks, TimeSpan selfCpu, ChurnCounts churn, int churnOnline, int chatDropped)
    {
        double seconds = Math.Max(0.001, end - begin);
        var line = new ResultLine("soak-window")
            .Set("label", o.Label)
            .Set("window", w.Step)
            .Set("t_end_s", end)
            .Set("rate_target", o.Rate)
            .Set("sent", w.Sent)
            .Set("received", w.Received)
            .Set("lost", w.Sent - w.Received)
            .Set("send_failures", w.SendFailures)
            .Set("errors", new Dictionary<string, long>(w.Errors))
            .Set("delivered_per_s", w.Received / seconds)
            .Set("p50_ms", w.Latency.Percentile(50) / 1000.0)
            .Set("p99_ms", w.Latency.Percentile(99) / 1000.0)
            .Set("p999_ms", w.Latency.Percentile(99.9) / 1000.0)
            .Set("max_ms", w.Latency.Max / 1000.0)
            .Set("send_lag_p99_ms", w.SendLag.Percentile(99) / 1000.0)
            .Set("logins", churn.Logins)
            .Set("login_failures", churn.Failures)
            .Set("logouts", churn.Logouts)
            .Set("churn_online", churnOnline)
            .Set("chat_connections_dropped", chatDropped)
            .Set("loadgen_cpu_pct", selfCpu.TotalSeconds / seconds * 100);
        if (memory.Enabled)
            line.Set("server_rss_mb", rssPeakMb).Set("server_rss_mean_mb", rssMeanMb).Set("server_cpu_pct", serverCpuTicks * 100.0 / ServerMemory.ClockTicksPerSecond / seconds);
        return line;
    }

    /// <summary>Open loop over the whole run: each message carries the index of the window it was sent in.</summary>
    private static void Schedule(LoadOptions o, ChatScenario.XmppChatDriver driver, ConcurrentDictionary<int, ChatStep> windows, long start, CancellationToken ct)
    {
        int n = driver.Online;
        double interval = Stopwatch.Frequency / o.Rate;
        long total = (long)(o.Rate * o.Duration);
        long windowTicks = (long)(o.SampleSeconds * Stopwatch.Frequency);
        var rnd = new Random(o.Seed);
        long seq = 0;
        while (seq < total && !ct.IsCancellationRequested)
        {
            long now = Stopwatch.GetTimestamp();
            long due = Math.Min(total, (long)((now - start) / interval) + 1);
            while (seq < due)
            {
                long intended = start + (long)(seq * interval);
                int k = (int)((intended - start) / windowTicks);
                if (!windows.TryGetValue(k, out var w)) break;
                int from = rnd.Next(n);
                int to = rnd.Next(n - 1);
                if (to >= from) to++;
                long stamp = Stopwatch.GetTimestamp();
                string body = ChatBody.Format(ChatScenario.RunId, k, seq, intended, stamp, o.BodyBytes);
                byte[] stanza = driver.BuildStanza(to, seq, body);
                Interlocked.Increment(ref w.Sent);
                w.CountFailure(driver.SendAsync(from, to, stanza, body));
                seq++;
                w.SendLag.Record((long)((stamp - intended) * 1_000_000.0 / Stopwatch.Frequency));
            }
            Thread.Sleep(1);
        }
    }

    private readonly record struct ChurnCounts(long Logins, long Failures, long Logouts, long Skipped, long Dropped)
    {
        public ChurnCounts Minus(ChurnCounts o) => new(Logins - o.Logins, Failures - o.Failures, Logouts - o.Logouts, Skipped - o.Skipped, Dropped - o.Dropped);
    }

    private sealed class Summary
    {
        public long Sent, Received;
        public double WorstP99Ms, WorstP999Ms;
        public ChurnCounts Churn;
        public Dictionary<string, long> Errors { get; } = new();

        public void Add(ChatStep w, ChurnCounts churn)
        {
            Sent += w.Sent;
            Received += w.Received;
            WorstP99Ms = Math.Max(WorstP99Ms, w.Latency.Percentile(99) / 1000.0);
            WorstP999Ms = Math.Max(WorstP999Ms, w.Latency.Percentile(99.9) / 1000.0);
            foreach (var (k, v) in w.Errors) Errors[k] = Errors.GetValueOrDefault(k) + v;
            Churn = new ChurnCounts(Churn.Logins + churn.Logins, Churn.Failures + churn.Failures, Churn.Logouts + churn.Logouts,
                Churn.Skipped + churn.Skipped, Churn.Dropped + churn.Dropped);
        }
    }

    /// <summary>Churn users: each logs in, sends presence and one message to a chat user, stays, and logs out.</summary>
    private sealed class Churn
    {
        private readonly LoadOptions _o;
        private readonly IPEndPoint _server;
        private readonly ChatScenario.XmppChatDriver _chat;
        private readonly int[] _busy;
        private readonly List<Task> _sessions = [];
        private long _logins, _failures, _logouts, _skipped, _dropped;
        private int _online;

        public Churn(LoadOptions o, IPEndPoint server, ChatScenario.XmppChatDriver chat)
        {
            _o = o;
            _server = server;
            _chat = chat;
            _busy = new int[Math.Max(1, o.ChurnUsers)];
        }

        public ConcurrentDictionary<string, long> FailureReasons { get; } = new();

        public int Online => Volatile.Read(ref _online);

        public ChurnCounts Counts() => new(Interlocked.Read(ref _logins), Interlocked.Read(ref _failures), Interlocked.Read(ref _logouts),
            Interlocked.Read(ref _skipped), Interlocked.Read(ref _dropped));

        public async Task RunAsync(long start, CancellationToken ct)
        {
            if (_o.BurstLogins > 0)
            {
                await RunBurstsAsync(start, ct);
                return;
            }
            if (_o.ChurnRate <= 0 || _o.ChurnUsers == 0) return;
            long started = 0;
            long limit = (long)(_o.ChurnRate * Math.Max(0, _o.Duration - _o.SessionSeconds));
            var rnd = new Random(_o.Seed + 1);
            try
            {
                while (started < limit && !ct.IsCancellationRequested)
                {
                    double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
                    long due = Math.Min(limit, (long)(elapsed * _o.ChurnRate) + 1);
                    while (started < due)
                    {
                        int slot = (int)(started % _busy.Length);
                        started++;
                        if (Interlocked.CompareExchange(ref _busy[slot], 1, 0) != 0)
                        {
                            Interlocked.Increment(ref _skipped);
                            continue;
                        }
                        var task = SessionAsync(slot, rnd.Next(_chat.Online), ct);
                        lock (_sessions)
                        {
                            _sessions.RemoveAll(t => t.IsCompleted);
                            _sessions.Add(task);
                        }
                    }
                    await Task.Delay(10, ct);
                }
            }
            catch (OperationCanceledException)
            {
            }
            Task[] pending;
            lock (_sessions) pending = [.. _sessions];
            await Task.WhenAny(Task.WhenAll(pending), Task.Delay(TimeSpan.FromSeconds(_o.Timeout), CancellationToken.None));
        }

        /// <summary>
        /// Bursts: every --burst-every s, --burst-logins churn users log in at once (at most --concurrency logins in flight,
        /// as a reconnect storm after a network outage would come), stay --session-seconds and log out. A user still busy
        /// from the previous burst is skipped and counted.
        /// </summary>
        private async Task RunBurstsAsync(long start, CancellationToken ct)
        {
            // Not disposed: sessions still logging out when the run ends may release it (it holds no OS handle).
            var gate = new SemaphoreSlim(_o.Concurrency);
            var rnd = new Random(_o.Seed + 1);
            int users = Math.Min(_o.BurstLogins, _busy.Length);
            try
            {
                for (int burst = 1; ; burst++)
                {
                    double at = burst * _o.BurstEvery;
                    if (at + _o.SessionSeconds > _o.Duration) break;
                    double wait = at - Stopwatch.GetElapsedTime(start).TotalSeconds;
                    if (wait > 0) await Task.Delay(TimeSpan.FromSeconds(wait), ct);
                    Reporter.Progress(string.Create(CultureInfo.InvariantCulture, $"soak: burst {burst}: {users} logins at {at:F0} s"));
                    for (int slot = 0; slot < users; slot++)
                    {
                        if (Interlocked.CompareExchange(ref _busy[slot], 1, 0) != 0)
                        {
                            Interlocked.Increment(ref _skipped);
                            continue;
                        }
                        var task = SessionAsync(slot, rnd.Next(_chat.Online), ct, gate);
                        lock (_sessions)
                        {
                            _sessions.RemoveAll(t => t.IsCompleted);
                            _sessions.Add(task);
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
            Task[] pending;
            lock (_sessions) pending = [.. _sessions];
            await Task.WhenAny(Task.WhenAll(pending), Task.Delay(TimeSpan.FromSeconds(_o.Timeout), CancellationToken.None));
        }

        private async Task SessionAsync(int slot, int chatSlot, CancellationToken ct, SemaphoreSlim? loginGate = null)
        {
            await Task.Yield();
            int userNumber = _o.First + _o.Users + slot;
            var client = new XmppClient(slot, _o.UserName(userNumber), _o.Domain);
            var settings = new LoginSettings(_o.Tls, _o.Mechanism, _o.Password(userNumber), "churn", KeyCache: !_o.NoKeyCache);
            bool loggedIn = false;
            try
            {
                if (loginGate is not null) await loginGate.WaitAsync(ct);
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    timeout.CancelAfter(TimeSpan.FromSeconds(_o.Timeout));
                    try
                    {
                        await client.LoginAsync(_server, LoginPool.SourceFor(_o, slot), settings, timeout.Token);
                    }
                    catch (Exception ex) when (!ct.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref _failures);
                        FailureReasons.AddOrUpdate(LoginPool.Classify(ex, client, timeout.IsCancellationRequested), 1, (_, v) => v + 1);
                        return;
                    }
                    finally
                    {
                        loginGate?.Release();
                    }
                }
                loggedIn = true;
                Interlocked.Increment(ref _logins);
                Interlocked.Increment(ref _online);
                var loop = client.ReceiveLoopAsync(ct);
                await client.SendQuietlyAsync("<presence/>"u8.ToArray());
                await client.SendQuietlyAsync(Encoding.UTF8.GetBytes("<message type='chat' to='" + XmppClient.Escape(_chat.BareJidOf(chatSlot))
                    + "'><body>churn</body></message>"));
                await Task.Delay(TimeSpan.FromSeconds(_o.SessionSeconds), ct);
                if (client.Closed) Interlocked.Increment(ref _dropped);
                await client.CloseAsync();
                Interlocked.Increment(ref _logouts);
                try
                {
                    await loop.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
                }
                catch (Exception ex) when (ex is TimeoutException or IOException or OperationCanceledException or System.Net.Sockets.SocketException or ObjectDisposedException)
                {
                }
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                // The run is over: sessions still online are closed below.
            }
            finally
            {
                if (loggedIn) Interlocked.Decrement(ref _online);
                client.Abort();
                Volatile.Write(ref _busy[slot], 0);
            }
        }
    }
}
