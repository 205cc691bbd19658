using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Hosting;

/// <summary>
/// Kestrel hands each TCP connection on the c2s port here. Connections over the caps (Limits:MaxConnections,
/// MaxConnectionsPerAddress, MaxUnauthenticatedConnections) are refused before a session exists.
/// </summary>
public sealed class C2sConnectionHandler(XmppServer server) : ConnectionHandler
{
    private readonly ILogger _log = server.LoggerFactory.CreateLogger<C2sConnectionHandler>();

    public override Task OnConnectedAsync(ConnectionContext connection)
    {
        var admission = server.Connections.Admit(connection.RemoteEndPoint, out var slot);
        if (admission != Admission.Admitted) return RefuseAsync(connection, admission);
        return new C2sStream(server, connection) { Slot = slot }.RunAsync();
    }

    /// <summary>
    /// RFC 6120 §4.9.1.2: an error before the stream is set up is still sent after a stream header of ours. It is
    /// written at once, without waiting for the client's header (a refused connection must cost as little as
    /// possible), and the connection is closed. Logged once per address per minute, not per connection.
    /// </summary>
    private async Task RefuseAsync(ConnectionContext connection, Admission admission)
    {
        var (condition, text) = admission switch
        {
            Admission.AddressFull => (StreamErrors.PolicyViolation, "too many connections from your address"),
            Admission.TooManyUnauthenticated => (StreamErrors.ResourceConstraint, "too many connections are authenticating; try again later"),
            Admission.ShuttingDown => (StreamErrors.SystemShutdown, "the server is shutting down"),
            _ => (StreamErrors.ResourceConstraint, "the server has too many connections; try again later"),
        };
        if (server.Connections.ShouldLogRefusal(admission, connection.RemoteEndPoint))
        {
            _log.LogWarning("refusing connections from {Remote}: {Reason} (logged once a minute)", connection.RemoteEndPoint, admission);
        }
        var from = server.Options.Hosts[0].Name;
        var header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='" +
                     XmppStream.NewId() + "' from='" + from + "' version='1.0'>";
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var output = connection.Transport.Output;
            output.Write(Encoding.UTF8.GetBytes(header));
            XmlWriter.Write(output, StreamErrors.Create(condition, text), Namespaces.Client);
            output.Write("</stream:stream>"u8);
            await output.FlushAsync(timeout.Token);
            await connection.Transport.Output.CompleteAsync();
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ConnectionResetException or ObjectDisposedException or InvalidOperationException)
        {
            // The client is gone or does not read: nothing more is owed to it.
        }
        connection.Abort(new ConnectionAbortedException("refused: " + admission));
    }
}
