namespace Starling.Server.Modules;

/// <summary>Every module this build has, by config name. All are enabled unless listed in Modules:Disabled.</summary>
public static class ModuleCatalog
{
    private static readonly (string Name, Func<IModule> Create)[] All =
    [
        ("disco", () => new Disco.DiscoModule()),
        ("ping", () => new Ping.PingModule()),
        ("version", () => new Version.VersionModule()),
        ("roster", () => new Roster.RosterModule()),
        ("private", () => new Private.PrivateModule()),
        ("presence", () => new Presence.PresenceModule()),
        ("offline", () => new Offline.OfflineModule()),
    ];

    public static IReadOnlySet<string> Names { get; } = new HashSet<string>(All.Select(m => m.Name), StringComparer.Ordinal);

    public static IEnumerable<IModule> Create(IReadOnlyCollection<string> disabled)
    {
        foreach (var (name, create) in All)
        {
            if (!disabled.Contains(name)) yield return create();
        }
    }
}
