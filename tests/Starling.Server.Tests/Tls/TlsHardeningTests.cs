using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Starling.Server.Tests.Functional;
using Starling.Server.Tls;
using Starling.Xml;
using Starling.Xmpp;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Tls;

/// <summary>
/// Issue #13, item 13 (TLS) against a running in-process server: the full chain is sent, weak cipher suites are
/// refused, tls-exporter channel binding (RFC 9266) works beside tls-server-end-point, the SCRAM server-first-message
/// carries the XEP-0474 hash, and certificates are reloaded without a restart (SIGHUP itself: tests/Starling.Cli.Tests,
/// SighupTests, against a real process). After each attack a normal client still logs in and chats.
/// </summary>
public sealed partial class TlsHardeningTests
{
    private static string TempDirectory() => Path.Combine(Path.GetTempPath(), "starling-tls-" + Guid.NewGuid().ToString("N"));

    /// <summary>Two fresh accounts log in over STARTTLS (SCRAM-SHA-256) and a message from one reaches the other.</summary>
    private static async Task AssertNormalClientsLoginAndChatAsync(TestServer server)
    {
        await server.AddUserAsync("carol");
        await server.AddUserAsync("dave");
        var carol = await server.LoginAsync("carol", "laptop");
        var dave = await server.LoginAsync("dave", "phone");
        Assert.NotNull(carol.Tls);
        await carol.SendAsync("<message to='dave@localhost' type='chat' id='m1'><body>still fine</body></message>");
        var message = await dave.ExpectAsync(e => TestServer.IsMessage(e, "still fine"), "carol's message");
        Assert.Equal("carol@localhost/laptop", message.GetAttribute("from"));
    }

    private static List<string> Mechanisms(XmlElement features) =>
        features.Element("mechanisms", Namespaces.Sasl)?.Elements("mechanism", Namespaces.Sasl).Select(m => m.Text).ToList() ?? [];

    private static List<string>? ChannelBindingTypes(XmlElement features) =>
        features.Element("sasl-channel-binding", Namespaces.ChannelBinding)?.Elements("channel-binding", Namespaces.ChannelBinding)
            .Select(e => e.GetAttribute("type")!).ToList();

    // ---- full chain ----

    [Fact]
    public async Task Fullchain_certificate_sends_its_intermediate_in_the_handshake()
    {
        var dir = TempDirectory();
        try
        {
            var chain = TlsTestKit.CreateChain(dir);
            await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true",
                "--Hosts:0:Certificate=" + chain.FullChainPath, "--Hosts:0:Key=" + chain.KeyPath);
            Assert.Equal(chain.Leaf.RawData, server.Server.Certificates.Get("localhost")!.Certificate.RawData);

            // A .NET client: the certificates the server sent besides the leaf are in the chain's extra store.
            var sent = new List<byte[]>();
            var (tcp, tls) = await TlsTestKit.StartTlsAsync(server.EndPoint, new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = (_, certificate, chainBuilt, _) =>
                {
                    foreach (var c in chainBuilt!.ChainPolicy.ExtraStore) sent.Add(c.RawData);
                    return certificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(chain.Leaf.RawData);
                },
            });
            using (tcp)
            await using (tls)
            {
                // The runtime puts every certificate the peer sent there, the leaf included.
                sent.RemoveAll(c => c.AsSpan().SequenceEqual(chain.Leaf.RawData));
                var intermediate = Assert.Single(sent);
                Assert.Equal(chain.Intermediate.RawData, intermediate);
            }

            // openssl s_client -showcerts prints every certificate the server sent: the leaf and the intermediate.
            var (_, output) = await TlsTestKit.OpenSslAsync("s_client", "-connect", server.EndPoint.ToString(), "-starttls", "xmpp",
                "-xmpphost", "localhost", "-showcerts", "-CAfile", WriteRoot(chain));
            Assert.Equal(2, Regex.Count(output, "-----BEGIN CERTIFICATE-----"));
            Assert.Contains("Verify return code: 0 (ok)", output, StringComparison.Ordinal);

            await AssertNormalClientsLoginAndChatAsync(server);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string WriteRoot(TlsTestKit.Chain chain)
    {
        var path = Path.Combine(chain.Directory, "root.pem");
        File.WriteAllText(path, chain.Root.ExportCertificatePem());
        return path;
    }

    // ---- cipher policy ----

    // The runtime's default list already refused the first three before the policy; the CBC suites with SHA-2
    // (ECDHE-RSA-AES256-SHA384, ECDHE-RSA-AES128-SHA256) were accepted until the policy restricted TLS 1.2 to AEAD.
    [Theory]
    [InlineData("AES128-GCM-SHA256")]        // RSA key exchange: no forward secrecy
    [InlineData("AES256-SHA256")]            // RSA key exchange, CBC
    [InlineData("ECDHE-RSA-AES128-SHA")]     // CBC with HMAC-SHA1
    [InlineData("ECDHE-RSA-AES256-SHA384")]  // CBC with HMAC-SHA384
    [InlineData("ECDHE-RSA-AES128-SHA256")]  // CBC with HMAC-SHA256
    public async Task Tls12_client_offering_only_a_weak_suite_is_refused(string cipher)
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var (exit, output) = await TlsTestKit.OpenSslAsync("s_client", "-connect", server.EndPoint.ToString(), "-starttls", "xmpp",
            "-xmpphost", "localhost", "-tls1_2", "-cipher", cipher);
        Assert.True(exit != 0, $"the handshake with {cipher} succeeded:{Environment.NewLine}{output}");
        Assert.Contains("Cipher is (NONE)", output, StringComparison.Ordinal);
        await AssertNormalClientsLoginAndChatAsync(server);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Dotnet_client_offering_only_a_cbc_suite_is_refused()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var pinned = server.Server.Certificates.Get("localhost")!.Certificate.RawData;
        await Assert.ThrowsAsync<AuthenticationException>(() => TlsTestKit.StartTlsAsync(server.EndPoint, new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls12,
            CipherSuitesPolicy = new CipherSuitesPolicy([TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384]),
            RemoteCertificateValidationCallback = (_, c, _, _) => c is not null && c.GetRawCertData().AsSpan().SequenceEqual(pinned),
        }));
        await AssertNormalClientsLoginAndChatAsync(server);
    }

    [Fact]
    public async Task Cipher_policy_lives_on_the_shared_context_so_connections_share_one_ssl_ctx()
    {
        // A CipherSuitesPolicy per connection would make the runtime build an SSL_CTX per connection (memory per idle
        // session); the policy is set on the shared one instead, and every connection is made from it.
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        Assert.Null(server.Server.Certificates.Get("localhost")!.CipherPolicy);
        for (int i = 0; i < 2; i++)
        {
            var client = await server.ConnectAsync();
            await client.OpenStreamAsync();
            await client.StartTlsAsync();
        }
        var contexts = server.Server.Connections.Snapshot().Where(s => s.IsSecure).Select(s => NativeSsl.GetContext(s.Tls!)).ToList();
        Assert.Equal(2, contexts.Count);
        Assert.NotEqual(IntPtr.Zero, contexts[0]);
        Assert.Equal(contexts[0], contexts[1]);
    }

    [Fact]
    public async Task A_second_server_with_the_same_certificate_gets_the_restricted_ssl_ctx_without_setting_it_again()
    {
        // The runtime caches SSL_CTX by certificate: a second certificate context for the same certificate (a reload of an
        // unchanged file; here two test servers sharing one) gets the context live handshakes use. Setting its cipher
        // lists again while they run crashed the test host inside OpenSSL; it is restricted once and left alone.
        await using var first = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var client = await first.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        var shared = NativeSsl.GetContext(first.Server.Connections.Snapshot().First(s => s.IsSecure).Tls!);
        Assert.True(NativeSsl.WasRestricted(shared));

        await using var second = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        Assert.Null(second.Server.Certificates.Get("localhost")!.CipherPolicy); // restricted natively, no per-connection policy
        var other = await second.ConnectAsync();
        await other.OpenStreamAsync();
        await other.StartTlsAsync();
        Assert.Equal(shared, NativeSsl.GetContext(second.Server.Connections.Snapshot().First(s => s.IsSecure).Tls!));
        await AssertNormalClientsLoginAndChatAsync(first);
    }

    [Theory]
    [InlineData("-tls1_2", "ECDHE-RSA-AES256-GCM-SHA384")]
    [InlineData("-tls1_2", "ECDHE-RSA-CHACHA20-POLY1305")]
    [InlineData("-tls1_3", "TLS_AES_256_GCM_SHA384")]
    public async Task Ordinary_tls_clients_still_negotiate_a_modern_suite(string version, string expectedSuite)
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var args = new List<string> { "s_client", "-connect", server.EndPoint.ToString(), "-starttls", "xmpp", "-xmpphost", "localhost", version };
        if (version == "-tls1_2") args.AddRange(["-cipher", expectedSuite]);
        var (_, output) = await TlsTestKit.OpenSslAsync([.. args]);
        Assert.Contains("Cipher is " + expectedSuite, output, StringComparison.Ordinal);
    }

    // ---- channel binding ----

    private static readonly string[] BothBindingTypes = ["tls-exporter", "tls-server-end-point"];

    [Fact]
    public async Task Tls13_connection_advertises_tls_exporter_beside_tls_server_end_point()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var features = await client.StartTlsAsync();
        Assert.Equal(SslProtocols.Tls13, client.Tls!.SslProtocol);
        Assert.Equal(BothBindingTypes, ChannelBindingTypes(features));
    }

    [Fact]
    public async Task Tls12_connection_advertises_only_tls_server_end_point()
    {
        // RFC 9266 §3: tls-exporter on TLS 1.2 needs the extended master secret; like Prosody we offer it on TLS 1.3 only.
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var pinned = server.Server.Certificates.Get("localhost")!.Certificate.RawData;
        var (tcp, tls) = await TlsTestKit.StartTlsAsync(server.EndPoint, new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = SslProtocols.Tls12,
            RemoteCertificateValidationCallback = (_, c, _, _) => c is not null && c.GetRawCertData().AsSpan().SequenceEqual(pinned),
        });
        using (tcp)
        await using (tls)
        {
            await tls.WriteAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"u8.ToArray());
            var text = await ReadUntilAsync(tls, "</stream:features>");
            Assert.Contains("type='tls-server-end-point'", text.Replace('"', '\''), StringComparison.Ordinal);
            Assert.DoesNotContain("tls-exporter", text, StringComparison.Ordinal);
        }
    }

    private static async Task<string> ReadUntilAsync(Stream stream, string marker)
    {
        var buffer = new byte[4096];
        var text = new System.Text.StringBuilder();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!text.ToString().Contains(marker, StringComparison.Ordinal))
        {
            int n = await stream.ReadAsync(buffer, cts.Token);
            if (n == 0) break;
            text.Append(System.Text.Encoding.UTF8.GetString(buffer, 0, n));
        }
        return text.ToString();
    }

    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public async Task Plus_login_with_tls_exporter_binding_works(ScramHash hash)
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        // The client derives the exporter from its own side of the handshake; the server from its side.
        var exporter = NativeSsl.ExportChannelBinding(client.Tls!);
        Assert.NotNull(exporter);
        var outcome = await TryScramAsync(client, new ScramClient(hash, "alice", TestServer.Password, "tls-exporter", exporter));
        Assert.True(outcome.Name == "success", outcome.ToString());
        await client.OpenStreamAsync();
        await client.BindAsync("r");
        await client.SyncAsync();
    }

    [Fact]
    public async Task Plus_login_naming_tls_exporter_but_sending_end_point_data_is_refused()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        var outcome = await TryScramAsync(client, new ScramClient(ScramHash.Sha256, "alice", TestServer.Password, "tls-exporter", client.ServerEndPointBinding()));
        Assert.Equal("failure", outcome.Name);
        Assert.NotNull(outcome.Element("not-authorized", Namespaces.Sasl));
        await AssertNormalClientsLoginAndChatAsync(server);
    }

    [Fact]
    public async Task Tls_exporter_value_matches_openssl_keying_material_export()
    {
        // Independent computation: openssl s_client exports the same keying material from its side of the handshake.
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var info = new System.Diagnostics.ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "s_client", "-connect", server.EndPoint.ToString(), "-starttls", "xmpp", "-xmpphost", "localhost", "-tls1_3",
                     "-keymatexport", "EXPORTER-Channel-Binding", "-keymatexportlen", "32" }) info.ArgumentList.Add(a);
        using var process = System.Diagnostics.Process.Start(info)!;
        _ = process.StandardError.ReadToEndAsync();
        string? material = null;
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (material is null && await process.StandardOutput.ReadLineAsync(cts.Token) is { } line)
            {
                var m = Regex.Match(line, @"Keying material:\s*([0-9A-Fa-f]{64})");
                if (m.Success) material = m.Groups[1].Value;
            }
        }
        Assert.NotNull(material);
        // s_client is still connected (its stdin is open): ask the server's side of that connection.
        // The server finishes its side of the TLS 1.3 handshake when the client's Finished arrives: wait for it.
        Starling.Server.Sessions.XmppStream? stream = null;
        for (int i = 0; i < 200 && stream is null; i++)
        {
            stream = server.Server.Connections.Snapshot().FirstOrDefault(s => s.IsSecure);
            if (stream is null) await Task.Delay(50);
        }
        Assert.NotNull(stream);
        var serverSide = NativeSsl.ExportChannelBinding(stream.Tls!);
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        Assert.Equal(material, Convert.ToHexString(serverSide!), ignoreCase: true);
    }

    [Fact]
    public async Task Only_the_runtimes_SafeSslHandle_is_taken_for_an_SSL_pointer()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        var stream = server.Server.Connections.Snapshot().Single(s => s.IsSecure);
        Assert.True(NativeSsl.IsRuntimeSslHandle(NativeSsl.RawSecurityContext(stream.Tls!)));
        // Another SafeHandle (here a file's) must never reach libssl, though it is a SafeHandle too.
        var path = Path.GetTempFileName();
        try
        {
            using var file = File.OpenHandle(path);
            Assert.False(NativeSsl.IsRuntimeSslHandle(file));
        }
        finally
        {
            File.Delete(path);
        }
        Assert.False(NativeSsl.IsRuntimeSslHandle(null));
        Assert.True(NativeSsl.Available);
    }

    private static Task<XmlElement> TryScramAsync(XmppTestClient client, ScramClient scram) => client.TryAuthenticateScramAsync(scram);

    // ---- XEP-0474 ----

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Scram_challenge_carries_the_hash_of_the_advertised_lists(bool overTls)
    {
        await using var server = await TestServer.StartAsync();
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        var features = await client.OpenStreamAsync();
        if (overTls) features = await client.StartTlsAsync();
        var advertised = ScramDowngradeProtection.Compose(Mechanisms(features), ChannelBindingTypes(features));
        var scram = new ScramClient(ScramHash.Sha256, "alice", TestServer.Password) { AdvertisedLists = advertised };
        var outcome = await TryScramAsync(client, scram);
        Assert.True(outcome.Name == "success", outcome.ToString());
        Assert.True(scram.DowngradeProtectionVerified);
    }

    [Fact]
    public async Task Scram_client_detects_plus_mechanisms_stripped_from_the_features()
    {
        await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true");
        await server.AddUserAsync("alice");
        var client = await server.ConnectAsync();
        await client.OpenStreamAsync();
        var features = await client.StartTlsAsync();
        // What a MITM would show the client: no -PLUS mechanisms, no channel-binding types.
        var tampered = ScramDowngradeProtection.Compose(Mechanisms(features).Where(m => !m.EndsWith("-PLUS", StringComparison.Ordinal)), null);
        var scram = new ScramClient(ScramHash.Sha256, "alice", TestServer.Password) { AdvertisedLists = tampered };
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        var challenge = await client.ExpectSaslAsync();
        Assert.Equal("challenge", challenge.Name);
        var error = Assert.Throws<FormatException>(() => scram.ClientFinal(Convert.FromBase64String(challenge.Text)));
        Assert.Contains("XEP-0474", error.Message, StringComparison.Ordinal);
    }

    // ---- reload ----

    [Fact]
    public async Task Reloaded_certificate_is_served_to_new_connections_while_old_ones_keep_theirs()
    {
        var dir = TempDirectory();
        Directory.CreateDirectory(dir);
        try
        {
            var certPath = Path.Combine(dir, "host.crt");
            var keyPath = Path.Combine(dir, "host.key");
            var first = TlsTestKit.WriteSelfSigned(certPath, keyPath, "first");
            await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true", "--Hosts:0:Certificate=" + certPath, "--Hosts:0:Key=" + keyPath);
            await server.AddUserAsync("alice");
            var before = await server.ConnectAsync();
            await before.OpenStreamAsync();
            await before.StartTlsAsync();
            Assert.Equal(first, before.Tls!.RemoteCertificate!.GetRawCertData());

            var second = TlsTestKit.WriteSelfSigned(certPath, keyPath, "second");
            var result = server.Server.ReloadCertificates();
            Assert.True(result.Succeeded, result.ToString());

            var after = await server.ConnectAsync();
            await after.OpenStreamAsync();
            await after.StartTlsAsync();
            Assert.Equal(second, after.Tls!.RemoteCertificate!.GetRawCertData());

            // The connection made before the reload still works, and its tls-server-end-point is of the certificate
            // it negotiated (the first one), not of the new one.
            await before.AuthenticateScramAsync("alice", TestServer.Password, ScramHash.Sha256, plus: true);
            await before.BindAsync("old");
            await before.SyncAsync();
            await after.AuthenticateScramAsync("alice", TestServer.Password, ScramHash.Sha256, plus: true);
            await after.BindAsync("new");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Reload_with_a_broken_key_keeps_the_previous_certificate_and_says_which_file()
    {
        var dir = TempDirectory();
        Directory.CreateDirectory(dir);
        try
        {
            var certPath = Path.Combine(dir, "host.crt");
            var keyPath = Path.Combine(dir, "host.key");
            var first = TlsTestKit.WriteSelfSigned(certPath, keyPath);
            await using var server = await TestServer.StartAsync("--Hosts:0:RequireEncryption=true", "--Hosts:0:Certificate=" + certPath, "--Hosts:0:Key=" + keyPath);
            TlsTestKit.WriteSelfSigned(certPath, Path.Combine(dir, "unused.key"));
            File.WriteAllText(keyPath, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");

            var result = server.Server.ReloadCertificates();
            Assert.Equal(1, result.Failed);
            var line = Assert.Single(result.Lines);
            Assert.Contains("kept the previous certificate", line, StringComparison.Ordinal);
            Assert.Contains(keyPath, line, StringComparison.Ordinal);

            var client = await server.ConnectAsync();
            await client.OpenStreamAsync();
            await client.StartTlsAsync();
            Assert.Equal(first, client.Tls!.RemoteCertificate!.GetRawCertData());
            await AssertNormalClientsLoginAndChatAsync(server);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
