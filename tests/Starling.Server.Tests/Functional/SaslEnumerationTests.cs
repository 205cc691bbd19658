using System.Diagnostics;
using System.Text;
using Starling.Server.Admin;
using Starling.Server.Configuration;
using Starling.Server.Hosting;
using Starling.Server.Sessions;
using Starling.Server.Storage;
using Starling.Xmpp.Sasl;
using static Starling.Server.Tests.Functional.SaslProbe;

namespace Starling.Server.Tests.Functional;

/// <summary>
/// Issue #13 item 4: unknown and known accounts must look the same on the wire and in time.
/// The throttle is opened wide here so that only what the server says is measured.
/// </summary>
public sealed class SaslEnumerationTests
{
    private static readonly string[] Wide = ["--Auth:AddressFreeFailures=100000", "--Auth:AccountFreeFailures=100000", "--C2s:MaxAuthFailures=100"];

    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public async Task Unknown_user_gets_a_challenge_of_the_same_shape_as_a_known_one(ScramHash hash)
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(Wide);
        var (known, _, _) = await ServerFirstAsync(server, "alice", hash);
        var (unknown, _, _) = await ServerFirstAsync(server, "nobody", hash);
        Assert.Equal(known.Salt.Length, unknown.Salt.Length);
        Assert.Equal(known.Iterations, unknown.Iterations);
        Assert.Equal(known.Nonce.Length - known.ClientNonce.Length, unknown.Nonce.Length - unknown.ClientNonce.Length);
        Assert.StartsWith(unknown.ClientNonce, unknown.Nonce, StringComparison.Ordinal);
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Unknown_user_gets_different_salts_for_sha1_and_sha256_as_a_known_one_does()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(Wide);
        var (alice1, _, _) = await ServerFirstAsync(server, "alice", ScramHash.Sha1);
        var (alice256, _, _) = await ServerFirstAsync(server, "alice", ScramHash.Sha256);
        Assert.NotEqual(alice1.Salt, alice256.Salt);
        var (nobody1, _, _) = await ServerFirstAsync(server, "nobody", ScramHash.Sha1);
        var (nobody256, _, _) = await ServerFirstAsync(server, "nobody", ScramHash.Sha256);
        Assert.NotEqual(nobody1.Salt, nobody256.Salt);
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Case_variants_of_an_unknown_user_get_one_salt_as_case_variants_of_a_known_one_do()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(Wide);
        var (alice, _, _) = await ServerFirstAsync(server, "alice", ScramHash.Sha256);
        var (aliceUpper, _, _) = await ServerFirstAsync(server, "Alice", ScramHash.Sha256);
        Assert.Equal(alice.Salt, aliceUpper.Salt);
        var (nobody, _, _) = await ServerFirstAsync(server, "nobody", ScramHash.Sha256);
        var (nobodyUpper, _, _) = await ServerFirstAsync(server, "NoBody", ScramHash.Sha256);
        Assert.Equal(nobody.Salt, nobodyUpper.Salt);
        // The same for the whole exchange: a case variant of alice logs in, one of nobody fails like nobody.
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        Assert.Equal("success", (await client.TryAuthenticateScramAsync("ALICE", TestServer.Password, ScramHash.Sha256)).Name);
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Unknown_user_fails_at_the_last_step_exactly_as_a_wrong_password_does()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync(Wide);
        var (knownFirst, knownScram, knownClient) = await ServerFirstAsync(server, "alice", ScramHash.Sha256, "wrong");
        var (unknownFirst, unknownScram, unknownClient) = await ServerFirstAsync(server, "nobody", ScramHash.Sha256, "wrong");
        var known = await FinishAsync(knownClient, knownScram, knownFirst);
        var unknown = await FinishAsync(unknownClient, unknownScram, unknownFirst);
        AssertFailure(known, "not-authorized");
        Assert.Equal(known.ToString(), unknown.ToString());
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Unknown_user_keeps_its_salt_across_a_restart_and_the_secret_file_is_owner_only()
    {
        var directory = Path.Combine(Path.GetTempPath(), "starling-ft-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            var configFile = Path.Combine(directory, "starling.json");
            await File.WriteAllTextAsync(configFile, "{}");
            string[] overrides =
            [
                "--DataDirectory=" + directory, "--C2s:Port=0", "--C2s:Addresses:0=127.0.0.1", "--Hosts:0:Name=" + TestServer.Domain,
                "--Hosts:0:RequireEncryption=false", "--Log:Level=Warning",
            ];
            var config = StarlingConfiguration.Load(configFile, overrides);
            byte[] before = await SaltOfNobodyAsync(config);
            byte[] after = await SaltOfNobodyAsync(config);
            Assert.Equal(before, after);
            var secret = Path.Combine(directory, AuthSecret.FileName);
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secret));
            Assert.Empty(Directory.GetFiles(directory, "*.tmp"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<byte[]> SaltOfNobodyAsync(LoadedConfiguration config)
    {
        await using var host = await StarlingHost.StartAsync(config, configureLogging: _ => { });
        await using var client = await XmppTestClient.ConnectAsync(host.C2sEndPoints[0], TestServer.Domain);
        await client.OpenStreamAsync();
        var scram = new ScramClient(ScramHash.Sha256, "nobody", "x");
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        var challenge = await client.ExpectSaslAsync();
        var text = Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text));
        return Convert.FromBase64String(text.Split(',')[1][2..]);
    }

    [Fact]
    public async Task Plain_for_an_unknown_user_does_the_same_hash_work_as_for_a_known_one()
    {
        // Accounts with a costly iteration count make the hash work dominate the answer time, so skipping it shows.
        const int Iterations = 300_000;
        await using var server = await TestServer.StartAsync([.. Wide, "--Hosts:0:AllowPlainWithoutTls=true"]);
        await server.AddUserAsync("bob");
        var (sha1, sha256) = AccountAdmin.CreateCredentials(TestServer.Password, Iterations);
        Assert.True(await server.Server.Storage.Accounts.CreateAsync(new StoredAccount(TestServer.Domain, "alice", sha1, sha256, DateTimeOffset.UtcNow)));

        async Task<double> PlainMillisecondsAsync(string user)
        {
            var client = await server.ConnectAsync();
            await client.OpenStreamAsync();
            var watch = Stopwatch.StartNew();
            AssertFailure(await client.TryAuthenticatePlainAsync(user, "wrong"), "not-authorized");
            return watch.Elapsed.TotalMilliseconds;
        }

        var known = new List<double>();
        var unknown = new List<double>();
        for (int i = 0; i < 3; i++)
        {
            known.Add(await PlainMillisecondsAsync("alice"));
            unknown.Add(await PlainMillisecondsAsync("nobody" + i));
        }
        known.Sort();
        unknown.Sort();
        // Medians, and a wide margin: without the stand-in hash the unknown answer is ~100x faster.
        Assert.True(unknown[1] > known[1] * 0.3, $"unknown accounts answered in {unknown[1]:F1} ms, known ones in {known[1]:F1} ms");

        // SCRAM stand-ins announce the iteration count real accounts have.
        var (first, _, _) = await ServerFirstAsync(server, "nobody", ScramHash.Sha256);
        Assert.Equal("300000", first.Iterations);
        await AssertAliceAndBobChatAsync(server);
    }

    [Fact]
    public async Task Abort_in_the_middle_of_an_exchange_counts_as_a_failed_attempt()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--C2s:MaxAuthFailures=2");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        for (int i = 0; i < 2; i++)
        {
            var scram = new ScramClient(ScramHash.Sha256, "alice", "x");
            await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
            Assert.Equal("challenge", (await client.ExpectSaslAsync()).Name);
            await client.SendAsync("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
            AssertFailure(await client.ExpectSaslAsync(), "aborted");
        }
        await client.ExpectStreamErrorAsync("policy-violation");
        await AssertAliceAndBobChatAsync(server);
    }
}
