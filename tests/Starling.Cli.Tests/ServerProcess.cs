using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Starling.Cli.Tests;

/// <summary>
/// One `starling start` process in a <see cref="StarlingProcess"/>'s folder, with everything it prints kept (tests
/// look for log lines and for stack traces), and the signals a test sends it: SIGTERM, SIGKILL, SIGHUP. As
/// <see cref="StarlingProcess.StartServerProcessAsync"/> it listens on 127.0.0.1 with plaintext allowed; unlike it, the
/// process may be started through a wrapper (`env --ignore-signal=HUP`, as nohup leaves it).
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private const int Sighup = 1;
    private const int Sigterm = 15;
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _waiters = [];

    private ServerProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Every line printed so far (stdout and stderr interleaved as received).</summary>
    public string Output
    {
        get
        {
            lock (_output) return string.Join('\n', _output);
        }
    }

    /// <summary>
    /// Starts `starling start` on <paramref name="port"/> in <paramref name="starling"/>'s folder and waits for "ready".
    /// <paramref name="wrapper"/> (e.g. ["env", "--default-signal=HUP"]) runs before `dotnet`; <paramref name="extra"/>
    /// --Key=Value overrides come last.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(StarlingProcess starling, int port, string[]? wrapper, params string[] extra)
    {
        string[] command = [.. wrapper ?? [], "dotnet", StarlingProcess.Dll, "start",
            "--C2s:Port=" + port.ToString(CultureInfo.InvariantCulture), "--C2s:Addresses:0=127.0.0.1", "--Hosts:0:Name=localhost",
            "--Hosts:0:RequireEncryption=false", .. extra];
        var psi = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = starling.Directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        for (int i = 1; i < command.Length; i++) psi.ArgumentList.Add(command[i]);
        var inherited = new List<string>();
        foreach (string key in psi.Environment.Keys)
        {
            if (key.StartsWith("STARLING_", StringComparison.OrdinalIgnoreCase)) inherited.Add(key);
        }
        foreach (var key in inherited) psi.Environment.Remove(key);

        var server = new ServerProcess(Process.Start(psi)!);
        server._process.OutputDataReceived += (_, e) => server.OnLine(e.Data, stdout: true);
        server._process.ErrorDataReceived += (_, e) => server.OnLine(e.Data, stdout: false);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        try
        {
            await server.WaitForOutputAsync(line => line.StartsWith("ready in", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    private void OnLine(string? line, bool stdout)
    {
        lock (_output)
        {
            if (line is null)
            {
                if (stdout) _exited.TrySetResult();
                return;
            }
            _output.Add(line);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (!_waiters[i].Match(line)) continue;
                _waiters[i].Found.TrySetResult(line);
                _waiters.RemoveAt(i);
            }
        }
    }

    /// <summary>The first line (already printed or printed within <paramref name="timeout"/>) that matches; fails with the output otherwise.</summary>
    public async Task<string> WaitForOutputAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_output)
        {
            foreach (var line in _output)
            {
                if (match(line)) return line;
            }
            _waiters.Add((match, found));
        }
        var first = await Task.WhenAny(found.Task, _exited.Task, Task.Delay(timeout));
        if (first == found.Task) return await found.Task;
        lock (_output) _waiters.RemoveAll(w => w.Found == found);
        Assert.Fail((first == _exited.Task ? "the server exited" : $"nothing matching within {timeout.TotalSeconds} s") + "; its output:\n" + Output);
        throw new UnreachableException();
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Signal(int pid, int sig);

    /// <summary>SIGTERM: the graceful shutdown an init system asks for.</summary>
    public void Terminate() => Assert.Equal(0, Signal(_process.Id, Sigterm));

    /// <summary>SIGHUP: reload the certificates (when the process was not started with SIGHUP ignored).</summary>
    public void Hangup() => Assert.Equal(0, Signal(_process.Id, Sighup));

    /// <summary>SIGKILL: a crash, no shutdown code runs.</summary>
    public void Kill() => _process.Kill(entireProcessTree: false);

    /// <summary>Waits for the process to end and for its output to be read to the end.</summary>
    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
    }

    /// <summary>
    /// Lines of the output that carry a .NET stack trace ("   at Namespace.Type.Method(": the single-line console log
    /// writes an exception's lines into its entry's line) or an unhandled exception.
    /// </summary>
    public List<string> StackTraceLines() => Lines(line => line.Contains("   at ", StringComparison.Ordinal) || line.Contains("Unhandled exception", StringComparison.Ordinal));

    /// <summary>The lines of the output that match.</summary>
    public List<string> Lines(Func<string, bool> match)
    {
        var found = new List<string>();
        lock (_output)
        {
            foreach (var line in _output)
            {
                if (match(line)) found.Add(line);
            }
        }
        return found;
    }
}
