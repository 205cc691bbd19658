using System.Net;
using System.Net.Sockets;
using Starling.Server.Configuration;
using Starling.Server.Sessions;

namespace Starling.Server.Tests.Functional.Transport;

/// <summary>
/// Issue #13 item 2: connection caps (global, per address or IPv6 /64, unauthenticated). A connection over a cap is
/// refused politely: our stream header, a stream error, the close tag, and the end of the connection.
/// </summary>
public sealed class ConnectionCapTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_connection_over_the_per_address_cap_gets_policy_violation_and_other_addresses_still_log_in_and_chat()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:MaxConnectionsPerAddress=3", "--Limits:ExemptLoopbackFromAddressCap=false");
        var held = new List<Socket>();
        try
        {
            for (int i = 0; i < 3; i++) held.Add(await RawSocket.ConnectAsync(server.EndPoint, "127.0.0.2"));
            Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Connections.Admitted == 3, Wait), "the three connections were not admitted");

            using var refused = await RawSocket.ConnectAsync(server.EndPoint, "127.0.0.2");
            var text = await RawSocket.ReadToEndAsync(refused, Wait);
            Assert.NotNull(text);
            Assert.StartsWith("<?xml version='1.0'?><stream:stream ", text, StringComparison.Ordinal);
            Assert.Contains("<policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>", text, StringComparison.Ordinal);
            Assert.EndsWith("</stream:stream>", text, StringComparison.Ordinal);
            Assert.Equal(3, server.Server.Connections.Admitted);

            // 127.0.0.1 is another address: its clients are not affected.
            await RawSocket.AssertNormalClientsLogInAndChatAsync(server);
        }
        finally
        {
            foreach (var s in held) s.Dispose();
        }
    }

    [Fact]
    public async Task A_connection_over_the_global_cap_gets_resource_constraint_and_clients_log_in_once_others_left()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:MaxConnections=3");
        var held = new List<Socket>();
        for (int i = 0; i < 3; i++) held.Add(await RawSocket.ConnectAsync(server.EndPoint));
        Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Connections.Admitted == 3, Wait), "the three connections were not admitted");

        using (var refused = await RawSocket.ConnectAsync(server.EndPoint))
        {
            var text = await RawSocket.ReadToEndAsync(refused, Wait);
            Assert.NotNull(text);
            Assert.Contains("<resource-constraint xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>", text, StringComparison.Ordinal);
            Assert.EndsWith("</stream:stream>", text, StringComparison.Ordinal);
        }

        foreach (var s in held) s.Dispose();
        Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Connections.Admitted == 0, Wait), "closed connections still counted");
        await RawSocket.AssertNormalClientsLogInAndChatAsync(server);
    }

    [Fact]
    public async Task Unauthenticated_connections_are_capped_but_authenticated_ones_do_not_count()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:MaxUnauthenticatedConnections=2");
        var alice = await server.LoginAsync("alice", "early"); // authenticated: no longer counted
        Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Connections.Unauthenticated == 0, Wait));
        var held = new List<Socket>();
        for (int i = 0; i < 2; i++)
        {
            var s = await RawSocket.ConnectAsync(server.EndPoint);
            await RawSocket.SendAsync(s, RawSocket.StreamHeader);
            held.Add(s);
        }
        Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Connections.Unauthenticated == 2, Wait));

        using (var refused = await RawSocket.ConnectAsync(server.EndPoint))
        {
            var text = await RawSocket.ReadToEndAsync(refused, Wait);
            Assert.NotNull(text);
            Assert.Contains("<resource-constraint xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>", text, StringComparison.Ordinal);
        }
        // The authenticated session was not disturbed.
        await alice.SyncAsync();

        foreach (var s in held) s.Dispose();
        Assert.True(await RawSocket.EventuallyAsync(() => server.Server.Connections.Unauthenticated == 0, Wait), "closed connections still counted");
        await RawSocket.AssertNormalClientsLogInAndChatAsync(server);
    }

    [Fact]
    public void An_ipv6_64_counts_as_one_address_and_ipv4_mapped_addresses_as_their_ipv4()
    {
        var registry = new ConnectionRegistry(new LimitOptions { MaxConnectionsPerAddress = 2 });
        Assert.Equal(Admission.Admitted, registry.Admit(At("2001:db8:1:2::1"), out var first));
        Assert.Equal(Admission.Admitted, registry.Admit(At("2001:db8:1:2:ffff:eeee:dddd:5"), out _));
        Assert.Equal(Admission.AddressFull, registry.Admit(At("2001:db8:1:2::99"), out _));
        Assert.Equal(Admission.Admitted, registry.Admit(At("2001:db8:1:3::1"), out _));
        registry.Release(first!);
        Assert.Equal(Admission.Admitted, registry.Admit(At("2001:db8:1:2::7"), out _));

        Assert.Equal(Admission.Admitted, registry.Admit(At("192.0.2.7"), out _));
        Assert.Equal(Admission.Admitted, registry.Admit(At("::ffff:192.0.2.7"), out _));
        Assert.Equal(Admission.AddressFull, registry.Admit(At("192.0.2.7"), out _));
        Assert.Equal(Admission.Admitted, registry.Admit(At("192.0.2.8"), out _));
    }

    [Fact]
    public void Loopback_is_exempt_from_the_per_address_cap_by_default_but_not_from_the_global_one()
    {
        var registry = new ConnectionRegistry(new LimitOptions { MaxConnectionsPerAddress = 1, MaxConnections = 3 });
        for (int i = 0; i < 3; i++) Assert.Equal(Admission.Admitted, registry.Admit(At("127.0.0.1"), out _));
        Assert.Equal(Admission.ServerFull, registry.Admit(At("127.0.0.1"), out _));
    }

    [Fact]
    public void Refusals_from_one_address_are_logged_once_a_minute_not_per_connection()
    {
        var registry = new ConnectionRegistry(new LimitOptions());
        Assert.True(registry.ShouldLogRefusal(Admission.AddressFull, At("192.0.2.7")));
        for (int i = 0; i < 100; i++) Assert.False(registry.ShouldLogRefusal(Admission.AddressFull, At("192.0.2.7")));
        Assert.True(registry.ShouldLogRefusal(Admission.AddressFull, At("192.0.2.8")));
        Assert.True(registry.ShouldLogRefusal(Admission.ServerFull, At("192.0.2.9")));
        Assert.False(registry.ShouldLogRefusal(Admission.ServerFull, At("192.0.2.10")));
    }

    private static IPEndPoint At(string address) => new(IPAddress.Parse(address), 40000);
}
