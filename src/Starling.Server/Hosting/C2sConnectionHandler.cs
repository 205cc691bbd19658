using Microsoft.AspNetCore.Connections;
using Starling.Server.Sessions;

namespace Starling.Server.Hosting;

/// <summary>Kestrel hands each TCP connection on the c2s port here.</summary>
public sealed class C2sConnectionHandler(XmppServer server) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) => new C2sSession(server, connection).RunAsync();
}
