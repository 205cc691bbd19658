namespace Starling.Server.Tests.Storage;

public sealed class SqlitePrivateXmlStoreTests
{
    private const string Host = "example.org";

    [Fact]
    public async Task Missing_entry_is_null()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");
        Assert.Null(await storage.PrivateXml.GetAsync(Host, "alice", "storage", "storage:bookmarks"));
    }

    [Fact]
    public async Task Set_then_get_and_upsert_replaces()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");
        await storage.PrivateXml.SetAsync(Host, "alice", "storage", "storage:bookmarks", "<storage xmlns='storage:bookmarks'/>");
        await storage.PrivateXml.SetAsync(Host, "alice", "storage", "storage:bookmarks", "<storage xmlns='storage:bookmarks'><conference jid='a@b'/></storage>");

        Assert.Equal("<storage xmlns='storage:bookmarks'><conference jid='a@b'/></storage>", await storage.PrivateXml.GetAsync(Host, "alice", "storage", "storage:bookmarks"));
    }

    [Fact]
    public async Task Entries_are_keyed_by_user_name_and_namespace()
    {
        await using var db = new TempDatabase();
        var storage = await db.OpenMigratedAsync("alice", "bob", "carol", "dave");
        await storage.PrivateXml.SetAsync(Host, "alice", "storage", "storage:bookmarks", "<a/>");
        await storage.PrivateXml.SetAsync(Host, "alice", "storage", "storage:rosternotes", "<b/>");
        await storage.PrivateXml.SetAsync(Host, "alice", "other", "storage:bookmarks", "<c/>");
        await storage.PrivateXml.SetAsync(Host, "bob", "storage", "storage:bookmarks", "<d/>");

        Assert.Equal("<a/>", await storage.PrivateXml.GetAsync(Host, "alice", "storage", "storage:bookmarks"));
        Assert.Equal("<b/>", await storage.PrivateXml.GetAsync(Host, "alice", "storage", "storage:rosternotes"));
        Assert.Equal("<c/>", await storage.PrivateXml.GetAsync(Host, "alice", "other", "storage:bookmarks"));
        Assert.Equal("<d/>", await storage.PrivateXml.GetAsync(Host, "bob", "storage", "storage:bookmarks"));
        Assert.Null(await storage.PrivateXml.GetAsync("example.net", "alice", "storage", "storage:bookmarks"));
    }
}
