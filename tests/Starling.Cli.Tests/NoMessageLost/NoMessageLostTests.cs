using System.Diagnostics;
using System.Globalization;
using System.Net;
using Xunit.Abstractions;

namespace Starling.Cli.Tests.NoMessageLost;

/// <summary>
/// Issue #14, "No message lost: the proof". A real `starling start` process; a sender (XEP-0198, connected directly)
/// sends numbered chat messages at a steady pace to a receiver (XEP-0198 with resumption) whose connection runs
/// through a <see cref="CuttingProxy"/> that cuts it at random moments, alternately with a TCP reset and a silent drop;
/// meanwhile the server is restarted gracefully (SIGTERM) and, in the full run, killed (SIGKILL) and started again on
/// the same data folder and port. At the end the receiver logs in afresh once more for its offline messages. Promise:
/// every message the server acknowledged to the sender is received exactly once — live, after a resumption, or from
/// offline storage — and no message at all is received twice. The schedule is random but seeded: the seed is printed,
/// and STARLING_PROOF_SEED replays it.
/// </summary>
/// <remarks>
/// The sender does not resend a message whose acknowledgement it never saw (its session ended first): such a message
/// may arrive or not, but at most once. Only messages are sent after &lt;enable/&gt; (besides answers to the server's
/// pings, which the client counts too), so the server's h maps to message numbers.
/// </remarks>
public sealed class NoMessageLostTests : IAsyncLifetime
{
    /// <summary>Messages per run (the issue asks for at least 2,000).</summary>
    private const int MessageCount = 2_000;

    /// <summary>Time between two messages (a steady ~66 a second): 2,000 take 30 s, plus the restarts.</summary>
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(15);

    private static readonly TimeSpan OnlineTimeout = TimeSpan.FromSeconds(60);

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-proof-");
    private readonly StarlingProcess _starling;
    private readonly ITestOutputHelper _output;
    private readonly List<ServerProcess> _servers = [];

    public NoMessageLostTests(ITestOutputHelper output)
    {
        _output = output;
        _starling = new StarlingProcess(_dir.FullName);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var server in _servers) await server.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    /// <summary>The cuts alone: every cut ends in a resumption (or, after a silent drop the server noticed late, in one).</summary>
    [Fact]
    public async Task Every_acknowledged_message_arrives_exactly_once_through_resets_and_silent_drops()
    {
        var run = await RunAsync(Plan(MessageCount, []), Acking.StreamManagement, Acking.StreamManagement);
        AssertPromiseHeld(run);
    }

    private const string RestartDuplicate =
        "after a graceful restart, a fresh-clone CI run (seed 277731168, not reproduced with the same seed) received one message twice, "
        + "the second copy resent on a later resumption of the receiver's new session; not understood yet (see docs/status.md)";

    /// <summary>The cuts and a graceful restart while the receiver is connected (it gets &lt;system-shutdown/&gt;).</summary>
    [KnownServerFailureFact(RestartDuplicate)]
    public async Task Every_acknowledged_message_arrives_exactly_once_through_resets_silent_drops_and_a_graceful_restart()
    {
        var run = await RunAsync(Plan(MessageCount, [new Restart(0, RestartKind.Graceful, ReceiverAway: false)]), Acking.StreamManagement, Acking.StreamManagement);
        AssertPromiseHeld(run);
    }

    /// <summary>
    /// A graceful restart while the receiver is away: its connection was dropped silently just before, so the server
    /// still holds its session with the messages written into the dead connection, and the last few the receiver did
    /// get but had not acknowledged yet (the server asks every Modules:sm:RequestAckEvery stanzas).
    /// </summary>
    [KnownServerFailureFact("a graceful restart while the receiver is away can duplicate a message it received but whose ack the silent drop "
        + "swallowed (a window of one round trip since the server asks at once): the server stores the session's unacknowledged queue offline at "
        + "shutdown, the resume after the restart fails (item-not-found) and the h the client sent in <resume/> is not used to drop the ones it had")]
    public async Task Every_acknowledged_message_arrives_exactly_once_when_the_server_restarts_gracefully_while_the_receiver_is_away()
    {
        var run = await RunAsync(Plan(MessageCount, [new Restart(0, RestartKind.Graceful, ReceiverAway: true)]), Acking.StreamManagement, Acking.StreamManagement);
        AssertPromiseHeld(run);
    }

    /// <summary>
    /// The whole proof as the issue states it: the cuts, a graceful restart, and a SIGKILL while the receiver is away.
    /// A SIGKILL loses what lives only in memory: a message the server acknowledged to the sender while it sat in the
    /// receiver's unacknowledged queue (not stored) would be lost; the server therefore answers the sender's &lt;r/&gt;
    /// only once the messages of that round are settled (acknowledged by the receiver, or stored offline).
    /// </summary>
    [KnownServerFailureFact(RestartDuplicate)]
    public async Task Every_acknowledged_message_arrives_exactly_once_through_resets_silent_drops_a_graceful_restart_and_a_sigkill()
    {
        var run = await RunAsync(Plan(MessageCount, [new Restart(0, RestartKind.Graceful, ReceiverAway: false), new Restart(0, RestartKind.Kill, ReceiverAway: true)]),
            Acking.StreamManagement, Acking.StreamManagement);
        AssertPromiseHeld(run);
    }

    /// <summary>
    /// The proof can fail: a receiver without stream management loses what the server writes into a connection that was
    /// dropped silently (the server learns of it only seconds later, from its idle timeout), and the ledger says so. The
    /// sender learns what the server took from ping barriers instead of XEP-0198, so this runs on a server without
    /// stream management too (it shows the loss of issue #14 on one).
    /// </summary>
    [Fact]
    public async Task Without_stream_management_on_the_receiver_the_ledger_reports_messages_written_into_a_dropped_connection_as_missing()
    {
        var schedule = Plan(600, [], CutKind.SilentDrop);
        // The receiver comes back only after 3 s: until its new session replaces the old one, the server keeps
        // writing into the dropped connection (it notices the silence after 4 s at the earliest).
        schedule = schedule with { Cuts = schedule.Cuts.ConvertAll(c => c with { ReconnectDelay = TimeSpan.FromSeconds(3) }) };
        var run = await RunAsync(schedule, Acking.PingBarrier, Acking.None);
        Assert.True(run.Cuts.Drops >= 1, "no silent drop happened: " + run);
        Assert.True(run.Verdict.Acknowledged >= run.Verdict.Count / 2, "the server acknowledged too few messages for the check to mean anything: " + run);
        Assert.True(run.Verdict.Missing.Count > 0, "the ledger found nothing missing although the receiver ran without stream management through silent drops: " + run);
    }

    private static void AssertPromiseHeld(ProofRun run)
    {
        Assert.True(run.Problems.Count == 0, "protocol problems: " + string.Join("; ", run.Problems) + "\n" + run);
        Assert.True(run.StackTraces.Count == 0, "the server logged stack traces:\n" + string.Join('\n', run.StackTraces) + "\n" + run);
        Assert.True(run.Cuts.Resets >= 1 && run.Cuts.Drops >= 1, "the schedule's cuts did not happen: " + run);
        // A server that acknowledged nothing would make the promise hold trivially.
        Assert.True(run.Verdict.Acknowledged >= run.Verdict.Count / 2, "the server acknowledged too few messages for the check to mean anything: " + run);
        Assert.True(run.Verdict.Holds, "the promise broke: " + run);
    }

    // ---- the schedule ----

    public enum CutKind
    {
        Reset,
        SilentDrop,
    }

    public enum RestartKind
    {
        Graceful,
        Kill,
    }

    /// <summary>A cut before message <paramref name="At"/> is sent; the receiver reconnects after <paramref name="ReconnectDelay"/>.</summary>
    public sealed record Cut(int At, CutKind Kind, TimeSpan ReconnectDelay);

    /// <summary>
    /// A restart before message <paramref name="At"/>; <paramref name="ReceiverAway"/>: the receiver's connection is
    /// dropped silently <see cref="AwayLead"/> messages before and it stays away through the restart; otherwise the
    /// restart waits until the receiver is connected.
    /// </summary>
    public sealed record Restart(int At, RestartKind Kind, bool ReceiverAway);

    /// <summary>Messages between the silent drop and the restart of a <see cref="Restart.ReceiverAway"/> restart (about half a second).</summary>
    private const int AwayLead = 30;

    public sealed record Schedule(int Seed, int Count, List<Cut> Cuts, List<Restart> Restarts)
    {
        public override string ToString() =>
            $"seed {Seed}, N {Count}; cuts before messages: {string.Join(", ", Cuts.ConvertAll(c => $"{c.At} {(c.Kind == CutKind.Reset ? "RST" : "drop")}" + (c.Kind == CutKind.SilentDrop ? $" (back after {c.ReconnectDelay.TotalMilliseconds:F0} ms)" : "")))}; "
            + $"restarts before messages: {string.Join(", ", Restarts.ConvertAll(r => $"{r.At} {(r.Kind == RestartKind.Graceful ? "SIGTERM" : "SIGKILL")} ({(r.ReceiverAway ? "receiver away" : "receiver connected")})"))}";
    }

    /// <summary>
    /// Cuts every 150–400 messages, alternating between the given kinds (the first picked at random); after a silent
    /// drop the receiver comes back within 0–8 s, so sometimes before the server noticed (4–9 s, see
    /// <see cref="StartServerAsync"/>) and sometimes after. Restarts spread evenly, not closer than 50 messages to a cut.
    /// </summary>
    private static Schedule Plan(int count, Restart[] restarts, params CutKind[] kinds)
    {
        if (kinds.Length == 0) kinds = [CutKind.Reset, CutKind.SilentDrop];
        string? fixedSeed = Environment.GetEnvironmentVariable("STARLING_PROOF_SEED");
        int seed = fixedSeed is null ? Random.Shared.Next() : int.Parse(fixedSeed, CultureInfo.InvariantCulture);
        var random = new Random(seed);
        var cuts = new List<Cut>();
        int kind = random.Next(kinds.Length);
        for (int at = random.Next(150, 401); at < count - 50; at += random.Next(150, 401))
        {
            var k = kinds[kind++ % kinds.Length];
            cuts.Add(new Cut(at, k, k == CutKind.SilentDrop ? TimeSpan.FromMilliseconds(random.Next(0, 8001)) : TimeSpan.Zero));
        }
        var planned = new List<Restart>();
        for (int i = 0; i < restarts.Length; i++)
        {
            int at = count * (i + 1) / (restarts.Length + 1) + random.Next(-50, 51);
            foreach (var cut in cuts)
            {
                if (Math.Abs(cut.At - at) < 50) at = cut.At + 50;
            }
            planned.Add(restarts[i] with { At = at });
        }
        return new Schedule(seed, count, cuts, planned);
    }

    // ---- one run ----

    public sealed record CutCounts(int Resets, int Drops, int Postponed);

    public sealed record ProofRun(Schedule Schedule, LedgerVerdict Verdict, CutCounts Cuts, int Restarts, string Sender, string Receiver, string Final, List<string> Problems,
        List<string> StackTraces, List<string> ServerWarnings, TimeSpan Elapsed)
    {
        public override string ToString() =>
            $"{Schedule}\n{Verdict}\ncuts done: RST {Cuts.Resets}, silent drop {Cuts.Drops} ({Cuts.Postponed} postponed while the receiver was reconnecting); restarts {Restarts}; {Elapsed.TotalSeconds:F1} s\n"
            + $"sender: {Sender}\nreceiver: {Receiver}\nfinal login: {Final}\n"
            + $"server warnings and errors: {ServerWarnings.Count}{(ServerWarnings.Count == 0 ? "" : "\n  " + string.Join("\n  ", ServerWarnings.Count > 20 ? ServerWarnings[..20] : ServerWarnings))}";
    }

    private Task<ServerProcess> StartServerAsync(int port) => ServerProcess.StartAsync(_starling, port, null,
        "--Hosts:0:AllowPlainWithoutTls=true",
        // A silently dropped connection is closed 4-9 s after its last byte: twice the idle timeout, checked by the
        // server's 5-second timer (which pings, XEP-0199, when a tick finds 2-4 s of silence). The clients send
        // whitespace keepalives, so only dropped connections fall silent.
        "--C2s:IdleTimeoutSeconds=2",
        "--C2s:CloseTimeoutSeconds=2",
        "--Modules:offline:QuotaMessages=100000");

    private async Task<ProofRun> RunAsync(Schedule schedule, Acking senderAcking, Acking receiverAcking)
    {
        _output.WriteLine("schedule: " + schedule);
        var clock = Stopwatch.StartNew();
        foreach (var user in (string[])["sender", "receiver"])
        {
            var add = await _starling.RunWithAsync("pw\n", null, "adduser", user + "@localhost", "--password-stdin");
            Assert.True(add.Exit == 0, add.Err);
        }
        int port = StarlingProcess.FreePort();
        var direct = new IPEndPoint(IPAddress.Loopback, port);
        var server = await StartServerAsync(port);
        _servers.Add(server);

        var ledger = new DeliveryLedger(schedule.Count);
        await using var proxy = new CuttingProxy(direct);
        await using var sender = new SmClient("sender", "desk", () => direct, senderAcking, sendsPresence: false);
        sender.Acknowledged = ledger.Acknowledged;
        sender.StanzaReceived = (stanza, _) =>
        {
            if (stanza.Name == "message" && stanza.GetAttribute("type") == "error" && stanza.GetAttribute("id") is { } id && id.StartsWith("m-", StringComparison.Ordinal)
                && int.TryParse(id.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                ledger.Bounced(n, stanza.ToString());
        };
        await using var receiver = new SmClient("receiver", "phone", () => proxy.EndPoint, receiverAcking, sendsPresence: true);
        int resumedUpTo = 0; // read and written on the receiver's read loop only
        receiver.Resumed = () => resumedUpTo = ledger.LastSent;
        receiver.StanzaReceived = (stanza, start) => Record(ledger, stanza, start, resumedUpTo);

        sender.Start();
        receiver.Start();
        await sender.WaitOnlineAsync(OnlineTimeout);
        await receiver.WaitOnlineAsync(OnlineTimeout);

        int resets = 0, drops = 0, postponed = 0, restarts = 0, nextCut = 0, nextRestart = 0;
        // A steady rate: message n is due at paceStart + n × Pace (Task.Delay alone drifts slower under load).
        var pace = Stopwatch.StartNew();
        int paceFrom = 0;
        for (int n = 1; n <= schedule.Count; n++)
        {
            // A cut falls on the receiver's live connection; while it is reconnecting the cut waits for the next one.
            if (nextCut < schedule.Cuts.Count && schedule.Cuts[nextCut].At <= n)
            {
                var cut = schedule.Cuts[nextCut];
                if (receiver.IsOnline && proxy.Active > 0)
                {
                    if (cut.Kind == CutKind.Reset)
                    {
                        proxy.Reset();
                        resets++;
                    }
                    else
                    {
                        receiver.NextReconnectDelay = cut.ReconnectDelay;
                        proxy.SilentDrop();
                        drops++;
                    }
                    nextCut++;
                    _output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: {(cut.Kind == CutKind.Reset ? "RST" : "silent drop")} before message {n}");
                }
                else if (cut.At == n)
                {
                    postponed++;
                }
            }
            if (nextRestart < schedule.Restarts.Count && schedule.Restarts[nextRestart] is { ReceiverAway: true } away && away.At - AwayLead == n && receiver.IsOnline)
            {
                // Away well past the restart: it comes back to a server that no longer knows its session.
                receiver.NextReconnectDelay = TimeSpan.FromSeconds(4);
                proxy.SilentDrop();
                drops++;
                _output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: silent drop before message {n} (the receiver stays away through the restart)");
            }
            if (nextRestart < schedule.Restarts.Count && schedule.Restarts[nextRestart].At <= n && (schedule.Restarts[nextRestart].ReceiverAway || receiver.IsOnline))
            {
                var restart = schedule.Restarts[nextRestart++];
                _output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: {(restart.Kind == RestartKind.Graceful ? "SIGTERM" : "SIGKILL")} before message {n}");
                server = await RestartAsync(server, port, restart.Kind);
                restarts++;
                // No burst to catch up after the pause: the pace goes on from here.
                pace.Restart();
                paceFrom = n;
            }
            while (!sender.Send($"<message to='receiver@localhost' type='chat' id='m-{n}'><body>{n}</body></message>", n))
                await sender.WaitOnlineAsync(OnlineTimeout);
            ledger.Sent(n);
            if (n % 10 == 0) sender.RequestAck();
            var due = Pace * (n - paceFrom + 1) - pace.Elapsed;
            if (due > TimeSpan.Zero) await Task.Delay(due);
        }

        // The sender's last messages acknowledged, then the receiver (back from its last cut) given the chance to get
        // them live. What it has not received when it closes, the server still holds as unacknowledged.
        sender.RequestAck();
        await WaitUntilAsync(() => sender.Unacknowledged == 0 || !sender.IsOnline, TimeSpan.FromSeconds(30));
        await receiver.WaitOnlineAsync(OnlineTimeout);
        await WaitUntilAsync(ledger, ledger.AllAcknowledgedReceived, TimeSpan.FromSeconds(3));
        await receiver.CloseAsync();
        await sender.CloseAsync();

        // The receiver logs in afresh once more: whatever went to offline storage arrives now (with its delay stamp).
        await using var final = new SmClient("receiver", "phone", () => direct, receiverAcking, sendsPresence: true);
        final.StanzaReceived = (stanza, start) => Record(ledger, stanza, start, 0);
        final.Start();
        await final.WaitOnlineAsync(OnlineTimeout);
        await WaitUntilAsync(ledger, ledger.AllAcknowledgedReceived, TimeSpan.FromSeconds(3));
        await WaitQuietAsync(ledger, TimeSpan.FromSeconds(2));
        await final.CloseAsync();

        var stackTraces = new List<string>();
        var warnings = new List<string>();
        foreach (var s in _servers)
        {
            stackTraces.AddRange(s.StackTraceLines());
            warnings.AddRange(s.Lines(line => line.Contains(" warn: ", StringComparison.Ordinal) || line.Contains(" fail: ", StringComparison.Ordinal) || line.Contains(" crit: ", StringComparison.Ordinal)));
        }
        var run = new ProofRun(schedule, ledger.Verdict(), new CutCounts(resets, drops, postponed), restarts, sender.Describe(), receiver.Describe() + $"; ignored after close {receiver.IgnoredAfterClose}",
            final.Describe(), [.. sender.Problems, .. receiver.Problems, .. final.Problems], stackTraces, warnings, clock.Elapsed);
        _output.WriteLine(run.ToString());
        return run;
    }

    private static void Record(DeliveryLedger ledger, Starling.Xml.XmlElement stanza, SessionStart start, int resumedUpTo)
    {
        if (stanza.Name != "message") return;
        string? body = stanza.ElementText("body", "jabber:client");
        DeliveryPath path;
        if (start == SessionStart.Fresh)
        {
            // XEP-0203: the server stamps what it stored for later delivery.
            path = stanza.Element("delay", "urn:xmpp:delay") is not null ? DeliveryPath.Offline : DeliveryPath.Live;
        }
        else
        {
            path = int.TryParse(body, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n <= resumedUpTo ? DeliveryPath.Resumed : DeliveryPath.Live;
        }
        ledger.Received(body, path);
    }

    private async Task<ServerProcess> RestartAsync(ServerProcess server, int port, RestartKind kind)
    {
        if (kind == RestartKind.Graceful) server.Terminate();
        else server.Kill();
        await server.WaitForExitAsync(TimeSpan.FromSeconds(30));
        if (kind == RestartKind.Graceful) Assert.True(server.ExitCode == 0, $"SIGTERM: the server exited with {server.ExitCode}:\n{server.Output}");
        var started = await StartServerAsync(port);
        _servers.Add(started);
        return started;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition() && deadline.Elapsed < timeout) await Task.Delay(50);
    }

    /// <summary>Waits until <paramref name="condition"/> holds or no message has arrived for <paramref name="quiet"/> (at most a minute).</summary>
    private static async Task WaitUntilAsync(DeliveryLedger ledger, Func<bool> condition, TimeSpan quiet)
    {
        int seen = ledger.Deliveries;
        var since = Stopwatch.StartNew();
        var deadline = Stopwatch.StartNew();
        while (!condition() && since.Elapsed < quiet && deadline.Elapsed < TimeSpan.FromMinutes(1))
        {
            await Task.Delay(50);
            int now = ledger.Deliveries;
            if (now != seen)
            {
                seen = now;
                since.Restart();
            }
        }
    }

    /// <summary>Waits until no message has arrived for <paramref name="quiet"/> (late duplicates would show up in that time).</summary>
    private static async Task WaitQuietAsync(DeliveryLedger ledger, TimeSpan quiet)
    {
        int seen = ledger.Deliveries;
        var since = Stopwatch.StartNew();
        while (since.Elapsed < quiet)
        {
            await Task.Delay(100);
            int now = ledger.Deliveries;
            if (now != seen)
            {
                seen = now;
                since.Restart();
            }
        }
    }
}
