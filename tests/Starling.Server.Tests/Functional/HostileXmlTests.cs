using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Starling.Xml;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// Hostile XML against a running server (issue #13): stanzas built to make the writer amplify (one long namespace
/// on thousands of children) or the parser work quadratically (thousands of namespace bindings in scope), sent to
/// an online user, an offline user and a user that does not exist. Each is refused with policy-violation or
/// delivered, stored and bounced at a bounded size; afterwards ordinary clients still log in and chat.
/// </summary>
public sealed class HostileXmlTests
{
    /// <summary>What the server may write for a stanza, per byte received (see XmlWriter), plus the delay or error it adds.</summary>
    private const int Factor = 8;
    private const int Added = 1024;

    private static string LongNamespace(int length) => "urn:hostile:" + new string('n', length - 12);

    /// <summary>A message whose payload is <paramref name="children"/> × &lt;p:x/&gt; with p bound to a namespace of <paramref name="uriLength"/> bytes.</summary>
    private static string Amplifier(string to, string id, int uriLength, int children)
    {
        var sb = new StringBuilder(children * 6 + uriLength + 200);
        sb.Append(CultureInfo.InvariantCulture, $"<message to='{to}' id='{id}' type='chat' xmlns:p='{LongNamespace(uriLength)}'><body>amplifier</body>");
        sb.Insert(sb.Length, "<p:x/>", children);
        return sb.Append("</message>").ToString();
    }

    private static async Task AssertAliceAndBobChatAsync(TestServer server)
    {
        var alice = await server.LoginAsync("alice", "after-" + Guid.NewGuid().ToString("N")[..6]);
        var bob = await server.LoginAsync("bob", "after-" + Guid.NewGuid().ToString("N")[..6]);
        await alice.SendAsync("<message to='bob@localhost' type='chat'><body>still here?</body></message>");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "still here?"), "alice's message");
        await bob.SendAsync("<message to='alice@localhost' type='chat'><body>yes</body></message>");
        await alice.ExpectAsync(e => TestServer.IsMessage(e, "yes"), "bob's answer");
    }

    /// <summary>Sends <paramref name="xml"/> in pieces; the server may close the connection part way (that is the point).</summary>
    private static async Task SendUntilClosedAsync(XmppTestClient client, string xml)
    {
        var bytes = Encoding.UTF8.GetBytes(xml);
        for (int offset = 0; offset < bytes.Length; offset += 16 * 1024)
        {
            try
            {
                await client.SendBytesAsync(bytes[offset..Math.Min(bytes.Length, offset + 16 * 1024)]);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                return;
            }
        }
    }

    [Theory]
    [InlineData("bob@localhost", 1_000)]        // online: 20,000 elements, over the element cap
    [InlineData("carol@localhost", 1_000)]      // offline
    [InlineData("nobody@localhost", 1_000)]     // does not exist: would be bounced with its children
    [InlineData("bob@localhost", 130_000)]      // a ~250 KB stanza whose namespace alone is over the URI cap
    public async Task Stanza_with_a_long_namespace_on_20000_children_is_refused_with_policy_violation(string to, int uriLength)
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        await server.AddUserAsync("carol");
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");
        long memoryBefore = GC.GetTotalMemory(forceFullCollection: true);

        await SendUntilClosedAsync(alice, Amplifier(to, "amp", uriLength, 20_000));
        await alice.ExpectStreamErrorAsync("policy-violation");

        await bob.SyncAsync();
        bob.AssertNoPending(e => e.Name == "message" && e.GetAttribute("id") == "amp", "the refused stanza");
        Assert.Empty(await server.Server.Storage.Offline.LoadPageAsync(TestServer.Domain, "carol", 0, 100));
        long grown = GC.GetTotalMemory(forceFullCollection: true) - memoryBefore;
        Assert.True(grown < 64L * 1024 * 1024, $"the server's memory grew by {grown / 1024 / 1024} MB");
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Stanza_under_the_caps_is_delivered_stored_and_bounced_at_a_bounded_size()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        await server.AddUserAsync("carol");
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");
        await bob.SyncAsync();
        await alice.SyncAsync();

        // To bob, online: what reaches his connection is bounded by what alice sent.
        var online = Amplifier("bob@localhost", "online", 1_000, 9_000);
        long before = bob.BytesReceived;
        await alice.SendAsync(online);
        var delivered = await bob.ExpectAsync(e => e.Name == "message" && e.GetAttribute("id") == "online", "the big message");
        Assert.Equal(9_000, delivered.Elements("x", LongNamespace(1_000)).Count());
        long received = bob.BytesReceived - before;
        Assert.True(received <= Factor * online.Length + Added, $"alice sent {online.Length} bytes, bob received {received}");

        // To carol, offline: what storage keeps is bounded too, and it is delivered when she comes online.
        var offline = Amplifier("carol@localhost", "offline", 1_000, 9_000);
        await alice.SendAsync(offline);
        await alice.SyncAsync();
        var stored = Assert.Single(await server.Server.Storage.Offline.LoadPageAsync(TestServer.Domain, "carol", 0, 100));
        Assert.True(Encoding.UTF8.GetByteCount(stored.Xml) <= Factor * offline.Length + Added, $"alice sent {offline.Length} bytes, storage keeps {stored.Xml.Length}");
        var carol = await server.LoginAsync("carol", "c");
        var fromStorage = await carol.ExpectAsync(e => e.Name == "message" && e.GetAttribute("id") == "offline", "the stored message");
        Assert.Equal(9_000, fromStorage.Elements("x", LongNamespace(1_000)).Count());

        // To nobody: the bounce copies the children back to alice, still bounded.
        var bounced = Amplifier("nobody@localhost", "bounced", 1_000, 9_000);
        before = alice.BytesReceived;
        await alice.SendAsync(bounced);
        var error = await alice.ExpectAsync(e => e.Name == "message" && e.GetAttribute("id") == "bounced" && e.GetAttribute("type") == "error", "the bounce");
        Assert.Equal(9_000, error.Elements("x", LongNamespace(1_000)).Count());
        received = alice.BytesReceived - before;
        Assert.True(received <= Factor * bounced.Length + Added, $"alice sent {bounced.Length} bytes, her bounce was {received}");

        await AssertAliceAndBobChatAsync(server);
    }

    /// <summary>62 nested elements (the depth limit) declaring 64 prefixes each (3,968 bindings in scope), then <paramref name="children"/> elements using the oldest.</summary>
    private static string QuadraticParserStanza(int children)
    {
        var sb = new StringBuilder("<message to='bob@localhost'>");
        for (int d = 0; d < 62; d++)
        {
            sb.Append("<e");
            for (int k = 0; k < 64; k++) sb.Append(CultureInfo.InvariantCulture, $" xmlns:p{d}_{k}='urn:u'");
            sb.Append('>');
        }
        sb.Insert(sb.Length, "<p0_0:x/>", children);
        for (int d = 0; d < 62; d++) sb.Append("</e>");
        return sb.Append("</message>").ToString();
    }

    [Fact]
    public async Task Pre_authentication_stanza_with_50000_elements_and_4000_namespace_bindings_is_refused_quickly()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var attacker = await server.ConnectAsync();
        await attacker.OpenStreamAsync();
        var watch = Stopwatch.StartNew();
        await SendUntilClosedAsync(attacker, QuadraticParserStanza(50_000));
        await attacker.ExpectStreamErrorAsync("policy-violation");
        watch.Stop();
        // Refused at the small pre-bind limit (10,000 bytes), long before the end of the stanza; the bound is generous
        // for a loaded machine, the point is that the server does not parse the whole stanza first.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"refused after {watch.Elapsed.TotalSeconds:F1} s");
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Bound_client_sending_thousands_of_namespace_bindings_is_refused_with_policy_violation()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var alice = await server.LoginAsync("alice", "a");
        // ~215 KB, within MaxStanzaBytes: before, the parser scanned ~4,000 bindings per element and delivered it.
        await SendUntilClosedAsync(alice, QuadraticParserStanza(15_000));
        await alice.ExpectStreamErrorAsync("policy-violation");
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task The_small_limit_before_bind_is_lifted_once_a_resource_is_bound()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var bob = await server.LoginAsync("bob", "b");
        var alice = await server.LoginAsync("alice", "a");
        var body = new string('b', 100_000);
        await alice.SendAsync($"<message to='bob@localhost' id='big'><body>{body}</body></message>");
        var message = await bob.ExpectAsync(e => e.Name == "message" && e.GetAttribute("id") == "big", "the 100 KB message");
        Assert.Equal(body, message.ElementText("body", "jabber:client"));

        // Before bind the same message ends the stream.
        var early = await server.ConnectAsync();
        await early.OpenStreamAsync();
        await SendUntilClosedAsync(early, $"<message to='bob@localhost'><body>{body}</body></message>");
        await early.ExpectStreamErrorAsync("policy-violation");
    }
}
