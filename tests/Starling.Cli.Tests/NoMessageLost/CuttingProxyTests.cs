using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Starling.Cli.Tests.NoMessageLost;

/// <summary>The proof's cutting proxy against a plain TCP listener standing in for the server.</summary>
public sealed class CuttingProxyTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly TcpListener _server = new(IPAddress.Loopback, 0);

    public CuttingProxyTests() => _server.Start();

    public void Dispose() => _server.Stop();

    /// <summary>A client connected through <paramref name="proxy"/>, the server's end of it, and one round trip each way.</summary>
    private async Task<(Socket Client, Socket Server)> ConnectThroughAsync(CuttingProxy proxy)
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(proxy.EndPoint);
        using var cts = new CancellationTokenSource(Timeout);
        var server = await _server.AcceptSocketAsync(cts.Token);
        await client.SendAsync(Encoding.ASCII.GetBytes("up"));
        Assert.Equal("up", await ReceiveTextAsync(server));
        await server.SendAsync(Encoding.ASCII.GetBytes("down"));
        Assert.Equal("down", await ReceiveTextAsync(client));
        return (client, server);
    }

    private static async Task<string> ReceiveTextAsync(Socket socket)
    {
        var buffer = new byte[64];
        using var cts = new CancellationTokenSource(Timeout);
        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
        return Encoding.ASCII.GetString(buffer, 0, n);
    }

    private static async Task<SocketError> ReceiveErrorAsync(Socket socket)
    {
        var buffer = new byte[64];
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            return n == 0 ? SocketError.Disconnecting : SocketError.Success;
        }
        catch (SocketException ex)
        {
            return ex.SocketErrorCode;
        }
    }

    [Fact]
    public async Task Reset_forwards_until_the_cut_and_then_resets_both_sides()
    {
        await using var proxy = new CuttingProxy((IPEndPoint)_server.LocalEndpoint);
        var (client, server) = await ConnectThroughAsync(proxy);
        using (client)
        using (server)
        {
            Assert.Equal(1, proxy.Reset());
            // SO_LINGER 0: a reset, not an orderly end of stream (which a receive would see as 0 bytes).
            Assert.Equal(SocketError.ConnectionReset, await ReceiveErrorAsync(server));
            Assert.Equal(SocketError.ConnectionReset, await ReceiveErrorAsync(client));
            Assert.Equal(0, proxy.Active);
        }
    }

    [Fact]
    public async Task Silent_drop_resets_the_client_and_keeps_the_server_side_open_without_forwarding()
    {
        await using var proxy = new CuttingProxy((IPEndPoint)_server.LocalEndpoint);
        var (client, server) = await ConnectThroughAsync(proxy);
        using (client)
        using (server)
        {
            Assert.Equal(1, proxy.SilentDrop());
            Assert.Equal(SocketError.ConnectionReset, await ReceiveErrorAsync(client));

            // The server can still write (into buffers nobody reads) and has been told nothing: no end, no reset.
            Assert.Equal(4, await server.SendAsync(Encoding.ASCII.GetBytes("lost")));
            Assert.False(server.Poll(0, SelectMode.SelectRead), "the server's side saw its connection end");
            Assert.Equal(1, proxy.HeldOpen);

            // Held until the proxy goes: then the server's side ends too.
            await proxy.DisposeAsync();
            Assert.Equal(SocketError.ConnectionReset, await ReceiveErrorAsync(server));
        }
    }

    [Fact]
    public async Task A_connection_while_the_server_is_down_is_closed_so_the_client_retries()
    {
        var port = ((IPEndPoint)_server.LocalEndpoint).Port;
        _server.Stop();
        await using var proxy = new CuttingProxy(new IPEndPoint(IPAddress.Loopback, port));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(proxy.EndPoint);
        Assert.NotEqual(SocketError.Success, await ReceiveErrorAsync(client));
        Assert.Equal(0, proxy.Accepted);
    }
}
