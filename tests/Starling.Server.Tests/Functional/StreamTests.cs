using System.Text;
using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>RFC 6120 §4: stream headers, stream errors and closing.</summary>
public sealed class StreamTests
{
    [Fact]
    public async Task Stream_header_is_answered_with_id_from_version_and_features()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        var features = await client.OpenStreamAsync();

        var header = client.StreamHeader!;
        Assert.Equal("stream", header.Name);
        Assert.Equal(Namespaces.Streams, header.Namespace);
        Assert.False(string.IsNullOrEmpty(header.GetAttribute("id")));
        Assert.Equal(TestServer.Domain, header.GetAttribute("from"));
        Assert.Equal("1.0", header.GetAttribute("version"));
        var mechanisms = features.Element("mechanisms", Namespaces.Sasl);
        Assert.NotNull(mechanisms);
        var offered = mechanisms.Elements("mechanism", Namespaces.Sasl).Select(m => m.Text).ToList();
        Assert.Contains("SCRAM-SHA-256", offered);
        Assert.Contains("SCRAM-SHA-1", offered);
        // TLS is available (optional here) and announced.
        Assert.NotNull(features.Element("starttls", Namespaces.Tls));
    }

    [Fact]
    public async Task Each_stream_gets_a_new_id_after_restart()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var first = client.StreamHeader!.GetAttribute("id");
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        Assert.NotEqual(first, client.StreamHeader!.GetAttribute("id"));
    }

    [Fact]
    public async Task Header_for_an_unknown_host_gets_host_unknown()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendStreamHeaderAsync("example.net");
        await client.ExpectStreamErrorAsync("host-unknown");
    }

    [Fact]
    public async Task Header_without_to_gets_host_unknown()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendStreamHeaderAsync(null);
        await client.ExpectStreamErrorAsync("host-unknown");
    }

    [Fact]
    public async Task Wrong_default_namespace_gets_invalid_namespace()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendStreamHeaderAsync(TestServer.Domain, ns: "jabber:server");
        await client.ExpectStreamErrorAsync("invalid-namespace");
    }

    [Fact]
    public async Task Wrong_stream_namespace_gets_invalid_namespace()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendStreamHeaderAsync(TestServer.Domain, streamNs: "http://example.com/not-streams");
        await client.ExpectStreamErrorAsync("invalid-namespace");
    }

    [Theory]
    [InlineData("")]
    [InlineData("2.0")]
    [InlineData("0.9")]
    public async Task Version_other_than_1_x_gets_unsupported_version(string version)
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendStreamHeaderAsync(TestServer.Domain, version: version);
        await client.ExpectStreamErrorAsync("unsupported-version");
        // RFC 6120 §4.7.5: the server's header states the version it does support.
        Assert.Equal("1.0", client.StreamHeader?.GetAttribute("version"));
    }

    [Fact]
    public async Task Malformed_xml_gets_not_well_formed()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync("<message><body>hi</message>");
        await client.ExpectStreamErrorAsync("not-well-formed");
    }

    [Theory]
    [InlineData("<!-- a comment -->")]
    [InlineData("<?some-pi data?>")]
    [InlineData("<!DOCTYPE message>")]
    [InlineData("<!ENTITY x 'y'>")]
    public async Task Comments_processing_instructions_and_dtds_get_restricted_xml(string xml)
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync(xml);
        await client.ExpectStreamErrorAsync("restricted-xml");
    }

    [Fact]
    public async Task Doctype_before_the_stream_header_gets_restricted_xml()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendAsync("<?xml version='1.0'?><!DOCTYPE stream:stream>");
        await client.ExpectStreamErrorAsync("restricted-xml");
    }

    [Fact]
    public async Task Unknown_entity_reference_gets_restricted_xml()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync("<message><body>&nbsp;</body></message>");
        await client.ExpectStreamErrorAsync("restricted-xml");
    }

    [Fact]
    public async Task Stanza_larger_than_MaxStanzaBytes_gets_policy_violation()
    {
        await using var server = await TestServer.StartAsync("--Limits:MaxStanzaBytes=10000");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.LoginAsync("alice", TestServer.Password, "r");
        await client.SendAsync($"<message to='{TestServer.Bare("alice")}'><body>{new string('a', 9000)}</body></message>");
        await client.SyncAsync(); // 9 000 bytes are within the limit
        await client.SendAsync($"<message to='{TestServer.Bare("alice")}'><body>{new string('a', 12_000)}</body></message>");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task Stanza_before_authentication_gets_not_authorized()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync("<message to='someone@localhost'><body>hi</body></message>");
        await client.ExpectStreamErrorAsync("not-authorized");
    }

    [Fact]
    public async Task Unknown_top_level_element_gets_unsupported_stanza_type()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync("<foo xmlns='urn:example:foo'/>");
        await client.ExpectStreamErrorAsync("unsupported-stanza-type");
    }

    [Fact]
    public async Task Client_stream_close_is_answered_with_stream_close()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync("</stream:stream>");
        await client.ExpectClosedAsync();
    }

    [Fact]
    public async Task Bound_client_stream_close_is_answered_with_stream_close()
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.LoginAsync("alice", "r");
        await client.SendAsync("</stream:stream>");
        await client.ExpectClosedAsync();
        Assert.True(client.Pending.All(e => e.Name != "error"), client.Transcript());
    }

    [Fact]
    public async Task Invalid_utf8_gets_not_well_formed()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendBytesAsync([.. Encoding.UTF8.GetBytes("<message><body>"), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("</body></message>")]);
        await client.ExpectStreamErrorAsync("not-well-formed");
    }

    [Fact]
    public async Task Higher_minor_version_is_answered_with_1_0()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendStreamHeaderAsync(TestServer.Domain, version: "1.1");
        await client.ExpectHeaderAsync();
        Assert.Equal("1.0", client.StreamHeader!.GetAttribute("version"));
        await client.ExpectAsync("features", Namespaces.Streams);
    }

    [Fact]
    public async Task Encoding_other_than_utf8_gets_unsupported_encoding()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendAsync("<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
        await client.ExpectStreamErrorAsync("unsupported-encoding");
    }

    [Fact]
    public async Task Host_name_in_the_header_is_normalized()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SendStreamHeaderAsync("LocalHost");
        await client.ExpectHeaderAsync();
        Assert.Equal("localhost", client.StreamHeader!.GetAttribute("from"));
    }
}
