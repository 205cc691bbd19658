using Starling.Server.Admin;

namespace Starling.Server.Tests.Functional;

/// <summary>AccountAdmin (the code behind `starling adduser/passwd/deluser`): validation messages and effect on logins.</summary>
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
}
