using System.Net;
using System.Text;
using Starling.Xml;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Functional;

/// <summary>What an attacker sees of SASL on the wire, and the check that normal clients still work after an attack.</summary>
internal static class SaslProbe
{
    public sealed record ServerFirst(string ClientNonce, string Nonce, byte[] Salt, string Iterations, string Raw);

    /// <summary>Opens a connection, starts SCRAM for <paramref name="user"/> and returns the parsed server-first-message (the connection stays open).</summary>
    public static async Task<(ServerFirst First, ScramClient Scram, XmppTestClient Client)> ServerFirstAsync(TestServer server, string user, ScramHash hash, string password = "wrong", IPAddress? from = null)
    {
        var client = await server.ConnectAsync(from);
        await client.OpenStreamAsync();
        var scram = new ScramClient(hash, user, password);
        var clientFirst = Encoding.UTF8.GetString(scram.ClientFirst());
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{scram.MechanismName}'>{Convert.ToBase64String(Encoding.UTF8.GetBytes(clientFirst))}</auth>");
        var challenge = await client.ExpectSaslAsync();
        Assert.True(challenge.Name == "challenge", $"expected a challenge, got {challenge}");
        var text = Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text));
        var parts = text.Split(',');
        // r, s, i (RFC 5802 §7), then only XEP-0474's downgrade-protection hash, the same for every account.
        Assert.True(parts.Length is 3 or 4 && parts[0].StartsWith("r=", StringComparison.Ordinal) && parts[1].StartsWith("s=", StringComparison.Ordinal) && parts[2].StartsWith("i=", StringComparison.Ordinal)
            && (parts.Length == 3 || parts[3].StartsWith("h=", StringComparison.Ordinal)), $"unexpected server-first {text}");
        var first = new ServerFirst(clientFirst[(clientFirst.IndexOf(",r=", StringComparison.Ordinal) + 3)..], parts[0][2..], Convert.FromBase64String(parts[1][2..]), parts[2][2..], text);
        return (first, scram, client);
    }

    /// <summary>Answers a server-first with the client-final and returns the outcome (success or failure).</summary>
    public static async Task<XmlElement> FinishAsync(XmppTestClient client, ScramClient scram, ServerFirst first)
    {
        var serverFirst = Encoding.UTF8.GetBytes(first.Raw);
        await client.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(scram.ClientFinal(serverFirst))}</response>");
        return await client.ExpectSaslAsync();
    }

    public static void AssertFailure(XmlElement outcome, string condition) =>
        Assert.True(outcome.Name == "failure" && outcome.Element(condition, Namespaces.Sasl) is not null, $"expected <failure><{condition}/></failure>, got {outcome}");

    /// <summary>Alice and bob (accounts with <see cref="TestServer.Password"/>) log in and exchange a message both ways.</summary>
    public static async Task AssertAliceAndBobChatAsync(TestServer server, IPAddress? from = null)
    {
        var alice = await server.LoginAsync("alice", "chat", from: from);
        var bob = await server.LoginAsync("bob", "chat", from: from);
        await alice.SendAsync($"<message to='{TestServer.Bare("bob")}' type='chat'><body>hello bob</body></message>");
        await bob.ExpectAsync(e => TestServer.IsMessage(e, "hello bob"), "alice's message");
        await bob.SendAsync($"<message to='{TestServer.Bare("alice")}' type='chat'><body>hello alice</body></message>");
        await alice.ExpectAsync(e => TestServer.IsMessage(e, "hello alice"), "bob's message");
    }

    /// <summary>The server logged nothing at Error level or above and no exception at all.</summary>
    public static void AssertNoErrorsLogged(TestServer server)
    {
        foreach (var entry in server.Logs.Entries)
        {
            Assert.False(entry.Level >= Microsoft.Extensions.Logging.LogLevel.Error || entry.Exception is not null, $"the server logged: {entry}");
        }
    }
}
