using Microsoft.Data.Sqlite;

namespace Starling.Server.Tests.Functional.Transport;

/// <summary>
/// Issue #13, graceful shutdown: connected clients get system-shutdown (RFC 6120 §4.9.3.17), and what was queued
/// for clients but not written is stored offline before the database closes.
/// </summary>
public sealed class ShutdownTests
{
    [Fact]
    public async Task Stopping_sends_system_shutdown_and_stores_messages_queued_for_a_client_that_does_not_read()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--C2s:ReadBytesPerSecond=0", "--C2s:CloseTimeoutSeconds=2", "--Limits:OfflineQuota=100000", "--Limits:MaxOutboundQueueBytes=64000000");
        var database = server.Config.DatabasePath;
        await server.LoginAsync("bob", "stuck"); // never reads again
        var alice = await server.LoginAsync("alice", "reader");
        var padding = new string('y', 20_000);
        const int Count = 300; // 6 MB: more than the socket buffers hold
        for (int i = 0; i < Count; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='s{i}'><body>{i} {padding}</body></message>");
        await alice.SyncAsync(); // all routed: queued for bob or in his socket

        var stopping = server.Host.DisposeAsync().AsTask();
        await alice.ExpectStreamErrorAsync("system-shutdown");
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));

        // The database was closed cleanly (its WAL checkpointed into the file) and holds the undelivered tail.
        Assert.False(File.Exists(database + "-wal") && new FileInfo(database + "-wal").Length > 0, "the WAL was not checkpointed");
        using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        connection.Open();
        using (var check = connection.CreateCommand())
        {
            check.CommandText = "PRAGMA integrity_check";
            Assert.Equal("ok", check.ExecuteScalar() as string);
        }
        connection.Close();
        await using var storage = new Starling.Server.Storage.Sqlite.SqliteStorage(database);
        var stored = await storage.Offline.LoadPageAsync("localhost", "bob", 0, 100_000);
        Assert.True(stored.Count > 0, "no message queued for the client that did not read was stored offline");
        // The tail of the conversation is what was still queued: the last message is there.
        Assert.Contains(stored, m => m.Xml.Contains($"id=\"s{Count - 1}\"", StringComparison.Ordinal) || m.Xml.Contains($"id='s{Count - 1}'", StringComparison.Ordinal));
    }
}
