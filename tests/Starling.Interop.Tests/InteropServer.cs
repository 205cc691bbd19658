using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Starling.Server.Admin;
using Starling.Server.Configuration;
using Starling.Server.Hosting;
using Xunit.Abstractions;

namespace Starling.Interop.Tests;

/// <summary>
/// A Starling started in-process for a third-party client: its own temp data folder, host "localhost" on a free
/// loopback port, and the lab report's two accounts (sergio, lucas) made through the admin code.
/// </summary>
internal sealed class InteropServer : IAsyncDisposable
{
    public const string User1 = "sergio", Password1 = "sergio-pw", User2 = "lucas", Password2 = "lucas-pw";

    private readonly DirectoryInfo _data;
    private readonly StarlingHost _host;

    private InteropServer(DirectoryInfo data, StarlingHost host)
    {
        _data = data;
        _host = host;
    }

    public string Port => _host.C2sEndPoints[0].Port.ToString(CultureInfo.InvariantCulture);

    public static async Task<InteropServer> StartAsync(ITestOutputHelper output, bool requireEncryption)
    {
        var data = Directory.CreateTempSubdirectory("starling-interop-");
        try
        {
            var config = StarlingConfiguration.Load(null,
            [
                "--DataDirectory=" + data.FullName,
                "--Hosts:0:Name=localhost",
                "--Hosts:0:RequireEncryption=" + (requireEncryption ? "true" : "false"),
                "--C2s:Port=0",
                "--C2s:Addresses:0=127.0.0.1",
            ]);
            var host = await StarlingHost.StartAsync(config, logging => logging.AddProvider(new TestLoggerProvider(output)));
            var admin = new AccountAdmin(config, host.Server.Storage);
            await admin.AddUserAsync(admin.ParseAccount(User1 + "@localhost"), Password1);
            await admin.AddUserAsync(admin.ParseAccount(User2 + "@localhost"), Password2);
            return new InteropServer(data, host);
        }
        catch
        {
            data.Delete(recursive: true);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        _data.Delete(recursive: true);
    }

    /// <summary>Runs a client program to completion (bounded) and returns its exit code and output.</summary>
    public static async Task<(int Exit, string Output)> RunClientAsync(string file, IEnumerable<string> args, TimeSpan limit)
    {
        if (Path.IsPathRooted(file) && !File.Exists(file)) Assert.Fail($"{file} not found: run scripts/install-test-deps.sh");
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{Path.GetFileName(file)} did not finish within {limit.TotalSeconds} s:\n" + await stdout + await stderr);
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    public static string RepoRoot()
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
