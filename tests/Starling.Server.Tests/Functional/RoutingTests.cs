using Starling.Xml;

namespace Starling.Server.Tests.Functional;

/// <summary>RFC 6121 §8.5 and RFC 6120 §8, §10: where stanzas go and what comes back when they cannot.</summary>
public sealed class RoutingTests
{
    [Fact]
    public async Task Message_to_bare_jid_goes_to_the_resource_with_the_highest_priority()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var low = await server.LoginAsync("bob", "low", priority: 1);
        var high = await server.LoginAsync("bob", "high", priority: 5);
        var alice = await server.LoginAsync("alice", "a");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>hello</body></message>");
        var received = await high.ExpectAsync(e => TestServer.IsMessage(e, "hello"), "the message");
        Assert.Equal("alice@localhost/a", received.GetAttribute("from"));

        await alice.SyncAsync();
        await low.SyncAsync();
        low.AssertNoPending(e => e.Name == "message", "the message on the lower-priority resource");
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error");
    }

    [Fact]
    public async Task Message_to_bare_jid_goes_to_every_resource_sharing_the_highest_priority()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var one = await server.LoginAsync("bob", "one", priority: 3);
        var two = await server.LoginAsync("bob", "two", priority: 3);
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>both</body></message>");
        await one.ExpectAsync(e => TestServer.IsMessage(e, "both"), "the message");
        await two.ExpectAsync(e => TestServer.IsMessage(e, "both"), "the message");
    }

    [Fact]
    public async Task Message_to_bare_jid_is_not_delivered_to_a_negative_priority_resource_but_stored()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var negative = await server.LoginAsync("bob", "neg", priority: -1);
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>later</body></message>");
        await alice.SyncAsync();
        await negative.SyncAsync();
        negative.AssertNoPending(e => e.Name == "message", "the message on a negative-priority resource");
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error");

        var later = await server.LoginAsync("bob", "pos", priority: 0);
        var message = await later.ExpectAsync(e => TestServer.IsMessage(e, "later"), "the stored message");
        Assert.NotNull(message.Element("delay", "urn:xmpp:delay"));
    }

    [Fact]
    public async Task Message_to_full_jid_goes_to_that_resource_even_with_lower_priority()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var low = await server.LoginAsync("bob", "low", priority: 1);
        var high = await server.LoginAsync("bob", "high", priority: 5);
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost/low' type='chat'><body>direct</body></message>");
        await low.ExpectAsync(e => TestServer.IsMessage(e, "direct"), "the message");
        await alice.SyncAsync();
        await high.SyncAsync();
        high.AssertNoPending(e => e.Name == "message", "the message on another resource");
    }

    [Fact]
    public async Task Message_to_an_unknown_user_gets_service_unavailable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='nobody@localhost' type='chat' id='m1'><body>anyone?</body></message>");
        var error = await alice.ExpectStanzaErrorAsync("message", "m1", "service-unavailable", "cancel");
        Assert.Equal("nobody@localhost", error.GetAttribute("from"));
        Assert.Equal("alice@localhost/a", error.GetAttribute("to"));
    }

    [Fact]
    public async Task Message_to_an_unknown_domain_gets_remote_server_not_found()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='carol@example.org' type='chat' id='m1'><body>hi</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "m1", "remote-server-not-found", "cancel");
    }

    [Fact]
    public async Task Iq_to_another_users_full_jid_is_delivered_and_its_result_routed_back()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<iq type='get' id='q1' to='bob@localhost/b'><query xmlns='urn:example:custom'/></iq>");
        var request = await bob.ExpectAsync(e => e.Name == "iq" && e.GetAttribute("id") == "q1", "the iq request");
        Assert.Equal("alice@localhost/a", request.GetAttribute("from"));
        Assert.NotNull(request.Element("query", "urn:example:custom"));

        await bob.SendAsync("<iq type='result' id='q1' to='alice@localhost/a'><query xmlns='urn:example:custom'><answer>42</answer></query></iq>");
        var result = await alice.ExpectIqResultAsync("q1");
        Assert.Equal("bob@localhost/b", result.GetAttribute("from"));
        Assert.Equal("42", result.Element("query", "urn:example:custom")?.ElementText("answer", "urn:example:custom"));
    }

    [Fact]
    public async Task Iq_to_a_missing_full_jid_gets_service_unavailable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<iq type='get' id='q1' to='bob@localhost/gone'><query xmlns='urn:example:custom'/></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "q1", "service-unavailable");
    }

    [Fact]
    public async Task Iq_get_with_an_unknown_namespace_to_the_server_gets_service_unavailable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<iq type='get' id='q1' to='localhost'><query xmlns='urn:example:unknown'/></iq>");
        var error = await alice.ExpectStanzaErrorAsync("iq", "q1", "service-unavailable");
        Assert.Equal("localhost", error.GetAttribute("from"));
    }

    [Fact]
    public async Task Iq_get_without_payload_gets_bad_request()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<iq type='get' id='q1' to='localhost'/>");
        await alice.ExpectStanzaErrorAsync("iq", "q1", "bad-request");
    }

    [Fact]
    public async Task Iq_without_id_gets_bad_request()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        var error = await alice.ExpectAsync(e => e.Name == "iq" && e.GetAttribute("type") == "error", "an iq error");
        XmppTestClient.AssertStanzaError(error, "bad-request", "modify");
    }

    [Fact]
    public async Task Iq_with_an_invalid_type_gets_bad_request()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<iq type='fetch' id='q1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await alice.ExpectStanzaErrorAsync("iq", "q1", "bad-request");
    }

    [Theory]
    [InlineData("@localhost")]
    [InlineData("bob@")]
    [InlineData("bob@localhost/")]
    public async Task Malformed_to_gets_jid_malformed(string to)
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync($"<message to='{to}' type='chat' id='m1'><body>x</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "m1", "jid-malformed", "modify");
    }

    [Fact]
    public async Task From_is_stamped_with_the_full_jid_even_if_the_client_set_its_bare_jid()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message from='alice@localhost' to='bob@localhost/b' type='chat'><body>stamped</body></message>");
        var received = await bob.ExpectAsync(e => TestServer.IsMessage(e, "stamped"), "the message");
        Assert.Equal("alice@localhost/a", received.GetAttribute("from"));
    }

    [Fact]
    public async Task From_is_stamped_when_the_client_sets_none()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost/b' type='chat'><body>unstamped</body></message>");
        var received = await bob.ExpectAsync(e => TestServer.IsMessage(e, "unstamped"), "the message");
        Assert.Equal("alice@localhost/a", received.GetAttribute("from"));
    }

    [Theory]
    [InlineData("bob@localhost")]
    [InlineData("alice@localhost/other-resource")]
    [InlineData("localhost")]
    public async Task Spoofed_from_gets_invalid_from(string from)
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync($"<message from='{from}' to='alice@localhost' type='chat'><body>spoof</body></message>");
        await alice.ExpectStreamErrorAsync("invalid-from");
    }

    [Fact]
    public async Task Message_without_to_goes_to_the_senders_own_account()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var other = await server.LoginAsync("alice", "other", priority: 1);
        var alice = await server.LoginAsync("alice", "a", priority: 0);
        await alice.SendAsync("<message type='chat'><body>note to self</body></message>");
        await other.ExpectAsync(e => TestServer.IsMessage(e, "note to self"), "the message");
    }

    [Fact]
    public async Task Error_message_to_an_unknown_user_is_not_answered()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='nobody@localhost' type='error' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        await alice.SyncAsync();
        alice.AssertNoPending(e => e.GetAttribute("id") == "e1", "an answer to an error");
    }

    [Fact]
    public async Task Groupchat_message_to_a_bare_jid_gets_service_unavailable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='groupchat' id='g1'><body>room?</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "g1", "service-unavailable");
        await bob.SyncAsync();
        bob.AssertNoPending(e => e.GetAttribute("id") == "g1", "a groupchat message delivered to a bare JID");
    }

    [Fact]
    public async Task Chat_message_to_the_server_itself_gets_service_unavailable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='localhost' type='chat' id='s1'><body>hello server</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "s1", "service-unavailable");
    }

    [Fact]
    public async Task Priority_update_changes_which_resource_gets_bare_jid_messages()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var low = await server.LoginAsync("bob", "low", priority: 1);
        var high = await server.LoginAsync("bob", "high", priority: 5);
        await high.SendPresenceAsync(0);
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>moved</body></message>");
        await low.ExpectAsync(e => TestServer.IsMessage(e, "moved"), "the message on the now highest-priority resource");
        await alice.SyncAsync();
        await high.SyncAsync();
        high.AssertNoPending(e => TestServer.IsMessage(e, "moved"), "the message on the lowered resource");
    }

    [Fact]
    public async Task Resource_that_sent_unavailable_gets_no_bare_jid_messages_and_receives_them_when_available_again()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var bob = await server.LoginAsync("bob", "b");
        await bob.SendAsync("<presence type='unavailable'/>");
        await bob.SyncAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>while away</body></message>");
        await alice.SyncAsync();
        await bob.SyncAsync();
        bob.AssertNoPending(e => TestServer.IsMessage(e, "while away"), "a message while unavailable");
        await bob.SendPresenceAsync();
        var message = await bob.ExpectAsync(e => TestServer.IsMessage(e, "while away"), "the stored message");
        Assert.NotNull(message.Element("delay", "urn:xmpp:delay"));
    }

    [Fact]
    public async Task Unknown_jabber_client_element_after_bind_gets_unsupported_stanza_type()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<note>not a stanza</note>");
        await alice.ExpectStreamErrorAsync("unsupported-stanza-type");
    }
}
