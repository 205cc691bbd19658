using Starling.Server.Tests.Functional;

namespace Starling.Cli.Tests;

/// <summary>
/// Database, keys and message content are private to the server's user (issue #13, item 9): what `starling` creates
/// is 0600/0700 from the start, and `starling check` reports what is not.
/// </summary>
public sealed class DataPermissionTests : IAsyncLifetime
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-perm-");
    private readonly StarlingProcess _starling;

    public DataPermissionTests() => _starling = new StarlingProcess(_dir.FullName);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _starling.StopServersAsync();
        _dir.Delete(recursive: true);
    }

    private const UnixFileMode GroupAndOther = (UnixFileMode)0b000_111_111;

    /// <summary>Every file and folder under the data folder, with its mode, where group or others have any access.</summary>
    private List<string> OpenEntries()
    {
        var open = new List<string>();
        if (OperatingSystem.IsWindows()) return open;
        var data = _starling.DataDirectory;
        foreach (var entry in Directory.EnumerateFileSystemEntries(data, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Append(data))
        {
            var mode = File.GetUnixFileMode(entry);
            if ((mode & GroupAndOther) != 0) open.Add($"{entry} {Convert.ToString((int)mode, 8)}");
        }
        return open;
    }

    [Fact]
    public async Task Adduser_creates_the_data_folder_and_database_for_the_owner_only()
    {
        if (OperatingSystem.IsWindows()) return;
        var add = await _starling.RunWithAsync("pw\n", null, "adduser", "alice@localhost", "--password-stdin");
        Assert.True(add.Exit == 0, add.Err);
        Assert.True(File.Exists(Path.Combine(_starling.DataDirectory, "starling.db")));
        Assert.Empty(OpenEntries());
    }

    [Fact]
    public async Task A_fresh_start_creates_every_file_and_folder_for_the_owner_only()
    {
        if (OperatingSystem.IsWindows()) return;
        var server = await _starling.StartServerAsync();
        var add = await _starling.RunWithAsync("pw\n", null, "adduser", "alice@localhost", "--password-stdin");
        Assert.True(add.Exit == 0, add.Err);
        // A login and a roster write make SQLite create its -wal and -shm files in the server process.
        await using var alice = await XmppTestClient.ConnectAsync(server, "localhost");
        await alice.LoginAsync("alice", "pw", "phone");
        await alice.SendAsync("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>");
        await alice.ExpectIqResultAsync("r1");

        var data = _starling.DataDirectory;
        foreach (var expected in (string[])["starling.db", "starling.db-wal", "starling.db-shm", "certs/localhost.key", "certs/localhost.crt", "control/starling.sock"])
            Assert.True(File.Exists(Path.Combine(data, expected)), expected + " was not created");
        Assert.Empty(OpenEntries());
    }

    [Fact]
    public async Task Check_reports_a_world_readable_database_and_data_folder_with_the_chmod_to_run()
    {
        if (OperatingSystem.IsWindows()) return;
        Assert.Equal(0, (await _starling.RunWithAsync("pw\n", null, "adduser", "alice@localhost", "--password-stdin")).Exit);
        var db = Path.Combine(_starling.DataDirectory, "starling.db");
        var clean = await _starling.RunAsync("check", "--C2s:Port=0");
        Assert.True(clean.Exit == 0, clean.Out + clean.Err);

        File.SetUnixFileMode(db, (UnixFileMode)0b110_100_100);
        File.SetUnixFileMode(_starling.DataDirectory, (UnixFileMode)0b111_101_101);
        var (exit, stdout, _) = await _starling.RunAsync("check", "--C2s:Port=0");
        Assert.Equal(1, exit);
        Assert.Contains($"problem: {db} is accessible to group and other users (mode 0644); run: chmod 600 {db}", stdout, StringComparison.Ordinal);
        Assert.Contains($"run: chmod 700 {_starling.DataDirectory}", stdout, StringComparison.Ordinal);
        Assert.Contains("2 problem(s) found", stdout, StringComparison.Ordinal);
    }
}
