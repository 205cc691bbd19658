using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace Starling.Server.Control;

/// <summary>
/// Kestrel hands each connection to the control socket here: the peer is checked (SO_PEERCRED), then each line is
/// one JSON request answered by one JSON line. A request longer than <see cref="MaxRequestBytes"/> or that is not
/// JSON gets an error line; an oversized one also ends the connection.
/// </summary>
public sealed class ControlConnectionHandler(ControlService service, XmppServer server) : ConnectionHandler
{
    /// <summary>Longest request line accepted (a passwd request with a long password is well under 1 KB).</summary>
    public const int MaxRequestBytes = 64 * 1024;

    private readonly ILogger _log = server.LoggerFactory.CreateLogger<ControlConnectionHandler>();

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        try
        {
            var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
            var uid = socket is null ? null : PeerCredentials.PeerUid(socket);
            if (uid is not { } peer || !PeerCredentials.IsAllowed(peer))
            {
                _log.LogWarning("control: refused a connection from uid {Uid}", uid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(unknown)");
                await WriteAsync(output, ControlResponse.Failure(
                    $"permission denied: only the server's user (uid {PeerCredentials.ServerUid}) or root may use the control socket; this is uid {(uid is null ? "unknown" : uid)}"));
                return;
            }
            while (true)
            {
                var result = await input.ReadAsync();
                var buffer = result.Buffer;
                var newline = buffer.PositionOf((byte)'\n');
                if (newline is null)
                {
                    if (buffer.Length > MaxRequestBytes)
                    {
                        await WriteAsync(output, ControlResponse.Failure($"request too long (the limit is {MaxRequestBytes} bytes per line)"));
                        return;
                    }
                    if (result.IsCompleted || result.IsCanceled) return;
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }
                var line = buffer.Slice(0, newline.Value);
                if (line.Length > MaxRequestBytes)
                {
                    await WriteAsync(output, ControlResponse.Failure($"request too long (the limit is {MaxRequestBytes} bytes per line)"));
                    return;
                }
                var request = Parse(line, out var error);
                input.AdvanceTo(buffer.GetPosition(1, newline.Value));
                var response = request is null ? ControlResponse.Failure(error!) : await service.ExecuteAsync(request);
                await WriteAsync(output, response);
            }
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or OperationCanceledException or ObjectDisposedException)
        {
            _log.LogDebug("control: connection ended: {Message}", ex.Message);
        }
        finally
        {
            await input.CompleteAsync();
            await output.CompleteAsync();
        }
    }

    private static ControlRequest? Parse(ReadOnlySequence<byte> line, out string? error)
    {
        error = null;
        try
        {
            var reader = new Utf8JsonReader(line);
            var request = JsonSerializer.Deserialize(ref reader, ControlJson.Default.ControlRequest);
            if (request is null) error = "the request must be a JSON object";
            return request;
        }
        catch (JsonException ex)
        {
            error = $"malformed request (one JSON object per line): {ex.Message}";
            return null;
        }
    }

    private static async Task WriteAsync(PipeWriter output, ControlResponse response)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(response, ControlJson.Default.ControlResponse);
        output.Write(bytes);
        output.Write("\n"u8);
        await output.FlushAsync();
    }
}
