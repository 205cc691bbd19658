using Starling.Server.Modules.Presence;
using Starling.Server.Storage;
using Starling.Xmpp;

namespace Starling.Server.Tests.Modules;

/// <summary>The presence module's per-account cache of subscribers and subscriptions.</summary>
public sealed class PresenceRosterTests
{
    private static RosterItem Item(string jid, string subscription) => new(jid, null, subscription, false, []);

    private static PresenceRoster Sample() => PresenceRoster.From(new RosterSnapshot("7",
    [
        Item("both@example.org", "both"),
        Item("from@example.org", "from"),
        Item("to@example.org", "to"),
        Item("none@example.org", "none"),
        Item("not a jid@@", "both"),
    ]));

    private static string[] Texts(Jid[] jids)
    {
        var texts = new string[jids.Length];
        for (int i = 0; i < jids.Length; i++) texts[i] = jids[i].ToString();
        Array.Sort(texts, StringComparer.Ordinal);
        return texts;
    }

    [Fact]
    public void Subscribers_are_from_and_both_and_subscriptions_are_to_and_both_with_unparsable_items_left_out()
    {
        var roster = Sample();
        Assert.Equal(["both@example.org", "from@example.org"], Texts(roster.Subscribers));
        Assert.Equal(["both@example.org", "to@example.org"], Texts(roster.Subscriptions));
        Assert.True(roster.IsSubscriber(Jid.Parse("from@example.org")));
        Assert.False(roster.IsSubscriber(Jid.Parse("to@example.org")));
    }

    [Fact]
    public void Apply_adds_and_removes_directions_and_replaces_the_arrays()
    {
        var roster = Sample();
        var before = roster.Subscribers;
        roster.Apply(Jid.Parse("to@example.org"), to: true, from: true);
        Assert.Equal(["both@example.org", "from@example.org", "to@example.org"], Texts(roster.Subscribers));
        Assert.True(roster.IsSubscriber(Jid.Parse("to@example.org")));
        // A caller looping over the old array keeps a consistent view.
        Assert.Equal(2, before.Length);

        roster.Apply(Jid.Parse("both@example.org"), to: false, from: false);
        Assert.Equal(["from@example.org", "to@example.org"], Texts(roster.Subscribers));
        Assert.Equal(["to@example.org"], Texts(roster.Subscriptions));
        Assert.False(roster.IsSubscriber(Jid.Parse("both@example.org")));
    }

    [Fact]
    public void Applying_the_same_state_twice_changes_nothing_the_second_time()
    {
        var roster = Sample();
        roster.Apply(Jid.Parse("new@example.org/resource"), to: false, from: true);
        var once = roster.Subscribers;
        roster.Apply(Jid.Parse("new@example.org"), to: false, from: true);
        Assert.Same(once, roster.Subscribers);
        Assert.Equal(["both@example.org", "from@example.org", "new@example.org"], Texts(roster.Subscribers));
    }
}
