using Microsoft.Extensions.Logging;
using Starling.Server.Modules;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Server.Tests.Functional;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Pipeline;

/// <summary>The pipeline's seams through a running server: pre-events, outgoing filters, nonzas, server iq.</summary>
public sealed class PipelineFunctionalTests
{
    private const string TestNs = "urn:starling:test";

    /// <summary>A module whose Register is the test's.</summary>
    private sealed class TestModule(Action<ModuleContext> register) : IModule
    {
        public string Name => "test";

        public void Register(ModuleContext context) => register(context);
    }

    private static async Task<TestServer> StartAsync(Action<ModuleContext> register, params string[] extra)
    {
        var server = await TestServer.StartWithModulesAsync([new TestModule(register)], extra);
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        return server;
    }

    private static bool HasBody(StanzaContext c, string body) => c.Stanza.ElementText("body", Namespaces.Client) == body;

    [Fact]
    public async Task A_pre_message_handler_sees_a_client_message_in_the_sender_context_and_can_stop_it_before_routing()
    {
        var seen = new List<string>();
        await using var server = await StartAsync(context => context.Hook(StanzaEvent.PreMessageBare, c =>
        {
            seen.Add($"{c.Origin?.Jid} {c.From} {c.To} {c.ExplicitTo}");
            return new ValueTask<bool>(HasBody(c, "stop"));
        }, priority: 10));
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");

        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>stop</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>go</body></message>");

        await bob.ExpectAsync(e => TestServer.IsMessage(e, "go"), "the message the handler let through");
        await alice.SyncAsync();
        bob.AssertNoPending(e => TestServer.IsMessage(e, "stop"), "the message the handler stopped");
        Assert.Equal(["alice@localhost/a alice@localhost/a bob@localhost True", "alice@localhost/a alice@localhost/a bob@localhost True"], seen);
    }

    [Fact]
    public async Task A_throwing_handler_gets_the_sender_internal_server_error_and_the_stream_stays_up()
    {
        await using var server = await StartAsync(context => context.Hook(StanzaEvent.MessageBare, c =>
            HasBody(c, "boom") ? throw new InvalidOperationException("test handler bug") : new ValueTask<bool>(false), priority: 5));
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>boom</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "m1", "internal-server-error");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>after</body></message>");

        await bob.ExpectAsync(e => TestServer.IsMessage(e, "after"), "the next message");
        await alice.SyncAsync();
        var errors = server.Logs.Entries.Where(e => e.Level >= LogLevel.Error).ToList();
        var entry = Assert.Single(errors);
        Assert.Contains("message/bare", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_message_offline_handler_above_offline_storage_takes_the_message_first()
    {
        await using var server = await StartAsync(context => context.Hook(StanzaEvent.MessageOffline, c =>
        {
            if (!HasBody(c, "mine")) return new ValueTask<bool>(false);
            var reply = new XmlElement("message", Namespaces.Client);
            reply.SetAttribute("to", c.From.ToString()).SetAttribute("from", c.To.ToString());
            reply.AddElement("body").AddText("taken");
            return AwaitTrue(context.Server.Router.SendToAsync(reply, c.From));
        }, priority: 10));
        var alice = await server.LoginAsync("alice", "a");

        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>mine</body></message>");
        await alice.ExpectAsync(e => TestServer.IsMessage(e, "taken"), "the test handler's reply");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>stored</body></message>");
        await alice.SyncAsync();

        var bob = await server.LoginAsync("bob", "b");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "stored"), "the message offline storage kept");
        await bob.SyncAsync();
        bob.AssertNoPending(e => TestServer.IsMessage(e, "mine"), "the message the test handler took");
    }

    private static async ValueTask<bool> AwaitTrue(ValueTask task)
    {
        await task;
        return true;
    }

    [Fact]
    public async Task Without_offline_storage_a_message_to_an_offline_account_gets_service_unavailable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:Disabled:0=offline");
        var alice = await server.LoginAsync("alice", "a");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>anyone?</body></message>");

        await alice.ExpectStanzaErrorAsync("message", "m1", "service-unavailable");
    }

    [Fact]
    public async Task An_outgoing_filter_changes_a_copy_for_its_session_only()
    {
        await using var server = await StartAsync(context => context.SessionAvailable += session =>
        {
            if (session.Jid!.Resource == "marked")
            {
                session.AddOutgoingFilter((C2sSession _, ref XmlElement stanza) =>
                {
                    if (stanza.Name != "message") return OutgoingVerdict.Pass;
                    var copy = stanza.Clone();
                    copy.AddElement("marked", TestNs);
                    stanza = copy;
                    return OutgoingVerdict.Pass;
                });
            }
            return ValueTask.CompletedTask;
        });
        var marked = await server.LoginAsync("bob", "marked", priority: 1);
        var plain = await server.LoginAsync("bob", "plain", priority: 1);
        await marked.SyncAsync(); // its initial presence, and the SessionAvailable handlers, are done
        var alice = await server.LoginAsync("alice", "a");

        // One routed stanza, delivered to both resources of the same priority (RFC 6121 §8.5.2.1.1).
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>shared</body></message>");

        var first = await marked.ExpectAsync(e => TestServer.IsMessage(e, "shared"), "the message on the filtered resource");
        var second = await plain.ExpectAsync(e => TestServer.IsMessage(e, "shared"), "the message on the other resource");
        Assert.NotNull(first.Element("marked", TestNs));
        Assert.Null(second.Element("marked", TestNs));
    }

    [Fact]
    public async Task An_outgoing_filter_can_hold_a_stanza_and_release_it_later()
    {
        var held = new List<XmlElement>();
        C2sSession? holder = null;
        OutgoingFilter hold = null!;
        hold = (C2sSession session, ref XmlElement stanza) =>
        {
            if (stanza.ElementText("body", Namespaces.Client) != "later") return OutgoingVerdict.Pass;
            lock (held) held.Add(stanza);
            holder = session;
            return OutgoingVerdict.Hold;
        };
        await using var server = await StartAsync(context => context.SessionAvailable += session =>
        {
            if (session.Jid!.Local == "bob") session.AddOutgoingFilter(hold);
            return ValueTask.CompletedTask;
        });
        var bob = await server.LoginAsync("bob", "b");
        await bob.SyncAsync(); // its initial presence, and the SessionAvailable handlers, are done
        var alice = await server.LoginAsync("alice", "a");

        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>later</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>now</body></message>");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "now"), "the message the filter passed");
        bob.AssertNoPending(e => TestServer.IsMessage(e, "later"), "the held message");

        XmlElement release;
        lock (held) release = Assert.Single(held);
        Assert.True(holder!.Release(hold, release));
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "later"), "the released message");
        alice.AssertNoPending(e => e.GetAttribute("type") == "error", "an error");
    }

    [Fact]
    public async Task A_registered_nonza_reaches_its_handler_and_an_unregistered_one_still_closes_the_stream()
    {
        await using var server = await StartAsync(context => context.OnNonza(TestNs, "r", (session, element) =>
        {
            var answer = new XmlElement("a", TestNs);
            answer.SetAttribute("h", element.GetAttribute("n"));
            session.Deliver(answer);
            return ValueTask.CompletedTask;
        }));
        var alice = await server.LoginAsync("alice", "a");

        await alice.SendAsync($"<r xmlns='{TestNs}' n='7'/>");
        var a = await alice.ExpectAsync("a", TestNs);
        Assert.Equal("7", a.GetAttribute("h"));
        await alice.SyncAsync(); // the stream is still up

        await alice.SendAsync($"<enable xmlns='{TestNs}'/>");
        await alice.ExpectStreamErrorAsync("unsupported-stanza-type");
    }

    [Fact]
    public async Task A_nonza_before_binding_closes_the_stream_even_when_a_handler_is_registered()
    {
        int calls = 0;
        await using var server = await StartAsync(context => context.OnNonza(TestNs, "r", (_, _) =>
        {
            Interlocked.Increment(ref calls);
            return ValueTask.CompletedTask;
        }));
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();

        await client.SendAsync($"<r xmlns='{TestNs}'/>");

        await client.ExpectStreamErrorAsync("unsupported-stanza-type");
        Assert.Equal(0, Volatile.Read(ref calls));
    }

    [Fact]
    public async Task A_server_iq_completes_with_the_clients_answer_and_not_with_another_accounts()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        var bob = await server.LoginAsync("bob", "b");
        var ping = new XmlElement("iq", Namespaces.Client);
        ping.SetAttribute("type", "get");
        ping.AddElement("ping", Namespaces.Ping);

        var pending = server.Server.SendIqAsync(ping, Jid.Parse("localhost"), Jid.Parse("alice@localhost/a"), TimeSpan.FromMinutes(1));
        var request = await alice.ExpectAsync(e => e.Name == "iq" && e.Element("ping", Namespaces.Ping) is not null, "the server's ping");
        var id = request.GetAttribute("id")!;
        Assert.Equal("localhost", request.GetAttribute("from"));

        // Bob knows the id (it is not guessable, but suppose it leaked): his answer is not alice's.
        await bob.SendAsync($"<iq type='result' id='{id}' to='localhost'/>");
        await bob.SyncAsync();
        Assert.False(pending.IsCompleted);
        Assert.Equal(1, server.Server.IqTracker.Count);

        await alice.SendAsync($"<iq type='result' id='{id}' to='localhost'/>");
        var outcome = await pending;
        Assert.Equal(IqOutcomeKind.Result, outcome.Kind);
        Assert.Equal("alice@localhost/a", outcome.Stanza!.GetAttribute("from"));
        Assert.Equal(0, server.Server.IqTracker.Count);
    }

    [Fact]
    public async Task A_server_iq_to_a_resource_that_is_not_there_completes_with_service_unavailable()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var ping = new XmlElement("iq", Namespaces.Client);
        ping.SetAttribute("type", "get");
        ping.AddElement("ping", Namespaces.Ping);

        var outcome = await server.Server.SendIqAsync(ping, Jid.Parse("localhost"), Jid.Parse("alice@localhost/gone"), TimeSpan.FromMinutes(1));

        Assert.Equal(IqOutcomeKind.Error, outcome.Kind);
        XmppTestClient.AssertStanzaError(outcome.Stanza!, "service-unavailable");
        Assert.Equal(0, server.Server.IqTracker.Count);
    }
}
