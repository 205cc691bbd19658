using System.Text;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;
using static Starling.Server.Tests.Functional.SaslProbe;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// Issue #13 item 11 and item 2: hostile SASL sequences get a SASL failure (or a stream error) and never an exception
/// in the log; client input is not echoed back at length.
/// </summary>
public sealed class SaslRobustnessTests
{
    private const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";

    private static string Cut(string s) => s.Length > 400 ? s[..400] + "…" : s;

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    private static string Auth(string mechanism, string payload = "") => $"<auth xmlns='{Sasl}' mechanism='{mechanism}'>{payload}</auth>";

    private static string Response(string payload) => $"<response xmlns='{Sasl}'>{payload}</response>";

    private static string ScramFirst(string user) => Auth("SCRAM-SHA-256", Convert.ToBase64String(new ScramClient(ScramHash.Sha256, user, "x").ClientFirst()));

    /// <summary>Each sequence runs on a fresh connection; every element gets an answer, and none is an internal error.</summary>
    public static TheoryData<string, string[]> Sequences => new()
    {
        { "response before auth", [Response(B64("n,,n=alice,r=abc"))] },
        { "response after a failed exchange", ["FAIL-SCRAM", Response(B64("c=biws,r=abc,p=AAAA")), Response("")] },
        { "response after invalid-authzid", ["AUTHZID-SCRAM", Response(B64("c=biws,r=abc,p=AAAA"))] },
        { "double auth", [ScramFirst("alice"), ScramFirst("alice"), Response(B64("c=biws,r=abc,p=AAAA"))] },
        { "garbage base64 in auth", [Auth("SCRAM-SHA-256", "!!!***"), Response("%%%")] },
        { "garbage base64 in response", [ScramFirst("alice"), Response("%%%"), Response(B64("c=biws,r=abc,p=AAAA"))] },
        { "garbage client-first", [Auth("SCRAM-SHA-1", B64("zzz")), Response(B64("c=biws,r=abc,p=AAAA"))] },
        { "garbage client-final", [ScramFirst("alice"), Response(B64("p=,c=,r=")), Response(B64("x"))] },
        { "huge SCRAM payload", [Auth("SCRAM-SHA-256", Convert.ToBase64String(new byte[150_000])), Response(B64("x"))] },
        { "huge PLAIN payload", [Auth("PLAIN", Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0" + new string('p', 150_000))))] },
        { "huge mechanism name", [Auth(new string('M', 150_000), "AAAA")] },
        { "abort mid-exchange", [ScramFirst("alice"), $"<abort xmlns='{Sasl}'/>", Response(B64("c=biws,r=abc,p=AAAA"))] },
        { "abort without an exchange", [$"<abort xmlns='{Sasl}'/>", Response("")] },
        { "PLAIN in two steps then more", [Auth("PLAIN"), Response(B64("\0alice\0wrong")), Response(B64("\0alice\0wrong"))] },
        { "unknown SASL element", [$"<bogus xmlns='{Sasl}'>x</bogus>", Response("")] },
        { "empty SCRAM then garbage", [Auth("SCRAM-SHA-256"), Response(B64("n,,n=,r=")), Response("")] },
    };

    [Theory]
    [MemberData(nameof(Sequences))]
    public async Task Hostile_sasl_sequence_gets_sasl_failures_and_logs_no_error(string name, string[] steps)
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(
            "--Log:Level=Debug", "--Hosts:0:AllowPlainWithoutTls=true", "--C2s:MaxAuthFailures=100", "--Auth:AddressFreeFailures=100000");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        foreach (var step in steps)
        {
            if (step == "FAIL-SCRAM")
            {
                AssertFailure(await client.TryAuthenticateScramAsync("alice", "wrong", ScramHash.Sha256), "not-authorized");
                continue;
            }
            if (step == "AUTHZID-SCRAM")
            {
                AssertFailure(await client.TryAuthenticateScramAsync("alice", TestServer.Password, ScramHash.Sha256, authzid: "bob@localhost"), "invalid-authzid");
                continue;
            }
            await client.SendAsync(step);
            var answer = await client.ExpectAsync(e => e.Namespace == Sasl || (e.Name == "error" && e.Namespace == Namespaces.Streams), "a SASL answer or a stream error");
            if (answer.Namespace == Namespaces.Streams)
            {
                // A stanza size limit may end the stream first (RFC 6120 §4.9.3.12): a specified error too, then a new connection.
                Assert.True(answer.Element("policy-violation", Namespaces.StreamErrors) is not null, $"{name}: unexpected stream error {answer}");
                await client.ExpectClosedAsync();
                client = await server.ConnectAsync();
                await client.OpenStreamAsync();
                break;
            }
            Assert.True(answer.Name is "failure" or "challenge", $"{name}: unexpected {answer}");
            // Item 2: never more than a short text back, whatever the client sent.
            Assert.True(answer.ToString().Length < 600, $"{name}: the answer echoes client input: {Cut(answer.ToString())}");
        }
        // The stream is still usable: a normal login on the same connection works.
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        await client.BindAsync("after-" + name.Replace(' ', '-'));
        AssertNoErrorsLogged(server);
        await AssertAliceAndBobChatAsync(server);
        AssertNoErrorsLogged(server);
    }

    [Fact]
    public async Task Auth_after_success_is_a_stream_error_without_an_exception_in_the_log()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Log:Level=Debug");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.AuthenticateScramAsync("alice", TestServer.Password);
        await client.SendAsync(Response(B64("c=biws,r=abc,p=AAAA")));
        await client.ExpectStreamErrorAsync("policy-violation");
        AssertNoErrorsLogged(server);
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Unknown_host_error_does_not_echo_a_long_to_address()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var client = await server.ConnectAsync();
        var to = new string('x', 3000) + ".example";
        await client.SendStreamHeaderAsync(to);
        var error = await client.ExpectStreamErrorAsync("host-unknown");
        Assert.True(error.ToString().Length < 400, $"the stream error echoes the address: {Cut(error.ToString())}");
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Unsupported_stanza_error_does_not_echo_a_long_element_name_or_namespace()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        // Names are limited by the parser (256 bytes), namespace URIs to Limits:MaxNamespaceBytes (1,024).
        await client.SendAsync($"<{new string('e', 250)} xmlns='urn:{new string('n', 1000)}'/>");
        var error = await client.ExpectStreamErrorAsync("unsupported-stanza-type");
        Assert.True(error.ToString().Length < 400, $"the stream error echoes the element: {Cut(error.ToString())}");
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Invalid_mechanism_failure_does_not_echo_the_mechanism_name()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync();
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.SendAsync(Auth("X-" + new string('M', 5000), "AAAA"));
        var failure = await client.ExpectSaslAsync();
        AssertFailure(failure, "invalid-mechanism");
        Assert.DoesNotContain("MMMMMMMMMM", failure.ToString(), StringComparison.Ordinal);
        await AssertAliceAndBobChatAsync(server);
    }
}
