using Starling.Server.Sessions;
using Starling.Xml;

namespace Starling.Server.Modules;

/// <summary>
/// What one host offers, resolved once at start from the modules it runs (Modules:Disabled and Hosts:N:Modules): a flag
/// per module, its XEP-0030 features and its stream features. A module a host does not run is not offered on it: its
/// features are absent and its iq handlers are not in the host's table (ModuleRegistry.FindIqHandler), so its requests
/// get the error of an unknown namespace.
/// </summary>
public sealed class HostModules
{
    private readonly bool[] _enabled;

    internal HostModules(string host, bool[] enabled, List<string> features, List<string> accountFeatures, List<Func<C2sSession, XmlElement?>> streamFeatures)
    {
        Host = host;
        _enabled = enabled;
        HostFeatures = features;
        AccountFeatures = accountFeatures;
        StreamFeatures = streamFeatures;
    }

    public string Host { get; }

    /// <summary>Disco features of the host's domain.</summary>
    public IReadOnlyList<string> HostFeatures { get; }

    /// <summary>Disco features of the host's accounts' bare JIDs.</summary>
    public IReadOnlyList<string> AccountFeatures { get; }

    /// <summary>Stream features offered on the host's streams once authenticated.</summary>
    public IReadOnlyList<Func<C2sSession, XmlElement?>> StreamFeatures { get; }

    /// <summary>Whether the host runs the module with this <see cref="ModuleDescriptor.Index"/>: one array read.</summary>
    public bool Enables(int module) => _enabled[module];
}
