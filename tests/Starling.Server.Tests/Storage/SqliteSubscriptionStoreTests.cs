using Starling.Server.Modules.Presence;
using Starling.Server.Storage;

namespace Starling.Server.Tests.Storage;

/// <summary>Subscription state in the roster store: atomic transitions, pending-in requests, limits (RFC 6121 §3).</summary>
public sealed class SqliteSubscriptionStoreTests
{
    private const string Host = "example.org";
    private const string Bob = "bob@example.org";

    [Fact]
    public async Task A_request_creates_an_asking_item_and_bumps_the_version()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        var update = await storage.Roster.UpdateSubscriptionAsync(Host, "alice", Bob, SubscriptionRules.OutboundSubscribe, null, 10, 10);
        Assert.Equal(SubscriptionOutcome.Changed, update.Outcome);
        Assert.NotNull(update.Version);
        var roster = await storage.Roster.GetAsync(Host, "alice");
        Assert.Equal(update.Version, roster.Version);
        var item = Assert.Single(roster.Items);
        Assert.Equal(("none", true), (item.Subscription, item.AskSubscribe));
    }

    [Fact]
    public async Task A_pending_in_request_is_stored_apart_from_the_roster_without_a_version_change()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        const string Xml = "<presence xmlns='jabber:client' type='subscribe' from='bob@example.org'><status>hi</status></presence>";
        var update = await storage.Roster.UpdateSubscriptionAsync(Host, "alice", Bob, SubscriptionRules.InboundSubscribe, Xml, 10, 10);
        Assert.Equal(SubscriptionOutcome.Changed, update.Outcome);
        Assert.Null(update.Version);
        var roster = await storage.Roster.GetAsync(Host, "alice");
        Assert.Empty(roster.Items);
        Assert.Equal("0", roster.Version);
        var pending = Assert.Single(await storage.Roster.GetPendingInAsync(Host, "alice"));
        Assert.Equal((Bob, Xml), (pending.Jid, pending.Xml));
        Assert.True((await storage.Roster.GetContactAsync(Host, "alice", Bob)).PendingIn);

        // Approving it adds the item with 'from' and clears the request.
        var approved = await storage.Roster.UpdateSubscriptionAsync(Host, "alice", Bob, SubscriptionRules.OutboundSubscribed, null, 10, 10);
        Assert.Equal("from", approved.Item!.Subscription);
        Assert.NotNull(approved.Version);
        Assert.Empty(await storage.Roster.GetPendingInAsync(Host, "alice"));
    }

    [Fact]
    public async Task A_transition_that_changes_nothing_writes_nothing()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        var update = await storage.Roster.UpdateSubscriptionAsync(Host, "alice", Bob, SubscriptionRules.InboundSubscribed, null, 10, 10);
        Assert.Equal(SubscriptionOutcome.Unchanged, update.Outcome);
        Assert.Null(update.Item);
        Assert.Equal("0", (await storage.Roster.GetAsync(Host, "alice")).Version);
    }

    [Fact]
    public async Task New_items_and_new_pending_requests_past_their_limits_change_nothing()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        Assert.Equal(SubscriptionOutcome.Changed, (await storage.Roster.UpdateSubscriptionAsync(Host, "alice", "a@example.org", SubscriptionRules.OutboundSubscribe, null, 1, 1)).Outcome);
        Assert.Equal(SubscriptionOutcome.RosterFull, (await storage.Roster.UpdateSubscriptionAsync(Host, "alice", "b@example.org", SubscriptionRules.OutboundSubscribe, null, 1, 1)).Outcome);
        // The existing item may still change.
        Assert.Equal(SubscriptionOutcome.Changed, (await storage.Roster.UpdateSubscriptionAsync(Host, "alice", "a@example.org", SubscriptionRules.InboundSubscribed, null, 1, 1)).Outcome);

        Assert.Equal(SubscriptionOutcome.Changed, (await storage.Roster.UpdateSubscriptionAsync(Host, "alice", "c@example.org", SubscriptionRules.InboundSubscribe, null, 1, 1)).Outcome);
        Assert.Equal(SubscriptionOutcome.PendingFull, (await storage.Roster.UpdateSubscriptionAsync(Host, "alice", "d@example.org", SubscriptionRules.InboundSubscribe, null, 1, 1)).Outcome);
        Assert.Single(await storage.Roster.GetPendingInAsync(Host, "alice"));
        Assert.Single((await storage.Roster.GetAsync(Host, "alice")).Items);
    }

    [Fact]
    public async Task Removing_a_contact_returns_its_state_and_drops_its_pending_request()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        await storage.Roster.UpdateSubscriptionAsync(Host, "alice", Bob, SubscriptionRules.OutboundSubscribe, null, 10, 10);
        await storage.Roster.UpdateSubscriptionAsync(Host, "alice", Bob, SubscriptionRules.InboundSubscribe, null, 10, 10);
        var removal = await storage.Roster.RemoveContactAsync(Host, "alice", Bob);
        Assert.NotNull(removal);
        Assert.True(removal.Before.AskSubscribe && removal.Before.PendingIn);
        Assert.Empty(await storage.Roster.GetPendingInAsync(Host, "alice"));
        Assert.Equal(ContactState.Absent, await storage.Roster.GetContactAsync(Host, "alice", Bob));
        Assert.Null(await storage.Roster.RemoveContactAsync(Host, "alice", Bob));
    }

    [Fact]
    public async Task A_roster_set_keeps_the_subscription_state_it_does_not_own()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice");
        await storage.Roster.UpdateSubscriptionAsync(Host, "alice", Bob, SubscriptionRules.OutboundSubscribed, null, 10, 10);
        var set = await storage.Roster.SetItemDetailsAsync(Host, "alice", Bob, "Bob", ["Friends"]);
        Assert.NotNull(set);
        var item = set.Value.Item;
        Assert.Equal(("Bob", "none", true), (item.Name, item.Subscription, item.Approved));
        Assert.Equal(["Friends"], item.Groups);
        Assert.Equal(item, Assert.Single((await storage.Roster.GetAsync(Host, "alice")).Items) with { Groups = item.Groups });
    }
}
