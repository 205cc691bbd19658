using System.Net.Sockets;
using System.Text.Json;
using Starling.Server.Admin;
using Starling.Server.Configuration;

namespace Starling.Server.Control;

/// <summary>The CLI's side of the control socket: one request, one response.</summary>
public static class ControlClient
{
    private const int MaxResponseBytes = 1024 * 1024;

    /// <summary>
    /// Sends <paramref name="request"/> to the running server. Null when no server runs (no socket, or a stale one
    /// that nobody answers): the caller then works on the database directly. A server that runs but cannot be
    /// reached, or that refuses the request, is an <see cref="AdminException"/> with the reason.
    /// </summary>
    public static async Task<ControlResponse?> TrySendAsync(LoadedConfiguration config, ControlRequest request, TimeSpan? timeout = null)
    {
        if (!ControlSocket.IsServed(config)) return null;
        var path = config.ControlSocketPath;
        if (!File.Exists(path)) return null;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cts.Token);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            return null; // left behind by a server that is gone
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AccessDenied)
        {
            throw new AdminException($"cannot reach the running server through {path}: permission denied; run this as the user the server runs as (or root)");
        }
        catch (SocketException ex)
        {
            throw new AdminException($"cannot reach the running server through {path}: {ex.Message}");
        }
        try
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(request, ControlJson.Default.ControlRequest);
            await socket.SendAsync(bytes.Append((byte)'\n').ToArray(), SocketFlags.None, cts.Token);
            var received = new MemoryStream();
            var buffer = new byte[4096];
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0) break;
                int newline = Array.IndexOf(buffer, (byte)'\n', 0, n);
                received.Write(buffer, 0, newline < 0 ? n : newline);
                if (newline >= 0) break;
                if (received.Length > MaxResponseBytes) throw new AdminException($"the server's answer on {path} is too long");
            }
            if (received.Length == 0) throw new AdminException($"the server closed the control connection ({path}) without answering");
            return JsonSerializer.Deserialize(received.ToArray(), ControlJson.Default.ControlResponse)
                ?? throw new AdminException($"the server's answer on {path} is empty");
        }
        catch (OperationCanceledException)
        {
            throw new AdminException($"the server did not answer on {path} within {(timeout ?? TimeSpan.FromSeconds(60)).TotalSeconds:F0} s");
        }
        catch (SocketException ex)
        {
            throw new AdminException($"the control connection to {path} failed: {ex.Message}");
        }
        catch (JsonException ex)
        {
            throw new AdminException($"the server's answer on {path} is not understood: {ex.Message}");
        }
    }
}
