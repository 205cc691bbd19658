using System.Net;
using Starling.Server.Tests.Functional;

namespace Starling.Cli.Tests;

/// <summary>
/// Admin commands reach a running server through its control socket (issue #13, item 12): real `starling start`
/// and `starling deluser/passwd/status` processes, real clients.
/// </summary>
public sealed class ControlSocketTests : IAsyncLifetime
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-ctl-");
    private readonly StarlingProcess _starling;

    public ControlSocketTests() => _starling = new StarlingProcess(_dir.FullName);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _starling.StopServersAsync();
        _dir.Delete(recursive: true);
    }

    private async Task AddUsersAsync(params string[] users)
    {
        foreach (var user in users)
        {
            var add = await _starling.RunWithAsync("pw-" + user + "\n", null, "adduser", user + "@localhost", "--password-stdin");
            Assert.True(add.Exit == 0, add.Err);
        }
    }

    private static async Task<XmppTestClient> LoginAsync(IPEndPoint server, string user, string resource, string? password = null)
    {
        var client = await XmppTestClient.ConnectAsync(server, "localhost");
        await client.LoginAsync(user, password ?? "pw-" + user, resource);
        await client.SendPresenceAsync();
        return client;
    }

    private static async Task<string> FailedLoginAsync(IPEndPoint server, string user, string password)
    {
        await using var client = await XmppTestClient.ConnectAsync(server, "localhost");
        await client.OpenStreamAsync();
        var outcome = await client.TryAuthenticateScramAsync(user, password, Xmpp.Sasl.ScramHash.Sha256);
        return outcome.Name;
    }

    /// <summary>Whatever was done to one account, two other users still log in and chat.</summary>
    private static async Task AssertOthersLogInAndChatAsync(IPEndPoint server)
    {
        await using var bob = await LoginAsync(server, "bob", "b");
        await using var carol = await LoginAsync(server, "carol", "c");
        await bob.SendAsync("<message to='carol@localhost/c' type='chat' id='m1'><body>hello carol</body></message>");
        await carol.ExpectAsync(e => e.Name == "message" && e.ElementText("body", "jabber:client") == "hello carol", "bob's message");
    }

    [Fact]
    public async Task Deluser_of_a_running_server_ends_the_users_stream_and_the_user_cannot_log_in_again()
    {
        await AddUsersAsync("alice", "bob", "carol");
        var server = await _starling.StartServerAsync();
        await using var alice = await LoginAsync(server, "alice", "phone");

        var del = await _starling.RunAsync("deluser", "alice@localhost");
        Assert.True(del.Exit == 0, del.Err);
        Assert.Equal("deleted alice@localhost (1 session ended)", del.Out.Trim());
        await alice.ExpectStreamErrorAsync("not-authorized");

        Assert.Equal("failure", await FailedLoginAsync(server, "alice", "pw-alice"));
        Assert.DoesNotContain("alice@localhost", (await _starling.RunAsync("users")).Out, StringComparison.Ordinal);
        await AssertOthersLogInAndChatAsync(server);
    }

    [Fact]
    public async Task Passwd_with_end_sessions_ends_the_users_stream_with_reset_and_only_the_new_password_works()
    {
        await AddUsersAsync("alice", "bob", "carol");
        var server = await _starling.StartServerAsync();
        await using var alice = await LoginAsync(server, "alice", "phone");

        var passwd = await _starling.RunWithAsync("new-secret\n", null, "passwd", "alice@localhost", "--password-stdin", "--end-sessions");
        Assert.True(passwd.Exit == 0, passwd.Err);
        Assert.Equal("password of alice@localhost changed (1 session ended)", passwd.Out.Trim());
        await alice.ExpectStreamErrorAsync("reset");

        Assert.Equal("failure", await FailedLoginAsync(server, "alice", "pw-alice"));
        await using var again = await LoginAsync(server, "alice", "laptop", "new-secret");
        await AssertOthersLogInAndChatAsync(server);
    }

    [Fact]
    public async Task Passwd_without_end_sessions_leaves_the_live_session_connected()
    {
        await AddUsersAsync("alice");
        var server = await _starling.StartServerAsync();
        await using var alice = await LoginAsync(server, "alice", "phone");

        var passwd = await _starling.RunWithAsync("new-secret\n", null, "passwd", "alice@localhost", "--password-stdin");
        Assert.True(passwd.Exit == 0, passwd.Err);
        Assert.Equal("password of alice@localhost changed", passwd.Out.Trim());
        await alice.SyncAsync();
        Assert.False(alice.ServerClosedStream);
        await using var again = await LoginAsync(server, "alice", "laptop", "new-secret");
    }

    [Fact]
    public async Task Status_prints_the_running_servers_figures_and_says_when_none_runs()
    {
        var none = await _starling.RunAsync("status");
        Assert.Equal(3, none.Exit);
        Assert.Contains("no server is running", none.Err, StringComparison.Ordinal);

        await AddUsersAsync("alice");
        var server = await _starling.StartServerAsync();
        await using var alice = await LoginAsync(server, "alice", "phone");
        await using var anonymous = await XmppTestClient.ConnectAsync(server, "localhost");
        await anonymous.OpenStreamAsync();

        var (exit, stdout, stderr) = await _starling.RunAsync("status");
        Assert.True(exit == 0, stderr);
        Assert.Matches(@"^Starling \d+\.\d+\.\d+ running \(pid \d+\)", stdout);
        Assert.Matches(@"uptime: +\d+", stdout);
        Assert.Contains("connections: 2", stdout, StringComparison.Ordinal);
        Assert.Contains("sessions:    1", stdout, StringComparison.Ordinal);
        var memory = System.Text.RegularExpressions.Regex.Match(stdout, @"memory: +(\d+\.\d) MB resident, (\d+\.\d) MB managed heap");
        Assert.True(memory.Success, stdout);
        double resident = double.Parse(memory.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(resident, 5, 4096);
        Assert.Matches(@"gc: +\d+ gen0, \d+ gen1, \d+ gen2 collections; \d+\.\d ms paused in all", stdout);
        Assert.Contains("hosts:       localhost", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reload_makes_the_running_server_reread_its_certificates_and_names_a_file_that_does_not_load()
    {
        var none = await _starling.RunAsync("reload");
        Assert.Equal(3, none.Exit);
        Assert.Contains("no server is running", none.Err, StringComparison.Ordinal);

        await _starling.StartServerAsync();
        var ok = await _starling.RunAsync("reload");
        Assert.True(ok.Exit == 0, ok.Err);
        Assert.Contains("localhost: loaded", ok.Out, StringComparison.Ordinal);

        var key = Path.Combine(_starling.DataDirectory, "certs", "localhost.key");
        Assert.True(File.Exists(key), key);
        await File.WriteAllTextAsync(key, "not a key");
        var broken = await _starling.RunAsync("reload");
        Assert.Equal(1, broken.Exit);
        Assert.Contains("localhost: kept the previous certificate", broken.Out, StringComparison.Ordinal);
        Assert.Contains("localhost.key", broken.Out, StringComparison.Ordinal);
        Assert.Contains("kept their previous certificate", broken.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_running_server_deluser_and_passwd_work_on_the_database()
    {
        await AddUsersAsync("alice", "bob");
        await _starling.StartServerAsync();
        await _starling.StopServersAsync(); // killed: its socket file is left behind, and nobody answers on it
        Assert.True(File.Exists(Path.Combine(_starling.DataDirectory, "control", "starling.sock")));

        var passwd = await _starling.RunWithAsync("x\n", null, "passwd", "bob@localhost", "--password-stdin", "--end-sessions");
        Assert.True(passwd.Exit == 0, passwd.Err);
        Assert.Contains("no server is running", passwd.Out, StringComparison.Ordinal);
        var del = await _starling.RunAsync("deluser", "alice@localhost");
        Assert.True(del.Exit == 0, del.Err);
        Assert.Equal("deleted alice@localhost", del.Out.Trim());
        Assert.Equal("bob@localhost", (await _starling.RunAsync("users")).Out.Trim());
    }

    [Fact]
    public async Task A_control_request_from_another_uid_is_refused()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") return; // needs root to act as another user
        await AddUsersAsync("alice");
        var server = await _starling.StartServerAsync();
        await using var alice = await LoginAsync(server, "alice", "phone");
        var socket = Path.Combine(_starling.DataDirectory, "control", "starling.sock");
        // Someone loosened the modes that keep other users out: the peer check still refuses them.
        File.SetUnixFileMode(_dir.FullName, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(_starling.DataDirectory, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(Path.GetDirectoryName(socket)!, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_110);

        var script = "import socket,sys\n" +
            "s=socket.socket(socket.AF_UNIX)\n" +
            $"s.connect('{socket}')\n" +
            "s.sendall(b'{\"command\":\"deluser\",\"jid\":\"alice@localhost\"}\\n')\n" +
            "data=b''\n" +
            "while not data.endswith(b'\\n'):\n" +
            "    chunk=s.recv(4096)\n" +
            "    if not chunk: break\n" +
            "    data+=chunk\n" +
            "sys.stdout.write(data.decode())\n";
        var (exit, stdout, stderr) = await StarlingProcess.RunPythonAsAsync("65534", script);
        Assert.True(exit == 0, stderr);
        Assert.Contains("\"ok\":false", stdout, StringComparison.Ordinal);
        Assert.Contains("permission denied", stdout, StringComparison.Ordinal);

        // Nothing happened to alice, and the server's own user is still served.
        await alice.SyncAsync();
        Assert.False(alice.ServerClosedStream);
        Assert.Equal(0, (await _starling.RunAsync("status")).Exit);
        Assert.Contains("alice@localhost", (await _starling.RunAsync("users")).Out, StringComparison.Ordinal);
    }
}
