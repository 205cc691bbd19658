using System.Globalization;
using Starling.Server.Storage;

namespace Starling.Server.Tests.Storage;

public sealed class SqliteRosterStoreTests
{
    private const string Host = "example.org";

    private static long Version(string? version) => long.Parse(version!, CultureInfo.InvariantCulture);

    [Fact]
    public async Task Empty_roster_has_version_zero()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");
        var roster = await storage.Roster.GetAsync(Host, "alice");
        Assert.Equal("0", roster.Version);
        Assert.Empty(roster.Items);
    }

    [Fact]
    public async Task Set_adds_then_replaces_and_bumps_the_version()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");

        string? v1 = await storage.Roster.SetItemAsync(Host, "alice", new RosterItem("bob@example.org", "Bob", "none", true, ["Friends", "Work"]));
        string? v2 = await storage.Roster.SetItemAsync(Host, "alice", new RosterItem("carol@example.net", null, "to", false, []));
        string? v3 = await storage.Roster.SetItemAsync(Host, "alice", new RosterItem("bob@example.org", "Bobby", "both", false, ["Work"]));

        Assert.True(Version(v1) > 0);
        Assert.True(Version(v2) > Version(v1));
        Assert.True(Version(v3) > Version(v2));

        var roster = await storage.Roster.GetAsync(Host, "alice");
        Assert.Equal(v3, roster.Version);
        Assert.Equal(2, roster.Items.Count);
        var bob = roster.Items.Single(i => i.Jid == "bob@example.org");
        Assert.Equal("Bobby", bob.Name);
        Assert.Equal("both", bob.Subscription);
        Assert.False(bob.AskSubscribe);
        Assert.Equal(["Work"], bob.Groups);
        var carol = roster.Items.Single(i => i.Jid == "carol@example.net");
        Assert.Null(carol.Name);
        Assert.Equal("to", carol.Subscription);
        Assert.Empty(carol.Groups);
    }

    [Fact]
    public async Task Ask_and_groups_round_trip()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");
        await storage.Roster.SetItemAsync(Host, "alice", new RosterItem("bob@example.org", "Bob \"B\" <b>", "none", true, ["Friends", "Ünïcode, \"quoted\"", ""]));

        var item = Assert.Single((await storage.Roster.GetAsync(Host, "alice")).Items);
        Assert.True(item.AskSubscribe);
        Assert.Equal("Bob \"B\" <b>", item.Name);
        Assert.Equal(["Friends", "Ünïcode, \"quoted\"", ""], item.Groups);
    }

    [Fact]
    public async Task Remove_deletes_and_bumps_but_missing_item_returns_null_without_bump()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");
        string? v1 = await storage.Roster.SetItemAsync(Host, "alice", new RosterItem("bob@example.org", null, "both", false, []));

        Assert.Null(await storage.Roster.RemoveItemAsync(Host, "alice", "nobody@example.org"));
        Assert.Equal(v1, (await storage.Roster.GetAsync(Host, "alice")).Version);

        string? v2 = await storage.Roster.RemoveItemAsync(Host, "alice", "bob@example.org");
        Assert.NotNull(v2);
        Assert.True(Version(v2) > Version(v1));
        var roster = await storage.Roster.GetAsync(Host, "alice");
        Assert.Equal(v2, roster.Version);
        Assert.Empty(roster.Items);
    }

    [Fact]
    public async Task Rosters_are_per_user_and_versions_never_repeat_after_recreate()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");
        await storage.Accounts.CreateAsync(TestData.Account(Host, "alice"));
        string? before = await storage.Roster.SetItemAsync(Host, "alice", new RosterItem("bob@example.org", null, "both", false, []));
        await storage.Roster.SetItemAsync(Host, "dave", new RosterItem("erin@example.org", null, "from", false, []));

        Assert.Single((await storage.Roster.GetAsync(Host, "dave")).Items);
        Assert.Equal("bob@example.org", Assert.Single((await storage.Roster.GetAsync(Host, "alice")).Items).Jid);

        await storage.Accounts.DeleteAsync(Host, "alice");
        await storage.Accounts.CreateAsync(TestData.Account(Host, "alice"));
        string? after = await storage.Roster.SetItemAsync(Host, "alice", new RosterItem("bob@example.org", null, "none", false, []));

        Assert.True(Version(after) > Version(before));
    }

    [Fact]
    public async Task Concurrent_sets_produce_distinct_versions()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");

        var versions = await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            Task.Run(() => storage.Roster.SetItemAsync(Host, "alice", new RosterItem($"c{i}@example.org", null, "none", false, [])))));

        Assert.Equal(50, versions.Distinct().Count());
        var roster = await storage.Roster.GetAsync(Host, "alice");
        Assert.Equal(50, roster.Items.Count);
        Assert.Equal(versions.Max(Version), Version(roster.Version));
    }
}
