using System.Text;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Functional;

/// <summary>RFC 6120 §6 SASL negotiation, its failure conditions and retries.</summary>
public sealed class SaslTests
{
    private static void AssertFailure(Starling.Xml.XmlElement outcome, string condition) =>
        Assert.True(outcome.Name == "failure" && outcome.Element(condition, Namespaces.Sasl) is not null, $"expected <failure><{condition}/></failure>, got {outcome}");

    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public async Task Scram_login_succeeds_and_the_server_signature_verifies(ScramHash hash)
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var outcome = await client.TryAuthenticateScramAsync("alice", TestServer.Password, hash);
        Assert.Equal("success", outcome.Name);
        var features = await client.OpenStreamAsync();
        Assert.NotNull(features.Element("bind", Namespaces.Bind));
        Assert.Null(features.Element("mechanisms", Namespaces.Sasl));
    }

    [Fact]
    public async Task Scram_without_initial_response_gets_an_empty_challenge()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/>");
        var challenge = await client.ExpectSaslAsync();
        Assert.Equal("challenge", challenge.Name);
        Assert.Equal("", challenge.Text.Trim('='));
        var scram = new ScramClient(ScramHash.Sha256, "alice", TestServer.Password);
        await client.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(scram.ClientFirst())}</response>");
        var serverFirst = await client.ExpectSaslAsync();
        Assert.Equal("challenge", serverFirst.Name);
        await client.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(scram.ClientFinal(Convert.FromBase64String(serverFirst.Text)))}</response>");
        var success = await client.ExpectSaslAsync();
        Assert.Equal("success", success.Name);
        Assert.True(scram.VerifyServerFinal(Convert.FromBase64String(success.Text)));
    }

    [Fact]
    public async Task Wrong_password_fails_with_not_authorized_and_a_retry_on_the_same_stream_succeeds()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        AssertFailure(await client.TryAuthenticateScramAsync("alice", "wrong", ScramHash.Sha256), "not-authorized");
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        Assert.Equal("alice@localhost/r", await client.BindAsync("r"));
    }

    [Fact]
    public async Task Reaching_MaxAuthFailures_closes_the_stream()
    {
        await using var server = await TestServer.StartAsync("--C2s:MaxAuthFailures=2");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        AssertFailure(await client.TryAuthenticateScramAsync("alice", "wrong", ScramHash.Sha256), "not-authorized");
        AssertFailure(await client.TryAuthenticateScramAsync("alice", "wrong again", ScramHash.Sha256), "not-authorized");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task Unknown_user_fails_with_not_authorized()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        AssertFailure(await client.TryAuthenticateScramAsync("nobody", "whatever", ScramHash.Sha256), "not-authorized");
    }

    [Fact]
    public async Task Unknown_user_with_plain_fails_with_not_authorized()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:AllowPlainWithoutTls=true");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        AssertFailure(await client.TryAuthenticatePlainAsync("nobody", "whatever"), "not-authorized");
    }

    [Theory]
    [InlineData("DIGEST-MD5")]
    [InlineData("")]
    public async Task Unknown_mechanism_fails_with_invalid_mechanism(string mechanism)
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>AAAA</auth>");
        AssertFailure(await client.ExpectSaslAsync(), "invalid-mechanism");
    }

    [Fact]
    public async Task Bad_base64_fails_with_incorrect_encoding()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>!!not*base64!!</auth>");
        AssertFailure(await client.ExpectSaslAsync(), "incorrect-encoding");
    }

    [Fact]
    public async Task Bad_base64_in_a_response_fails_with_incorrect_encoding()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var scram = new ScramClient(ScramHash.Sha1, "alice", TestServer.Password);
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        Assert.Equal("challenge", (await client.ExpectSaslAsync()).Name);
        await client.SendAsync("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%%%</response>");
        AssertFailure(await client.ExpectSaslAsync(), "incorrect-encoding");
    }

    [Fact]
    public async Task Abort_fails_with_aborted_and_login_can_start_again()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var scram = new ScramClient(ScramHash.Sha256, "alice", TestServer.Password);
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        Assert.Equal("challenge", (await client.ExpectSaslAsync()).Name);
        await client.SendAsync("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        AssertFailure(await client.ExpectSaslAsync(), "aborted");
        await client.AuthenticateScramAsync("alice", TestServer.Password);
    }

    [Fact]
    public async Task Scram_authzid_of_another_user_fails_with_invalid_authzid()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var outcome = await client.TryAuthenticateScramAsync("alice", TestServer.Password, ScramHash.Sha256, authzid: "bob@localhost");
        AssertFailure(outcome, "invalid-authzid");
    }

    [Fact]
    public async Task Scram_authzid_of_the_user_itself_is_accepted()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var outcome = await client.TryAuthenticateScramAsync("alice", TestServer.Password, ScramHash.Sha256, authzid: "alice@localhost");
        Assert.Equal("success", outcome.Name);
    }

    [Fact]
    public async Task Plain_authzid_of_another_user_fails_with_invalid_authzid()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:AllowPlainWithoutTls=true");
        await server.AddUserAsync("alice");
        await server.AddUserAsync("bob");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        AssertFailure(await client.TryAuthenticatePlainAsync("alice", TestServer.Password, authzid: "bob@localhost"), "invalid-authzid");
    }

    [Fact]
    public async Task Plain_with_wrong_password_fails_with_not_authorized()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:AllowPlainWithoutTls=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        AssertFailure(await client.TryAuthenticatePlainAsync("alice", "nope"), "not-authorized");
    }

    [Fact]
    public async Task Plain_without_separators_fails_with_malformed_request()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:AllowPlainWithoutTls=true");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{Convert.ToBase64String(Encoding.UTF8.GetBytes("just-text"))}</auth>");
        AssertFailure(await client.ExpectSaslAsync(), "malformed-request");
    }

    [Fact]
    public async Task Auth_after_success_is_a_policy_violation()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/>");
        await client.ExpectStreamErrorAsync("policy-violation");
    }
}
