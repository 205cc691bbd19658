using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Starling.Cli.Tests;

/// <summary>
/// `starling` as real processes in one temp working folder (./data is the data folder): one-shot commands, and a
/// `starling start` server that tests log clients into. STARLING_* variables of the test run are never inherited.
/// </summary>
public sealed class StarlingProcess
{
    private readonly List<Process> _servers = [];

    public StarlingProcess(string directory) => Directory = directory;

    public string Directory { get; }

    public string DataDirectory => Path.Combine(Directory, "data");

    public static string Dll => Path.Combine(AppContext.BaseDirectory, "starling.dll");

    private ProcessStartInfo StartInfo(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("STARLING_", StringComparison.OrdinalIgnoreCase)).ToList()) psi.Environment.Remove(key);
        if (environment is not null)
        {
            foreach (var (k, v) in environment) psi.Environment[k] = v;
        }
        return psi;
    }

    /// <summary>Runs one command to its end.</summary>
    public async Task<(int Exit, string Out, string Err)> RunWithAsync(string? stdin, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using var p = Process.Start(StartInfo(args, environment))!;
        if (stdin is not null) await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    public Task<(int Exit, string Out, string Err)> RunAsync(params string[] args) => RunWithAsync(null, null, args);

    /// <summary>A loopback TCP port that was free a moment ago.</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>
    /// Starts `starling start` on a free loopback port with plaintext allowed (the tests' clients do not need TLS)
    /// and waits for "ready". Returns the c2s endpoint; the process is killed by <see cref="StopServersAsync"/>.
    /// </summary>
    public async Task<IPEndPoint> StartServerAsync(params string[] extra)
    {
        int port = FreePort();
        await StartServerProcessAsync(port, extra);
        return new IPEndPoint(IPAddress.Loopback, port);
    }

    /// <summary>
    /// As <see cref="StartServerAsync"/>, on a given port (a restart can reuse it), <paramref name="extra"/> --Key=Value
    /// overrides last; returns the process, for a test that signals or kills it itself.
    /// </summary>
    public async Task<Process> StartServerProcessAsync(int port, params string[] extra)
    {
        string[] args = ["start", "--C2s:Port=" + port.ToString(CultureInfo.InvariantCulture), "--C2s:Addresses:0=127.0.0.1", "--Hosts:0:Name=localhost", "--Hosts:0:RequireEncryption=false", .. extra];
        var server = Process.Start(StartInfo(args, null))!;
        _servers.Add(server);
        var output = new StringBuilder();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                ready.TrySetException(new InvalidOperationException("the server exited before it was ready: " + output));
                return;
            }
            lock (output) output.AppendLine(e.Data);
            if (e.Data.StartsWith("ready in", StringComparison.Ordinal)) ready.TrySetResult();
        };
        server.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (output) output.AppendLine(e.Data);
        };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return server;
    }

    /// <summary>Runs a Python snippet as another uid and gid (setpriv, numeric), for what a foreign local user could do.</summary>
    public static async Task<(int Exit, string Out, string Err)> RunPythonAsAsync(string uid, string script)
    {
        var psi = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["--reuid", uid, "--regid", uid, "--clear-groups", "/usr/bin/python3", "-c", script]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Kills the servers started here (as a crash would: no clean shutdown).</summary>
    public async Task StopServersAsync()
    {
        foreach (var server in _servers)
        {
            try
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
            server.Dispose();
        }
        _servers.Clear();
    }
}
