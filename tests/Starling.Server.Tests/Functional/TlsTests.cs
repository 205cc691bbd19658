using Starling.Xml;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Functional;

/// <summary>RFC 6120 §5 STARTTLS and the SASL mechanisms offered with and without TLS (RFC 5929, XEP-0440).</summary>
public sealed class TlsTests
{
    private static List<string> Mechanisms(XmlElement features) =>
        features.Element("mechanisms", Namespaces.Sasl)?.Elements("mechanism", Namespaces.Sasl).Select(m => m.Text).ToList() ?? [];

    [Fact]
    public async Task Required_encryption_offers_only_starttls_with_required()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var client = await server.ConnectAsync();
        var features = await client.OpenStreamAsync();
        var starttls = features.Element("starttls", Namespaces.Tls);
        Assert.NotNull(starttls);
        Assert.NotNull(starttls.Element("required", Namespaces.Tls));
        Assert.Single(features.Elements());
        Assert.Null(features.Element("mechanisms", Namespaces.Sasl));
    }

    [Fact]
    public async Task Auth_before_required_tls_fails_with_encryption_required()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var outcome = await client.TryAuthenticatePlainAsync("alice", TestServer.Password);
        Assert.Equal("failure", outcome.Name);
        Assert.NotNull(outcome.Element("encryption-required", Namespaces.Sasl));
    }

    [Fact]
    public async Task Starttls_then_login_works()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        var jid = await client.LoginAsync("alice", TestServer.Password, "laptop");
        Assert.NotNull(client.Tls);
        Assert.Equal("alice@localhost/laptop", jid);
        await client.SyncAsync();
    }

    [Fact]
    public async Task After_tls_starttls_is_no_longer_offered()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var features = await client.StartTlsAsync();
        Assert.Null(features.Element("starttls", Namespaces.Tls));
        Assert.Contains("SCRAM-SHA-256", Mechanisms(features));
    }

    [Fact]
    public async Task Plain_is_offered_only_over_tls()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        var plaintext = await client.OpenStreamAsync();
        Assert.DoesNotContain("PLAIN", Mechanisms(plaintext));
        var outcome = await client.TryAuthenticatePlainAsync("alice", TestServer.Password);
        Assert.NotNull(outcome.Element("invalid-mechanism", Namespaces.Sasl));

        var secure = await client.StartTlsAsync();
        Assert.Contains("PLAIN", Mechanisms(secure));
        await client.AuthenticatePlainAsync("alice", TestServer.Password);
        Assert.Equal("alice@localhost/p", await client.BindAsync("p"));
    }

    [Fact]
    public async Task Plain_without_tls_when_AllowPlainWithoutTls()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:AllowPlainWithoutTls=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        var features = await client.OpenStreamAsync();
        Assert.Contains("PLAIN", Mechanisms(features));
        await client.AuthenticatePlainAsync("alice", TestServer.Password);
        await client.BindAsync("p");
    }

    [Fact]
    public async Task Plus_mechanisms_and_channel_binding_types_are_offered_only_over_tls()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        var plaintext = await client.OpenStreamAsync();
        Assert.DoesNotContain(Mechanisms(plaintext), m => m.EndsWith("-PLUS", StringComparison.Ordinal));
        Assert.Null(plaintext.Element("sasl-channel-binding", Namespaces.ChannelBinding));

        var secure = await client.StartTlsAsync();
        Assert.Contains("SCRAM-SHA-1-PLUS", Mechanisms(secure));
        Assert.Contains("SCRAM-SHA-256-PLUS", Mechanisms(secure));
        var cb = secure.Element("sasl-channel-binding", Namespaces.ChannelBinding);
        Assert.NotNull(cb);
        Assert.Contains(cb.Elements("channel-binding", Namespaces.ChannelBinding), e => e.GetAttribute("type") == "tls-server-end-point");
    }

    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public async Task Plus_login_with_tls_server_end_point_binding_works(ScramHash hash)
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        await client.AuthenticateScramAsync("alice", TestServer.Password, hash, plus: true);
        await client.BindAsync("r");
    }

    [Fact]
    public async Task Plus_login_with_wrong_channel_binding_data_fails()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        var wrong = client.ServerEndPointBinding();
        wrong[0] ^= 0xFF;
        var outcome = await client.TryAuthenticateScramAsync("alice", TestServer.Password, ScramHash.Sha256, plus: true, channelBinding: wrong);
        Assert.Equal("failure", outcome.Name);
        Assert.NotNull(outcome.Element("not-authorized", Namespaces.Sasl));
    }

    [Fact]
    public async Task Non_plus_scram_claiming_binding_support_over_tls_is_refused_as_a_downgrade()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        var scram = new ScramClient(ScramHash.Sha256, "alice", TestServer.Password) { ClaimsChannelBindingSupport = true };
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        var outcome = await client.ExpectSaslAsync();
        Assert.Equal("failure", outcome.Name);
    }

    [Fact]
    public async Task Starttls_after_authentication_fails_and_closes_the_stream()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        await client.SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        // RFC 6120 §5.4.2.2: <failure/>, then the stream is closed.
        await client.ExpectAsync("failure", Namespaces.Tls);
        await client.ExpectClosedAsync();
    }

    [Fact]
    public async Task Starttls_twice_fails_and_closes_the_stream()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        await client.SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        await client.ExpectAsync("failure", Namespaces.Tls);
        await client.ExpectClosedAsync();
    }
}
