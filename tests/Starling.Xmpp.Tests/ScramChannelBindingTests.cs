using System.Text;
using Starling.Xmpp.Sasl;

namespace Starling.Xmpp.Tests;

/// <summary>SCRAM-*-PLUS with several channel-binding types (RFC 5802 §6, RFC 9266) and XEP-0474 downgrade protection.</summary>
public class ScramChannelBindingTests
{
    private static readonly byte[] Exporter = Enumerable.Range(0, 32).Select(i => (byte)(i + 100)).ToArray();
    private static readonly byte[] EndPoint = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    private static ScramChannelBinding[] Both =>
        [new(ScramChannelBinding.TlsExporter, Exporter), new(ScramChannelBinding.TlsServerEndPoint, EndPoint)];

    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    private static SaslStepResult Run(ScramServer server, ScramClient client, ScramCredential credential)
    {
        var first = server.HandleClientFirst(client.ClientFirst());
        if (first != SaslStepResult.Continue) return first;
        var final = client.ClientFinal(server.CreateServerFirst(credential));
        var result = server.HandleClientFinal(final, out var serverFinal);
        if (result == SaslStepResult.Success) Assert.True(client.VerifyServerFinal(serverFinal!));
        return result;
    }

    [Theory]
    [InlineData("tls-exporter", true)]
    [InlineData("tls-server-end-point", false)]
    public void Server_checks_the_data_of_the_type_the_client_names(string type, bool exporter)
    {
        var credential = ScramCredential.Create(ScramHash.Sha256, "pencil", iterations: 4096);
        var right = new ScramClient(ScramHash.Sha256, "user", "pencil", type, exporter ? Exporter : EndPoint);
        Assert.Equal(SaslStepResult.Success, Run(new ScramServer(ScramHash.Sha256, true, Both), right, credential));

        // The other type's data under this type's name is refused.
        var wrong = new ScramClient(ScramHash.Sha256, "user", "pencil", type, exporter ? EndPoint : Exporter);
        var server = new ScramServer(ScramHash.Sha256, true, Both);
        Assert.Equal(SaslStepResult.Failure, Run(server, wrong, credential));
        Assert.Equal(ScramServer.NotAuthorized, server.FailureCondition);
    }

    [Fact]
    public void Type_the_connection_does_not_offer_is_refused()
    {
        var server = new ScramServer(ScramHash.Sha256, true, [new ScramChannelBinding(ScramChannelBinding.TlsServerEndPoint, EndPoint)]);
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFirst("p=tls-exporter,,n=user,r=abc"u8));
        Assert.Equal(ScramServer.NotAuthorized, server.FailureCondition);
    }

    [Fact]
    public void Client_claiming_binding_support_is_refused_when_bindings_are_offered()
    {
        var server = new ScramServer(ScramHash.Sha256, false, Both);
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFirst("y,,n=user,r=abc"u8));
    }

    [Fact]
    public void Downgrade_protection_string_matches_the_xep_0474_example()
    {
        // XEP-0474 §5: 'SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point' hashes to G6k/rBLDqgOhRRaCuuatSDFkJ08=.
        var composed = ScramDowngradeProtection.Compose(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"], ["tls-server-end-point", "tls-exporter"]);
        Assert.Equal("SCRAM-SHA-1\u001eSCRAM-SHA-1-PLUS\u001ftls-exporter\u001etls-server-end-point", composed);
        Assert.Equal("G6k/rBLDqgOhRRaCuuatSDFkJ08=", ScramDowngradeProtection.HashValue(ScramHash.Sha1, composed));
    }

    [Fact]
    public void Without_advertised_channel_bindings_no_separator_is_appended()
    {
        Assert.Equal("PLAIN\u001eSCRAM-SHA-1\u001eSCRAM-SHA-256", ScramDowngradeProtection.Compose(["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], null));
    }

    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public void Server_first_message_carries_h_and_the_client_verifies_it(ScramHash hash)
    {
        var lists = ScramDowngradeProtection.Compose(["SCRAM-SHA-256", "SCRAM-SHA-1"], null);
        var credential = ScramCredential.Create(hash, "pencil", iterations: 4096);
        var server = new ScramServer(hash, false, null) { DowngradeProtection = lists };
        var client = new ScramClient(hash, "user", "pencil") { AdvertisedLists = lists };
        Assert.Equal(SaslStepResult.Continue, server.HandleClientFirst(client.ClientFirst()));
        var serverFirst = server.CreateServerFirst(credential);
        Assert.EndsWith(",h=" + ScramDowngradeProtection.HashValue(hash, lists), S(serverFirst), StringComparison.Ordinal);
        var final = client.ClientFinal(serverFirst);
        Assert.True(client.DowngradeProtectionVerified);
        Assert.Equal(SaslStepResult.Success, server.HandleClientFinal(final, out var serverFinal));
        Assert.True(client.VerifyServerFinal(serverFinal!));
    }

    [Fact]
    public void Client_fails_when_the_lists_it_saw_differ_from_what_the_server_advertised()
    {
        var advertised = ScramDowngradeProtection.Compose(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"], ["tls-exporter", "tls-server-end-point"]);
        var tampered = ScramDowngradeProtection.Compose(["SCRAM-SHA-256"], null);
        var server = new ScramServer(ScramHash.Sha256, false, null) { DowngradeProtection = advertised };
        var client = new ScramClient(ScramHash.Sha256, "user", "pencil") { AdvertisedLists = tampered };
        server.HandleClientFirst(client.ClientFirst());
        var serverFirst = server.CreateServerFirst(ScramCredential.Create(ScramHash.Sha256, "pencil", iterations: 4096));
        Assert.Throws<FormatException>(() => client.ClientFinal(serverFirst));
        Assert.False(client.DowngradeProtectionVerified);
    }

    [Fact]
    public void Client_proceeds_when_the_server_sends_no_h()
    {
        var credential = ScramCredential.Create(ScramHash.Sha256, "pencil", iterations: 4096);
        var client = new ScramClient(ScramHash.Sha256, "user", "pencil") { AdvertisedLists = "SCRAM-SHA-256" };
        Assert.Equal(SaslStepResult.Success, Run(new ScramServer(ScramHash.Sha256, false, null), client, credential));
        Assert.False(client.DowngradeProtectionVerified);
    }
}
