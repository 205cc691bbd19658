using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Starling.Server.Tests.Tls;

/// <summary>Certificates, raw STARTTLS clients and the openssl command line for the TLS tests.</summary>
internal static class TlsTestKit
{
    /// <summary>A CA → intermediate → leaf chain for "localhost", written as fullchain.pem (leaf, intermediate) and privkey.pem.</summary>
    public sealed record Chain(string Directory, string FullChainPath, string KeyPath, X509Certificate2 Leaf, X509Certificate2 Intermediate, X509Certificate2 Root);

    public static Chain CreateChain(string directory)
    {
        Directory.CreateDirectory(directory);
        var now = DateTimeOffset.UtcNow;
        using var rootKey = RSA.Create(2048);
        var rootRequest = new CertificateRequest("CN=Starling Test Root", rootKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        rootRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(rootRequest.PublicKey, false));
        var root = rootRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));

        using var intermediateKey = RSA.Create(2048);
        var intermediateRequest = new CertificateRequest("CN=Starling Test Intermediate", intermediateKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        intermediateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        intermediateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        intermediateRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(intermediateRequest.PublicKey, false));
        intermediateRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(root, true, false));
        using var intermediatePublic = intermediateRequest.Create(root, now.AddDays(-1), now.AddDays(20), RandomNumberGenerator.GetBytes(8));
        var intermediate = intermediatePublic.CopyWithPrivateKey(intermediateKey);

        using var leafKey = RSA.Create(2048);
        var leafRequest = new CertificateRequest("CN=localhost", leafKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        leafRequest.CertificateExtensions.Add(san.Build());
        leafRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        leafRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, false));
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        leafRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(intermediate, true, false));
        var leaf = leafRequest.Create(intermediate, now.AddDays(-1), now.AddDays(10), RandomNumberGenerator.GetBytes(8));

        var fullChain = Path.Combine(directory, "fullchain.pem");
        var key = Path.Combine(directory, "privkey.pem");
        File.WriteAllText(fullChain, leaf.ExportCertificatePem() + "\n" + intermediate.ExportCertificatePem() + "\n");
        File.WriteAllText(key, leafKey.ExportPkcs8PrivateKeyPem());
        return new Chain(directory, fullChain, key, leaf, intermediate, root);
    }

    /// <summary>A self-signed RSA certificate for "localhost" written to the given PEM paths; returns its DER.</summary>
    public static byte[] WriteSelfSigned(string certPath, string keyPath, string commonName = "localhost")
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=" + commonName, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10));
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        return cert.RawData;
    }

    /// <summary>
    /// Opens a stream, asks for STARTTLS and waits for &lt;proceed/&gt; on a raw socket, then runs the TLS handshake with
    /// <paramref name="options"/>. Returns the TLS stream (the XMPP stream is then to be restarted by the caller).
    /// </summary>
    public static async Task<(TcpClient Tcp, SslStream Tls)> StartTlsAsync(IPEndPoint endPoint, SslClientAuthenticationOptions options)
    {
        var tcp = new TcpClient(endPoint.AddressFamily) { NoDelay = true };
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await tcp.ConnectAsync(endPoint, cts.Token);
            var network = tcp.GetStream();
            await network.WriteAsync(Encoding.UTF8.GetBytes(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>" +
                "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), cts.Token);
            // Read byte by byte up to the end of <proceed .../>: nothing after it may be consumed before the handshake.
            var seen = new StringBuilder();
            var one = new byte[1];
            while (true)
            {
                int n = await network.ReadAsync(one, cts.Token);
                if (n == 0) throw new IOException("the server closed before <proceed/>: " + seen);
                seen.Append((char)one[0]);
                var text = seen.ToString();
                int at = text.IndexOf("<proceed", StringComparison.Ordinal);
                if (at >= 0 && text.IndexOf('>', at) > 0) break;
                if (text.Contains("<failure", StringComparison.Ordinal)) throw new IOException("STARTTLS refused: " + text);
            }
            var tls = new SslStream(network, leaveInnerStreamOpen: false);
            await tls.AuthenticateAsClientAsync(options, cts.Token);
            return (tcp, tls);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>Runs `openssl` with the arguments; stdin is closed at once (s_client then ends after the handshake).</summary>
    public static async Task<(int Exit, string Output)> OpenSslAsync(params string[] args)
    {
        var info = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
