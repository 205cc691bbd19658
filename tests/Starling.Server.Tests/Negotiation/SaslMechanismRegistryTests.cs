using Starling.Server.Negotiation;

namespace Starling.Server.Tests.Negotiation;

public sealed class SaslMechanismRegistryTests
{
    private static List<string> Names(SaslMechanismRegistry registry)
    {
        var names = new List<string>();
        for (int i = 0; i < registry.Count; i++) names.Add(registry[i].Name);
        return names;
    }

    [Fact]
    public void Mechanisms_are_ordered_strongest_first_and_equal_strengths_keep_registration_order()
    {
        var registry = new SaslMechanismRegistry();
        registry.Add(new NamedMechanism("WEAK"), 1);
        registry.Add(new NamedMechanism("STRONG"), 10);
        registry.Add(new NamedMechanism("MIDDLE-A"), 5);
        registry.Add(new NamedMechanism("MIDDLE-B"), 5);
        Assert.Equal(["STRONG", "MIDDLE-A", "MIDDLE-B", "WEAK"], Names(registry));
    }

    [Fact]
    public void Built_in_mechanisms_are_scram_plus_then_scram_with_sha256_first_then_plain()
    {
        Assert.Equal(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], Names(SaslMechanismRegistry.WithBuiltIns()));
    }

    [Fact]
    public void Without_tls_only_the_plain_scram_variants_are_offered()
    {
        var registry = SaslMechanismRegistry.WithBuiltIns();
        Assert.Equal(["SCRAM-SHA-256", "SCRAM-SHA-1"], registry.OfferedNames(new FakeSaslStream()));
    }

    [Fact]
    public void Without_tls_plain_is_offered_when_the_host_allows_it()
    {
        var registry = SaslMechanismRegistry.WithBuiltIns();
        var stream = new FakeSaslStream { Host = new() { Name = "localhost", AllowPlainWithoutTls = true } };
        Assert.Equal(["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], registry.OfferedNames(stream));
    }

    [Fact]
    public void Over_tls_with_channel_binding_every_built_in_mechanism_is_offered()
    {
        var registry = SaslMechanismRegistry.WithBuiltIns();
        var stream = new FakeSaslStream { IsSecure = true, OffersChannelBinding = true };
        Assert.Equal(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], registry.OfferedNames(stream));
    }

    [Fact]
    public void FindOffered_finds_an_offered_mechanism_by_its_exact_name()
    {
        var registry = SaslMechanismRegistry.WithBuiltIns();
        Assert.Equal("SCRAM-SHA-1", registry.FindOffered("SCRAM-SHA-1", new FakeSaslStream())?.Name);
        Assert.Null(registry.FindOffered("scram-sha-1", new FakeSaslStream()));
    }

    [Fact]
    public void FindOffered_returns_null_for_an_unregistered_name()
    {
        Assert.Null(SaslMechanismRegistry.WithBuiltIns().FindOffered("X-NOT-REGISTERED", new FakeSaslStream()));
    }

    [Fact]
    public void FindOffered_returns_null_for_a_registered_mechanism_this_stream_is_not_offered()
    {
        var registry = SaslMechanismRegistry.WithBuiltIns();
        Assert.Null(registry.FindOffered("SCRAM-SHA-256-PLUS", new FakeSaslStream()));
        Assert.Null(registry.FindOffered("PLAIN", new FakeSaslStream()));
    }

    [Fact]
    public void A_second_mechanism_with_the_same_name_is_rejected()
    {
        var registry = SaslMechanismRegistry.WithBuiltIns();
        Assert.Throws<InvalidOperationException>(() => registry.Add(new NamedMechanism("PLAIN"), 1000));
        Assert.Equal(5, registry.Count);
    }

    [Theory]
    [InlineData("")]
    [InlineData("lower-case")]
    [InlineData("X-TWENTY-ONE-CHARS-XX")]
    [InlineData("SPACE IN")]
    public void A_name_that_is_not_a_sasl_mechanism_name_is_rejected(string name)
    {
        var registry = new SaslMechanismRegistry();
        Assert.Throws<ArgumentException>(() => registry.Add(new NamedMechanism(name), 1));
        Assert.Equal(0, registry.Count);
    }
}
