using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Starling.Server.Admin;
using Starling.Server.Configuration;
using Starling.Server.Hosting;
using Xunit.Abstractions;

namespace Starling.Interop.Tests;

/// <summary>
/// The lab report's whole session (shared/seed/lab-report.md) replayed by a real third-party client library,
/// slixmpp from Debian, against a Starling started in-process: two users, SCRAM-SHA-1, bind "profanity", session,
/// roster, private storage, presence with caps, chat both ways with a receipt request, ping, close, and the message
/// the lab lost — delivered after re-login with a delay stamp. See tests/interop/README.md.
/// </summary>
public sealed class LabSessionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("plain")]
    [InlineData("starttls")]
    public async Task Slixmpp_replays_the_lab_session(string tls)
    {
        var data = Directory.CreateTempSubdirectory("starling-interop-");
        try
        {
            var config = StarlingConfiguration.Load(null,
            [
                "--DataDirectory=" + data.FullName,
                "--Hosts:0:Name=localhost",
                // The lab's capture was plaintext; STARTTLS is still offered (and required by the starttls run's client).
                "--Hosts:0:RequireEncryption=" + (tls == "plain" ? "false" : "true"),
                "--C2s:Port=0",
                "--C2s:Addresses:0=127.0.0.1",
            ]);
            await using var host = await StarlingHost.StartAsync(config, logging => logging.AddProvider(new TestLoggerProvider(output)));
            var admin = new AccountAdmin(config, host.Server.Storage);
            await admin.AddUserAsync(admin.ParseAccount("sergio@localhost"), "sergio-pw");
            await admin.AddUserAsync(admin.ParseAccount("lucas@localhost"), "lucas-pw");
            var port = host.C2sEndPoints[0].Port;

            var (exit, stdout) = await RunAsync("/usr/bin/python3",
            [
                Path.Combine(RepoRoot(), "tests", "interop", "lab_session.py"),
                "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--domain", "localhost",
                "--user1", "sergio", "--pass1", "sergio-pw",
                "--user2", "lucas", "--pass2", "lucas-pw",
                "--tls", tls, "--timeout", "10",
            ]);
            output.WriteLine(stdout);
            Assert.True(exit == 0, $"lab_session.py exited {exit}:\n{stdout}");
            Assert.Contains("SUMMARY 12/12", stdout, StringComparison.Ordinal);
        }
        finally
        {
            data.Delete(recursive: true);
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, string[] args)
    {
        if (!File.Exists(file)) Assert.Fail($"{file} not found: install python3 and python3-slixmpp (scripts/install-test-deps.sh)");
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("lab_session.py did not finish within 150 s:\n" + await stdout + await stderr);
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Starling.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Starling.sln)");
    }
}

/// <summary>Server logs go to the test's output, shown when a test fails.</summary>
internal sealed class TestLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new TestLogger(output, categoryName);

    public void Dispose() { }

    private sealed class TestLogger(ITestOutputHelper output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output.WriteLine($"{logLevel,-11} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
            }
            catch (InvalidOperationException)
            {
                // The test has finished; late log lines have nowhere to go.
            }
        }
    }
}
