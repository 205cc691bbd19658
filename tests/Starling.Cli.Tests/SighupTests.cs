using System.Net;
using System.Security.Cryptography.X509Certificates;
using Starling.Server.Tests.Functional;

namespace Starling.Cli.Tests;

/// <summary>
/// SIGHUP re-reads the certificates of a running `starling start` (as Prosody and most daemons do, e.g. from certbot's
/// deploy hook), and a server started with SIGHUP ignored (nohup) says that SIGHUP will not reload, while
/// `starling reload` still does. Real processes, signalled one by one: the test process itself is never signalled.
/// Each server is started through `env`, which sets SIGHUP's disposition explicitly, so the outcome does not depend on
/// whether the test run itself was started under nohup.
/// </summary>
public sealed class SighupTests : IAsyncLifetime
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-hup-");
    private readonly StarlingProcess _starling;
    private ServerProcess? _server;

    public SighupTests() => _starling = new StarlingProcess(_dir.FullName);

    public async Task InitializeAsync()
    {
        var add = await _starling.RunWithAsync("pw\n", null, "adduser", "alice@localhost", "--password-stdin");
        Assert.True(add.Exit == 0, add.Err);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    private string CertificatePath => Path.Combine(_starling.DataDirectory, "certs", "localhost.crt");

    private byte[] CertificateOnDisk()
    {
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(CertificatePath));
        return certificate.RawData;
    }

    /// <summary>Replaces the host's certificate and key on disk (as a renewal does); returns the new certificate.</summary>
    private async Task<byte[]> RenewCertificateAsync()
    {
        var before = CertificateOnDisk();
        var generate = await _starling.RunAsync("cert", "generate", "localhost", "--force");
        Assert.True(generate.Exit == 0, generate.Err);
        var after = CertificateOnDisk();
        Assert.NotEqual(before, after);
        return after;
    }

    /// <summary>STARTTLS accepting only <paramref name="expected"/>, then a SCRAM login and bind over it: the server serves it.</summary>
    private static async Task AssertServesCertificateAsync(IPEndPoint server, byte[] expected)
    {
        await using var client = await XmppTestClient.ConnectAsync(server, "localhost");
        client.PinnedCertificate = expected;
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        Assert.Equal(expected, client.Tls!.RemoteCertificate!.GetRawCertData());
        await client.AuthenticateScramAsync("alice", "pw");
        await client.BindAsync("phone");
    }

    private static int ReloadLines(ServerProcess server) =>
        server.Output.Split('\n').Count(line => line.Contains("certificate reload: localhost: loaded", StringComparison.Ordinal));

    [Fact]
    public async Task Sighup_makes_the_running_server_give_new_connections_the_renewed_certificate()
    {
        int port = StarlingProcess.FreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        _server = await ServerProcess.StartAsync(_starling, port, ["env", "--default-signal=HUP"]);
        Assert.DoesNotContain("SIGHUP is ignored", _server.Output, StringComparison.Ordinal);
        await AssertServesCertificateAsync(endPoint, CertificateOnDisk());

        var renewed = await RenewCertificateAsync();
        _server.Hangup();
        await _server.WaitForOutputAsync(line => line.Contains("certificate reload: localhost: loaded", StringComparison.Ordinal), TimeSpan.FromSeconds(30));

        // SIGHUP's default action would have ended the process: it handled the signal and serves the new certificate.
        Assert.False(_server.HasExited);
        await AssertServesCertificateAsync(endPoint, renewed);
    }

    [Fact]
    public async Task A_server_started_with_sighup_ignored_warns_that_sighup_reloads_nothing_and_starling_reload_still_does()
    {
        int port = StarlingProcess.FreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        // As nohup leaves it: a signal ignored at exec stays ignored, the runtime cannot install a handler for it.
        _server = await ServerProcess.StartAsync(_starling, port, ["env", "--ignore-signal=HUP"]);
        await _server.WaitForOutputAsync(line => line.Contains("SIGHUP is ignored by this process", StringComparison.Ordinal)
            && line.Contains("use `starling reload`", StringComparison.Ordinal), TimeSpan.FromSeconds(10));

        var renewed = await RenewCertificateAsync();
        _server.Hangup();
        var reload = await _starling.RunAsync("reload");
        Assert.True(reload.Exit == 0, reload.Err);
        Assert.Contains("localhost: loaded", reload.Out, StringComparison.Ordinal);

        // The SIGHUP neither ended the process nor reloaded: the one reload logged is the command's.
        Assert.False(_server.HasExited);
        Assert.Equal(1, ReloadLines(_server));
        await AssertServesCertificateAsync(endPoint, renewed);
    }
}
