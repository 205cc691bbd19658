using System.Globalization;

namespace Starling.Server.Tests.Storage;

/// <summary>Two storage instances on one file behave like the server and the admin CLI in separate processes.</summary>
public sealed class SqliteConcurrencyTests
{
    private const string Host = "example.org";

    private static string Name(string prefix, int i) => prefix + i.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Two_instances_write_concurrently_without_losing_anything()
    {
        await using var db = new TempDatabase();
        var server = await db.OpenMigratedAsync("shared");
        var cli = db.Open();
        const int PerSide = 100;

        var serverWork = Task.Run(async () =>
        {
            for (int i = 0; i < PerSide; i++)
            {
                Assert.True(await server.Accounts.CreateAsync(TestData.Account(Host, Name("s", i))));
                await server.Offline.TryStoreAsync(Host, "shared", Name("<s/>", i), DateTimeOffset.UtcNow, int.MaxValue, long.MaxValue);
            }
        });
        var cliWork = Task.Run(async () =>
        {
            for (int i = 0; i < PerSide; i++)
            {
                Assert.True(await cli.Accounts.CreateAsync(TestData.Account(Host, Name("c", i))));
                await cli.Roster.SetItemAsync(Host, "shared", new Starling.Server.Storage.RosterItem(Name("c", i) + "@example.org", null, "none", false, []));
            }
        });
        var bulk = cli.Accounts.CreateManyAsync(Enumerable.Range(0, 5000).Select(i => TestData.Account(Host, Name("bulk", i))));

        await Task.WhenAll(serverWork, cliWork, bulk);

        Assert.Equal(5000, await bulk);
        Assert.Equal(1 + (2 * PerSide) + 5000, (await cli.Accounts.ListAsync(Host)).Count);
        Assert.Equal(PerSide, await cli.Offline.CountAsync(Host, "shared"));
        Assert.Equal(PerSide, (await server.Roster.GetAsync(Host, "shared")).Items.Count);
    }

    [Fact]
    public async Task A_write_waits_for_another_process_holding_the_write_lock()
    {
        await using var db = new TempDatabase();
        var server = await db.OpenMigratedAsync();

        using var other = db.OpenRaw();
        using var transaction = other.BeginTransaction(deferred: false);
        using (var insert = other.CreateCommand())
        {
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO accounts (host, username, created_at) VALUES ('example.org', 'locker', 0)";
            insert.ExecuteNonQuery();
        }

        var blocked = Task.Run(() => server.Accounts.CreateAsync(TestData.Account(Host, "alice")));

        // Readers are not blocked by the writer (WAL), and do not see its uncommitted row.
        Assert.Empty(await server.Accounts.ListAsync(Host));

        await Task.Delay(300);
        transaction.Commit();

        Assert.True(await blocked);
        Assert.Equal(["alice", "locker"], await server.Accounts.ListAsync(Host));
    }
}
