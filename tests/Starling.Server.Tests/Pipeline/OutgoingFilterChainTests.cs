using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Pipeline;

/// <summary>A session's outgoing filters: order, hold, replace (copy on write), release.</summary>
public sealed class OutgoingFilterChainTests
{
    // The chain only hands the session through to its filters; these filters do not look at it.
    private static readonly C2sSession NoSession = null!;

    private static XmlElement Message(string body)
    {
        var message = new XmlElement("message", Namespaces.Client);
        message.AddElement("body").AddText(body);
        return message;
    }

    private static OutgoingFilter Record(List<string> log, string name, OutgoingVerdict verdict = OutgoingVerdict.Pass) =>
        (C2sSession _, ref XmlElement _) =>
        {
            log.Add(name);
            return verdict;
        };

    [Fact]
    public void Filters_run_highest_priority_first_and_equal_priorities_in_the_order_added()
    {
        var log = new List<string>();
        var chain = OutgoingFilterChain.With(null, Record(log, "sm"), -10);
        chain = OutgoingFilterChain.With(chain, Record(log, "csi"), 10);
        chain = OutgoingFilterChain.With(chain, Record(log, "a"), 0);
        chain = OutgoingFilterChain.With(chain, Record(log, "b"), 0);
        var stanza = Message("hi");

        Assert.True(chain.Run(NoSession, ref stanza));
        Assert.Equal(["csi", "a", "b", "sm"], log);
    }

    [Fact]
    public void A_filter_that_holds_stops_the_chain()
    {
        var log = new List<string>();
        var chain = OutgoingFilterChain.With(null, Record(log, "hold", OutgoingVerdict.Hold), 1);
        chain = OutgoingFilterChain.With(chain, Record(log, "after"), 0);
        var stanza = Message("hi");

        Assert.False(chain.Run(NoSession, ref stanza));
        Assert.Equal(["hold"], log);
    }

    [Fact]
    public void Releasing_a_held_stanza_runs_only_the_filters_after_the_holder()
    {
        var log = new List<string>();
        var before = Record(log, "before");
        var holder = Record(log, "holder", OutgoingVerdict.Hold);
        var chain = OutgoingFilterChain.With(null, before, 2);
        chain = OutgoingFilterChain.With(chain, holder, 1);
        chain = OutgoingFilterChain.With(chain, Record(log, "after"), 0);
        var stanza = Message("hi");

        Assert.True(chain.Run(NoSession, ref stanza, chain.IndexOf(holder) + 1));
        Assert.Equal(["after"], log);
    }

    [Fact]
    public void A_filter_that_marks_a_copy_leaves_the_shared_stanza_untouched_for_the_other_recipients()
    {
        OutgoingFilter mark = (C2sSession _, ref XmlElement stanza) =>
        {
            var copy = stanza.Clone();
            copy.AddElement("marked", "urn:test:filter");
            stanza = copy;
            return OutgoingVerdict.Pass;
        };
        var marking = OutgoingFilterChain.With(null, mark, 0);
        var shared = Message("for everyone");

        var forFirst = shared;
        Assert.True(marking.Run(NoSession, ref forFirst));
        var forSecond = shared; // a recipient without filters gets the routed stanza itself

        Assert.NotSame(shared, forFirst);
        Assert.NotNull(forFirst.Element("marked", "urn:test:filter"));
        Assert.Null(shared.Element("marked", "urn:test:filter"));
        Assert.Same(shared, forSecond);
        Assert.Equal("for everyone", forFirst.ElementText("body", Namespaces.Client));
    }

    [Fact]
    public void Removing_the_last_filter_leaves_no_chain()
    {
        var log = new List<string>();
        var a = Record(log, "a");
        var b = Record(log, "b");
        var chain = OutgoingFilterChain.With(OutgoingFilterChain.With(null, a, 0), b, 0);

        var one = OutgoingFilterChain.Without(chain, a);
        Assert.NotNull(one);
        Assert.Equal(1, one.Count);
        Assert.Equal(0, one.IndexOf(b));
        Assert.Null(OutgoingFilterChain.Without(one, b));
        Assert.Same(one, OutgoingFilterChain.Without(one, a));
    }
}
