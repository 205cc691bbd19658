using Starling.Server.Configuration;
using Starling.Server.Negotiation;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Tests.Negotiation;

/// <summary>A stream as a mechanism sees it, without a server: for the registry's offer rules.</summary>
internal sealed class FakeSaslStream : ISaslStream
{
    public XmppServer Server => throw new NotSupportedException("no server in a registry test");

    public HostOptions Host { get; init; } = new() { Name = "localhost" };

    public bool IsSecure { get; init; }

    public bool OffersChannelBinding { get; init; }

    public IReadOnlyList<ScramChannelBinding>? ChannelBindings() => null;

    public string DowngradeProtection() => "";

    public ValueTask<SaslAccount> LookupAsync(string username) => ValueTask.FromResult(default(SaslAccount));

    public ValueTask<bool> HoldForAccountAsync() => ValueTask.FromResult(true);
}

/// <summary>A mechanism that is offered when told and never authenticates anyone.</summary>
internal sealed class NamedMechanism(string name, bool offered = true) : ISaslMechanism
{
    public string Name => name;

    public bool IsOffered(ISaslStream stream) => offered;

    public ISaslExchange Start(ISaslStream stream) => throw new NotSupportedException();
}
