using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Starling.Server.Tests.Functional.Transport;

/// <summary>Hostile-client helpers: raw sockets from a chosen loopback address, and the check that normal clients still work.</summary>
internal static class RawSocket
{
    public const string StreamHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

    /// <summary>A TCP connection to <paramref name="server"/> from <paramref name="source"/> (any 127.0.0.0/8 address works on Linux).</summary>
    public static async Task<Socket> ConnectAsync(IPEndPoint server, string source = "127.0.0.1", int receiveBuffer = 0)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // Set before connecting, so the window the peer sees is small from the start.
            if (receiveBuffer > 0) socket.ReceiveBufferSize = receiveBuffer;
            socket.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(server, cts.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static async Task SendAsync(Socket socket, string xml)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await socket.SendAsync(Encoding.UTF8.GetBytes(xml), SocketFlags.None, cts.Token);
    }

    /// <summary>Reads until the peer ends the connection (end of input or reset); null if it did not within <paramref name="timeout"/>.</summary>
    public static async Task<string?> ReadToEndAsync(Socket socket, TimeSpan timeout)
    {
        var text = new StringBuilder();
        var buffer = new byte[64 * 1024];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0) return text.ToString();
                if (text.Length < 1024 * 1024) text.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
        }
        catch (SocketException)
        {
            return text.ToString(); // reset: ended as well
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Polls <paramref name="condition"/> every 50 ms for at most <paramref name="timeout"/>.</summary>
    public static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(50);
        }
        return true;
    }

    /// <summary>After an attack: alice and bob (new sessions) log in and a message goes from one to the other.</summary>
    public static async Task AssertNormalClientsLogInAndChatAsync(TestServer server, string suffix = "after", string first = "alice", string second = "bob")
    {
        var alice = await server.LoginAsync(first, "normal-" + suffix);
        var bob = await server.LoginAsync(second, "normal-" + suffix);
        var body = "hello after the attack " + suffix;
        await alice.SendAsync($"<message to='{bob.Jid}' type='chat' id='n1'><body>{body}</body></message>");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, body), "alice's message");
    }
}
