using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Starling.Server.Tls;

namespace Starling.Server.Tests.Tls;

public class NativeHeapTests
{
    [Fact]
    public async Task Release_buffers_mode_is_set_on_a_server_connection_and_traffic_still_flows()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        using var cert = X509CertificateLoader.LoadPkcs12(selfSigned.Export(X509ContentType.Pkcs12), null);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var clientSocket = new TcpClient();
        var accept = listener.AcceptTcpClientAsync();
        await clientSocket.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var serverSocket = await accept;

        await using var server = new SslStream(serverSocket.GetStream());
        // The client pins the one certificate this test made (self-signed, so the chain check would fail).
        await using var client = new SslStream(clientSocket.GetStream(), false, (_, presented, _, _) =>
            presented is not null && presented.GetCertHashString() == cert.GetCertHashString());
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = SslStreamCertificateContext.Create(cert, null, offline: true),
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            }),
            client.AuthenticateAsClientAsync("localhost"));

        bool expected = OperatingSystem.IsLinux();
        Assert.Equal(expected, NativeHeap.ReleaseBuffersWhenIdle(server));

        // Several rounds, so the buffers are released and allocated again in between.
        var buffer = new byte[64 * 1024];
        for (int round = 0; round < 5; round++)
        {
            byte[] payload = RandomNumberGenerator.GetBytes(20_000 + round);
            await client.WriteAsync(payload);
            int read = 0;
            while (read < payload.Length) read += await server.ReadAsync(buffer.AsMemory(read));
            Assert.True(payload.AsSpan().SequenceEqual(buffer.AsSpan(0, read)));

            await server.WriteAsync(payload);
            read = 0;
            while (read < payload.Length) read += await client.ReadAsync(buffer.AsMemory(read));
            Assert.True(payload.AsSpan().SequenceEqual(buffer.AsSpan(0, read)));
        }

        NativeHeap.TrimNativeHeap(); // must be harmless at any time
    }
}
