using System.Globalization;
using Starling.Server.Modules.StreamManagement;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>XEP-0198 through a running server: enable, acks and their counts, resumption, the end of a session that is not resumed.</summary>
public sealed class StreamManagementTests
{
    private const string Sm = "urn:xmpp:sm:3";

    /// <summary>A bound client with stream management on; <c>Base</c> is its stanza count at &lt;enabled/&gt; ('h' counts from there).</summary>
    private sealed record SmClient(XmppTestClient Client, XmlElement Enabled, uint Base)
    {
        public string Id => Enabled.GetAttribute("id")!;

        public uint H => Client.StanzasReceived - Base;
    }

    private static async Task<SmClient> LoginSmAsync(TestServer server, string user, string resource, bool resume = true, bool available = true)
    {
        var client = await server.ConnectAsync();
        await client.LoginAsync(user, TestServer.Password, resource);
        var enabled = await client.EnableSmAsync(resume);
        var sm = new SmClient(client, enabled, client.StanzasReceived);
        if (available) await client.SendPresenceAsync();
        return sm;
    }

    private static C2sSession? Session(TestServer server, string fullJid) => server.Server.Sessions.GetSession(Jid.Parse(fullJid));

    private static StreamManagementState State(TestServer server, string fullJid) => Session(server, fullJid)!.Get(StreamManagementModule.StateKey)!;

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "never happened: " + what);
            await Task.Delay(25);
        }
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "never happened: " + what);
            await Task.Delay(25);
        }
    }

    private static Task<int> OfflineCountAsync(TestServer server, string user) => server.Server.Storage.Offline.CountAsync(TestServer.Domain, user);

    private static void AssertFailed(XmlElement answer, string condition)
    {
        Assert.True(answer.Name == "failed" && answer.Namespace == Sm, $"expected <failed/>, got {answer}");
        Assert.True(answer.Element(condition, Namespaces.Stanzas) is not null, $"expected <{condition}/> in {answer}");
    }

    private static async Task SendChatAsync(XmppTestClient from, string to, string body) =>
        await from.SendAsync($"<message to='{to}' type='chat'><body>{body}</body></message>");

    // ---- enable ----

    [Fact]
    public async Task Sm_is_offered_after_authentication_and_enable_after_binding_answers_enabled_with_a_resumption_id()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var client = await server.ConnectAsync();
        var before = await client.OpenStreamAsync();
        Assert.Null(before.Element("sm", Sm));
        var after = await client.AuthenticateScramAsync("alice", TestServer.Password);
        Assert.NotNull(after.Element("sm", Sm));
        await client.BindAsync("a");

        var enabled = await client.EnableSmAsync(resume: true, max: 100);

        Assert.Equal("true", enabled.GetAttribute("resume"));
        Assert.False(string.IsNullOrEmpty(enabled.GetAttribute("id")));
        Assert.Equal("100", enabled.GetAttribute("max")); // the client's preference, within Modules:sm:MaxResumeTimeoutSeconds
    }

    [Fact]
    public async Task A_max_above_the_servers_bound_is_lowered_and_enable_without_resume_gives_no_id()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a", available: false);
        var bob = await server.LoginAsync("bob", "b", available: false);

        Assert.Equal("600", (await alice.EnableSmAsync(resume: true, max: 100_000)).GetAttribute("max"));
        var plain = await bob.EnableSmAsync(resume: false);
        Assert.Null(plain.GetAttribute("id"));
        Assert.Null(plain.GetAttribute("resume"));
    }

    [Fact]
    public async Task Enable_before_authentication_before_binding_and_twice_fails_and_the_stream_stays_up()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();

        AssertFailed(await client.TryEnableSmAsync(), "not-authorized");
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        AssertFailed(await client.TryEnableSmAsync(), "unexpected-request"); // XEP-0198 §3: after binding
        await client.BindAsync("a");
        await client.EnableSmAsync();
        AssertFailed(await client.TryEnableSmAsync(), "unexpected-request");
        await client.SyncAsync();
    }

    // ---- acks ----

    [Fact]
    public async Task The_server_answers_r_with_the_stanzas_it_received_since_enable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginSmAsync(server, "alice", "a", available: false);

        await alice.Client.SyncAsync();
        await alice.Client.SyncAsync();

        Assert.Equal(2u, await alice.Client.RequestAckAsync());
    }

    [Fact]
    public async Task The_server_asks_for_an_ack_after_RequestAckEvery_stanzas_and_the_ack_empties_its_queue()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:sm:RequestAckEvery=2");
        var alice = await LoginSmAsync(server, "alice", "a", available: false);
        var bob = await server.LoginAsync("bob", "b");

        await SendChatAsync(bob, "alice@localhost/a", "one");
        await SendChatAsync(bob, "alice@localhost/a", "two");
        await alice.Client.ExpectAsync(e => TestServer.IsMessage(e, "two"), "the second message");
        await alice.Client.ExpectAsync("r", Sm);
        Assert.Equal(2, State(server, "alice@localhost/a").UnackedCount);

        await alice.Client.SendAckAsync(alice.H);
        await EventuallyAsync(() => State(server, "alice@localhost/a").UnackedCount == 0, "the queue emptied by the ack");
        await alice.Client.SyncAsync();
    }

    // ---- the sender's ack waits until its messages are safe ----

    [Fact]
    public async Task A_senders_ack_waits_until_the_recipient_acknowledged_its_message()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginSmAsync(server, "alice", "a");
        var bob = await LoginSmAsync(server, "bob", "b");

        await SendChatAsync(bob.Client, "alice@localhost/a", "safe");
        await alice.Client.ExpectAsync(e => TestServer.IsMessage(e, "safe"), "the message");
        await alice.Client.ExpectAsync("r", Sm); // asked at once, not after RequestAckEvery stanzas: a sender waits
        await bob.Client.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        await bob.Client.SyncAsync(); // the ping's answer comes after the <r/> was handled
        Assert.DoesNotContain(bob.Client.Pending, e => e.Name == "a" && e.Namespace == Sm);

        await alice.Client.SendAckAsync(alice.H);
        var a = await bob.Client.ExpectAsync("a", Sm);
        Assert.Equal("2", a.GetAttribute("h")); // the initial presence and the message
    }

    [Fact]
    public async Task Two_stream_management_clients_writing_to_each_other_and_acking_at_once_get_every_answer()
    {
        // Each side's ack settles the other side's round while the other side may be acking ours: the references are given
        // back outside the queues' locks (inside, the two acks could wait for each other's lock).
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginSmAsync(server, "alice", "a");
        var bob = await LoginSmAsync(server, "bob", "b");
        const int Count = 100;

        async Task TalkAsync(SmClient me, string to, string tag)
        {
            for (int i = 0; i < Count; i++)
            {
                await SendChatAsync(me.Client, to, tag + i);
                await me.Client.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
            }
        }

        async Task AckAsync(SmClient me, string fromTag)
        {
            for (int i = 0; i < Count; i++)
            {
                await me.Client.ExpectAsync(e => TestServer.IsMessage(e, fromTag + i), $"message {fromTag}{i}");
                await me.Client.SendAckAsync(me.H);
            }
        }

        // Both directions at once: each client sends while it reads and acks what the other sends.
        await Task.WhenAll(TalkAsync(alice, "bob@localhost/b", "from-alice-"), AckAsync(bob, "from-alice-"),
            TalkAsync(bob, "alice@localhost/a", "from-bob-"), AckAsync(alice, "from-bob-"));
        // Every round answered, the last with everything each sent (initial presence and the messages).
        string last = (Count + 1).ToString(CultureInfo.InvariantCulture);
        await alice.Client.ExpectAsync(e => e.Name == "a" && e.Namespace == Sm && e.GetAttribute("h") == last, "alice's last answer");
        await bob.Client.ExpectAsync(e => e.Name == "a" && e.Namespace == Sm && e.GetAttribute("h") == last, "bob's last answer");
    }

    [Fact]
    public async Task A_message_to_a_client_without_stream_management_is_acknowledged_to_its_sender_at_once()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendPresenceAsync();
        var bob = await LoginSmAsync(server, "bob", "b");

        await SendChatAsync(bob.Client, "alice@localhost/a", "written");
        Assert.Equal(2u, await bob.Client.RequestAckAsync());
    }

    [Fact]
    public async Task A_recipient_that_never_acknowledges_holds_the_senders_ack_only_until_the_settle_timeout()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:sm:SettleTimeoutSeconds=1");
        var alice = await LoginSmAsync(server, "alice", "a");
        var bob = await LoginSmAsync(server, "bob", "b");

        await SendChatAsync(bob.Client, "alice@localhost/a", "slow");
        await alice.Client.ExpectAsync(e => TestServer.IsMessage(e, "slow"), "the message");
        await bob.Client.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        var a = await bob.Client.ExpectAsync("a", Sm, TimeSpan.FromSeconds(10));
        Assert.Equal("2", a.GetAttribute("h"));
        Assert.Equal(2, State(server, "alice@localhost/a").UnackedCount); // still kept for alice (its presence echo and the message)
    }

    [Fact]
    public async Task A_senders_ack_waits_for_a_recipient_whose_session_ends_until_its_message_is_stored_offline()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginSmAsync(server, "alice", "a");
        var bob = await LoginSmAsync(server, "bob", "b");

        await SendChatAsync(bob.Client, "alice@localhost/a", "kept");
        await alice.Client.ExpectAsync(e => TestServer.IsMessage(e, "kept"), "the message");
        await bob.Client.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        await alice.Client.SendAsync("</stream:stream>"); // ends without acknowledging: the message goes offline
        var a = await bob.Client.ExpectAsync("a", Sm);
        Assert.Equal("2", a.GetAttribute("h"));
        Assert.Equal(1, await OfflineCountAsync(server, "alice")); // stored before the ack went out
    }

    [Fact]
    public async Task An_ack_of_more_than_was_sent_is_an_undefined_condition_stream_error_with_handled_count_too_high()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginSmAsync(server, "alice", "a", available: false);

        await alice.Client.SendAckAsync(5);

        var error = await alice.Client.ExpectStreamErrorAsync("undefined-condition");
        var detail = error.Element("handled-count-too-high", Sm);
        Assert.True(detail is not null, $"no <handled-count-too-high/> in {error}");
        Assert.Equal("5", detail.GetAttribute("h"));
        Assert.Equal("0", detail.GetAttribute("send-count"));
    }

    [Fact]
    public async Task An_ack_without_a_valid_h_is_an_undefined_condition_stream_error()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginSmAsync(server, "alice", "a", available: false);

        await alice.Client.SendAsync("<a xmlns='urn:xmpp:sm:3' h='-1'/>");

        await alice.Client.ExpectStreamErrorAsync("undefined-condition");
        Assert.DoesNotContain(server.Logs.Entries, e => e.Exception is not null || e.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
    }

    [Fact]
    public async Task Both_counts_wrap_at_2_to_the_32()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginSmAsync(server, "alice", "a", available: false);
        var bob = await server.LoginAsync("bob", "b");
        State(server, "alice@localhost/a").SetCounters(sent: uint.MaxValue - 1, received: uint.MaxValue - 1);

        for (int i = 0; i < 3; i++) await SendChatAsync(bob, "alice@localhost/a", "wrap " + i);
        await alice.Client.ExpectAsync(e => TestServer.IsMessage(e, "wrap 2"), "the third message");
        // XEP-0198 §4: (2^32 - 2) + 3 = 1 modulo 2^32.
        await alice.Client.SendAckAsync(1);
        await EventuallyAsync(() => State(server, "alice@localhost/a").UnackedCount == 0, "the wrapped ack emptied the queue");

        for (int i = 0; i < 3; i++) await alice.Client.SendAsync($"<iq type='get' id='w{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.Equal(1u, await alice.Client.RequestAckAsync());
    }

    // ---- resumption ----

    [Fact]
    public async Task A_resume_after_a_cut_gets_the_missed_messages_exactly_once_and_keeps_the_session_and_its_presence()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var watcher = await server.LoginAsync("alice", "watcher");
        var phone = await LoginSmAsync(server, "alice", "phone");
        var bob = await server.LoginAsync("bob", "b");
        await phone.Client.SyncAsync();
        uint h = phone.H;
        var session = Session(server, "alice@localhost/phone");

        phone.Client.Abort();
        await EventuallyAsync(() => session!.IsHibernating, "the session hibernating");
        for (int i = 1; i <= 3; i++) await SendChatAsync(bob, "alice@localhost/phone", "missed " + i);
        await bob.SyncAsync();

        var again = await server.ConnectAsync();
        await again.AuthenticateAsync("alice", TestServer.Password);
        var resumed = await again.ResumeAsync(phone.Id, h, "alice@localhost/phone");

        Assert.Equal("resumed", resumed.Name);
        Assert.Equal(phone.Id, resumed.GetAttribute("previd"));
        Assert.Equal("2", resumed.GetAttribute("h")); // the server handled the presence and the sync iq
        for (int i = 1; i <= 3; i++) await again.ExpectAsync(e => TestServer.IsMessage(e, "missed " + i), "missed message " + i);
        await again.SyncAsync();
        again.AssertNoPending(e => e.Name == "message", "a message twice");
        Assert.Same(session, Session(server, "alice@localhost/phone")); // the same session: slots, presence, filters

        // Still available with its presence: a message to the bare JID reaches it; the other resource never saw it leave.
        await SendChatAsync(bob, "alice@localhost", "after");
        await again.ExpectAsync(e => TestServer.IsMessage(e, "after"), "a message after the resume");
        await watcher.SyncAsync();
        watcher.AssertNoPending(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable", "the phone's unavailable presence");
    }

    [Fact]
    public async Task A_resume_while_the_old_connection_still_seems_alive_replaces_it()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var phone = await LoginSmAsync(server, "alice", "phone");
        var bob = await server.LoginAsync("bob", "b");
        await SendChatAsync(bob, "alice@localhost/phone", "before");
        await phone.Client.ExpectAsync(e => TestServer.IsMessage(e, "before"), "the first message");

        var again = await server.ConnectAsync();
        await again.AuthenticateAsync("alice", TestServer.Password);
        var resumed = await again.ResumeAsync(phone.Id, phone.H, "alice@localhost/phone");

        Assert.Equal("resumed", resumed.Name);
        await phone.Client.ExpectStreamErrorAsync("conflict");
        await SendChatAsync(bob, "alice@localhost/phone", "after");
        await again.ExpectAsync(e => TestServer.IsMessage(e, "after"), "the message after the resume");
        again.AssertNoPending(e => TestServer.IsMessage(e, "before"), "the acknowledged message again");
        Assert.Single(server.Server.Sessions.GetSessions(Jid.Parse("alice@localhost")).ToArray());
    }

    [Fact]
    public async Task A_resume_with_an_unknown_id_another_accounts_id_or_before_authentication_fails_and_the_stream_stays_usable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var phone = await LoginSmAsync(server, "alice", "phone");
        phone.Client.Abort();
        await EventuallyAsync(() => Session(server, "alice@localhost/phone")?.IsHibernating == true, "the session hibernating");

        var early = await server.ConnectAsync();
        await early.OpenStreamAsync();
        AssertFailed(await early.ResumeAsync(phone.Id, 0), "not-authorized");

        var bob = await server.ConnectAsync();
        await bob.AuthenticateAsync("bob", TestServer.Password);
        AssertFailed(await bob.ResumeAsync("no-such-id", 0), "item-not-found");
        AssertFailed(await bob.ResumeAsync(phone.Id, 0), "item-not-found"); // alice's id is not bob's to resume
        await bob.BindAsync("b"); // XEP-0198 §5: after a failed resume the client binds a new session
        await bob.SyncAsync();

        Assert.True(Session(server, "alice@localhost/phone")!.IsHibernating);
    }

    [Fact]
    public async Task A_resume_after_the_timeout_fails_with_item_not_found()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:sm:ResumeTimeoutSeconds=1");
        var phone = await LoginSmAsync(server, "alice", "phone");
        phone.Client.Abort();
        await EventuallyAsync(() => Session(server, "alice@localhost/phone") is null, "the hibernation ending");

        var again = await server.ConnectAsync();
        await again.AuthenticateAsync("alice", TestServer.Password);
        AssertFailed(await again.ResumeAsync(phone.Id, phone.H), "item-not-found");
    }

    [Fact]
    public async Task A_resume_acknowledging_more_than_was_sent_is_a_stream_error_and_the_session_still_waits()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var phone = await LoginSmAsync(server, "alice", "phone");
        await phone.Client.SyncAsync();
        uint h = phone.H;
        phone.Client.Abort();
        await EventuallyAsync(() => Session(server, "alice@localhost/phone")?.IsHibernating == true, "the session hibernating");

        var wrong = await server.ConnectAsync();
        await wrong.AuthenticateAsync("alice", TestServer.Password);
        await wrong.SendAsync($"<resume xmlns='urn:xmpp:sm:3' previd='{phone.Id}' h='{h + 10}'/>");
        var error = await wrong.ExpectStreamErrorAsync("undefined-condition");
        Assert.Equal((h + 10).ToString(CultureInfo.InvariantCulture), error.Element("handled-count-too-high", Sm)?.GetAttribute("h"));

        var right = await server.ConnectAsync();
        await right.AuthenticateAsync("alice", TestServer.Password);
        Assert.Equal("resumed", (await right.ResumeAsync(phone.Id, h)).Name);
    }

    // ---- the end of a session that is not resumed ----

    [Fact]
    public async Task When_the_hibernation_ends_contacts_see_unavailable_and_unacked_messages_are_stored_with_the_receive_time_then_delivered_once()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:sm:ResumeTimeoutSeconds=2");
        var watcher = await server.LoginAsync("alice", "watcher", priority: -1); // sees presence; never gets messages to the bare JID
        var phone = await LoginSmAsync(server, "alice", "phone");
        var bob = await server.LoginAsync("bob", "b");
        phone.Client.Abort();
        await EventuallyAsync(() => Session(server, "alice@localhost/phone")?.IsHibernating == true, "the session hibernating");

        var beforeSend = DateTimeOffset.UtcNow.AddMilliseconds(-1);
        await SendChatAsync(bob, "alice@localhost", "kept");
        await bob.SyncAsync();
        var afterSend = DateTimeOffset.UtcNow.AddMilliseconds(1);
        Assert.Equal(0, await OfflineCountAsync(server, "alice")); // held for the hibernating session, not stored yet
        watcher.AssertNoPending(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable", "unavailable while hibernating");

        await watcher.ExpectAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from") == "alice@localhost/phone",
            "the phone's unavailable presence at the end of the hibernation", TimeSpan.FromSeconds(15));
        await EventuallyAsync(async () => await OfflineCountAsync(server, "alice") == 1, "the message stored offline");

        var laptop = await server.LoginAsync("alice", "laptop");
        var message = await laptop.ExpectAsync(e => TestServer.IsMessage(e, "kept"), "the stored message");
        var delay = message.Element("delay", Namespaces.Delay);
        Assert.True(delay is not null, $"no XEP-0203 delay in {message}");
        Assert.Equal("localhost", delay.GetAttribute("from"));
        // The stamp is when the server received the message, not when the hibernation ended (two seconds later).
        Assert.InRange(DateTimeOffset.Parse(delay.GetAttribute("stamp")!, CultureInfo.InvariantCulture), beforeSend, afterSend);
        await laptop.SyncAsync();
        laptop.AssertNoPending(e => TestServer.IsMessage(e, "kept"), "the message twice");
        Assert.Equal(0, await OfflineCountAsync(server, "alice"));
    }

    [Fact]
    public async Task A_client_that_closes_its_stream_ends_the_session_at_once_and_its_unacked_messages_go_offline()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var phone = await LoginSmAsync(server, "alice", "phone");
        var bob = await server.LoginAsync("bob", "b");
        await SendChatAsync(bob, "alice@localhost/phone", "unacked");
        await phone.Client.ExpectAsync(e => TestServer.IsMessage(e, "unacked"), "the message");

        await phone.Client.SendAsync("</stream:stream>");

        await EventuallyAsync(() => Session(server, "alice@localhost/phone") is null, "the session ending");
        await EventuallyAsync(async () => await OfflineCountAsync(server, "alice") == 1, "the unacknowledged message stored offline");
    }

    [Fact]
    public async Task Offline_rows_are_deleted_only_once_acknowledged_and_come_again_after_a_cut_before_the_ack()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var bob = await server.LoginAsync("bob", "b");
        await SendChatAsync(bob, "alice@localhost", "stored 1");
        await SendChatAsync(bob, "alice@localhost", "stored 2");
        await bob.SyncAsync();
        Assert.Equal(2, await OfflineCountAsync(server, "alice"));

        // slixmpp and Conversations enable stream management right after binding, before the initial presence.
        var first = await LoginSmAsync(server, "alice", "phone", resume: false);
        await first.Client.ExpectAsync(e => TestServer.IsMessage(e, "stored 2"), "the stored messages");
        Assert.Equal(2, await OfflineCountAsync(server, "alice")); // delivered, not acknowledged: still stored
        first.Client.Abort();
        await EventuallyAsync(() => Session(server, "alice@localhost/phone") is null, "the session ending");
        Assert.Equal(2, await OfflineCountAsync(server, "alice")); // not lost, and not stored a second time

        var second = await LoginSmAsync(server, "alice", "phone");
        await second.Client.ExpectAsync(e => TestServer.IsMessage(e, "stored 1"), "the first stored message again");
        await second.Client.ExpectAsync(e => TestServer.IsMessage(e, "stored 2"), "the second stored message again");
        await second.Client.SendAckAsync(second.H);
        await EventuallyAsync(async () => await OfflineCountAsync(server, "alice") == 0, "the rows deleted after the ack");
        await second.Client.SyncAsync();
        second.Client.AssertNoPending(e => e.Name == "message", "a third copy");
    }

    [Fact]
    public async Task An_offline_backlog_longer_than_the_unacked_bound_is_paced_by_the_acks_and_deleted_once_all_are_acknowledged()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:sm:MaxUnackedStanzas=20");
        var bob = await server.LoginAsync("bob", "b");
        for (int i = 0; i < 60; i++) await SendChatAsync(bob, "alice@localhost", "backlog " + i);
        await bob.SyncAsync();
        Assert.Equal(60, await OfflineCountAsync(server, "alice"));

        var alice = await LoginSmAsync(server, "alice", "phone");
        var got = new HashSet<string>();
        while (got.Count < 60)
        {
            var e = await alice.Client.ExpectAsync(e => (e.Name == "r" && e.Namespace == Sm) || (e.Name == "message" && e.ElementText("body", Namespaces.Client)?.StartsWith("backlog ", StringComparison.Ordinal) == true),
                "a stored message or an ack request");
            if (e.Name == "r") await alice.Client.SendAckAsync(alice.H);
            else Assert.True(got.Add(e.ElementText("body", Namespaces.Client)!), $"{e} twice");
        }
        await alice.Client.SendAckAsync(alice.H);

        await EventuallyAsync(async () => await OfflineCountAsync(server, "alice") == 0, "every row deleted after its ack");
        Assert.False(Session(server, "alice@localhost/phone")!.IsClosed); // never cut off for leaving too much unacknowledged
    }

    [Fact]
    public async Task A_graceful_shutdown_stores_what_hibernating_and_live_sessions_left_unacknowledged()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var phone = await LoginSmAsync(server, "alice", "phone");
        var tablet = await LoginSmAsync(server, "alice", "tablet");
        var bob = await server.LoginAsync("bob", "b");
        phone.Client.Abort();
        await EventuallyAsync(() => Session(server, "alice@localhost/phone")?.IsHibernating == true, "the phone hibernating");
        await SendChatAsync(bob, "alice@localhost/phone", "to the phone");
        await SendChatAsync(bob, "alice@localhost/tablet", "to the tablet");
        await tablet.Client.ExpectAsync(e => TestServer.IsMessage(e, "to the tablet"), "the tablet's message");
        await bob.SyncAsync();

        await server.Server.ShutdownAsync(TimeSpan.FromSeconds(20));

        await tablet.Client.ExpectAsync("r", Sm); // asked for an ack before the end
        Assert.Equal(2, await OfflineCountAsync(server, "alice"));
    }
}
