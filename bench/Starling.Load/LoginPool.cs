using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;

namespace Starling.Load;

/// <summary>Outcome of logging in N users with bounded concurrency.</summary>
internal sealed class LoginRun
{
    public LoginRun(int users) => Clients = new XmppClient?[users];

    /// <summary>Login latency in microseconds (TCP connect → initial presence sent).</summary>
    public LatencyHistogram Latency { get; } = new();

    public ConcurrentDictionary<string, long> Failures { get; } = new();

    /// <summary>Logged-in clients by index (null where the login failed or the client was closed after login).</summary>
    public XmppClient?[] Clients { get; }

    public List<Task> ReceiveLoops { get; } = [];

    public int Succeeded;
    public double Seconds;

    public IReadOnlyDictionary<string, long> FailureMap => new Dictionary<string, long>(Failures);

    public long FailureCount => Failures.Values.Sum();

    public void Fail(string reason) => Failures.AddOrUpdate(reason, 1, (_, v) => v + 1);

    public void AddTo(ResultLine line)
    {
        line.Set("attempted", Clients.Length)
            .Set("logged_in", Succeeded)
            .Set("failed", FailureCount)
            .Set("login_seconds", Seconds)
            .Set("logins_per_s", Seconds > 0 ? Succeeded / Seconds : 0)
            .Set("login_p50_ms", Latency.Percentile(50) / 1000.0)
            .Set("login_p99_ms", Latency.Percentile(99) / 1000.0)
            .Set("login_max_ms", Latency.Max / 1000.0)
            .Set("failures", FailureMap);
    }
}

internal static class LoginPool
{
    public static async Task<IPEndPoint> ResolveAsync(LoadOptions o)
    {
        if (IPAddress.TryParse(o.Host, out var ip)) return new IPEndPoint(ip, o.Port);
        var addresses = await Dns.GetHostAddressesAsync(o.Host);
        var chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.First();
        return new IPEndPoint(chosen, o.Port);
    }

    /// <summary>Source address for client <paramref name="index"/>: 127.0.0.(2 + index mod K), or null for the kernel's choice.</summary>
    public static IPAddress? SourceFor(LoadOptions o, int index)
    {
        int k = o.EffectiveSourceAddresses;
        if (k <= 0) return null;
        return new IPAddress(new byte[] { 127, 0, 0, (byte)(2 + index % k) });
    }

    /// <summary>
    /// Logs in users First..First+Users-1 with at most Concurrency logins in flight. <paramref name="online"/> runs right
    /// after bind (install handlers, start the receive loop, send presence); it is part of the measured login.
    /// Unless <paramref name="keep"/>, each client is closed right after its login.
    /// </summary>
    public static async Task<LoginRun> LoginAllAsync(LoadOptions o, IPEndPoint server, bool keep,
        Func<XmppClient, LoginRun, Task>? online, CancellationToken ct)
    {
        var run = new LoginRun(o.Users);
        int next = -1;
        var sw = Stopwatch.StartNew();
        using var progressCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var progress = ProgressAsync(o, run, sw, () => Math.Min(Volatile.Read(ref next) + 1, o.Users), progressCts.Token);

        async Task Worker()
        {
            while (!ct.IsCancellationRequested)
            {
                int i = Interlocked.Increment(ref next);
                if (i >= o.Users) return;
                int userNumber = o.First + i;
                var client = new XmppClient(i, o.UserName(userNumber), o.Domain);
                var settings = new LoginSettings(o.Tls, o.Mechanism, o.Password(userNumber), o.Resource, KeyCache: !o.NoKeyCache);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(o.Timeout));
                long t0 = Stopwatch.GetTimestamp();
                try
                {
                    await client.LoginAsync(server, SourceFor(o, i), settings, timeout.Token);
                    if (online is not null) await online(client, run);
                    else await client.SendInitialPresenceAsync(timeout.Token);
                    run.Latency.Record((long)Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                    Interlocked.Increment(ref run.Succeeded);
                    if (keep) run.Clients[i] = client;
                    else await client.CloseAsync();
                }
                catch (Exception ex)
                {
                    run.Fail(Classify(ex, client, timeout.IsCancellationRequested && !ct.IsCancellationRequested));
                    client.Abort();
                }
            }
        }

        var workers = Enumerable.Range(0, Math.Min(o.Concurrency, o.Users)).Select(_ => Task.Run(Worker)).ToArray();
        await Task.WhenAll(workers);
        run.Seconds = sw.Elapsed.TotalSeconds;
        await progressCts.CancelAsync();
        await progress;
        return run;
    }

    internal static string Classify(Exception ex, XmppClient client, bool timedOut) => ex switch
    {
        LoginException le => le.Reason,
        OperationCanceledException when timedOut => "timeout:" + client.Phase,
        OperationCanceledException => "cancelled",
        SocketException se => "socket:" + se.SocketErrorCode + "@" + client.Phase,
        AuthenticationException => "tls-handshake-failed",
        IOException when timedOut => "timeout:" + client.Phase,
        IOException => "io@" + client.Phase,
        ArgumentException => "bad-credentials-format",
        _ => ex.GetType().Name + "@" + client.Phase,
    };

    private static async Task ProgressAsync(LoadOptions o, LoginRun run, Stopwatch sw, Func<int> started, CancellationToken ct)
    {
        try
        {
            int last = 0;
            double lastT = 0;
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(o.ProgressSeconds), ct);
                int ok = Volatile.Read(ref run.Succeeded);
                double t = sw.Elapsed.TotalSeconds;
                Reporter.Progress($"login: started {started()}/{o.Users}, logged in {ok}, failed {run.FailureCount}, {(ok - last) / (t - lastT):F0} logins/s");
                last = ok;
                lastT = t;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Closes every kept client (politely, in parallel batches) and waits for their receive loops.</summary>
    public static async Task CloseAllAsync(LoginRun run)
    {
        foreach (var chunk in run.Clients.Where(c => c is not null).Chunk(512))
            await Task.WhenAll(chunk.Select(c => c!.CloseAsync()));
        var loops = Task.WhenAll(run.ReceiveLoops);
        await Task.WhenAny(loops, Task.Delay(TimeSpan.FromSeconds(5)));
    }
}
