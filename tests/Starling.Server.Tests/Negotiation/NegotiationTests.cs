using System.Text;
using Starling.Server.Modules;
using Starling.Server.Negotiation;
using Starling.Server.Tests.Functional;
using Starling.Xml;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Negotiation;

/// <summary>The negotiation seams through a running server: mechanisms and stream features registered by a module, not by C2sSession.</summary>
public sealed class NegotiationTests
{
    /// <summary>
    /// X-TEST-TOKEN: the initial response names the account, the server asks for the token, the client sends it. It
    /// uses only what ISaslStream gives any mechanism (look-up, throttle).
    /// </summary>
    private sealed class TokenMechanism : ISaslMechanism
    {
        public const string Token = "let-me-in";

        public string Name => "X-TEST-TOKEN";

        public bool IsOffered(ISaslStream stream) => true;

        public ISaslExchange Start(ISaslStream stream) => new Exchange();

        private sealed class Exchange : ISaslExchange
        {
            private string? _account;
            private bool _known;
            private bool _asked;

            public async ValueTask<SaslStep> StepAsync(byte[] response, ISaslStream stream)
            {
                if (!_asked)
                {
                    if (response.Length == 0) return SaslStep.Fail("malformed-request", "name the account");
                    var (local, account) = await stream.LookupAsync(Encoding.UTF8.GetString(response));
                    _account = local;
                    _known = account is not null;
                    _asked = true;
                    return SaslStep.Challenge("token?"u8.ToArray());
                }
                if (!await stream.HoldForAccountAsync()) return SaslStep.Ended;
                if (!_known || Encoding.UTF8.GetString(response) != Token) return SaslStep.Fail("not-authorized", "wrong token");
                return SaslStep.Succeed(_account!, null, "welcome"u8.ToArray());
            }
        }
    }

    /// <summary>A module that adds the test mechanism and one feature before and one after authentication.</summary>
    private sealed class TestNegotiationModule : IModule
    {
        public string Name => "test-negotiation";

        public void Register(ModuleContext context)
        {
            context.AddSaslMechanism(new TokenMechanism(), 1000);
            context.AddStreamFeature(StreamFeatureStage.Unauthenticated, StreamFeatureRegistry.MechanismsOrder + 50, _ => new XmlElement("pre", "urn:test:negotiation"));
            context.AddStreamFeature(StreamFeatureStage.Authenticated, StreamFeatureRegistry.BindOrder + 50, _ => new XmlElement("post", "urn:test:negotiation"));
        }
    }

    private static async Task<TestServer> StartAsync(params string[] extra)
    {
        var server = await TestServer.StartWithModulesAsync([new TestNegotiationModule()], extra);
        await server.AddUserAsync("alice");
        return server;
    }

    private static List<string> Mechanisms(XmlElement features)
    {
        var names = new List<string>();
        foreach (var m in features.Element("mechanisms", Namespaces.Sasl)!.Elements("mechanism", Namespaces.Sasl)) names.Add(m.Text);
        return names;
    }

    private static List<string> Names(XmlElement features)
    {
        var names = new List<string>();
        foreach (var e in features.Elements()) names.Add(e.Name);
        return names;
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static void AssertFailure(XmlElement outcome, string condition) =>
        Assert.True(outcome.Name == "failure" && outcome.Element(condition, Namespaces.Sasl) is not null, $"expected <failure><{condition}/></failure>, got {outcome}");

    private static async Task<XmlElement> TokenLoginAsync(XmppTestClient client, string user, string token)
    {
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-TEST-TOKEN'>{B64(user)}</auth>");
        var challenge = await client.ExpectSaslAsync();
        Assert.True(challenge.Name == "challenge", $"expected a challenge, got {challenge}");
        Assert.Equal("token?", Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text)));
        await client.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{B64(token)}</response>");
        return await client.ExpectSaslAsync();
    }

    [Fact]
    public async Task A_mechanism_registered_by_a_module_is_offered_first_and_authenticates_a_client()
    {
        await using var server = await StartAsync();
        var client = await server.ConnectAsync();
        var features = await client.OpenStreamAsync();
        Assert.Equal(["X-TEST-TOKEN", "SCRAM-SHA-256", "SCRAM-SHA-1"], Mechanisms(features));

        var success = await TokenLoginAsync(client, "alice", TokenMechanism.Token);
        Assert.True(success.Name == "success", $"expected success, got {success}{client.Transcript()}");
        Assert.Equal("welcome", Encoding.UTF8.GetString(Convert.FromBase64String(success.Text)));
        client.ExpectStreamRestart();
        await client.OpenStreamAsync();
        Assert.Equal("alice@localhost/token", await client.BindAsync("token"));
    }

    [Fact]
    public async Task Scram_downgrade_protection_signs_the_mechanisms_as_advertised_with_the_registered_one()
    {
        await using var server = await StartAsync();
        var client = await server.ConnectAsync();
        var features = await client.OpenStreamAsync();
        // XEP-0474 §4.1: the client signs what it saw, X-TEST-TOKEN included; the server must have signed the same.
        var scram = new ScramClient(ScramHash.Sha256, "alice", TestServer.Password)
        {
            AdvertisedLists = ScramDowngradeProtection.Compose(Mechanisms(features), null),
        };
        var outcome = await client.TryAuthenticateScramAsync(scram);
        Assert.True(outcome.Name == "success", $"expected success, got {outcome}");
        Assert.True(scram.DowngradeProtectionVerified);
    }

    [Fact]
    public async Task A_registered_mechanism_failure_gets_its_condition_and_counts_toward_MaxAuthFailures()
    {
        await using var server = await StartAsync("--C2s:MaxAuthFailures=2");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var first = await TokenLoginAsync(client, "alice", "guess");
        AssertFailure(first, "not-authorized");
        Assert.Equal("wrong token", first.ElementText("text", Namespaces.Sasl));
        AssertFailure(await TokenLoginAsync(client, "alice", "another guess"), "not-authorized");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Theory]
    [InlineData("X-NOT-REGISTERED")]
    [InlineData("PLAIN")] // registered, but not offered without TLS (Hosts:AllowPlainWithoutTls is off)
    public async Task A_mechanism_not_offered_gets_invalid_mechanism_and_the_stream_can_still_log_in(string mechanism)
    {
        await using var server = await StartAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{B64("\0alice\0" + TestServer.Password)}</auth>");
        AssertFailure(await client.ExpectSaslAsync(), "invalid-mechanism");
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        Assert.Equal("alice@localhost/r", await client.BindAsync("r"));
    }

    [Fact]
    public async Task Stream_features_of_each_stage_come_in_order_with_module_features_in_place()
    {
        await using var server = await StartAsync("--Hosts:0:RequireEncryption=true");
        var client = await server.ConnectAsync();

        // RFC 6120 §5.3.1: TLS is mandatory, so STARTTLS alone; the module's pre-auth feature waits.
        var tlsRequired = await client.OpenStreamAsync();
        Assert.Equal(["starttls"], Names(tlsRequired));

        var unauthenticated = await client.StartTlsAsync();
        Assert.Equal(["mechanisms", "pre", "sasl-channel-binding"], Names(unauthenticated));
        Assert.Equal(["X-TEST-TOKEN", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], Mechanisms(unauthenticated));

        var authenticated = await client.AuthenticateScramAsync("alice", TestServer.Password);
        // bind and session are negotiation's, pre is gone, sm (XEP-0198) has its own order after session, caps (disco) and
        // ver (roster) come from the old overload.
        Assert.Equal(["bind", "post", "session", "sm", "c", "ver"], Names(authenticated));
    }
}
