using System.Text;

namespace Starling.Server.Tests.Functional.Transport;

/// <summary>
/// Issue #13 item 2: closing only queues our last bytes. A client that stops reading (a zero TCP window) must not keep
/// its socket and buffers once the server closed its stream: every close gets a deadline (C2s:CloseTimeoutSeconds).
/// </summary>
public sealed class CloseDeadlineTests
{
    [Fact]
    public async Task A_zero_window_client_closed_for_negotiation_timeout_loses_its_socket_within_the_close_deadline()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(
            "--C2s:NegotiationTimeoutSeconds=12", "--C2s:CloseTimeoutSeconds=2", "--C2s:ReadBytesPerSecond=0",
            "--Limits:MaxOutboundQueueBytes=200000000"); // the queue's own bound is not what this test is about

        // A tiny receive window that is never read; 100,000 SASL aborts make the server queue ~7 MB of <failure/>
        // answers, more than the kernel's socket buffers take (up to 4 MB), so its close (negotiation timeout) is
        // stuck behind them.
        using var socket = await RawSocket.ConnectAsync(server.EndPoint, receiveBuffer: 1024);
        var flood = new StringBuilder(RawSocket.StreamHeader);
        for (int i = 0; i < 100_000; i++) flood.Append("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        await RawSocket.SendAsync(socket, flood.ToString());
        Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Connections.Count == 1 && server.Server.Connections.Snapshot().First().BytesRead >= flood.Length, TimeSpan.FromSeconds(12)),
            "the server did not read the aborts");

        // The negotiation timeout (12 s: the flood is read first, so the read loop is idle when the timer closes the
        // stream), then the close deadline (2 s), both seen by the 5 s timer: a generous margin, far below "forever".
        Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Connections.Count == 0, TimeSpan.FromSeconds(40)),
            "the closed connection of a client that does not read is still open");

        // The socket is really closed: draining what was sent ends with end-of-input or a reset.
        Assert.NotNull(await RawSocket.ReadToEndAsync(socket, TimeSpan.FromSeconds(20)));

        await RawSocket.AssertNormalClientsLogInAndChatAsync(server);
    }
}
