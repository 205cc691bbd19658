using System.Text;
using Starling.Xmpp.Sasl;

namespace Starling.Xmpp.Tests;

public class ScramTests
{
    private static readonly byte[] CbData = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
    private const string CbType = "tls-server-end-point";
    private static readonly ScramStandIns StandIns = new(new byte[ScramStandIns.KeyLength]);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    public static TheoryData<ScramHash, string, string, string, string, string, string> RfcVectors => new()
    {
        // RFC 5802 §5
        {
            ScramHash.Sha1, "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92",
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
        },
        // RFC 7677 §3
        {
            ScramHash.Sha256, "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "W22ZaJ0SNY7soEsUEjb6gQ==",
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        },
    };

    [Theory]
    [MemberData(nameof(RfcVectors))]
    public void Rfc_test_vectors(ScramHash hash, string clientNonce, string serverNonce, string salt,
        string clientFirst, string clientFinal, string serverFinal)
    {
        string serverFirst = $"r={clientNonce}{serverNonce},s={salt},i=4096";
        ScramCredential credential = ScramCredential.Derive(hash, "pencil", Convert.FromBase64String(salt), 4096);

        // Client produces the RFC's messages.
        var client = new ScramClient(hash, "user", "pencil", null, null, clientNonce);
        Assert.Equal(clientFirst, S(client.ClientFirst()));
        Assert.Equal(clientFinal, S(client.ClientFinal(B(serverFirst))));
        Assert.True(client.VerifyServerFinal(B(serverFinal)));

        // Server accepts them and produces the RFC's replies.
        var server = new ScramServer(hash, false, null, null, serverNonce);
        Assert.Equal(SaslStepResult.Continue, server.HandleClientFirst(B(clientFirst)));
        Assert.Equal("user", server.Username);
        Assert.Null(server.AuthorizationId);
        Assert.Equal(serverFirst, S(server.CreateServerFirst(credential)));
        Assert.Equal(SaslStepResult.Success, server.HandleClientFinal(B(clientFinal), out byte[]? final));
        Assert.Equal(serverFinal, S(final!));
        Assert.Null(server.FailureCondition);
    }

    private static (SaslStepResult Result, string? Condition, ScramClient Client, byte[]? ServerFinal) RoundTrip(
        ScramServer server, ScramClient client, ScramCredential? credential)
    {
        SaslStepResult first = server.HandleClientFirst(client.ClientFirst());
        if (first != SaslStepResult.Continue)
            return (first, server.FailureCondition, client, null);
        ScramHash hash = client.MechanismName.StartsWith("SCRAM-SHA-256", StringComparison.Ordinal) ? ScramHash.Sha256 : ScramHash.Sha1;
        ScramCredential? standIn = credential is null ? StandIns.For(hash, "localhost", server.Username!) : null;
        byte[] clientFinal = client.ClientFinal(server.CreateServerFirst(credential, standIn));
        SaslStepResult result = server.HandleClientFinal(clientFinal, out byte[]? serverFinal);
        return (result, server.FailureCondition, client, serverFinal);
    }

    [Theory]
    [InlineData(ScramHash.Sha1, false)]
    [InlineData(ScramHash.Sha1, true)]
    [InlineData(ScramHash.Sha256, false)]
    [InlineData(ScramHash.Sha256, true)]
    public void Round_trip(ScramHash hash, bool plus)
    {
        ScramCredential credential = ScramCredential.Create(hash, "s3cr\u00E8t p\u00E4ss", 4096);
        var server = new ScramServer(hash, plus, CbType, CbData);
        var client = plus
            ? new ScramClient(hash, "ju,li=et", "s3cr\u00E8t p\u00E4ss", CbType, CbData) { AuthorizationId = "a=b,c" }
            : new ScramClient(hash, "ju,li=et", "s3cr\u00E8t p\u00E4ss");
        Assert.Equal(ScramServer.GetMechanismName(hash, plus), client.MechanismName);

        var (result, condition, _, serverFinal) = RoundTrip(server, client, credential);
        Assert.Equal(SaslStepResult.Success, result);
        Assert.Null(condition);
        Assert.Equal("ju,li=et", server.Username);
        Assert.Equal(plus ? "a=b,c" : null, server.AuthorizationId);
        Assert.True(client.VerifyServerFinal(serverFinal));
    }

    [Fact]
    public void Non_plus_without_connection_binding_accepts_y()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, null);
        var client = new ScramClient(ScramHash.Sha256, "user", "pw") { ClaimsChannelBindingSupport = true };
        var (result, _, _, _) = RoundTrip(server, client, ScramCredential.Create(ScramHash.Sha256, "pw", 4096));
        Assert.Equal(SaslStepResult.Success, result);
    }

    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public void Wrong_password_is_not_authorized(ScramHash hash)
    {
        var server = new ScramServer(hash, false, null, null);
        var client = new ScramClient(hash, "user", "wrong");
        var (result, condition, c, final) = RoundTrip(server, client, ScramCredential.Create(hash, "pencil", 4096));
        Assert.Equal(SaslStepResult.Failure, result);
        Assert.Equal("not-authorized", condition);
        Assert.Null(final);
    }

    [Fact]
    public void Unknown_user_fails_at_the_proof_like_a_wrong_password()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, null);
        var client = new ScramClient(ScramHash.Sha256, "ghost", "anything");
        var (result, condition, _, final) = RoundTrip(server, client, null);
        Assert.Equal(SaslStepResult.Failure, result);
        Assert.Equal("not-authorized", condition);
        Assert.Null(final);
    }

    [Fact]
    public void Unknown_user_without_a_stand_in_is_a_caller_error()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, null);
        server.HandleClientFirst(B("n,,n=ghost,r=abc"));
        Assert.Throws<ArgumentNullException>(() => server.CreateServerFirst(null));
    }

    [Fact]
    public void Downgrade_is_detected()
    {
        // Client could bind ('y'), but the server offers -PLUS on this connection: an attacker stripped it.
        var server = new ScramServer(ScramHash.Sha256, false, CbType, CbData);
        var client = new ScramClient(ScramHash.Sha256, "user", "pw") { ClaimsChannelBindingSupport = true };
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFirst(client.ClientFirst()));
        Assert.Equal("not-authorized", server.FailureCondition);
    }

    [Theory]
    [InlineData(false, "p=tls-server-end-point,,n=u,r=abc", "malformed-request")] // binding with non-PLUS
    [InlineData(true, "n,,n=u,r=abc", "malformed-request")] // PLUS without binding
    [InlineData(true, "y,,n=u,r=abc", "malformed-request")]
    [InlineData(true, "p=tls-unique,,n=u,r=abc", "not-authorized")] // other binding type
    public void Channel_binding_mechanism_rules(bool plus, string clientFirst, string condition)
    {
        var server = new ScramServer(ScramHash.Sha256, plus, CbType, CbData);
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFirst(B(clientFirst)));
        Assert.Equal(condition, server.FailureCondition);
    }

    [Fact]
    public void Plus_without_connection_binding_fails()
    {
        var server = new ScramServer(ScramHash.Sha256, true, null, null);
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFirst(B("p=tls-server-end-point,,n=u,r=abc")));
        Assert.Equal("not-authorized", server.FailureCondition);
    }

    [Fact]
    public void Wrong_channel_binding_data_is_not_authorized()
    {
        var credential = ScramCredential.Create(ScramHash.Sha256, "pw", 4096);
        var server = new ScramServer(ScramHash.Sha256, true, CbType, CbData);
        var client = new ScramClient(ScramHash.Sha256, "user", "pw", CbType, [1, 2, 3]);
        var (result, condition, _, _) = RoundTrip(server, client, credential);
        Assert.Equal(SaslStepResult.Failure, result);
        Assert.Equal("not-authorized", condition);
    }

    [Theory]
    [InlineData("")]
    [InlineData("x,,n=u,r=abc")]
    [InlineData("n,n=u,r=abc")]
    [InlineData("n,,r=abc")]
    [InlineData("n,,n=u")]
    [InlineData("n,,n=,r=abc")]
    [InlineData("n,,n=u=2X,r=abc")]
    [InlineData("n,,n=u=,r=abc")]
    [InlineData("n,,n=u,r=")]
    [InlineData("n,,n=u,r=a b")]
    [InlineData("n,,m=ext,n=u,r=abc")]
    [InlineData("n,,n=u,r=abc,")]
    [InlineData("n,a=,n=u,r=abc")]
    [InlineData("n,a=x")]
    [InlineData("p=,,n=u,r=abc")]
    [InlineData("p=tls server,,n=u,r=abc")]
    [InlineData("n,,n=u\0x,r=abc")]
    public void Malformed_client_first(string message)
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, null);
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFirst(B(message)));
        Assert.Equal("malformed-request", server.FailureCondition);
    }

    [Fact]
    public void Invalid_utf8_is_malformed()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, null);
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFirst([(byte)'n', (byte)',', (byte)',', 0xC3, 0x28]));
        Assert.Equal("malformed-request", server.FailureCondition);
    }

    [Fact]
    public void Client_first_decodes_authzid_and_username_and_ignores_extensions()
    {
        var server = new ScramServer(ScramHash.Sha1, false, null, null);
        Assert.Equal(SaslStepResult.Continue, server.HandleClientFirst(B("n,a=adm=2Cin=3D,n=us=3Der=2C,r=abc,x=ext")));
        Assert.Equal("us=er,", server.Username);
        Assert.Equal("adm,in=", server.AuthorizationId);
    }

    private static ScramServer ServerAfterFirst(out string combinedNonce)
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, null, "SERVER");
        server.HandleClientFirst(B("n,,n=user,r=abc"));
        server.CreateServerFirst(ScramCredential.Create(ScramHash.Sha256, "pw", 4096));
        combinedNonce = "abcSERVER";
        return server;
    }

    [Theory]
    [InlineData("c=biws,r={0}")] // no proof
    [InlineData("c=biws,r={0},p=")] // empty proof
    [InlineData("c=biws,r={0},p=AAAA")] // proof of the wrong length
    [InlineData("c=biws,r={0},p=!!!!")] // not base64
    [InlineData("r={0},c=biws,p=" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")] // order
    [InlineData("c=bi ws,r={0},p=" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("c=biws,p=" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("c=biws,r={0},p=" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,x=y")]
    public void Malformed_client_final(string template)
    {
        ScramServer server = ServerAfterFirst(out string nonce);
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFinal(B(string.Format(System.Globalization.CultureInfo.InvariantCulture, template, nonce)), out byte[]? final));
        Assert.Null(final);
        Assert.Equal("malformed-request", server.FailureCondition);
    }

    [Theory]
    [InlineData("c=biws,r=abcOTHER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")] // wrong nonce
    [InlineData("c=eSws,r=abcSERVER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")] // c= says "y,,"
    [InlineData("c=biws,r=abcSERVER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")] // bad proof
    public void Semantically_wrong_client_final_is_not_authorized(string message)
    {
        ScramServer server = ServerAfterFirst(out _);
        Assert.Equal(SaslStepResult.Failure, server.HandleClientFinal(B(message), out _));
        Assert.Equal("not-authorized", server.FailureCondition);
    }

    [Fact]
    public void Out_of_order_calls_throw()
    {
        var server = new ScramServer(ScramHash.Sha256, false, null, null);
        Assert.Throws<InvalidOperationException>(() => server.CreateServerFirst(null));
        Assert.Throws<InvalidOperationException>(() => server.HandleClientFinal(B("c=biws"), out _));
        Assert.True(server.AwaitsClientFirst);
        server.HandleClientFirst(B("n,,n=u,r=abc"));
        Assert.False(server.AwaitsClientFirst);
        Assert.False(server.AwaitsClientFinal);
        Assert.Throws<InvalidOperationException>(() => server.HandleClientFirst(B("n,,n=u,r=abc")));
        Assert.Throws<InvalidOperationException>(() => server.HandleClientFinal(B("c=biws"), out _));
        Assert.Throws<ArgumentException>(() => server.CreateServerFirst(ScramCredential.Create(ScramHash.Sha1, "pw", 1)));

        var failed = new ScramServer(ScramHash.Sha256, false, null, null);
        failed.HandleClientFirst(B("garbage"));
        Assert.False(failed.AwaitsClientFirst || failed.AwaitsClientFinal);
        Assert.Throws<InvalidOperationException>(() => failed.CreateServerFirst(null));

        var client = new ScramClient(ScramHash.Sha256, "u", "p");
        Assert.Throws<InvalidOperationException>(() => client.ClientFinal(B("r=x,s=QQ==,i=1")));
        Assert.Throws<InvalidOperationException>(() => client.VerifyServerFinal(B("v=")));
        client.ClientFirst();
        Assert.Throws<InvalidOperationException>(() => client.ClientFirst());
    }

    [Theory]
    [InlineData("r=OTHERNONCE,s=QSXCR+Q6sek8bf92,i=4096")] // does not extend the client nonce
    [InlineData("r=abc,s=QSXCR+Q6sek8bf92,i=4096")] // no server part
    [InlineData("r=abcdef,s=QSXCR+Q6sek8bf92,i=0")]
    [InlineData("r=abcdef,s=QSXCR+Q6sek8bf92,i=-1")]
    [InlineData("r=abcdef,s=QSXCR+Q6sek8bf92,i=999999999")]
    [InlineData("r=abcdef,s=QSXCR+Q6sek8bf92,i=4095")] // below RFC 7677 §4's 4096
    [InlineData("r=abcdef,s=,i=4096")]
    [InlineData("m=x,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096")]
    [InlineData("r=abcdef,i=4096")]
    public void Client_rejects_bad_server_first(string serverFirst)
    {
        var client = new ScramClient(ScramHash.Sha1, "user", "pencil", null, null, "abc");
        client.ClientFirst();
        Assert.Throws<FormatException>(() => client.ClientFinal(B(serverFirst)));
    }

    [Fact]
    public void Client_rejects_wrong_or_error_server_final()
    {
        var client = new ScramClient(ScramHash.Sha1, "user", "pencil", null, null, "fyko+d2lbbFgONRv9qkxdawL");
        client.ClientFirst();
        client.ClientFinal(B("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"));
        Assert.False(client.VerifyServerFinal(B("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")));

        var client2 = new ScramClient(ScramHash.Sha1, "user", "pencil", null, null, "fyko+d2lbbFgONRv9qkxdawL");
        client2.ClientFirst();
        client2.ClientFinal(B("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"));
        Assert.False(client2.VerifyServerFinal(B("e=invalid-proof")));
    }

    [Fact]
    public void Client_sends_channel_binding_header_and_data()
    {
        var client = new ScramClient(ScramHash.Sha256, "user", "pw", CbType, [0xAB], "n0nce");
        Assert.Equal("p=tls-server-end-point,,n=user,r=n0nce", S(client.ClientFirst()));
        string final = S(client.ClientFinal(B("r=n0nceS,s=QSXCR+Q6sek8bf92,i=4096")));
        byte[] cbind = Convert.FromBase64String(final.Split(',')[0][2..]);
        Assert.Equal([.. B("p=tls-server-end-point,,"), 0xAB], cbind);
    }

    [Fact]
    public void Credential_verify_is_password_check_with_saslprep()
    {
        ScramCredential credential = ScramCredential.Create(ScramHash.Sha256, "I\u00ADX", 1000);
        Assert.Equal(16, credential.Salt.Length);
        Assert.Equal(1000, credential.Iterations);
        Assert.Equal(32, credential.StoredKey.Length);
        Assert.True(credential.Verify("IX"));
        Assert.True(credential.Verify("\u2168")); // ROMAN NUMERAL NINE -> "IX" under NFKC
        Assert.False(credential.Verify("ix"));
        Assert.False(credential.Verify("\u0007"));

        ScramCredential sha1 = ScramCredential.Create(ScramHash.Sha1, "pencil");
        Assert.Equal(ScramCredential.DefaultIterations, sha1.Iterations);
        Assert.Equal(20, sha1.ServerKey.Length);
        Assert.True(sha1.Verify("pencil"));
        Assert.False(sha1.Verify("pencil "));

        Assert.Throws<ArgumentException>(() => ScramCredential.Create(ScramHash.Sha256, "bad\u0007"));
        Assert.Throws<ArgumentOutOfRangeException>(() => ScramCredential.Derive(ScramHash.Sha256, "pw", [1], 0));
    }

    [Fact]
    public void Derive_is_deterministic_and_matches_rfc_keys()
    {
        byte[] salt = Convert.FromBase64String("QSXCR+Q6sek8bf92");
        ScramCredential a = ScramCredential.Derive(ScramHash.Sha1, "pencil", salt, 4096);
        ScramCredential b = ScramCredential.Derive(ScramHash.Sha1, "pencil", salt, 4096);
        Assert.Equal(a.StoredKey, b.StoredKey);
        Assert.Equal(a.ServerKey, b.ServerKey);
        Assert.NotSame(salt, a.Salt);
    }

    [Fact]
    public void Mechanism_names()
    {
        Assert.True(ScramServer.TryParseMechanismName("SCRAM-SHA-256-PLUS", out ScramHash hash, out bool plus));
        Assert.Equal(ScramHash.Sha256, hash);
        Assert.True(plus);
        Assert.True(ScramServer.TryParseMechanismName("SCRAM-SHA-1", out hash, out plus));
        Assert.Equal(ScramHash.Sha1, hash);
        Assert.False(plus);
        Assert.False(ScramServer.TryParseMechanismName("PLAIN", out _, out _));
        Assert.Equal("SCRAM-SHA-1-PLUS", ScramServer.GetMechanismName(ScramHash.Sha1, true));
    }
}

public class SaslPrepTests
{
    // RFC 4013 §3.
    [Theory]
    [InlineData("I\u00ADX", "IX")] // SOFT HYPHEN mapped to nothing
    [InlineData("user", "user")]
    [InlineData("USER", "USER")] // case preserved
    [InlineData("\u00AA", "a")] // NFKC
    [InlineData("\u2168", "IX")] // NFKC
    [InlineData("a\u00A0b", "a b")] // non-ASCII space to SPACE
    [InlineData("a\u200Bb", "ab")] // zero width space mapped to nothing
    [InlineData("\u0627\u0628", "\u0627\u0628")] // RTL only
    public void Valid(string input, string expected)
    {
        Assert.True(SaslPrep.TryNormalize(input, out string? normalized, out string? error), error);
        Assert.Equal(expected, normalized);
        Assert.Equal(expected, SaslPrep.Normalize(input));
    }

    [Theory]
    [InlineData("\u0007")] // prohibited: control
    [InlineData("\u0627\u0031")] // bidi: must end with RandALCat
    [InlineData("\u0627a\u0628")] // bidi: mixed
    [InlineData("a\uE000")] // private use
    [InlineData("a\uFFFE")] // noncharacter
    [InlineData("a\u200E")] // LRM (C.8)
    [InlineData("a\u0085")] // C1 control
    [InlineData("a\uFFFC")] // C.6
    public void Prohibited(string input)
    {
        Assert.False(SaslPrep.TryNormalize(input, out _));
        Assert.Throws<ArgumentException>(() => SaslPrep.Normalize(input));
    }

    [Fact]
    public void Ascii_is_returned_as_is()
    {
        string s = string.Concat("pass", " word");
        Assert.Same(s, SaslPrep.Normalize(s));
        Assert.False(SaslPrep.TryNormalize(new string(['a', '\uD800']), out _));
    }
}
