using Starling.Server.Configuration;
using Starling.Server.Routing;

namespace Starling.Server.Tests.Routing;

/// <summary>The router's domain table: configured hosts are local, every other domain is remote.</summary>
public sealed class DomainTableTests
{
    [Fact]
    public void Configured_hosts_are_local_and_every_other_domain_is_remote()
    {
        var options = new StarlingOptions { Hosts = [new HostOptions { Name = "example.org" }, new HostOptions { Name = "chat.example.net" }] };
        var table = DomainTable.For(options);

        Assert.Equal(DomainKind.LocalHost, table.Resolve("example.org"));
        Assert.Equal(DomainKind.LocalHost, table.Resolve("chat.example.net"));
        Assert.Equal(DomainKind.Remote, table.Resolve("example.net"));
        Assert.Equal(DomainKind.Remote, table.Resolve("sub.example.org"));
    }

    [Fact]
    public void Services_and_components_resolve_to_their_kind()
    {
        var table = new DomainTable([
            new("example.org", DomainKind.LocalHost),
            new("muc.example.org", DomainKind.InternalService),
            new("gateway.example.org", DomainKind.Component),
        ]);

        Assert.Equal(DomainKind.InternalService, table.Resolve("muc.example.org"));
        Assert.Equal(DomainKind.Component, table.Resolve("gateway.example.org"));
    }

    [Fact]
    public void A_domain_listed_twice_or_as_remote_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new DomainTable([new("a.example", DomainKind.LocalHost), new("a.example", DomainKind.Component)]));
        Assert.Throws<ArgumentException>(() => new DomainTable([new("b.example", DomainKind.Remote)]));
    }
}
