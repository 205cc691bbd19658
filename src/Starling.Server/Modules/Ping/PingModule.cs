using Starling.Xmpp;

namespace Starling.Server.Modules.Ping;

/// <summary>XEP-0199 XMPP Ping: the server answers pings addressed to it.</summary>
public sealed class PingModule : IModule
{
    public string Name => "ping";

    public void Register(ModuleContext context)
    {
        context.AddDiscoFeature(Namespaces.Ping);
        context.OnIq(IqType.Get, IqAddress.Host, Namespaces.Ping, Pong);
    }

    private static ValueTask<IqReply> Pong(IqRequest request) => ValueTask.FromResult(IqReply.Result());
}
