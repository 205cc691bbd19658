using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>RFC 6120 §7 resource binding, conflicts, and the legacy session iq.</summary>
public sealed class BindTests
{
    [Fact]
    public async Task Client_chosen_resource_is_echoed_in_the_bound_jid()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        Assert.Equal("alice@localhost/balcony", await client.LoginAsync("alice", TestServer.Password, "balcony"));
    }

    [Fact]
    public async Task Empty_bind_gets_a_server_generated_resource()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        var jid = Jid.Parse(await client.LoginAsync("alice", TestServer.Password, null));
        Assert.Equal("alice@localhost", jid.Bare.ToString());
        Assert.False(string.IsNullOrEmpty(jid.Resource));
    }

    [Fact]
    public async Task Generated_resources_are_unique_per_session()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var one = await server.ConnectAsync();
        var two = await server.ConnectAsync();
        Assert.NotEqual(await one.LoginAsync("alice", TestServer.Password, null), await two.LoginAsync("alice", TestServer.Password, null));
    }

    [Fact]
    public async Task Same_resource_again_replaces_the_old_session_with_a_conflict_stream_error()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var old = await server.LoginAsync("alice", "phone");
        var replacement = await server.ConnectAsync();
        Assert.Equal("alice@localhost/phone", await replacement.LoginAsync("alice", TestServer.Password, "phone"));
        await old.ExpectStreamErrorAsync("conflict");
        await replacement.SyncAsync();
    }

    [Fact]
    public async Task Same_resource_again_with_reject_policy_fails_the_new_bind_with_conflict()
    {
        await using var server = await TestServer.StartAsync("--C2s:ResourceConflict=reject");
        await server.AddUserAsync("alice");
        var first = await server.LoginAsync("alice", "phone");
        var second = await server.ConnectAsync();
        await second.OpenStreamAsync();
        await second.AuthenticateScramAsync("alice", TestServer.Password);
        var iq = await second.TryBindAsync("phone");
        Assert.Equal("error", iq.GetAttribute("type"));
        XmppTestClient.AssertStanzaError(iq, "conflict", "cancel");
        // The first session is untouched and the second may bind another resource.
        await first.SyncAsync();
        Assert.Equal("alice@localhost/tablet", await second.BindAsync("tablet"));
    }

    [Fact]
    public async Task Session_iq_gets_a_result()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.LoginAsync("alice", TestServer.Password, "r");
        Assert.NotNull(client.Features!.Element("session", Namespaces.Session));
        await client.SendAsync("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
        await client.ExpectIqResultAsync("sess1");
    }

    [Fact]
    public async Task Stanza_after_authentication_but_before_bind_gets_not_authorized()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        await client.SendAsync("<message to='alice@localhost'><body>early</body></message>");
        await client.ExpectStreamErrorAsync("not-authorized");
    }

    [Fact]
    public async Task Bind_with_get_type_is_a_bad_request()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        await client.SendAsync("<iq type='get' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
        await client.ExpectStanzaErrorAsync("iq", "b1", "bad-request");
    }

    [Fact]
    public async Task Post_auth_features_offer_bind_and_no_mechanisms()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var features = await client.AuthenticateScramAsync("alice", TestServer.Password);
        Assert.NotNull(features.Element("bind", Namespaces.Bind));
        Assert.Null(features.Element("mechanisms", Namespaces.Sasl));
        Assert.Null(features.Element("starttls", Namespaces.Tls));
    }

    [Fact]
    public async Task Binding_more_than_MaxResourcesPerUser_gets_resource_constraint()
    {
        await using var server = await TestServer.StartAsync("--Limits:MaxResourcesPerUser=1");
        await server.AddUserAsync("alice");
        await server.LoginAsync("alice", "one");
        var second = await server.ConnectAsync();
        await second.OpenStreamAsync();
        await second.AuthenticateScramAsync("alice", TestServer.Password);
        var iq = await second.TryBindAsync("two");
        XmppTestClient.AssertStanzaError(iq, "resource-constraint", "wait");
    }

    [Fact]
    public async Task Username_is_case_mapped_at_login()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        Assert.Equal("alice@localhost/r", await client.LoginAsync("ALICE", TestServer.Password, "r"));
    }

    [Fact]
    public async Task Username_with_scram_special_characters_logs_in()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("o,brien=x");
        var client = await server.ConnectAsync();
        Assert.Equal("o,brien=x@localhost/r", await client.LoginAsync("o,brien=x", TestServer.Password, "r"));
    }
}
