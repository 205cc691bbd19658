using System.Net.Sockets;
using System.Text;
using Starling.Server.Admin;
using Starling.Server.Control;

namespace Starling.Server.Tests.Functional;

/// <summary>AccountAdmin (the code behind `starling adduser/passwd/deluser`) and the control socket the CLI reaches a running server through: validation messages and effect on logins and live sessions.</summary>
public sealed class AdminTests
{
    [Theory]
    [InlineData("bob@example.net", "host 'example.net' is not served")]
    [InlineData("@localhost", "is not a valid JID")]
    [InlineData("bob@localhost/phone", "has a resource")]
    [InlineData("localhost", "has no user part")]
    public async Task ParseAccount_rejects_with_a_clear_message(string text, string expected)
    {
        await using var server = await TestServer.StartAsync();
        var ex = Assert.Throws<AdminException>(() => server.Admin.ParseAccount(text));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Adding_an_existing_user_fails_with_a_clear_message()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var ex = await Assert.ThrowsAsync<AdminException>(() => server.AddUserAsync("alice", "another"));
        Assert.Contains("alice@localhost already exists", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Adding_a_user_with_an_empty_password_fails()
    {
        await using var server = await TestServer.StartAsync();
        var ex = await Assert.ThrowsAsync<AdminException>(() => server.AddUserAsync("alice", ""));
        Assert.Contains("password is empty", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Passwd_of_a_missing_user_fails_with_a_clear_message()
    {
        await using var server = await TestServer.StartAsync();
        var ex = await Assert.ThrowsAsync<AdminException>(() => server.Admin.SetPasswordAsync(server.Admin.ParseAccount("ghost@localhost"), "pw"));
        Assert.Contains("ghost@localhost does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Passwd_changes_which_password_logs_in()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        await server.Admin.SetPasswordAsync(server.Admin.ParseAccount("alice@localhost"), "new-password");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var old = await client.TryAuthenticateScramAsync("alice", TestServer.Password, Xmpp.Sasl.ScramHash.Sha256);
        Assert.Equal("failure", old.Name);
        await client.AuthenticateScramAsync("alice", "new-password");
    }

    [Fact]
    public async Task Deluser_removes_the_account_and_login_then_fails()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        var jid = server.Admin.ParseAccount("alice@localhost");
        await server.Admin.DeleteUserAsync(jid);
        Assert.Equal(["bob@localhost"], await server.Admin.ListUsersAsync(null));

        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var outcome = await client.TryAuthenticateScramAsync("alice", TestServer.Password, Xmpp.Sasl.ScramHash.Sha256);
        Assert.Equal("failure", outcome.Name);
        Assert.NotNull(outcome.Element("not-authorized", Xmpp.Namespaces.Sasl));

        var ex = await Assert.ThrowsAsync<AdminException>(() => server.Admin.DeleteUserAsync(jid));
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Messages_to_a_deleted_account_get_service_unavailable()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        await server.Admin.DeleteUserAsync(server.Admin.ParseAccount("bob@localhost"));
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>gone?</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "m1", "service-unavailable");
    }

    [Fact]
    public async Task ListUsers_of_an_unknown_host_fails()
    {
        await using var server = await TestServer.StartAsync();
        var ex = await Assert.ThrowsAsync<AdminException>(() => server.Admin.ListUsersAsync("example.net"));
        Assert.Contains("example.net", ex.Message, StringComparison.Ordinal);
    }

    // ---- the control socket: admin changes reach the running server (issue #13, item 12) ----

    private static async Task<ControlResponse> AskAsync(TestServer server, ControlRequest request)
    {
        var response = await ControlClient.TrySendAsync(server.Config, request);
        Assert.NotNull(response);
        return response;
    }

    /// <summary>After an attack on one account, the server still serves everyone else: two users log in and chat.</summary>
    private static async Task AssertOthersStillLogInAndChatAsync(TestServer server)
    {
        var bob = await server.LoginAsync("bob", "b");
        var carol = await server.LoginAsync("carol", "c");
        await bob.SendAsync("<message to='carol@localhost/c' type='chat' id='hi'><body>still here</body></message>");
        await carol.ExpectAsync(e => TestServer.IsMessage(e, "still here"), "bob's message");
    }

    [Fact]
    public async Task Deluser_through_the_control_socket_ends_the_users_stream_with_not_authorized()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        await server.AddUserAsync("carol");
        var phone = await server.LoginAsync("alice", "phone");
        var laptop = await server.LoginAsync("alice", "laptop");

        var response = await AskAsync(server, new ControlRequest { Command = "deluser", Jid = "alice@localhost" });
        Assert.True(response.Ok, response.Error);
        Assert.Equal(2, response.SessionsEnded);
        // RFC 6120 §4.9.3.12, as Prosody closes a deleted user's sessions.
        await phone.ExpectStreamErrorAsync("not-authorized");
        await laptop.ExpectStreamErrorAsync("not-authorized");
        Assert.Equal(0, server.Server.Sessions.GetSessions(Xmpp.Jid.Parse("alice@localhost")).Length);

        var again = await server.ConnectAsync();
        await again.OpenStreamAsync();
        Assert.Equal("failure", (await again.TryAuthenticateScramAsync("alice", TestServer.Password, Xmpp.Sasl.ScramHash.Sha256)).Name);
        await AssertOthersStillLogInAndChatAsync(server);
    }

    [Fact]
    public async Task Deluser_ends_a_stream_that_authenticated_but_has_not_bound_a_resource()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.AuthenticateScramAsync("alice", TestServer.Password);

        Assert.True((await AskAsync(server, new ControlRequest { Command = "deluser", Jid = "alice@localhost" })).Ok);
        await client.ExpectStreamErrorAsync("not-authorized");
    }

    [Fact]
    public async Task Deluser_ends_a_login_that_read_the_credentials_before_the_delete()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        // SCRAM client-first: the server has looked the account up and answered with its salt; client-final would
        // prove the old password against those credentials after the account is gone.
        var scram = new Xmpp.Sasl.ScramClient(Xmpp.Sasl.ScramHash.Sha256, "alice", TestServer.Password, null, null);
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{scram.MechanismName}'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        Assert.Equal("challenge", (await client.ExpectSaslAsync()).Name);

        Assert.True((await AskAsync(server, new ControlRequest { Command = "deluser", Jid = "alice@localhost" })).Ok);
        await client.ExpectStreamErrorAsync("not-authorized");
    }

    [Fact]
    public async Task Passwd_through_the_control_socket_keeps_live_sessions_by_default()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "phone");

        var response = await AskAsync(server, new ControlRequest { Command = "passwd", Jid = "alice@localhost", Password = "new-password" });
        Assert.True(response.Ok, response.Error);
        Assert.Equal(0, response.SessionsEnded);
        await alice.SyncAsync();
        Assert.False(alice.ServerClosedStream);
        await server.LoginAsync("alice", "laptop", password: "new-password");
    }

    [Fact]
    public async Task Passwd_with_end_sessions_ends_the_users_streams_with_reset_and_only_the_new_password_logs_in()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        await server.AddUserAsync("carol");
        var alice = await server.LoginAsync("alice", "phone");

        var response = await AskAsync(server, new ControlRequest { Command = "passwd", Jid = "alice@localhost", Password = "new-password", EndSessions = true });
        Assert.True(response.Ok, response.Error);
        Assert.Equal(1, response.SessionsEnded);
        // RFC 6120 §4.9.3.16: the credentials the stream was authenticated with are revoked (Prosody's condition).
        await alice.ExpectStreamErrorAsync("reset");

        var old = await server.ConnectAsync();
        await old.OpenStreamAsync();
        Assert.Equal("failure", (await old.TryAuthenticateScramAsync("alice", TestServer.Password, Xmpp.Sasl.ScramHash.Sha256)).Name);
        await server.LoginAsync("alice", "laptop", password: "new-password");
        await AssertOthersStillLogInAndChatAsync(server);
    }

    [Fact]
    public async Task Deluser_and_passwd_of_a_missing_user_fail_over_the_control_socket_with_a_clear_message()
    {
        await using var server = await TestServer.StartAsync();
        var del = await AskAsync(server, new ControlRequest { Command = "deluser", Jid = "ghost@localhost" });
        Assert.False(del.Ok);
        Assert.Equal("user ghost@localhost does not exist", del.Error);
        var passwd = await AskAsync(server, new ControlRequest { Command = "passwd", Jid = "ghost@example.net", Password = "x" });
        Assert.False(passwd.Ok);
        Assert.Contains("host 'example.net' is not served", passwd.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_counts_connections_and_bound_sessions()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        await server.LoginAsync("alice", "a");
        var unauthenticated = await server.ConnectAsync();
        await unauthenticated.OpenStreamAsync();

        var status = (await AskAsync(server, new ControlRequest { Command = "status" })).Status;
        Assert.NotNull(status);
        Assert.Equal(2, status.Connections);
        Assert.Equal(1, status.Sessions);
        Assert.Equal(XmppServer.Version, status.Version);
        Assert.Equal(Environment.ProcessId, status.ProcessId);
        Assert.True(status.MemoryBytes > status.ManagedHeapBytes && status.ManagedHeapBytes > 0, $"{status.MemoryBytes} / {status.ManagedHeapBytes}");
        // The in-process server reports this process's collector: a collection made here is counted.
        Assert.Equal(3, status.Collections.Count);
        int gen2 = GC.CollectionCount(2);
        GC.Collect();
        var after = (await AskAsync(server, new ControlRequest { Command = "status" })).Status!;
        Assert.True(after.Collections[2] > gen2 && after.GcPauseMilliseconds > 0, $"{after.Collections[2]} gen2, {after.GcPauseMilliseconds} ms");
        Assert.Equal(["localhost"], status.Hosts);
    }

    /// <summary>Raw lines on the control socket, as a local program other than the CLI would send them.</summary>
    private static async Task<List<string>> RawControlAsync(TestServer server, byte[] bytes)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(server.Config.ControlSocketPath));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await socket.SendAsync(bytes, SocketFlags.None, cts.Token);
        }
        catch (SocketException)
        {
            // the server may close before reading everything of an oversized request
        }
        var received = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (SocketException)
            {
                break;
            }
            if (n == 0) break;
            received.Write(buffer, 0, n);
            if (received.Length > 0 && Encoding.UTF8.GetString(received.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= 3) break;
        }
        return [.. Encoding.UTF8.GetString(received.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    [Fact]
    public async Task Control_socket_answers_malformed_and_unknown_requests_with_errors_and_keeps_serving()
    {
        await using var server = await TestServer.StartAsync();
        var lines = await RawControlAsync(server, Encoding.UTF8.GetBytes("not json\n{\"command\":\"shutdown-everything\"}\n{\"command\":\"status\"}\n"));
        Assert.Equal(3, lines.Count);
        Assert.Contains("\"ok\":false", lines[0], StringComparison.Ordinal);
        Assert.Contains("malformed request", lines[0], StringComparison.Ordinal);
        Assert.Contains("unknown command", lines[1], StringComparison.Ordinal);
        Assert.Contains("\"ok\":true", lines[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Control_socket_refuses_a_request_longer_than_the_limit_and_closes()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var huge = Encoding.UTF8.GetBytes("{\"command\":\"passwd\",\"jid\":\"alice@localhost\",\"password\":\"" + new string('x', ControlConnectionHandler.MaxRequestBytes + 10) + "\"}\n");
        var lines = await RawControlAsync(server, huge);
        Assert.Single(lines);
        Assert.Contains("request too long", lines[0], StringComparison.Ordinal);
        // Nothing was changed, and the server still answers.
        await server.LoginAsync("alice", "a");
        Assert.True((await AskAsync(server, new ControlRequest { Command = "status" })).Ok);
    }

    [Fact]
    public async Task Control_socket_is_owner_only_in_an_owner_only_folder()
    {
        if (OperatingSystem.IsWindows()) return;
        await using var server = await TestServer.StartAsync();
        var path = server.Config.ControlSocketPath;
        Assert.Equal(DataPermissions.PrivateFileMode, File.GetUnixFileMode(path));
        Assert.Equal(DataPermissions.PrivateDirectoryMode, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public async Task A_stale_control_socket_from_a_crashed_run_is_replaced()
    {
        await using var first = await TestServer.StartAsync();
        var path = first.Config.ControlSocketPath;
        // What a killed server leaves: a socket file nobody listens on (bound, never listening: connecting is
        // refused just the same; .NET would remove the file if this socket were disposed now).
        var stalePath = Path.Combine(Path.GetDirectoryName(path)!, "stale.sock");
        using var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        stale.Bind(new UnixDomainSocketEndPoint(stalePath));
        Assert.True(File.Exists(stalePath));
        await using var second = await TestServer.StartAsync("--Control:SocketPath=" + stalePath);
        Assert.True((await AskAsync(second, new ControlRequest { Command = "status" })).Ok);
    }

    [Fact]
    public async Task A_second_server_on_a_live_control_socket_fails_with_a_clear_message()
    {
        await using var first = await TestServer.StartAsync();
        var ex = await Assert.ThrowsAsync<Configuration.ConfigurationException>(() => TestServer.StartAsync("--Control:SocketPath=" + first.Config.ControlSocketPath));
        Assert.Contains("another Starling is already running", ex.Message, StringComparison.Ordinal);
    }
}
