using System.Net;
using System.Net.Sockets;
using System.Text;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// The functional tests' client must check the server as a real client does (RFC 5802 §5.1, §9; RFC 7677 §4), or a
/// server that accepted anything would still pass them: a fake server tampers with one thing at a time.
/// </summary>
public sealed class TestClientVerificationTests
{
    private const string Password = "pencil";

    public enum Tamper
    {
        None,
        ForeignNonce,
        WrongSignature,
        NoSignature,
        WeakIterations,
    }

    /// <summary>A one-connection fake XMPP server speaking genuine SCRAM-SHA-256 (Starling's ScramServer) except for <paramref name="tamper"/>.</summary>
    private static async Task FakeServerAsync(TcpListener listener, Tamper tamper)
    {
        using var socket = await listener.AcceptSocketAsync();
        using var stream = new NetworkStream(socket);
        var received = new StringBuilder();

        async Task<string> ReadUntilAsync(string marker)
        {
            var buffer = new byte[4096];
            while (!received.ToString().Contains(marker, StringComparison.Ordinal))
            {
                int n = await stream.ReadAsync(buffer);
                if (n == 0) throw new IOException("client left");
                received.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
            var text = received.ToString();
            int end = text.IndexOf(marker, StringComparison.Ordinal) + marker.Length;
            received.Remove(0, end);
            return text[..end];
        }

        async Task SendAsync(string xml) => await stream.WriteAsync(Encoding.UTF8.GetBytes(xml));

        static byte[] Payload(string element)
        {
            int start = element.LastIndexOf('>', element.LastIndexOf("</", StringComparison.Ordinal)) + 1;
            return Convert.FromBase64String(element[start..element.LastIndexOf("</", StringComparison.Ordinal)]);
        }

        await ReadUntilAsync("xml:lang='en'>");
        await SendAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='fake' from='localhost' version='1.0'>"
            + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>");
        var scram = new ScramServer(ScramHash.Sha256, false, null, null);
        Assert.Equal(SaslStepResult.Continue, scram.HandleClientFirst(Payload(await ReadUntilAsync("</auth>"))));
        var credential = ScramCredential.Create(ScramHash.Sha256, Password, tamper == Tamper.WeakIterations ? 1000 : 4096);
        var serverFirst = Encoding.UTF8.GetString(scram.CreateServerFirst(credential));
        if (tamper == Tamper.ForeignNonce) serverFirst = "r=" + new string('Z', 40) + serverFirst[serverFirst.IndexOf(',', StringComparison.Ordinal)..];
        await SendAsync($"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(Encoding.UTF8.GetBytes(serverFirst))}</challenge>");
        var clientFinal = Payload(await ReadUntilAsync("</response>"));
        Assert.Equal(SaslStepResult.Success, scram.HandleClientFinal(clientFinal, out var serverFinal));
        var final = Encoding.UTF8.GetString(serverFinal!);
        if (tamper == Tamper.WrongSignature)
        {
            var signature = Convert.FromBase64String(final[2..]);
            signature[^1] ^= 1;
            final = "v=" + Convert.ToBase64String(signature);
        }
        var data = tamper == Tamper.NoSignature ? "" : Convert.ToBase64String(Encoding.UTF8.GetBytes(final));
        await SendAsync($"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{data}</success>");
        try
        {
            await ReadUntilAsync("never");
        }
        catch (IOException)
        {
        }
    }

    private static async Task<Task> RunAsync(Tamper tamper, Func<XmppTestClient, Task> test)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var server = FakeServerAsync(listener, tamper);
            await using (var client = await XmppTestClient.ConnectAsync((IPEndPoint)listener.LocalEndpoint, "localhost"))
            {
                await client.OpenStreamAsync();
                await test(client);
            }
            return server;
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task Test_client_logs_in_to_the_fake_server_when_nothing_is_tampered_with()
    {
        await RunAsync(Tamper.None, async client =>
            Assert.Equal("success", (await client.TryAuthenticateScramAsync("user", Password, ScramHash.Sha256)).Name));
    }

    [Fact]
    public async Task Test_client_refuses_a_nonce_that_does_not_start_with_its_own()
    {
        await RunAsync(Tamper.ForeignNonce, async client =>
            await Assert.ThrowsAsync<FormatException>(() => client.TryAuthenticateScramAsync("user", Password, ScramHash.Sha256)));
    }

    [Fact]
    public async Task Test_client_refuses_an_iteration_count_below_4096()
    {
        await RunAsync(Tamper.WeakIterations, async client =>
            await Assert.ThrowsAsync<FormatException>(() => client.TryAuthenticateScramAsync("user", Password, ScramHash.Sha256)));
    }

    [Theory]
    [InlineData(Tamper.WrongSignature)]
    [InlineData(Tamper.NoSignature)]
    public async Task Test_client_refuses_success_without_the_right_server_signature(Tamper tamper)
    {
        await RunAsync(tamper, async client =>
        {
            var error = await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(() => client.TryAuthenticateScramAsync("user", Password, ScramHash.Sha256));
            Assert.Contains("signature", error.Message, StringComparison.Ordinal);
        });
    }
}
