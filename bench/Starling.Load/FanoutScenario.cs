using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Load;

/// <summary>
/// The contacts of --subscribe: a ring. User i (0-based, of n) is paired with i±1..i±h (h = k/2) and, when k is odd,
/// with the user opposite, i+n/2 (which needs an even n). So every user has exactly k distinct partners and the
/// relation is symmetric; for each pair exactly one side (the one the other is "forward" of) sends the first
/// subscription request.
/// </summary>
internal static class RingPairing
{
    /// <summary>Null if k contacts per user can be paired among n users, else why not.</summary>
    public static string? Validate(int users, int contacts)
    {
        if (users < 2) return "needs --users >= 2";
        if (contacts < 1 || contacts > users - 1) return $"--contacts must be between 1 and --users - 1 ({users - 1})";
        if (contacts % 2 == 1 && users % 2 == 1) return "an odd --contacts needs an even --users (the odd partner is the user opposite on the ring)";
        return null;
    }

    /// <summary>Partner number <paramref name="slot"/> (0..k-1) of user <paramref name="index"/>.</summary>
    public static int Partner(int index, int slot, int users, int contacts)
    {
        int h = contacts / 2;
        if (slot < h) return (index + 1 + slot) % users;
        if (slot < 2 * h) return ((index - (slot - h + 1)) % users + users) % users;
        return (index + users / 2) % users;
    }

    /// <summary>The slot of <paramref name="partner"/> among <paramref name="index"/>'s partners, or -1 if it is none of them.</summary>
    public static int SlotOf(int index, int partner, int users, int contacts)
    {
        int h = contacts / 2;
        int d = ((partner - index) % users + users) % users;
        if (d == 0) return -1;
        if (d <= h) return d - 1;
        if (d >= users - h) return h + (users - d) - 1;
        if (contacts % 2 == 1 && d == users / 2) return 2 * h;
        return -1;
    }

    /// <summary>Whether <paramref name="index"/> sends the first request of the pair at <paramref name="slot"/>.</summary>
    public static bool Initiates(int index, int slot, int users, int contacts)
    {
        int h = contacts / 2;
        if (slot < h) return true;
        if (slot < 2 * h) return false;
        return index < users / 2;
    }
}

/// <summary>
/// `fanout`: every user logs in and sends initial presence; presence stanzas received by all users are counted from
/// the first login until --window seconds after the last one. Provisioning first (optional): --provision-rosters
/// writes --contacts roster items with plain roster sets (subscription 'none': an RFC 6121 server broadcasts nothing to
/// them); --subscribe has every user online at once and approves the ring of <see cref="RingPairing"/> through the
/// protocol (RFC 6121 §3.1), so every pair ends in state 'both' and the measured phase is a real presence fan-out.
/// </summary>
internal static class FanoutScenario
{
    public static async Task<int> RunAsync(LoadOptions o, Reporter reporter, CancellationToken ct)
    {
        var server = await LoginPool.ResolveAsync(o);
        int contacts = Math.Min(o.Contacts, o.Users - 1);

        if (o.ProvisionRosters)
        {
            int rc = await ProvisionRostersAsync(o, server, contacts, reporter, ct);
            if (rc != ExitCodes.Ok) return rc;
        }
        if (o.Subscribe)
        {
            int rc = await SubscribeAsync(o, server, contacts, reporter, ct);
            if (rc != ExitCodes.Ok) return rc;
            if (o.ProvisionOnly) return ExitCodes.Ok;
            // The provisioning sessions have just closed: give the server time to finish their unavailable broadcasts
            // so they do not land in the measured phase.
            await DelayQuietly(o.Drain, ct);
        }
        else if (o.ProvisionOnly)
        {
            return ExitCodes.Ok;
        }
        return await MeasureAsync(o, server, contacts, reporter, ct);
    }

    private static async Task DelayQuietly(double seconds, CancellationToken ct)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(seconds), ct);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static ResultLine Header(string scenario, LoadOptions o, int contacts)
    {
        var line = new ResultLine(scenario);
        if (o.Label is not null) line.Set("label", o.Label);
        return line.Set("server", $"{o.Host}:{o.Port}").Set("domain", o.Domain).Set("users", o.Users)
            .Set("concurrency", o.Concurrency).Set("mechanism", o.Mechanism).Set("tls", o.Tls == TlsMode.StartTls ? "starttls" : "none")
            .Set("source_addresses", o.EffectiveSourceAddresses).Set("contacts", contacts);
    }

    private static int SetupFailed(LoginRun run)
    {
        Reporter.Progress("setup failure: no user could log in; reasons: "
            + string.Join(", ", run.FailureMap.OrderByDescending(p => p.Value).Select(p => $"{p.Key}={p.Value}")));
        return ExitCodes.SetupFailure;
    }

    private static async Task<int> ProvisionRostersAsync(LoadOptions o, System.Net.IPEndPoint server, int contacts, Reporter reporter, CancellationToken ct)
    {
        long itemsOk = 0, itemsFailed = 0;
        var failures = new ConcurrentDictionary<string, long>();
        var prov = await LoginPool.LoginAllAsync(o, server, keep: false, online: async (c, r) =>
        {
            int answered = 0;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            c.OnIqResponse = (_, iq) =>
            {
                if (iq.GetAttribute("type") == "result") Interlocked.Increment(ref itemsOk);
                else
                {
                    Interlocked.Increment(ref itemsFailed);
                    failures.AddOrUpdate(XmppClient.ErrorCondition(iq), 1, (_, v) => v + 1);
                }
                if (Interlocked.Increment(ref answered) == contacts) done.TrySetResult();
            };
            var loop = c.ReceiveLoopAsync(ct);
            var sb = new StringBuilder();
            for (int j = 1; j <= contacts; j++)
            {
                int peer = o.First + (c.Index + j) % o.Users;
                string jid = XmppClient.Escape(o.UserName(peer) + "@" + o.Domain);
                sb.Append("<iq type='set' id='r").Append(j).Append("'><query xmlns='jabber:iq:roster'><item jid='")
                    .Append(jid).Append("'/></query></iq>");
            }
            await c.SendAsync(Encoding.UTF8.GetBytes(sb.ToString()), ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(o.Timeout));
            await done.Task.WaitAsync(timeout.Token);
            await c.CloseAsync();
            await loop;
        }, ct);
        var pline = Header("fanout-provision", o, contacts).Set("method", "roster-set");
        prov.AddTo(pline);
        pline.Set("roster_items_ok", itemsOk).Set("roster_items_failed", itemsFailed)
            .Set("roster_failures", new Dictionary<string, long>(failures))
            .Set("note", "roster set from the client only: subscription='none', so a server that follows RFC 6121 broadcasts no presence to these contacts");
        reporter.Emit(pline);
        return prov.Succeeded == 0 ? SetupFailed(prov) : ExitCodes.Ok;
    }

    /// <summary>One user's side of the subscription handshakes (slots as in <see cref="RingPairing"/>).</summary>
    private sealed class SubscribeState(int contacts)
    {
        /// <summary>1 once this user has sent its own subscribe to the partner in the slot.</summary>
        public readonly int[] Requested = new int[contacts];

        /// <summary>1 once the partner's subscribed (its approval) has arrived.</summary>
        public readonly int[] Approved = new int[contacts];

        public int ApprovedCount;
    }

    /// <summary>
    /// --subscribe: logs every user in (roster get, so the resource is "interested" and gets the approvals and roster
    /// pushes, RFC 6121 §2.1.6 and §3.1.6; then initial presence, so it is "available" and gets the requests, §3.1.3),
    /// and only once all are online sends the first requests. Each user answers every request from a partner with
    /// subscribed and, if it has not requested the partner's presence itself yet, its own subscribe (mutual
    /// subscription, §3.1.7 and the 'both' state of §3.1.6). The phase ends when every user whose partners are all online
    /// has the approvals of all of them, or --timeout s after the first request. One roster get per sampled user then
    /// checks through the protocol that the server holds subscription='both' for each partner.
    /// </summary>
    private static async Task<int> SubscribeAsync(LoadOptions o, System.Net.IPEndPoint server, int contacts, Reporter reporter, CancellationToken ct)
    {
        int n = o.Users;
        string? invalid = RingPairing.Validate(n, contacts);
        if (invalid is not null)
        {
            Reporter.Progress("fanout --subscribe: " + invalid);
            return ExitCodes.Usage;
        }

        // Bare JID -> user index, to map a stanza's sender to its ring slot. Servers send bare JIDs in subscription
        // stanzas (RFC 6121 §3.1.2); the resource is cut off anyway, and domain parts compare case-insensitively.
        var indexOf = new Dictionary<string, int>(n, StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < n; i++) indexOf[o.UserName(o.First + i) + "@" + o.Domain] = i;
        string[] bareJids = new string[n];
        for (int i = 0; i < n; i++) bareJids[i] = XmppClient.Escape(o.UserName(o.First + i) + "@" + o.Domain);

        var states = new SubscribeState[n];
        for (int i = 0; i < n; i++) states[i] = new SubscribeState(contacts);
        long requestsReceived = 0, approvalsReceived = 0, duplicates = 0, unexpected = 0, errors = 0;
        int usersComplete = 0, usersExpected = int.MaxValue;
        var failures = new ConcurrentDictionary<string, long>();
        var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        int SenderIndex(XmlElement p)
        {
            string? from = p.GetAttribute("from");
            if (from is null) return -1;
            int slash = from.IndexOf('/', StringComparison.Ordinal);
            return indexOf.TryGetValue(slash < 0 ? from : from[..slash], out int idx) ? idx : -1;
        }

        void OnPresence(XmppClient c, XmlElement p)
        {
            string? type = p.GetAttribute("type");
            if (type is not ("subscribe" or "subscribed" or "error")) return; // presence broadcasts, unsubscribe*: not this phase's
            int peer = SenderIndex(p);
            int slot = peer < 0 ? -1 : RingPairing.SlotOf(c.Index, peer, n, contacts);
            if (type == "error")
            {
                Interlocked.Increment(ref errors);
                failures.AddOrUpdate("presence-error:" + XmppClient.ErrorCondition(p), 1, (_, v) => v + 1);
                return;
            }
            if (slot < 0)
            {
                Interlocked.Increment(ref unexpected);
                return;
            }
            var state = states[c.Index];
            if (type == "subscribe")
            {
                Interlocked.Increment(ref requestsReceived);
                string to = bareJids[peer];
                string reply = "<presence to='" + to + "' type='subscribed'/>";
                if (Interlocked.Exchange(ref state.Requested[slot], 1) == 0) reply += "<presence to='" + to + "' type='subscribe'/>";
                _ = c.SendQuietlyAsync(Encoding.UTF8.GetBytes(reply));
                return;
            }
            Interlocked.Increment(ref approvalsReceived);
            if (Interlocked.Exchange(ref state.Approved[slot], 1) == 1)
            {
                // A server may approve again on the contact's behalf (RFC 6121 §3.1.3 auto-reply); counted once.
                Interlocked.Increment(ref duplicates);
                return;
            }
            if (Interlocked.Increment(ref state.ApprovedCount) == contacts
                && Interlocked.Increment(ref usersComplete) >= Volatile.Read(ref usersExpected))
                allDone.TrySetResult();
        }

        var run = await LoginPool.LoginAllAsync(o, server, keep: true, online: async (c, r) =>
        {
            c.OnPresence = OnPresence;
            var loop = c.ReceiveLoopAsync(ct);
            lock (r.ReceiveLoops) r.ReceiveLoops.Add(loop);
            await c.SendAsync("<iq type='get' id='roster0'><query xmlns='jabber:iq:roster'/></iq><presence/>"u8.ToArray(), ct);
        }, ct);
        if (run.Succeeded == 0) return SetupFailed(run);

        // Users who can complete: online, with every partner online (a request to an offline partner waits for its login).
        int expected = 0;
        for (int i = 0; i < n; i++)
        {
            if (run.Clients[i] is null) continue;
            bool all = true;
            for (int s = 0; s < contacts && all; s++) all = run.Clients[RingPairing.Partner(i, s, n, contacts)] is not null;
            if (all) expected++;
        }
        Volatile.Write(ref usersExpected, expected);
        if (Volatile.Read(ref usersComplete) >= expected) allDone.TrySetResult();
        Reporter.Progress($"fanout --subscribe: {run.Succeeded} users online; sending the first requests ({(long)n * contacts / 2} pairs)");

        var sw = Stopwatch.StartNew();
        var sends = new List<Task>(n);
        for (int i = 0; i < n; i++)
        {
            var c = run.Clients[i];
            if (c is null) continue;
            var sb = new StringBuilder();
            for (int s = 0; s < contacts; s++)
            {
                if (!RingPairing.Initiates(i, s, n, contacts)) continue;
                if (Interlocked.Exchange(ref states[i].Requested[s], 1) != 0) continue;
                sb.Append("<presence to='").Append(bareJids[RingPairing.Partner(i, s, n, contacts)]).Append("' type='subscribe'/>");
            }
            if (sb.Length > 0) sends.Add(c.SendQuietlyAsync(Encoding.UTF8.GetBytes(sb.ToString())));
        }
        await Task.WhenAll(sends);

        using var progressCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var progress = Task.Run(async () =>
        {
            while (!progressCts.IsCancellationRequested)
            {
                await DelayQuietly(o.ProgressSeconds, progressCts.Token);
                if (progressCts.IsCancellationRequested) break;
                Reporter.Progress($"fanout --subscribe: {Volatile.Read(ref usersComplete)}/{expected} users have all approvals, "
                    + $"{Interlocked.Read(ref approvalsReceived)} approvals, t={sw.Elapsed.TotalSeconds:F0}s");
            }
        }, CancellationToken.None);
        bool timedOut = false;
        try
        {
            await allDone.Task.WaitAsync(TimeSpan.FromSeconds(o.Timeout), ct);
        }
        catch (TimeoutException)
        {
            timedOut = true;
        }
        catch (OperationCanceledException)
        {
            timedOut = true;
        }
        double seconds = sw.Elapsed.TotalSeconds;
        await progressCts.CancelAsync();
        await progress;

        // Pairs approved both ways: each approved slot seen from the lower-index side with the mirror slot approved too.
        long pairsApproved = 0, directed = 0;
        for (int i = 0; i < n; i++)
        {
            for (int s = 0; s < contacts; s++)
            {
                if (Volatile.Read(ref states[i].Approved[s]) == 0) continue;
                directed++;
                int p = RingPairing.Partner(i, s, n, contacts);
                if (p > i && Volatile.Read(ref states[p].Approved[RingPairing.SlotOf(p, i, n, contacts)]) == 1) pairsApproved++;
            }
        }

        var (sampledBoth, sampledTotal, sampledUsers) = await VerifyRostersAsync(o, run, contacts, indexOf, ct);

        var line = Header("fanout-provision", o, contacts).Set("method", "subscribe");
        run.AddTo(line);
        line.Set("pairs_expected", (long)n * contacts / 2)
            .Set("pairs_approved", pairsApproved)
            .Set("approvals_expected", (long)n * contacts)
            .Set("approvals_received", directed)
            .Set("approvals_duplicate", Interlocked.Read(ref duplicates))
            .Set("requests_received", Interlocked.Read(ref requestsReceived))
            .Set("users_complete", Volatile.Read(ref usersComplete))
            .Set("users_expected", expected)
            .Set("unexpected_senders", Interlocked.Read(ref unexpected))
            .Set("presence_errors", Interlocked.Read(ref errors))
            .Set("subscribe_failures", new Dictionary<string, long>(failures))
            .Set("timed_out", timedOut)
            .Set("subscribe_seconds", seconds)
            .Set("sampled_users", sampledUsers)
            .Set("sampled_roster_both", $"{sampledBoth}/{sampledTotal}");
        reporter.Emit(line);
        Reporter.Progress($"fanout --subscribe: {pairsApproved}/{(long)n * contacts / 2} pairs approved in {seconds:F1} s"
            + $"{(timedOut ? " (timed out)" : "")}; sampled rosters: {sampledBoth}/{sampledTotal} 'both'; logging everyone out");
        await LoginPool.CloseAllAsync(run);
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Roster get (RFC 6121 §2.1.3) by the first, middle and last user, in parallel: how many of its partners the server
    /// lists with subscription='both', out of how many expected. Each answer is awaited at most 30 s (or --timeout if
    /// shorter): a server still working through a backlog after a timed-out phase must not hold the run for long.
    /// </summary>
    private static async Task<(int Both, int Total, string Users)> VerifyRostersAsync(LoadOptions o, LoginRun run, int contacts,
        Dictionary<string, int> indexOf, CancellationToken ct)
    {
        int n = o.Users;
        var wait = TimeSpan.FromSeconds(Math.Min(30, o.Timeout));
        var samples = new List<(XmppClient Client, Task<int> Both)>();
        foreach (int i in new SortedSet<int> { 0, n / 2, n - 1 })
        {
            var c = run.Clients[i];
            if (c is null || c.Closed) continue;
            samples.Add((c, CountBothAsync(c, i)));
        }
        int both = 0;
        foreach (var (_, count) in samples) both += await count;
        return (both, samples.Count * contacts, string.Join(",", samples.Select(x => x.Client.User)));

        async Task<int> CountBothAsync(XmppClient c, int i)
        {
            var answer = new TaskCompletionSource<XmlElement>(TaskCreationOptions.RunContinuationsAsynchronously);
            c.OnIqResponse = (_, iq) =>
            {
                if (iq.GetAttribute("id") == "verify-roster") answer.TrySetResult(iq);
            };
            if (!await c.SendQuietlyAsync("<iq type='get' id='verify-roster'><query xmlns='jabber:iq:roster'/></iq>"u8.ToArray())) return 0;
            XmlElement iq;
            try
            {
                iq = await answer.Task.WaitAsync(wait, ct);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                Reporter.Progress($"fanout --subscribe: no roster from {c.User} within {wait.TotalSeconds:F0} s");
                return 0;
            }
            var query = iq.Element("query", Namespaces.Roster);
            if (query is null) return 0;
            var seen = new bool[contacts];
            int count = 0;
            foreach (var item in query.Elements("item", Namespaces.Roster))
            {
                if (item.GetAttribute("subscription") != "both") continue;
                if (!indexOf.TryGetValue(item.GetAttribute("jid") ?? "", out int peer)) continue;
                int slot = RingPairing.SlotOf(i, peer, n, contacts);
                if (slot >= 0 && !seen[slot])
                {
                    seen[slot] = true;
                    count++;
                }
            }
            return count;
        }
    }

    /// <summary>The measured phase: all log in and send initial presence; every presence received is counted.</summary>
    private static async Task<int> MeasureAsync(LoadOptions o, System.Net.IPEndPoint server, int contacts, Reporter reporter, CancellationToken ct)
    {
        if (!o.Cold && !o.NoKeyCache)
        {
            // As for `login`: an unmeasured pass fills the client's SCRAM key cache (RFC 5802 §5.1), so the measured
            // logins cost the server, not the load generator's PBKDF2. These sessions send no presence (no broadcast,
            // nothing to probe) and close at once.
            var warm = await LoginPool.LoginAllAsync(o, server, keep: false, online: static (_, _) => Task.CompletedTask, ct);
            Reporter.Progress($"fanout: warm pass done ({warm.Succeeded} logins without presence); measuring");
        }
        long presences = 0, fromOthers = 0, othersAvailable = 0, othersUnavailable = 0, lastTicks = 0;
        var start = Stopwatch.StartNew();
        var run = await LoginPool.LoginAllAsync(o, server, keep: true, online: async (c, r) =>
        {
            c.OnPresence = (self, p) =>
            {
                Interlocked.Increment(ref presences);
                long now = start.ElapsedTicks;
                long seen = Interlocked.Read(ref lastTicks);
                while (now > seen)
                {
                    long was = Interlocked.CompareExchange(ref lastTicks, now, seen);
                    if (was == seen) break;
                    seen = was;
                }
                string? from = p.GetAttribute("from");
                if (from is not null && from.StartsWith(self.BareJid, StringComparison.OrdinalIgnoreCase)) return;
                Interlocked.Increment(ref fromOthers);
                string? type = p.GetAttribute("type");
                if (type is null) Interlocked.Increment(ref othersAvailable);
                else if (type == "unavailable") Interlocked.Increment(ref othersUnavailable);
            };
            var loop = c.ReceiveLoopAsync(ct);
            lock (r.ReceiveLoops) r.ReceiveLoops.Add(loop);
            await c.SendInitialPresenceAsync(ct);
        }, ct);
        if (run.Succeeded == 0) return SetupFailed(run);
        await DelayQuietly(o.Window, ct);
        double elapsed = start.Elapsed.TotalSeconds;
        long total = Interlocked.Read(ref presences);
        long others = Interlocked.Read(ref fromOthers);
        // Active span: first login started -> last presence received. The fixed --window after the last login would
        // otherwise dilute the rate by a constant that has nothing to do with the server.
        double active = (double)Interlocked.Read(ref lastTicks) / Stopwatch.Frequency;

        var line = Header("fanout", o, contacts).Set("window_s", o.Window).Set("cold", o.Cold || o.NoKeyCache)
            .Set("rosters_provisioned", o.ProvisionRosters).Set("subscribed", o.Subscribe);
        run.AddTo(line);
        line.Set("presences_received", total)
            .Set("presences_from_others", others)
            .Set("presences_from_others_available", Interlocked.Read(ref othersAvailable))
            .Set("presences_from_others_unavailable", Interlocked.Read(ref othersUnavailable))
            .Set("presences_per_s", total / elapsed)
            .Set("active_s", active)
            .Set("presences_per_s_active", active > 0 ? total / active : 0)
            .Set("presences_per_user", (double)total / run.Succeeded)
            .Set("note", others == 0
                ? "only self-presence echoes were received: the rosters carry no presence subscriptions (subscription='none')"
                : "presences_from_others counts broadcasts and probe answers from contacts; with --subscribe state 'both', all online: 2 per pair");
        reporter.Emit(line);
        await LoginPool.CloseAllAsync(run);
        return ExitCodes.Ok;
    }
}
