using Starling.Server.Negotiation;
using Starling.Xml;

namespace Starling.Server.Tests.Negotiation;

public sealed class StreamFeatureRegistryTests
{
    private static List<string> Build(StreamFeatureRegistry registry, StreamFeatureStage stage)
    {
        var features = new XmlElement("features", "http://etherx.jabber.org/streams");
        // The providers here ignore the session.
        registry.AddTo(features, stage, null!);
        var names = new List<string>();
        foreach (var e in features.Elements()) names.Add(e.Name);
        return names;
    }

    private static Func<Starling.Server.Sessions.C2sStream, XmlElement?> Feature(string name) => _ => new XmlElement(name, "urn:test");

    [Fact]
    public void Features_of_a_stage_come_in_order_and_equal_orders_keep_registration_order()
    {
        var registry = new StreamFeatureRegistry();
        registry.Add(StreamFeatureStage.Authenticated, 300, Feature("late"));
        registry.Add(StreamFeatureStage.Authenticated, 100, Feature("early"));
        registry.Add(StreamFeatureStage.Authenticated, 200, Feature("middle-a"));
        registry.Add(StreamFeatureStage.Authenticated, 200, Feature("middle-b"));
        Assert.Equal(["early", "middle-a", "middle-b", "late"], Build(registry, StreamFeatureStage.Authenticated));
    }

    [Fact]
    public void Each_stage_offers_only_its_own_features()
    {
        var registry = new StreamFeatureRegistry();
        registry.Add(StreamFeatureStage.TlsRequired, 1, Feature("tls"));
        registry.Add(StreamFeatureStage.Unauthenticated, 1, Feature("pre"));
        registry.Add(StreamFeatureStage.Authenticated, 1, Feature("post"));
        Assert.Equal(["tls"], Build(registry, StreamFeatureStage.TlsRequired));
        Assert.Equal(["pre"], Build(registry, StreamFeatureStage.Unauthenticated));
        Assert.Equal(["post"], Build(registry, StreamFeatureStage.Authenticated));
    }

    [Fact]
    public void A_provider_that_returns_null_adds_nothing()
    {
        var registry = new StreamFeatureRegistry();
        registry.Add(StreamFeatureStage.Unauthenticated, 1, Feature("a"));
        registry.Add(StreamFeatureStage.Unauthenticated, 2, _ => null);
        registry.Add(StreamFeatureStage.Unauthenticated, 3, Feature("b"));
        Assert.Equal(["a", "b"], Build(registry, StreamFeatureStage.Unauthenticated));
    }

    [Fact]
    public void An_unknown_stage_is_rejected()
    {
        var registry = new StreamFeatureRegistry();
        Assert.Throws<ArgumentOutOfRangeException>(() => registry.Add((StreamFeatureStage)7, 1, Feature("x")));
    }
}
