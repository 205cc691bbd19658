using System.Runtime.InteropServices;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Version;

/// <summary>XEP-0092 Software Version: name and version of the server (the OS only if Modules:version:ShowOs).</summary>
public sealed class VersionModule : IModule
{
    private bool _showOs;

    public string Name => "version";

    public void Register(ModuleContext context)
    {
        _showOs = context.Options<VersionOptions>().ShowOs;
        context.AddDiscoFeature(Namespaces.Version);
        context.OnIq(IqType.Get, IqAddress.Host, Namespaces.Version, Answer);
    }

    private ValueTask<IqReply> Answer(IqRequest request)
    {
        var query = new XmlElement("query", Namespaces.Version);
        query.AddElement("name").AddText("Starling");
        query.AddElement("version").AddText(XmppServer.Version);
        if (_showOs) query.AddElement("os").AddText(RuntimeInformation.OSDescription);
        return ValueTask.FromResult(IqReply.Result(query));
    }
}
