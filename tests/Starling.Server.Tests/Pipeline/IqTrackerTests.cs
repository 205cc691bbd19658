using Starling.Server.Pipeline;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Pipeline;

/// <summary>Server-originated iq: ids, matching of the answer, timeouts, the bounded table.</summary>
public sealed class IqTrackerTests
{
    private static readonly Jid Host = Jid.Parse("localhost");
    private static readonly Jid Alice = Jid.Parse("alice@localhost/phone");
    private static readonly Jid Mallory = Jid.Parse("mallory@localhost/x");
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    private sealed class Wire
    {
        public List<XmlElement> Sent { get; } = [];

        public ValueTask Route(XmlElement iq, Jid from, Jid to)
        {
            Sent.Add(iq);
            return ValueTask.CompletedTask;
        }
    }

    private static XmlElement Ping()
    {
        var iq = new XmlElement("iq", Namespaces.Client);
        iq.SetAttribute("type", "get");
        iq.AddElement("ping", Namespaces.Ping);
        return iq;
    }

    private static XmlElement Answer(XmlElement request, string type = "result")
    {
        var iq = new XmlElement("iq", Namespaces.Client);
        iq.SetAttribute("id", request.GetAttribute("id")).SetAttribute("type", type);
        return iq;
    }

    [Fact]
    public async Task A_result_from_the_addressee_completes_the_request_and_leaves_no_entry()
    {
        var wire = new Wire();
        var tracker = new IqTracker(wire.Route);
        var pending = tracker.SendAsync(Ping(), Host, Alice, Long);
        var sent = Assert.Single(wire.Sent);
        Assert.Equal("localhost", sent.GetAttribute("from"));
        Assert.Equal("alice@localhost/phone", sent.GetAttribute("to"));
        Assert.Equal(1, tracker.Count);

        var answer = Answer(sent);
        Assert.True(tracker.TryComplete(answer, Alice, Host));

        var outcome = await pending;
        Assert.Equal(IqOutcomeKind.Result, outcome.Kind);
        Assert.Same(answer, outcome.Stanza);
        Assert.Equal(0, tracker.Count);
        Assert.False(tracker.TryComplete(answer, Alice, Host)); // answered once
    }

    [Fact]
    public async Task An_error_from_the_addressee_completes_the_request_with_the_error()
    {
        var wire = new Wire();
        var tracker = new IqTracker(wire.Route);
        var pending = tracker.SendAsync(Ping(), Host, Alice, Long);

        Assert.True(tracker.TryComplete(Answer(wire.Sent[0], "error"), Alice, requester: null));

        Assert.Equal(IqOutcomeKind.Error, (await pending).Kind);
    }

    [Fact]
    public async Task An_answer_from_another_sender_or_to_another_requester_does_not_complete_the_request()
    {
        var wire = new Wire();
        var tracker = new IqTracker(wire.Route);
        var pending = tracker.SendAsync(Ping(), Host, Alice, Long);
        var answer = Answer(wire.Sent[0]);

        Assert.False(tracker.TryComplete(answer, Mallory, Host));
        Assert.False(tracker.TryComplete(answer, Alice.Bare, Host));
        Assert.False(tracker.TryComplete(answer, Alice, Jid.Parse("alice@localhost")));
        Assert.False(pending.IsCompleted);
        Assert.Equal(1, tracker.Count);

        Assert.True(tracker.TryComplete(answer, Alice, Host));
        Assert.Equal(IqOutcomeKind.Result, (await pending).Kind);
    }

    [Fact]
    public async Task An_unanswered_request_times_out_and_leaves_no_entry()
    {
        var wire = new Wire();
        var tracker = new IqTracker(wire.Route);

        var outcome = await tracker.SendAsync(Ping(), Host, Alice, TimeSpan.FromMilliseconds(20));

        Assert.Equal(IqOutcomeKind.Timeout, outcome.Kind);
        Assert.Null(outcome.Stanza);
        Assert.Equal(0, tracker.Count);
        Assert.False(tracker.TryComplete(Answer(wire.Sent[0]), Alice, Host)); // too late
    }

    [Fact]
    public async Task A_cancelled_request_ends_as_cancelled_and_leaves_no_entry()
    {
        var wire = new Wire();
        var tracker = new IqTracker(wire.Route);
        using var cts = new CancellationTokenSource();
        var pending = tracker.SendAsync(Ping(), Host, Alice, Long, cts.Token);

        await cts.CancelAsync();

        Assert.Equal(IqOutcomeKind.Cancelled, (await pending).Kind);
        Assert.Equal(0, tracker.Count);
    }

    [Fact]
    public async Task The_table_refuses_requests_past_its_limit_without_sending_them()
    {
        var wire = new Wire();
        var tracker = new IqTracker(wire.Route, maxPending: 2);
        var first = tracker.SendAsync(Ping(), Host, Alice, Long);
        var second = tracker.SendAsync(Ping(), Host, Alice, Long);

        var refused = await tracker.SendAsync(Ping(), Host, Alice, Long);

        Assert.Equal(IqOutcomeKind.Refused, refused.Kind);
        Assert.Equal(2, wire.Sent.Count);
        Assert.True(tracker.TryComplete(Answer(wire.Sent[0]), Alice, Host));
        await first;
        var third = tracker.SendAsync(Ping(), Host, Alice, Long); // room again
        Assert.Equal(3, wire.Sent.Count);
        Assert.True(tracker.TryComplete(Answer(wire.Sent[1]), Alice, Host));
        Assert.True(tracker.TryComplete(Answer(wire.Sent[2]), Alice, Host));
        await Task.WhenAll(second, third);
        Assert.Equal(0, tracker.Count);
    }

    [Fact]
    public void Ids_are_unique_and_not_a_counter()
    {
        var wire = new Wire();
        var tracker = new IqTracker(wire.Route);
        for (int i = 0; i < 1000; i++) _ = tracker.SendAsync(Ping(), Host, Alice, Long);

        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var iq in wire.Sent)
        {
            var id = iq.GetAttribute("id")!;
            Assert.True(id.Length >= 16, id);
            Assert.True(ids.Add(id));
        }
        // A sequence would share long prefixes; 96 random bits do not.
        Assert.NotEqual(wire.Sent[0].GetAttribute("id")![..8], wire.Sent[^1].GetAttribute("id")![..8]);
    }

    [Fact]
    public async Task A_request_whose_routing_fails_ends_without_an_answer()
    {
        var tracker = new IqTracker((_, _, _) => throw new InvalidOperationException("router bug"));

        var outcome = await tracker.SendAsync(Ping(), Host, Alice, Long);

        Assert.Equal(IqOutcomeKind.Timeout, outcome.Kind);
        Assert.Equal(0, tracker.Count);
    }
}
