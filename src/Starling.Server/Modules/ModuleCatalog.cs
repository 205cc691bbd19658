using Starling.Server.Configuration;

namespace Starling.Server.Modules;

/// <summary>One module of this build: its config name, how to create it, and where its typed options are bound.</summary>
public sealed class ModuleDescriptor
{
    private readonly Func<IModule> _create;
    private readonly Func<ModuleOptions, IModuleOptions>? _options;

    internal ModuleDescriptor(int index, string name, Func<IModule> create, Func<ModuleOptions, IModuleOptions>? options)
    {
        Index = index;
        Name = name;
        _create = create;
        _options = options;
    }

    /// <summary>Position in <see cref="ModuleCatalog.All"/>: the index of the module's flag in a host's <see cref="HostModules"/>.</summary>
    public int Index { get; }

    /// <summary>Name in config: Modules:Disabled, Hosts:N:Modules:Enabled/Disabled, and the section Modules:NAME of its options.</summary>
    public string Name { get; }

    public bool HasOptions => _options is not null;

    /// <summary>The module's options as bound from Modules:NAME (defaults when the section is absent), or null if it has none.</summary>
    public IModuleOptions? OptionsOf(ModuleOptions modules) => _options?.Invoke(modules);

    internal IModule Create() => _create();
}

/// <summary>
/// Every module this build has, by config name, with its options type. All are enabled unless listed in Modules:Disabled;
/// a host may turn more off (Hosts:N:Modules:Disabled) or turn server-wide disabled ones back on (Hosts:N:Modules:Enabled).
/// </summary>
public static class ModuleCatalog
{
    public static IReadOnlyList<ModuleDescriptor> All { get; } = Number(
    [
        ("disco", () => new Disco.DiscoModule(), null),
        ("ping", () => new Ping.PingModule(), null),
        ("version", () => new Version.VersionModule(), m => m.Version),
        ("roster", () => new Roster.RosterModule(), m => m.Roster),
        ("private", () => new Private.PrivateModule(), m => m.Private),
        ("presence", () => new Presence.PresenceModule(), m => m.Presence),
        ("offline", () => new Offline.OfflineModule(), m => m.Offline),
        ("sm", () => new StreamManagement.StreamManagementModule(), m => m.Sm),
    ]);

    public static IReadOnlySet<string> Names { get; } = new HashSet<string>(All.Select(m => m.Name), StringComparer.Ordinal);

    /// <summary>The module named <paramref name="name"/> (config names are lower case; sections match case-insensitively, as config keys do).</summary>
    public static ModuleDescriptor? Find(string name, StringComparison comparison = StringComparison.Ordinal)
    {
        foreach (var m in All)
        {
            if (string.Equals(m.Name, name, comparison)) return m;
        }
        return null;
    }

    /// <summary>
    /// The modules <paramref name="host"/> runs, a flag per <see cref="ModuleDescriptor.Index"/>: all, minus Modules:Disabled,
    /// minus the host's Modules:Disabled, plus the host's Modules:Enabled. Names are validated before (StarlingConfiguration).
    /// </summary>
    public static bool[] EnabledOn(StarlingOptions options, HostOptions host)
    {
        var enabled = new bool[All.Count];
        foreach (var m in All)
        {
            bool on = !options.Modules.Disabled.Contains(m.Name);
            if (host.Modules.Disabled.Contains(m.Name)) on = false;
            if (host.Modules.Enabled.Contains(m.Name)) on = true;
            enabled[m.Index] = on;
        }
        return enabled;
    }

    /// <summary>The names of the modules <paramref name="host"/> runs, in catalog order (for `starling check` and the start report).</summary>
    public static List<string> EnabledNames(StarlingOptions options, HostOptions host)
    {
        var enabled = EnabledOn(options, host);
        var names = new List<string>();
        foreach (var m in All)
        {
            if (enabled[m.Index]) names.Add(m.Name);
        }
        return names;
    }

    /// <summary>
    /// Creates and registers every module that at least one host runs (one instance shared by all hosts), each with its
    /// typed options; then resolves, once, what each host offers (<see cref="ModuleRegistry.ResolveHosts"/>).
    /// </summary>
    internal static void RegisterAll(XmppServer server, IEnumerable<IModule>? extraModules = null)
    {
        var options = server.Options;
        // Modules given by the caller (tests) come after the catalog's, run on every host and have no options.
        var extras = extraModules is null ? [] : new List<IModule>(extraModules);
        var hosts = new (string Host, bool[] Enabled)[options.Hosts.Count];
        for (int i = 0; i < hosts.Length; i++)
        {
            var enabled = EnabledOn(options, options.Hosts[i]);
            Array.Resize(ref enabled, All.Count + extras.Count);
            for (int j = All.Count; j < enabled.Length; j++) enabled[j] = true;
            hosts[i] = (options.Hosts[i].Name, enabled);
        }
        var registered = new List<string>();
        foreach (var m in All)
        {
            bool any = false, everywhere = true;
            foreach (var (_, enabled) in hosts)
            {
                any |= enabled[m.Index];
                everywhere &= enabled[m.Index];
            }
            if (!any) continue;
            m.Create().Register(new ModuleContext(server, m, m.OptionsOf(options.Modules), everywhere));
            registered.Add(m.Name);
        }
        for (int j = 0; j < extras.Count; j++)
        {
            var module = extras[j];
            module.Register(new ModuleContext(server, new ModuleDescriptor(All.Count + j, module.Name, () => module, null), null, everywhere: true));
            registered.Add(module.Name);
        }
        server.Modules.Enabled = registered;
        server.Modules.ResolveHosts(hosts);
    }

    private static ModuleDescriptor[] Number((string Name, Func<IModule> Create, Func<ModuleOptions, IModuleOptions>? Options)[] modules)
    {
        var result = new ModuleDescriptor[modules.Length];
        for (int i = 0; i < modules.Length; i++) result[i] = new ModuleDescriptor(i, modules[i].Name, modules[i].Create, modules[i].Options);
        return result;
    }
}
