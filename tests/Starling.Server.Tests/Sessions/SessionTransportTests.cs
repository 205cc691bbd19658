using System.Net;
using Starling.Server.Modules;
using Starling.Server.Sessions;
using Starling.Server.Tests.Functional;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Sessions;

/// <summary>Sessions apart from transports: the session delivers through whatever transport it has now; nonzas before binding.</summary>
public sealed class SessionTransportTests
{
    private const string TestNs = "urn:starling:test";

    private sealed class TestModule(Action<ModuleContext> register) : IModule
    {
        public string Name => "test";

        public void Register(ModuleContext context) => register(context);
    }

    /// <summary>A transport that keeps what it is sent.</summary>
    private sealed class RecordingTransport(string id) : IClientTransport
    {
        public List<XmlElement> Sent { get; } = [];

        public string ConnectionId => id;

        public EndPoint? RemoteEndPoint => null;

        public bool IsSecure => false;

        public bool IsClosed { get; private set; }

        public bool HasQueueRoom => true;

        public bool Send(XmlElement element)
        {
            if (IsClosed) return false;
            Sent.Add(element);
            return true;
        }

        public void Close(string condition, string? text = null, XmlElement? applicationCondition = null) => IsClosed = true;

        public Task<bool> WaitForQueueRoomAsync(TimeSpan timeout) => Task.FromResult(!IsClosed);
    }

    private static XmlElement Message(string body)
    {
        var m = new XmlElement("message", Namespaces.Client);
        m.AddElement("body").AddText(body);
        return m;
    }

    [Fact]
    public async Task A_session_delivers_through_the_transport_attached_last_and_refuses_without_one()
    {
        await using var server = await TestServer.StartAsync();
        var first = new RecordingTransport("first");
        var second = new RecordingTransport("second");
        var session = new C2sSession(server.Server, first, TestServer.Domain, null);

        Assert.True(session.Deliver(Message("one")));
        Assert.Same(first, session.AttachTransport(second));
        Assert.True(session.Deliver(Message("two")));
        Assert.Equal("second", session.ConnectionId);
        Assert.False(session.DetachTransport(first)); // not the current one: nothing happens
        Assert.True(session.DetachTransport(second));
        Assert.False(session.Deliver(Message("three"))); // no transport: the caller re-routes

        Assert.Equal(["one"], first.Sent.Select(e => e.ElementText("body", Namespaces.Client)));
        Assert.Equal(["two"], second.Sent.Select(e => e.ElementText("body", Namespaces.Client)));
    }

    private sealed class CountingReceipt : IDeliveryReceipt
    {
        public int Acknowledgements;
        public int Refusals;

        public void Acknowledged() => Acknowledgements++;

        public void Unacknowledged() => Refusals++;
    }

    [Fact]
    public async Task Tracked_delivery_without_stream_management_completes_once_queued_and_not_at_all_when_refused()
    {
        await using var server = await TestServer.StartAsync();
        var transport = new RecordingTransport("t");
        var session = new C2sSession(server.Server, transport, TestServer.Domain, null);
        var receipt = new CountingReceipt();

        Assert.True(session.DeliverTracked(Message("queued"), receipt));
        Assert.Equal(1, receipt.Acknowledgements);

        transport.Close("system-shutdown");
        Assert.False(session.DeliverTracked(Message("refused"), receipt)); // the caller keeps it (the offline row stays)
        Assert.Equal(1, receipt.Acknowledgements);
        Assert.Equal(0, receipt.Refusals);
    }

    [Fact]
    public async Task A_nonza_allowed_before_binding_reaches_its_handler_with_the_negotiating_stream_and_not_after_binding()
    {
        await using var server = await TestServer.StartWithModulesAsync([new TestModule(context => context.OnNonzaBeforeBind(TestNs, "hello", (stream, _) =>
        {
            var answer = new XmlElement("hello", TestNs);
            answer.SetAttribute("account", stream.AccountJid?.ToString() ?? "none");
            stream.Reply(answer);
            return ValueTask.CompletedTask;
        }))]);
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();

        await client.SendAsync($"<hello xmlns='{TestNs}'/>");
        Assert.Equal("none", (await client.ExpectAsync("hello", TestNs)).GetAttribute("account"));
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        await client.SendAsync($"<hello xmlns='{TestNs}'/>");
        Assert.Equal("alice@localhost", (await client.ExpectAsync("hello", TestNs)).GetAttribute("account"));

        await client.BindAsync("a");
        await client.SendAsync($"<hello xmlns='{TestNs}'/>");
        await client.ExpectStreamErrorAsync("unsupported-stanza-type");
    }

    [Fact]
    public async Task A_lost_connection_without_stream_management_ends_the_session_at_once()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var a1 = await server.LoginAsync("alice", "one");
        var a2 = await server.LoginAsync("alice", "two");

        a1.Abort();

        await a2.ExpectAsync(e => e.Name == "presence" && e.GetAttribute("type") == "unavailable" && e.GetAttribute("from") == "alice@localhost/one",
            "the lost resource's unavailable presence");
        Assert.Equal(1, server.Server.Sessions.GetSessions(Jid.Parse("alice@localhost")).Length);
    }
}
