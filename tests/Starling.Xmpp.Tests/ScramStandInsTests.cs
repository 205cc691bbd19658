using System.Text;
using Starling.Xmpp.Sasl;

namespace Starling.Xmpp.Tests;

/// <summary>Stand-in credentials for unknown accounts and what a real SCRAM client checks of a server.</summary>
public sealed class ScramStandInsTests
{
    private static readonly byte[] Key = Enumerable.Range(1, ScramStandIns.KeyLength).Select(i => (byte)i).ToArray();

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    private static string[] ServerFirst(ScramHash hash, string user, ScramCredential? credential, ScramStandIns standIns)
    {
        var server = new ScramServer(hash, false, null, null);
        Assert.Equal(SaslStepResult.Continue, server.HandleClientFirst(B("n,,n=" + user + ",r=clientnonce")));
        var standIn = credential is null ? standIns.For(hash, "localhost", user) : null;
        return S(server.CreateServerFirst(credential, standIn)).Split(',');
    }

    [Fact]
    public void Stand_in_salts_differ_per_hash_as_real_accounts_do()
    {
        var standIns = new ScramStandIns(Key);
        Assert.NotEqual(standIns.For(ScramHash.Sha1, "localhost", "nobody").Salt, standIns.For(ScramHash.Sha256, "localhost", "nobody").Salt);
    }

    [Fact]
    public void Stand_in_is_the_same_for_the_same_secret_host_and_name_and_differs_otherwise()
    {
        var a = new ScramStandIns(Key).For(ScramHash.Sha256, "localhost", "nobody");
        Assert.Equal(a.Salt, new ScramStandIns(Key).For(ScramHash.Sha256, "localhost", "nobody").Salt); // e.g. after a restart
        Assert.NotEqual(a.Salt, new ScramStandIns(Key).For(ScramHash.Sha256, "localhost", "nobody2").Salt);
        Assert.NotEqual(a.Salt, new ScramStandIns(Key).For(ScramHash.Sha256, "example.org", "nobody").Salt);
        Assert.NotEqual(a.Salt, new ScramStandIns(new byte[ScramStandIns.KeyLength]).For(ScramHash.Sha256, "localhost", "nobody").Salt);
    }

    [Fact]
    public void Stand_in_announces_the_iteration_count_real_accounts_have()
    {
        var standIns = new ScramStandIns(Key);
        Assert.Equal(ScramCredential.DefaultIterations, standIns.For(ScramHash.Sha256, "localhost", "nobody").Iterations);
        standIns.Observe(ScramCredential.Create(ScramHash.Sha256, "pw", 5000));
        Assert.Equal(5000, standIns.For(ScramHash.Sha256, "localhost", "nobody").Iterations);
        Assert.Equal(ScramCredential.DefaultIterations, standIns.For(ScramHash.Sha1, "localhost", "nobody").Iterations);
    }

    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public void Unknown_user_gets_a_server_first_of_the_same_shape_as_a_known_one(ScramHash hash)
    {
        var standIns = new ScramStandIns(Key);
        string[] known = ServerFirst(hash, "alice", ScramCredential.Create(hash, "pw"), standIns);
        string[] unknown = ServerFirst(hash, "nobody", null, standIns);
        Assert.Equal(3, unknown.Length);
        Assert.Equal(known[0].Length, unknown[0].Length); // r= client nonce + server nonce
        Assert.Equal(known[1].Length, unknown[1].Length); // s= salt of the same length
        Assert.Equal(known[2], unknown[2]); // i= the same count
    }

    [Fact]
    public void Plain_check_of_a_stand_in_fails_for_any_password()
    {
        var standIn = new ScramStandIns(Key).For(ScramHash.Sha256, "localhost", "nobody");
        Assert.False(standIn.Verify(""));
        Assert.False(standIn.Verify("password"));
    }

    [Fact]
    public void Stand_in_key_must_be_32_bytes()
    {
        Assert.Throws<ArgumentException>(() => new ScramStandIns(new byte[16]));
    }

    [Fact]
    public void Client_refuses_an_iteration_count_below_its_floor_and_accepts_a_lower_floor_when_told()
    {
        var strict = new ScramClient(ScramHash.Sha1, "user", "pencil", null, null, "abc");
        strict.ClientFirst();
        Assert.Throws<FormatException>(() => strict.ClientFinal(B("r=abcdef,s=QSXCR+Q6sek8bf92,i=1024")));

        var lenient = new ScramClient(ScramHash.Sha1, "user", "pencil", null, null, "abc") { MinIterations = 1024 };
        lenient.ClientFirst();
        Assert.NotEmpty(lenient.ClientFinal(B("r=abcdef,s=QSXCR+Q6sek8bf92,i=1024")));
    }

    [Fact]
    public void Client_refuses_empty_channel_binding_data()
    {
        Assert.Throws<ArgumentException>(() => new ScramClient(ScramHash.Sha256, "user", "pw", "tls-server-end-point", []));
    }
}
