using System.Text;
using Starling.Xmpp.Sasl;

namespace Starling.Xmpp.Tests;

public sealed class ScramKeyCacheTests
{
    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public void A_client_with_a_key_cache_logs_in_twice_deriving_once(ScramHash hash)
    {
        var credential = ScramCredential.Create(hash, "pencil");
        var cache = new ScramKeyCache();
        for (int login = 0; login < 2; login++)
        {
            var client = new ScramClient(hash, "user", "pencil") { KeyCache = cache };
            var server = new ScramServer(hash, plus: false, channelBindingType: null, channelBindingData: null);
            Assert.Equal(SaslStepResult.Continue, server.HandleClientFirst(client.ClientFirst()));
            var final = client.ClientFinal(server.CreateServerFirst(credential));
            Assert.Equal(SaslStepResult.Success, server.HandleClientFinal(final, out var serverFinal));
            Assert.True(client.VerifyServerFinal(serverFinal));
            Assert.Equal(1, cache.Count);
        }
    }

    [Fact]
    public void A_cached_key_is_not_used_for_another_salt_or_password()
    {
        var cache = new ScramKeyCache();
        var salt = Encoding.ASCII.GetBytes("salt-one");
        var a = cache.GetOrDerive(ScramHash.Sha256, "pencil", salt, 4096);
        Assert.NotEqual(a, cache.GetOrDerive(ScramHash.Sha256, "pencil", Encoding.ASCII.GetBytes("salt-two"), 4096));
        Assert.NotEqual(a, cache.GetOrDerive(ScramHash.Sha256, "pen", salt, 4096));
        Assert.NotEqual(a, cache.GetOrDerive(ScramHash.Sha256, "pencil", salt, 4097));
        Assert.Same(a, cache.GetOrDerive(ScramHash.Sha256, "pencil", salt, 4096));
        Assert.Equal(4, cache.Count);
    }
}
