namespace Starling.Server.Modules;

/// <summary>
/// What one host offers, resolved once at start from the modules it runs (Modules:Disabled and Hosts:N:Modules): a flag
/// per module and its XEP-0030 features. A module a host does not run is not offered on it: its features are absent
/// (stream features are gated in ModuleContext), and its iq handlers are not in the host's table
/// (ModuleRegistry.FindIqHandler), so its requests get the error of an unknown namespace.
/// </summary>
public sealed class HostModules
{
    private readonly bool[] _enabled;

    internal HostModules(string host, bool[] enabled, List<string> features, List<string> accountFeatures)
    {
        Host = host;
        _enabled = enabled;
        HostFeatures = features;
        AccountFeatures = accountFeatures;
    }

    public string Host { get; }

    /// <summary>Disco features of the host's domain.</summary>
    public IReadOnlyList<string> HostFeatures { get; }

    /// <summary>Disco features of the host's accounts' bare JIDs.</summary>
    public IReadOnlyList<string> AccountFeatures { get; }

    /// <summary>Whether the host runs the module with this <see cref="ModuleDescriptor.Index"/>: one array read.</summary>
    public bool Enables(int module) => _enabled[module];
}
