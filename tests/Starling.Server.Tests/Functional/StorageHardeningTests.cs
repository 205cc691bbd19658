using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// Issue #13, storage side: hostile or unlucky input against a running server — failing databases, poisoned offline
/// rows, unbounded per-user data, writes of a deleted account — and after each attack a normal client still logs in
/// and chats.
/// </summary>
public sealed partial class StorageHardeningTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    /// <summary>Two fresh accounts log in and exchange a message each way.</summary>
    private static async Task AssertNormalClientsChatAsync(TestServer server)
    {
        await server.AddUserAsync("carol");
        await server.AddUserAsync("dave");
        var carol = await server.LoginAsync("carol", "laptop");
        var dave = await server.LoginAsync("dave", "phone");
        await carol.SendAsync("<message to='dave@localhost' type='chat' id='n1'><body>hi dave</body></message>");
        await dave.ExpectAsync(e => TestServer.IsMessage(e, "hi dave"), "carol's message");
        await dave.SendAsync("<message to='carol@localhost' type='chat' id='n2'><body>hi carol</body></message>");
        await carol.ExpectAsync(e => TestServer.IsMessage(e, "hi carol"), "dave's answer");
    }

    // ---- storage failures (item 10) ----

    [Theory]
    [InlineData(5)] // SQLITE_BUSY: another process held the write lock past the busy timeout
    [InlineData(13)] // SQLITE_FULL
    public async Task A_failing_offline_store_gives_the_sender_an_error_and_keeps_its_stream(int sqliteError)
    {
        FaultyStorage? faulty = null;
        await using var server = await TestServer.StartAsync(s => faulty = new FaultyStorage(s));
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        faulty!.OfflineFault = xml => xml.Contains("poison", StringComparison.Ordinal) ? sqliteError : null;
        var alice = await server.LoginAsync("alice", "pc");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='p1'><body>poison</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "p1", "resource-constraint", "wait");

        // The stream is up and the next message is stored and delivered.
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='ok1'><body>after the failure</body></message>");
        await alice.SyncAsync();
        var bob = await server.LoginAsync("bob", "phone");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "after the failure"), "the message stored after the failure");
        await AssertNormalClientsChatAsync(server);
    }

    [Fact]
    public async Task Rerouting_a_cut_off_sessions_queue_goes_on_past_a_message_that_fails_to_store()
    {
        FaultyStorage? faulty = null;
        await using var server = await TestServer.StartAsync(s => faulty = new FaultyStorage(s), "--Limits:MaxOutboundQueueBytes=262144", "--C2s:ReadBytesPerSecond=0", "--Limits:OfflineQuota=100000", "--Limits:OfflineQuotaBytes=100000000");
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        faulty!.OfflineFault = xml => xml.Contains("poison", StringComparison.Ordinal) ? 5 : null;
        await server.LoginAsync("bob", "slow"); // and never reads again
        var alice = await server.LoginAsync("alice", "fast");
        var bob = Jid.Parse("bob@localhost");
        var padding = new string('x', 4000);

        // Every tenth message fails to store. Enough to fill the loopback buffers, then bob's queue (256 KiB, some 20 of these stanzas): the
        // queue is re-routed to offline storage when bob is cut off, poisoned messages among it.
        int sent = 0;
        for (; sent < 4000 && server.Server.Sessions.GetSessions(bob).Length > 0; sent++)
        {
            string marker = sent % 10 == 3 ? "poison" : "fine";
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{sent}'><body>{sent} {marker} {padding}</body></message>");
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (server.Server.Sessions.GetSessions(bob).Length > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(server.Server.Sessions.GetSessions(bob).Length == 0, "the slow reader was not disconnected");
        await alice.SyncAsync();

        var offered = new Dictionary<int, bool>();
        foreach (var (xml, failed) in faulty.Offered) offered[int.Parse(MessageId().Match(xml).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)] = failed;
        int failures = 0;
        foreach (var (id, failed) in offered)
        {
            if (!failed) continue;
            failures++;
            // Messages reach storage in the order alice sent them, from bob's queue or directly: the one after a failed
            // message was offered too, so re-routing did not stop at the failure.
            if (id + 1 < sent) Assert.True(offered.ContainsKey(id + 1), $"message m{id + 1} after the failed m{id} never reached storage");
        }
        Assert.True(failures > 0, "no poisoned message reached storage");

        // One error per failed message, nothing silent.
        var errors = alice.TakePending(e => e.Name == "message" && e.GetAttribute("type") == "error");
        Assert.Equal(failures, errors.Count);
        foreach (var error in errors) XmppTestClient.AssertStanzaError(error, "resource-constraint");
        await AssertNormalClientsChatAsync(server);
    }

    [GeneratedRegex("id=[\"']m(\\d+)[\"']")]
    private static partial Regex MessageId();

    // ---- offline storage poisoning (item 3) ----

    [Fact]
    public async Task A_message_accepted_under_a_larger_stanza_limit_is_delivered_from_offline_storage()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:MaxStanzaBytes=1000000");
        var alice = await server.LoginAsync("alice", "pc");
        var body = new string('y', 400_000); // above the 256 KiB default the stored row used to be re-read with
        await alice.SendAsync($"<message to='bob@localhost' type='chat' id='big'><body>{body}</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='small'><body>small</body></message>");
        await alice.SyncAsync();

        var bob = await server.LoginAsync("bob", "phone");
        var big = await bob.ExpectAsync(e => TestServer.IsMessage(e, body), "the large offline message", Long);
        Assert.NotNull(big.Element("delay", Namespaces.Delay));
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "small"), "the small offline message");
        await bob.SyncAsync();
        Assert.Equal(0, await server.Server.Storage.Offline.CountAsync("localhost", "bob"));
        await AssertNormalClientsChatAsync(server);
    }

    [Fact]
    public async Task An_unreadable_offline_row_is_quarantined_and_the_others_are_delivered()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:OfflineQuota=2");
        var alice = await server.LoginAsync("alice", "pc");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='o1'><body>one</body></message>");
        await alice.SyncAsync();
        using (var raw = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = server.Config.DatabasePath, Pooling = false }.ToString()))
        {
            raw.Open();
            using var insert = raw.CreateCommand();
            insert.CommandText = "INSERT INTO offline_messages (host, username, xml, bytes, stored_at) VALUES ('localhost', 'bob', $xml, 40, 0)";
            insert.Parameters.AddWithValue("$xml", "<message to='bob@localhost'><body>never closed");
            insert.ExecuteNonQuery();
        }

        var bob = await server.LoginAsync("bob", "phone");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "one"), "the readable offline message");
        await bob.SyncAsync();
        Assert.Equal(0, await server.Server.Storage.Offline.CountAsync("localhost", "bob"));
        Assert.Equal(1, await server.Server.Storage.Offline.CountQuarantinedAsync("localhost", "bob"));
        await bob.DisposeAsync();

        // The quarantined row no longer takes a place in the quota of 2.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (server.Server.Sessions.GetSessions(Jid.Parse("bob@localhost")).Length > 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='o2'><body>two</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='o3'><body>three</body></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for a message within the quota");
        Assert.Equal(2, await server.Server.Storage.Offline.CountAsync("localhost", "bob"));
        await AssertNormalClientsChatAsync(server);
    }

    [Fact]
    public async Task Offline_byte_quota_bounces_the_message_that_would_exceed_it()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:OfflineQuotaBytes=3000");
        var alice = await server.LoginAsync("alice", "pc");
        var body = new string('z', 1200);
        await alice.SendAsync($"<message to='bob@localhost' type='chat' id='q1'><body>{body}</body></message>");
        await alice.SendAsync($"<message to='bob@localhost' type='chat' id='q2'><body>{body}</body></message>");
        await alice.SendAsync($"<message to='bob@localhost' type='chat' id='q3'><body>{body}</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "q3", "service-unavailable");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for a message within the byte quota");
        Assert.Equal(2, await server.Server.Storage.Offline.CountAsync("localhost", "bob"));
        await AssertNormalClientsChatAsync(server);
    }

    // ---- per-user quotas (item 7) ----

    [Fact]
    public async Task Roster_quotas_answer_resource_constraint_and_not_acceptable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(
            "--Limits:MaxRosterItems=2", "--Limits:MaxRosterNameLength=10", "--Limits:MaxRosterGroups=2", "--Limits:MaxRosterGroupNameLength=10");
        var alice = await server.LoginAsync("alice", "pc");
        async Task<XmlElement> Set(string id, string item)
        {
            await alice.SendAsync($"<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>{item}</query></iq>");
            return await alice.ExpectIqAsync(id);
        }

        Assert.Equal("result", (await Set("r1", "<item jid='c1@localhost' name='one'><group>a</group><group>b</group></item>")).GetAttribute("type"));
        Assert.Equal("result", (await Set("r2", "<item jid='c2@localhost'/>")).GetAttribute("type"));
        XmppTestClient.AssertStanzaError(await Set("r3", "<item jid='c3@localhost'/>"), "resource-constraint", "wait");
        // Changing an existing item is not adding one.
        Assert.Equal("result", (await Set("r4", "<item jid='c1@localhost' name='uno'/>")).GetAttribute("type"));
        // RFC 6121 §2.3.3: over-long name or group name, or too many groups.
        XmppTestClient.AssertStanzaError(await Set("r5", "<item jid='c1@localhost' name='eleven char'/>"), "not-acceptable", "modify");
        XmppTestClient.AssertStanzaError(await Set("r6", "<item jid='c1@localhost'><group>eleven char</group></item>"), "not-acceptable", "modify");
        XmppTestClient.AssertStanzaError(await Set("r7", "<item jid='c1@localhost'><group>a</group><group>b</group><group>c</group></item>"), "not-acceptable", "modify");

        var roster = (await server.Server.Storage.Roster.GetAsync("localhost", "alice")).Items;
        Assert.Equal(["c1@localhost", "c2@localhost"], roster.Select(i => i.Jid));
        Assert.Equal("uno", roster[0].Name);
        await AssertNormalClientsChatAsync(server);
    }

    [Fact]
    public async Task Private_storage_quotas_answer_resource_constraint_and_not_acceptable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:MaxPrivateFragments=2", "--Limits:MaxPrivateFragmentBytes=200");
        var alice = await server.LoginAsync("alice", "pc");
        async Task<XmlElement> Set(string id, string fragment)
        {
            await alice.SendAsync($"<iq type='set' id='{id}'><query xmlns='jabber:iq:private'>{fragment}</query></iq>");
            return await alice.ExpectIqAsync(id);
        }

        Assert.Equal("result", (await Set("p1", "<a xmlns='urn:test:a'/>")).GetAttribute("type"));
        Assert.Equal("result", (await Set("p2", "<b xmlns='urn:test:b'/>")).GetAttribute("type"));
        XmppTestClient.AssertStanzaError(await Set("p3", "<c xmlns='urn:test:c'/>"), "resource-constraint", "wait");
        Assert.Equal("result", (await Set("p4", "<a xmlns='urn:test:a'><x/></a>")).GetAttribute("type"));
        XmppTestClient.AssertStanzaError(await Set("p5", $"<a xmlns='urn:test:a'>{new string('q', 300)}</a>"), "not-acceptable", "modify");

        Assert.Null(await server.Server.Storage.PrivateXml.GetAsync("localhost", "alice", "c", "urn:test:c"));
        Assert.Contains("<x", await server.Server.Storage.PrivateXml.GetAsync("localhost", "alice", "a", "urn:test:a"), StringComparison.Ordinal);
        await AssertNormalClientsChatAsync(server);
    }

    [Fact]
    public async Task Directed_presence_past_the_limit_gets_resource_constraint()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:MaxDirectedPresence=2");
        var alice = await server.LoginAsync("alice", "pc");
        await alice.SendAsync("<presence to='x1@localhost/r' id='d1'/>");
        await alice.SendAsync("<presence to='x2@localhost/r' id='d2'/>");
        await alice.SendAsync("<presence to='x1@localhost/r' id='d3'/>"); // already in the set
        await alice.SendAsync("<presence to='x3@localhost/r' id='d4'/>");
        await alice.ExpectStanzaErrorAsync("presence", "d4", "resource-constraint", "wait");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for directed presence within the limit");
        await AssertNormalClientsChatAsync(server);
    }

    [Fact]
    public async Task Offline_stores_complete_while_another_user_loops_roster_sets_from_many_resources()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        await server.AddUserAsync("erin");
        const int Resources = 8;
        const int SetsPerResource = 60;
        var attackers = new List<XmppTestClient>();
        for (int r = 0; r < Resources; r++) attackers.Add(await server.LoginAsync("alice", "r" + r.ToString(System.Globalization.CultureInfo.InvariantCulture), available: false));
        var bob = await server.LoginAsync("bob", "pc");

        // Every resource pipelines its roster sets: the writer always has alice's work queued.
        var flood = attackers.Select((a, r) => Task.Run(async () =>
        {
            var batch = new StringBuilder();
            for (int i = 0; i < SetsPerResource; i++) batch.Append(System.Globalization.CultureInfo.InvariantCulture, $"<iq type='set' id='f{i}'><query xmlns='jabber:iq:roster'><item jid='c{r}-{i}@localhost'/></query></iq>");
            await a.SendAsync(batch.ToString());
            await a.ExpectAsync(e => e.Name == "iq" && e.GetAttribute("id") == "f" + (SetsPerResource - 1).ToString(System.Globalization.CultureInfo.InvariantCulture), "the last roster set's answer", TimeSpan.FromSeconds(120));
        })).ToList();
        var floodDone = Task.WhenAll(flood);

        for (int i = 0; i < 10; i++)
            await bob.SendAsync($"<message to='erin@localhost' type='chat' id='e{i}'><body>to erin {i}</body></message>");
        await bob.SyncAsync();
        bool floodStillRunning = !floodDone.IsCompleted;
        await floodDone.WaitAsync(TimeSpan.FromSeconds(120));

        // Relative fact, no timing: bob's ten stores went through while alice still had writes queued.
        Assert.True(floodStillRunning, "alice's flood finished before bob's ten offline stores");
        Assert.Equal(10, await server.Server.Storage.Offline.CountAsync("localhost", "erin"));
        bob.AssertNoPending(e => e.GetAttribute("type") == "error", "an error for bob's messages");
        var erin = await server.LoginAsync("erin", "phone");
        for (int i = 0; i < 10; i++) await erin.ExpectAsync(e => TestServer.IsMessage(e, $"to erin {i}"), $"offline message {i}");
        await AssertNormalClientsChatAsync(server);
    }

    // ---- deleted accounts (item 12, data side) ----

    [Fact]
    public async Task A_deleted_accounts_session_cannot_write_and_a_recreated_account_starts_empty()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "pc");
        await alice.SendAsync("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>");
        await alice.ExpectIqResultAsync("s1");
        await alice.SendAsync("<iq type='set' id='s2'><query xmlns='jabber:iq:private'><n xmlns='urn:test:notes'>old</n></query></iq>");
        await alice.ExpectIqResultAsync("s2");

        await server.Admin.DeleteUserAsync(Jid.Parse("alice@localhost"));

        // The live session keeps sending: every write is refused with an error, the server stays up.
        await alice.SendAsync("<iq type='set' id='s3'><query xmlns='jabber:iq:roster'><item jid='mallory@localhost'/></query></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "s3", "forbidden");
        await alice.SendAsync("<iq type='set' id='s4'><query xmlns='jabber:iq:private'><n xmlns='urn:test:notes'>new</n></query></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "s4", "forbidden");
        await alice.DisposeAsync();

        await server.AddUserAsync("alice");
        var again = await server.LoginAsync("alice", "pc2");
        await again.SendAsync("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>");
        var roster = (await again.ExpectIqResultAsync("g1")).Element("query", Namespaces.Roster)!;
        Assert.Empty(roster.Elements());
        await again.SendAsync("<iq type='get' id='g2'><query xmlns='jabber:iq:private'><n xmlns='urn:test:notes'/></query></iq>");
        var notes = (await again.ExpectIqResultAsync("g2")).Element("query", Namespaces.Private)!.FirstElement()!;
        Assert.Equal("", notes.Text);
        await AssertNormalClientsChatAsync(server);
    }
}
