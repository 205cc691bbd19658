using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Starling.Cli.Tests;

/// <summary>
/// The `starling` command as an admin uses it: real processes, a temp working folder, and one clear line and a
/// non-zero exit for every mistake.
/// </summary>
public sealed class CliTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-cli-");
    private readonly StarlingProcess _starling;

    public CliTests() => _starling = new StarlingProcess(_dir.FullName);

    public void Dispose() => _dir.Delete(recursive: true);

    private Task<(int Exit, string Out, string Err)> RunAsync(string? stdin, params string[] args) =>
        _starling.RunWithAsync(stdin, null, args);

    [Fact]
    public async Task Version_prints_the_version()
    {
        var (exit, stdout, _) = await RunAsync(null, "--version");
        Assert.Equal(0, exit);
        Assert.Matches(@"^\d+\.\d+\.\d+", stdout.Trim());
    }

    [Fact]
    public async Task Adduser_users_passwd_deluser_round_trip()
    {
        var add = await RunAsync("secret\n", "adduser", "Alice@localhost", "--password-stdin");
        Assert.Equal(0, add.Exit);
        Assert.Contains("created alice@localhost", add.Out, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_dir.FullName, "data", "starling.db")));

        var users = await RunAsync(null, "users");
        Assert.Equal(0, users.Exit);
        Assert.Equal("alice@localhost", users.Out.Trim());

        var passwd = await RunAsync("other\n", "passwd", "alice@localhost", "--password-stdin");
        Assert.Equal(0, passwd.Exit);

        var del = await RunAsync(null, "deluser", "alice@localhost");
        Assert.Equal(0, del.Exit);
        Assert.Equal("", (await RunAsync(null, "users", "localhost")).Out.Trim());
    }

    [Theory]
    [InlineData("bob@example.org", "host 'example.org' is not served")]
    [InlineData("bob@", "not a valid JID")]
    [InlineData("localhost", "has no user part")]
    [InlineData("bob@localhost/phone", "has a resource")]
    [InlineData("b<b@localhost", "not a valid JID")]
    public async Task Adduser_rejects_bad_jids_with_one_clear_line(string jid, string expected)
    {
        var (exit, stdout, stderr) = await RunAsync("pw\n", "adduser", jid, "--password-stdin");
        Assert.NotEqual(0, exit);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Equal("", stdout);
    }

    [Fact]
    public async Task Adduser_of_an_existing_user_fails_and_keeps_the_password()
    {
        Assert.Equal(0, (await RunAsync("pw\n", "adduser", "carol@localhost", "--password-stdin")).Exit);
        var again = await RunAsync("pw2\n", "adduser", "carol@localhost", "--password-stdin");
        Assert.Equal(1, again.Exit);
        Assert.Contains("already exists", again.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Adduser_without_a_terminal_or_stdin_flag_says_what_to_do()
    {
        var (exit, _, stderr) = await RunAsync(null, "adduser", "dave@localhost");
        Assert.Equal(1, exit);
        Assert.Contains("--password-stdin", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Passwd_and_deluser_of_a_missing_user_fail()
    {
        var passwd = await RunAsync("x\n", "passwd", "nobody@localhost", "--password-stdin");
        Assert.Equal(1, passwd.Exit);
        Assert.Contains("does not exist", passwd.Err, StringComparison.Ordinal);
        var del = await RunAsync(null, "deluser", "nobody@localhost");
        Assert.Equal(1, del.Exit);
    }

    [Fact]
    public async Task A_config_with_a_syntax_error_is_reported_with_file_and_line()
    {
        var file = Path.Combine(_dir.FullName, "bad.json");
        await File.WriteAllTextAsync(file, "{\n  // comment is fine\n  \"C2s\": { \"Port\": 5222, }\n  \"Hosts\": [\n}\n");
        var (exit, stdout, stderr) = await RunAsync(null, "users", "--config", file);
        Assert.Equal(1, exit);
        Assert.Contains("bad.json:4:", stderr, StringComparison.Ordinal);
        Assert.Equal("", stdout);
    }

    [Fact]
    public async Task Unknown_config_keys_and_bad_values_are_named()
    {
        var file = Path.Combine(_dir.FullName, "typo.json");
        await File.WriteAllTextAsync(file, "{ \"C2s\": { \"Prot\": 5222 } }");
        var typo = await RunAsync(null, "check", "--config", file);
        Assert.Equal(1, typo.Exit);
        Assert.Contains("Prot", typo.Out + typo.Err, StringComparison.Ordinal);

        var badPort = await RunAsync(null, "users", "--C2s:Port=70000");
        Assert.Equal(1, badPort.Exit);
        Assert.Contains("C2s:Port 70000", badPort.Err, StringComparison.Ordinal);

        var stray = await RunAsync(null, "users", "localhost", "extra");
        Assert.Equal(1, stray.Exit);
        Assert.Contains("unexpected argument 'extra'", stray.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_users_creates_accounts_and_skips_existing_ones()
    {
        Assert.Equal(0, (await RunAsync("old\n", "adduser", "u2@localhost", "--password-stdin")).Exit);
        var file = Path.Combine(_dir.FullName, "users.csv");
        await File.WriteAllTextAsync(file, "# user,password\nu1,p1\nu2@localhost,p2\nU3,p,with,commas\n");
        var (exit, stdout, stderr) = await RunAsync(null, "import-users", file, "--host", "localhost");
        Assert.True(exit == 0, stderr);
        Assert.Contains("imported 2 accounts (1 already existed)", stdout, StringComparison.Ordinal);
        Assert.Equal(["u1@localhost", "u2@localhost", "u3@localhost"], (await RunAsync(null, "users")).Out.Trim().Split('\n'));
    }

    [Fact]
    public async Task Import_users_with_a_bad_line_writes_nothing_and_names_the_line()
    {
        var (exit, _, stderr) = await RunAsync("a,1\nb@nowhere.example,2\n", "import-users", "-", "--host", "localhost");
        Assert.Equal(1, exit);
        Assert.Contains("line 2: host 'nowhere.example' is not served", stderr, StringComparison.Ordinal);
        Assert.Equal("", (await RunAsync(null, "users")).Out.Trim());
        var noHost = await RunAsync("a,1\n", "import-users", "-");
        Assert.Contains("line 1: 'a' has no host", noHost.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_annotated_example_config_is_valid()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(root.FullName, "Starling.sln"))) root = root.Parent!;
        var copy = Path.Combine(_dir.FullName, "starling.json");
        File.Copy(Path.Combine(root.FullName, "config", "starling.example.json"), copy);
        // Found as ./starling.json without --config, as documented.
        var (exit, stdout, stderr) = await RunAsync(null, "check", "--C2s:Port=0");
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("ok: configuration " + copy, stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cert_generate_writes_a_pair_and_refuses_to_overwrite_without_force()
    {
        var first = await RunAsync(null, "cert", "generate", "localhost");
        Assert.Equal(0, first.Exit);
        Assert.True(File.Exists(Path.Combine(_dir.FullName, "data", "certs", "localhost.crt")));
        Assert.True(File.Exists(Path.Combine(_dir.FullName, "data", "certs", "localhost.key")));
        var second = await RunAsync(null, "cert", "generate", "localhost");
        Assert.Equal(1, second.Exit);
        Assert.Contains("--force", second.Err, StringComparison.Ordinal);
        Assert.Equal(0, (await RunAsync(null, "cert", "generate", "localhost", "--force")).Exit);
    }

    [Fact]
    public async Task Check_reports_a_busy_port_and_a_missing_configured_certificate()
    {
        using var busy = new TcpListener(IPAddress.Any, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var ok = await RunAsync(null, "check", "--C2s:Port=" + port);
        Assert.Equal(0, ok.Exit);
        Assert.Contains($"c2s port {port} is in use", ok.Out, StringComparison.Ordinal);

        var missing = await RunAsync(null, "check", "--Hosts:0:Name=localhost", "--Hosts:0:Certificate=nope.crt", "--Hosts:0:Key=nope.key");
        Assert.Equal(1, missing.Exit);
        Assert.Contains("nope.crt does not exist", missing.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_on_a_busy_port_fails_with_a_clear_message()
    {
        using var busy = new TcpListener(IPAddress.IPv6Any, 0);
        busy.Server.DualMode = true;
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (exit, _, stderr) = await RunAsync(null, "start", "--C2s:Port=" + port);
        Assert.Equal(1, exit);
        Assert.Contains($"port {port} is already in use", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_creates_data_and_certificate_and_serves_a_stream()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _dir.FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "starling.dll"));
        psi.ArgumentList.Add("start");
        psi.ArgumentList.Add("--C2s:Port=" + port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var server = Process.Start(psi)!;
        var output = new StringBuilder();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data.StartsWith("ready in", StringComparison.Ordinal)) ready.TrySetResult();
        };
        server.BeginOutputReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
            string text;
            lock (output) text = output.ToString();
            Assert.Contains("generated a self-signed certificate for localhost", text, StringComparison.Ordinal);
            Assert.Contains($"listening for clients (c2s) on port {port}", text, StringComparison.Ordinal);

            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.UTF8.GetBytes("<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"));
            var buffer = new byte[4096];
            var received = new StringBuilder();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (!received.ToString().Contains("</stream:features>", StringComparison.Ordinal))
            {
                int n = await stream.ReadAsync(buffer, cts.Token);
                if (n == 0) break;
                received.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
            // Default policy: TLS required before anything else (RFC 6120 §5.3.1).
            Assert.Contains("<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls>", received.ToString(), StringComparison.Ordinal);

            // Footprint: ICU (~5 MB) is loaded for the first non-ASCII JID (src/Starling.Xmpp/Icu.cs), not at start-up.
            if (OperatingSystem.IsLinux())
                Assert.DoesNotContain("libicu", await File.ReadAllTextAsync($"/proc/{server.Id}/maps"), StringComparison.Ordinal);

            // The admin commands work while the server runs.
            var add = await RunAsync("pw\n", "adduser", "erin@localhost", "--password-stdin");
            Assert.Equal(0, add.Exit);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }
}
