using System.Diagnostics;
using System.Globalization;

namespace Starling.Load;

/// <summary>Exit codes: 0 ran (even with some failures), 2 usage, 3 setup failure (nothing could log in / connect).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Usage = 2;
    public const int SetupFailure = 3;
}

internal static class Scenarios
{
    private const double Mb = 1024.0 * 1024.0;

    private static ResultLine Header(string scenario, LoadOptions o)
    {
        var line = new ResultLine(scenario);
        if (o.Label is not null) line.Set("label", o.Label);
        return line.Set("server", $"{o.Host}:{o.Port}").Set("domain", o.Domain).Set("users", o.Users)
            .Set("concurrency", o.Concurrency).Set("mechanism", o.Mechanism).Set("tls", o.Tls == TlsMode.StartTls ? "starttls" : "none")
            .Set("source_addresses", o.EffectiveSourceAddresses);
    }

    private static int SetupFailed(LoginRun run)
    {
        Reporter.Progress("setup failure: no user could log in; reasons: "
            + string.Join(", ", run.FailureMap.OrderByDescending(p => p.Value).Select(p => $"{p.Key}={p.Value}")));
        return ExitCodes.SetupFailure;
    }

    /// <summary>`login`: N logins with concurrency C; logins/s, latency percentiles, failure reasons.</summary>
    public static async Task<int> LoginAsync(LoadOptions o, Reporter reporter, CancellationToken ct)
    {
        var server = await LoginPool.ResolveAsync(o);
        if (!o.Cold && !o.NoKeyCache)
        {
            // An unmeasured first pass fills the client key cache, so the measured pass is a reconnect storm of
            // clients that know their keys (the server's work, not the load generator's PBKDF2). --cold skips it.
            var warm = await LoginPool.LoginAllAsync(o, server, keep: false, online: null, ct);
            Reporter.Progress($"login: warm pass done ({warm.Succeeded} logins); measuring");
        }
        var run = await LoginPool.LoginAllAsync(o, server, o.Keep, online: null, ct);
        var line = Header("login", o).Set("keep", o.Keep).Set("cold", o.Cold || o.NoKeyCache);
        run.AddTo(line);
        reporter.Emit(line);
        if (o.Keep) await LoginPool.CloseAllAsync(run);
        return run.Succeeded == 0 ? SetupFailed(run) : ExitCodes.Ok;
    }

    /// <summary>`idle`: hold N sessions for --duration answering pings; server RSS per session, loadgen's own memory.</summary>
    public static async Task<int> IdleAsync(LoadOptions o, Reporter reporter, CancellationToken ct)
    {
        var server = await LoginPool.ResolveAsync(o);
        var memory = ServerMemory.Create(o);
        if (!memory.Enabled) Reporter.Progress("note: no --server-pid/--server-name (or no match): server RSS will not be reported");
        long? rssBefore = memory.SampleRssBytes();
        GC.Collect();
        var (selfBefore, _) = ServerMemory.Self();

        var run = await LoginPool.LoginAllAsync(o, server, keep: true, online: async (c, r) =>
        {
            var loop = c.ReceiveLoopAsync(ct);
            lock (r.ReceiveLoops) r.ReceiveLoops.Add(loop);
            await c.SendInitialPresenceAsync(ct);
        }, ct);
        if (run.Succeeded == 0) return SetupFailed(run);
        long? rssAfterLogin = memory.SampleRssBytes();
        Reporter.Progress($"idle: {run.Succeeded} sessions online; holding for {o.Duration:F0} s");

        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < o.Duration && !ct.IsCancellationRequested)
        {
            double left = o.Duration - sw.Elapsed.TotalSeconds;
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(o.ProgressSeconds, Math.Max(0.05, left))), ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            var clients = run.Clients.Where(c => c is not null).ToList();
            Reporter.Progress($"idle: {clients.Count(c => !c!.Closed)} online, {clients.Sum(c => Interlocked.Read(ref c!.PingsAnswered))} pings answered, "
                + $"server RSS {Fmt(memory.SampleRssBytes())} MB, t={sw.Elapsed.TotalSeconds:F0}s");
        }

        long? rssEnd = memory.SampleRssBytes();
        GC.Collect();
        var (selfEnd, managed) = ServerMemory.Self();
        var kept = run.Clients.Where(c => c is not null).Select(c => c!).ToList();
        var dropped = kept.Where(c => c.Closed).GroupBy(c => c.CloseReason ?? "closed")
            .ToDictionary(g => g.Key, g => (long)g.Count());

        var line = Header("idle", o).Set("duration_s", o.Duration);
        run.AddTo(line);
        line.Set("sessions_held", kept.Count - dropped.Values.Sum())
            .Set("dropped", dropped)
            .Set("pings_answered", kept.Sum(c => Interlocked.Read(ref c.PingsAnswered)))
            .Set("server_pids", string.Join(",", memory.Pids))
            .Set("server_rss_before_mb", rssBefore / Mb)
            .Set("server_rss_after_login_mb", rssAfterLogin / Mb)
            .Set("server_rss_end_mb", rssEnd / Mb)
            .Set("server_rss_per_session_kb", rssBefore is long b && rssEnd is long e ? (e - b) / 1024.0 / run.Succeeded : null)
            .Set("loadgen_rss_mb", selfEnd / Mb)
            .Set("loadgen_managed_mb", managed / Mb)
            .Set("loadgen_rss_per_session_kb", (selfEnd - selfBefore) / 1024.0 / run.Succeeded);
        reporter.Emit(line);
        await LoginPool.CloseAllAsync(run);
        return ExitCodes.Ok;
    }

    private static string Fmt(long? bytes) => bytes is long b ? (b / Mb).ToString("F1", CultureInfo.InvariantCulture) : "?";
}
