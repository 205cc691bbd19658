using Starling.Server.Storage;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>RFC 6121 §3 presence subscriptions and §4.3 probes between local accounts, through a running server.</summary>
public sealed class SubscriptionTests
{
    private const string Alice = "alice@localhost";
    private const string Bob = "bob@localhost";

    private static bool IsPresence(XmlElement e, string from, string? type) =>
        e.Name == "presence" && e.GetAttribute("from") == from && e.GetAttribute("type") == type;

    private static bool IsPush(XmlElement e, string jid) =>
        e.Name == "iq" && e.GetAttribute("type") == "set"
        && e.Element("query", Namespaces.Roster)?.Element("item", Namespaces.Roster)?.GetAttribute("jid") == jid;

    /// <summary>Waits for the roster push about <paramref name="jid"/> and returns its item.</summary>
    private static async Task<XmlElement> ExpectPushAsync(XmppTestClient client, string jid)
    {
        var push = await client.ExpectAsync(e => IsPush(e, jid), $"a roster push for {jid}");
        Assert.NotNull(push.Element("query", Namespaces.Roster)!.GetAttribute("ver"));
        return push.Element("query", Namespaces.Roster)!.Element("item", Namespaces.Roster)!;
    }

    private static async Task<XmlElement> ExpectPushAsync(XmppTestClient client, string jid, string subscription, string? ask = null)
    {
        var item = await ExpectPushAsync(client, jid);
        Assert.True(item.GetAttribute("subscription") == subscription && item.GetAttribute("ask") == ask,
            $"expected subscription='{subscription}' ask='{ask}', got {item}");
        return item;
    }

    /// <summary>The roster as the server returns it; the resource becomes interested in pushes (§2.1.6).</summary>
    private static async Task<XmlElement> GetRosterAsync(XmppTestClient client, string? ver = null)
    {
        var id = client.NextId("roster");
        await client.SendAsync(ver is null
            ? $"<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>"
            : $"<iq type='get' id='{id}'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>");
        var result = await client.ExpectIqResultAsync(id);
        return result.Element("query", Namespaces.Roster) ?? new XmlElement("query", Namespaces.Roster);
    }

    private static XmlElement? ItemOf(XmlElement query, string jid)
    {
        foreach (var item in query.Elements("item", Namespaces.Roster))
        {
            if (item.GetAttribute("jid") == jid) return item;
        }
        return null;
    }

    /// <summary>Logs in, fetches the roster (interested) and sends initial presence (available).</summary>
    private static async Task<XmppTestClient> LoginInterestedAsync(TestServer server, string user, string resource, string extraPresence = "")
    {
        var client = await server.LoginAsync(user, resource, available: false);
        await GetRosterAsync(client);
        await client.SendPresenceAsync(extra: extraPresence);
        return client;
    }

    /// <summary>alice and bob subscribe to each other through the protocol: both end with 'both'.</summary>
    private static async Task MakeMutualAsync(XmppTestClient alice, XmppTestClient bob)
    {
        await alice.SendAsync($"<presence to='{Bob}' type='subscribe'/>");
        await ExpectPushAsync(alice, Bob, "none", "subscribe");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "subscribe"), "alice's request");
        await bob.SendAsync($"<presence to='{Alice}' type='subscribed'/>");
        await ExpectPushAsync(bob, Alice, "from");
        await ExpectPushAsync(alice, Bob, "to");
        await bob.SendAsync($"<presence to='{Alice}' type='subscribe'/>");
        await ExpectPushAsync(bob, Alice, "from", "subscribe");
        await alice.ExpectAsync(e => IsPresence(e, Bob, "subscribe"), "bob's request");
        await alice.SendAsync($"<presence to='{Bob}' type='subscribed'/>");
        await ExpectPushAsync(alice, Bob, "both");
        await ExpectPushAsync(bob, Alice, "both");
    }

    [Fact]
    public async Task Subscribe_goes_out_from_the_bare_jid_to_the_bare_jid_after_a_push_with_ask()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        var bob2 = await LoginInterestedAsync(server, "bob", "b2");

        await alice.SendAsync("<presence to='bob@localhost/b' type='subscribe'><status>it is me</status></presence>");
        await ExpectPushAsync(alice, Bob, "none", "subscribe");
        // RFC 6121 §3.1.2/§3.1.3: stamped with the sender's bare JID, for the contact's account: every available resource.
        foreach (var resource in new[] { bob, bob2 })
        {
            var request = await resource.ExpectAsync(e => IsPresence(e, Alice, "subscribe"), "the subscription request");
            Assert.Equal(Bob, request.GetAttribute("to"));
            Assert.Equal("it is me", request.ElementText("status", Namespaces.Client));
        }
        var roster = await GetRosterAsync(alice);
        var item = ItemOf(roster, Bob)!;
        Assert.Equal("none", item.GetAttribute("subscription"));
        Assert.Equal("subscribe", item.GetAttribute("ask"));
    }

    [Fact]
    public async Task Mutual_subscription_goes_from_none_with_ask_to_both_and_presence_then_flows_both_ways()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        await alice.SyncAsync();
        alice.AssertNoPending(e => IsPresence(e, "bob@localhost/b", null), "bob's presence before any subscription");

        await alice.SendAsync($"<presence to='{Bob}' type='subscribe'/>");
        await ExpectPushAsync(alice, Bob, "none", "subscribe");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "subscribe"), "alice's request");
        await bob.SendAsync($"<presence to='{Alice}' type='subscribed'/>");
        await ExpectPushAsync(bob, Alice, "from");
        // §3.1.6: alice learns of the approval, then gets bob's current presence (§3.1.5).
        await ExpectPushAsync(alice, Bob, "to");
        await alice.ExpectAsync(e => IsPresence(e, Bob, "subscribed"), "the approval");
        await alice.ExpectAsync(e => IsPresence(e, "bob@localhost/b", null), "bob's presence after the approval");

        await bob.SendAsync($"<presence to='{Alice}' type='subscribe'/>");
        await ExpectPushAsync(bob, Alice, "from", "subscribe");
        await alice.ExpectAsync(e => IsPresence(e, Bob, "subscribe"), "bob's request");
        await alice.SendAsync($"<presence to='{Bob}' type='subscribed'/>");
        await ExpectPushAsync(alice, Bob, "both");
        await ExpectPushAsync(bob, Alice, "both");
        await bob.ExpectAsync(e => IsPresence(e, "alice@localhost/a", null), "alice's presence after the approval");

        // The sessions were available before the subscriptions existed: broadcasts follow the current roster.
        await alice.SendAsync("<presence><status>from alice</status></presence>");
        var fromAlice = await bob.ExpectAsync(e => IsPresence(e, "alice@localhost/a", null) && e.ElementText("status", Namespaces.Client) == "from alice", "alice's update");
        Assert.Equal(Bob, fromAlice.GetAttribute("to"));
        await bob.SendAsync("<presence><status>from bob</status></presence>");
        await alice.ExpectAsync(e => IsPresence(e, "bob@localhost/b", null) && e.ElementText("status", Namespaces.Client) == "from bob", "bob's update");

        var aliceRoster = await GetRosterAsync(alice);
        Assert.Equal("both", ItemOf(aliceRoster, Bob)!.GetAttribute("subscription"));
        Assert.Null(ItemOf(aliceRoster, Bob)!.GetAttribute("ask"));
    }

    [Fact]
    public async Task Request_to_an_offline_contact_is_stored_and_delivered_after_its_initial_presence_until_answered()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        await alice.SendAsync($"<presence to='{Bob}' type='subscribe'><status>remember me</status></presence>");
        await ExpectPushAsync(alice, Bob, "none", "subscribe");
        await alice.SyncAsync();

        // Connected but not yet available: subscription requests go to available resources only (§2.2, §3.1.3).
        var bob = await server.LoginAsync("bob", "b", available: false);
        await bob.SyncAsync();
        bob.AssertNoPending(e => IsPresence(e, Alice, "subscribe"), "the request before initial presence");
        await bob.SendPresenceAsync();
        var request = await bob.ExpectAsync(e => IsPresence(e, Alice, "subscribe"), "the stored request");
        Assert.Equal("remember me", request.ElementText("status", Namespaces.Client));
        // The pending request is not a roster item of bob's (Appendix A: 'None + Pending In' is not shown).
        Assert.Null(ItemOf(await GetRosterAsync(bob), Alice));
        await bob.DisposeAsync();

        // Still unanswered: delivered again at the next login; answered: no more.
        var again = await server.LoginAsync("bob", "b2");
        await again.ExpectAsync(e => IsPresence(e, Alice, "subscribe"), "the request at the next login");
        await again.SendAsync($"<presence to='{Alice}' type='subscribed'/>");
        await ExpectPushAsync(alice, Bob, "to");
        await again.DisposeAsync();
        var third = await server.LoginAsync("bob", "b3");
        await third.SyncAsync();
        third.AssertNoPending(e => IsPresence(e, Alice, "subscribe"), "a request already answered");
    }

    [Fact]
    public async Task Request_from_a_contact_already_approved_is_answered_by_the_server_without_asking_the_user()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        // alice lost track of her subscription (ask again) while bob has her as 'from'.
        await server.Server.Storage.Roster.SetItemAsync("localhost", "alice", new RosterItem(Bob, null, "none", false, []));
        await server.Server.Storage.Roster.SetItemAsync("localhost", "bob", new RosterItem(Alice, null, "from", false, []));
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");

        await alice.SendAsync($"<presence to='{Bob}' type='subscribe'/>");
        await ExpectPushAsync(alice, Bob, "none", "subscribe");
        // §3.1.3: the contact's server answers subscribed (and bob's presence follows, as Prosody sends it).
        await alice.ExpectAsync(e => IsPresence(e, Bob, "subscribed"), "the server's approval");
        await ExpectPushAsync(alice, Bob, "to");
        await alice.ExpectAsync(e => IsPresence(e, "bob@localhost/b", null), "bob's presence");
        await bob.SyncAsync();
        bob.AssertNoPending(e => IsPresence(e, Alice, "subscribe"), "a request the server answered");
    }

    [Fact]
    public async Task Pre_approval_is_advertised_stored_as_approved_and_answers_the_later_request()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        Assert.NotNull(bob.Features!.Element("sub", "urn:xmpp:features:pre-approval"));

        // §3.4.1: subscribed with no request pending: an item with approved='true', and nothing is routed.
        await bob.SendAsync($"<presence to='{Alice}' type='subscribed'/>");
        var approved = await ExpectPushAsync(bob, Alice, "none");
        Assert.Equal("true", approved.GetAttribute("approved"));
        await alice.SyncAsync();
        alice.AssertNoPending(e => IsPresence(e, Bob, "subscribed"), "a pre-approval routed to the contact");
        Assert.Equal("true", ItemOf(await GetRosterAsync(bob), Alice)!.GetAttribute("approved"));

        await alice.SendAsync($"<presence to='{Bob}' type='subscribe'/>");
        await ExpectPushAsync(alice, Bob, "none", "subscribe");
        await alice.ExpectAsync(e => IsPresence(e, Bob, "subscribed"), "the approval on bob's behalf");
        await ExpectPushAsync(alice, Bob, "to");
        var now = await ExpectPushAsync(bob, Alice, "from");
        Assert.Null(now.GetAttribute("approved"));
        await bob.SyncAsync();
        bob.AssertNoPending(e => IsPresence(e, Alice, "subscribe"), "a pre-approved request");
    }

    [Fact]
    public async Task Withdrawing_a_pre_approval_is_pushed_and_not_routed()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        await bob.SendAsync($"<presence to='{Alice}' type='subscribed'/>");
        await ExpectPushAsync(bob, Alice, "none");
        await bob.SendAsync($"<presence to='{Alice}' type='unsubscribed'/>");
        var withdrawn = await ExpectPushAsync(bob, Alice, "none");
        Assert.Null(withdrawn.GetAttribute("approved"));
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.Name == "presence" && e.GetAttribute("from") == Bob, "anything from bob");

        // Without the pre-approval a request waits for bob again.
        await alice.SendAsync($"<presence to='{Bob}' type='subscribe'/>");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "subscribe"), "alice's request");
    }

    [Fact]
    public async Task Unsolicited_subscribed_and_unsubscribed_change_nothing_and_are_not_delivered()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var before = (await GetRosterAsync(alice)).GetAttribute("ver");
        // As a contact's server would route them (inbound, Appendix A): alice never asked.
        var router = server.Server.Router;
        var bob = Jid.Parse(Bob);
        var aliceJid = Jid.Parse(Alice);
        foreach (var type in new[] { "subscribed", "unsubscribed", "unsubscribe" })
        {
            var presence = new XmlElement("presence", Namespaces.Client);
            presence.SetAttribute("type", type).SetAttribute("from", Bob).SetAttribute("to", Alice);
            await router.RouteAsync(presence, bob, aliceJid);
        }
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.Name == "presence" && e.GetAttribute("from") == Bob, "an unsolicited subscription stanza");
        alice.AssertNoPending(e => IsPush(e, Bob), "a roster push");
        // The version did not move: a get with it is answered with an empty result (§2.6.3).
        await alice.SendAsync($"<iq type='get' id='again'><query xmlns='jabber:iq:roster' ver='{before}'/></iq>");
        var current = await alice.ExpectIqResultAsync("again");
        Assert.False(current.HasChildren, $"the roster changed: {current}");
    }

    [Fact]
    public async Task Denying_a_request_tells_the_requester_and_clears_ask()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        await alice.SendAsync($"<presence to='{Bob}' type='subscribe'/>");
        await ExpectPushAsync(alice, Bob, "none", "subscribe");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "subscribe"), "alice's request");
        await bob.SendAsync($"<presence to='{Alice}' type='unsubscribed'/>");
        await alice.ExpectAsync(e => IsPresence(e, Bob, "unsubscribed"), "the denial");
        await ExpectPushAsync(alice, Bob, "none");
        // Denied, so no longer pending for bob: not delivered at his next login.
        await bob.DisposeAsync();
        var again = await server.LoginAsync("bob", "b2");
        await again.SyncAsync();
        again.AssertNoPending(e => IsPresence(e, Alice, "subscribe"), "a denied request");
    }

    [Fact]
    public async Task Unsubscribe_cancels_the_users_subscription_and_the_contact_sends_unavailable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        await MakeMutualAsync(alice, bob);

        await alice.SendAsync($"<presence to='{Bob}' type='unsubscribe'/>");
        await ExpectPushAsync(alice, Bob, "from");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "unsubscribe"), "the cancellation");
        await ExpectPushAsync(bob, Alice, "to");
        // §3.3.3: alice no longer sees bob: his server sends unavailable from each available resource.
        await alice.ExpectAsync(e => IsPresence(e, "bob@localhost/b", "unavailable"), "bob's unavailable presence");

        // bob's broadcasts no longer reach alice; alice's still reach bob.
        await bob.SendAsync("<presence><status>after</status></presence>");
        await alice.SendAsync("<presence><status>still</status></presence>");
        await bob.ExpectAsync(e => IsPresence(e, "alice@localhost/a", null) && e.ElementText("status", Namespaces.Client) == "still", "alice's update");
        await alice.SyncAsync();
        alice.AssertNoPending(e => IsPresence(e, "bob@localhost/b", null) && e.ElementText("status", Namespaces.Client) == "after", "bob's update after the cancellation");
    }

    [Fact]
    public async Task Unsubscribed_cancels_the_contacts_subscription_after_unavailable_presence()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        await MakeMutualAsync(alice, bob);

        await alice.SendAsync($"<presence to='{Bob}' type='unsubscribed'/>");
        await ExpectPushAsync(alice, Bob, "to");
        // §3.2.2: while bob is still subscribed he gets unavailable from alice's resources, then the cancellation.
        await bob.ExpectAsync(e => IsPresence(e, "alice@localhost/a", "unavailable"), "alice's unavailable presence");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "unsubscribed"), "the cancellation");
        await ExpectPushAsync(bob, Alice, "from");

        await alice.SendAsync("<presence><status>hidden</status></presence>");
        await bob.SendAsync("<presence><status>visible</status></presence>");
        await alice.ExpectAsync(e => IsPresence(e, "bob@localhost/b", null) && e.ElementText("status", Namespaces.Client) == "visible", "bob's update");
        await bob.SyncAsync();
        bob.AssertNoPending(e => IsPresence(e, "alice@localhost/a", null) && e.ElementText("status", Namespaces.Client) == "hidden", "alice's update after the cancellation");
    }

    [Fact]
    public async Task Roster_remove_cancels_both_subscriptions()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        await MakeMutualAsync(alice, bob);

        await alice.SendAsync($"<iq type='set' id='rm1'><query xmlns='jabber:iq:roster'><item jid='{Bob}' subscription='remove'/></query></iq>");
        await alice.ExpectIqResultAsync("rm1");
        Assert.Equal("remove", (await ExpectPushAsync(alice, Bob)).GetAttribute("subscription"));
        // §2.5.2: unsubscribe and unsubscribed go to bob, after unavailable presence from alice.
        await bob.ExpectAsync(e => IsPresence(e, "alice@localhost/a", "unavailable"), "alice's unavailable presence");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "unsubscribe"), "unsubscribe");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "unsubscribed"), "unsubscribed");
        var bobItem = ItemOf(await GetRosterAsync(bob), Alice)!;
        Assert.Equal("none", bobItem.GetAttribute("subscription"));
        Assert.Null(ItemOf(await GetRosterAsync(alice), Bob));
    }

    [Fact]
    public async Task Initial_presence_probes_subscribed_contacts_and_gets_each_available_resource()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b", "<status>on the phone</status>");
        var bob2 = await LoginInterestedAsync(server, "bob", "b2", "<status>at the desk</status>");
        await MakeMutualAsync(alice, bob);
        await alice.DisposeAsync();

        var later = await server.LoginAsync("alice", "later");
        var phone = await later.ExpectAsync(e => IsPresence(e, "bob@localhost/b", null), "bob/b's presence");
        Assert.Equal("on the phone", phone.ElementText("status", Namespaces.Client));
        var desk = await later.ExpectAsync(e => IsPresence(e, "bob@localhost/b2", null), "bob/b2's presence");
        Assert.Equal("at the desk", desk.ElementText("status", Namespaces.Client));
        Assert.Equal("alice@localhost/later", desk.GetAttribute("to"));
        _ = bob2;
    }

    [Fact]
    public async Task Probe_from_a_contact_that_is_not_subscribed_gets_unsubscribed_which_repairs_its_roster()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        // carol's roster says she sees bob's presence; bob's has no such subscription.
        await server.AddUserAsync("carol");
        await server.Server.Storage.Roster.SetItemAsync("localhost", "carol", new RosterItem(Bob, null, "to", false, []));
        var bob = await LoginInterestedAsync(server, "bob", "b");
        var carol = await LoginInterestedAsync(server, "carol", "c");
        // §4.3.2: her login probes bob; his server answers unsubscribed, not his presence.
        await carol.ExpectAsync(e => IsPresence(e, Bob, "unsubscribed"), "unsubscribed in answer to the probe");
        await ExpectPushAsync(carol, Bob, "none");
        await carol.SyncAsync();
        carol.AssertNoPending(e => IsPresence(e, "bob@localhost/b", null), "bob's presence");
        _ = bob;
    }

    [Fact]
    public async Task Request_needing_a_roster_item_past_the_limit_gets_resource_constraint_and_is_not_routed()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:roster:MaxItems=1");
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var bob = await LoginInterestedAsync(server, "bob", "b");
        await alice.SendAsync("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>");
        await alice.ExpectIqResultAsync("s1");
        await alice.SendAsync($"<presence id='p1' to='{Bob}' type='subscribe'/>");
        await alice.ExpectStanzaErrorAsync("presence", "p1", "resource-constraint", "wait");
        await bob.SyncAsync();
        bob.AssertNoPending(e => IsPresence(e, Alice, "subscribe"), "a request refused at the sender's server");
    }

    [Fact]
    public async Task Pending_requests_per_user_are_bounded()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:presence:MaxPendingSubscriptions=2");
        await server.AddUserAsync("carol");
        await server.AddUserAsync("dave");
        foreach (var user in new[] { "alice", "carol" })
        {
            var client = await server.LoginAsync(user, "x");
            await client.SendAsync($"<presence to='{Bob}' type='subscribe'/>");
            await client.SyncAsync();
        }
        var dave = await server.LoginAsync("dave", "x");
        await dave.SendAsync($"<presence id='p3' to='{Bob}' type='subscribe'/>");
        await dave.ExpectStanzaErrorAsync("presence", "p3", "resource-constraint");

        var bob = await server.LoginAsync("bob", "b");
        await bob.ExpectAsync(e => IsPresence(e, Alice, "subscribe"), "alice's request");
        await bob.ExpectAsync(e => IsPresence(e, "carol@localhost", "subscribe"), "carol's request");
        await bob.SyncAsync();
        bob.AssertNoPending(e => IsPresence(e, "dave@localhost", "subscribe"), "the refused request");
    }

    [Fact]
    public async Task Request_to_an_account_that_does_not_exist_is_denied()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        await alice.SendAsync("<presence to='nobody@localhost' type='subscribe'/>");
        await ExpectPushAsync(alice, "nobody@localhost", "none", "subscribe");
        await alice.ExpectAsync(e => IsPresence(e, "nobody@localhost", "unsubscribed"), "the denial");
        await ExpectPushAsync(alice, "nobody@localhost", "none");
    }

    [Fact]
    public async Task Subscription_to_the_server_is_approved_at_once_and_its_probe_answered()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        await alice.SendAsync("<presence to='localhost' type='subscribe'/>");
        await ExpectPushAsync(alice, "localhost", "none", "subscribe");
        await alice.ExpectAsync(e => IsPresence(e, "localhost", "subscribed"), "the server's approval");
        await ExpectPushAsync(alice, "localhost", "to");
        await alice.DisposeAsync();
        // Subscribed to the server: the next login probes it and gets its presence.
        var again = await server.LoginAsync("alice", "b");
        await again.ExpectAsync(e => IsPresence(e, "localhost", null), "the server's presence");
    }

    [Fact]
    public async Task Roster_set_cannot_add_the_own_account_or_change_a_subscription()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        await alice.SendAsync($"<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='{Alice}'/></query></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "s1", "not-allowed", "cancel");
        // RFC 6121 §2.1.2.5: values other than "remove" are ignored, and so are 'ask' and 'approved'.
        await alice.SendAsync($"<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='{Bob}' subscription='both' ask='subscribe' approved='true'/></query></iq>");
        await alice.ExpectIqResultAsync("s2");
        var pushed = await ExpectPushAsync(alice, Bob, "none");
        Assert.Null(pushed.GetAttribute("approved"));
    }

    [Fact]
    public async Task Roster_get_with_an_old_version_returns_the_full_roster_with_the_version_of_the_last_push()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await LoginInterestedAsync(server, "alice", "a");
        var old = (await GetRosterAsync(alice)).GetAttribute("ver");
        await alice.SendAsync($"<presence to='{Bob}' type='subscribe'/>");
        var push = await alice.ExpectAsync(e => IsPush(e, Bob), "the push");
        var pushedVer = push.Element("query", Namespaces.Roster)!.GetAttribute("ver");
        Assert.NotEqual(old, pushedVer);
        var full = await GetRosterAsync(alice, old);
        Assert.Equal(pushedVer, full.GetAttribute("ver"));
        Assert.NotNull(ItemOf(full, Bob));
    }
}
