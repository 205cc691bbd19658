using System.Collections.Frozen;

namespace Starling.Server.Routing;

/// <summary>What a domain is to this server (shared/ARCHITECTURE.md §5).</summary>
public enum DomainKind
{
    /// <summary>Anyone else's: reached over s2s (not yet: remote-server-not-found, RFC 6120 §8.3.3.13).</summary>
    Remote,

    /// <summary>A host this server serves accounts for (Hosts in the config).</summary>
    LocalHost,

    /// <summary>A service inside this server (MUC, upload, pubsub), served by a module. None yet.</summary>
    InternalService,

    /// <summary>An external component connected over XEP-0114. None yet.</summary>
    Component,
}

/// <summary>
/// The router's domain table: which domains are local hosts, internal services or components; every other domain is
/// remote. Built once at start from the configuration (one frozen-dictionary lookup per routed stanza, as the host check
/// it replaces); a domain not in the table is answered Remote without being remembered, so addressing stanzas to a
/// million made-up domains grows nothing.
/// </summary>
public sealed class DomainTable
{
    private readonly FrozenDictionary<string, DomainKind> _domains;

    public DomainTable(IEnumerable<KeyValuePair<string, DomainKind>> domains)
    {
        ArgumentNullException.ThrowIfNull(domains);
        var table = new Dictionary<string, DomainKind>(StringComparer.Ordinal);
        foreach (var (domain, kind) in domains)
        {
            if (kind == DomainKind.Remote) throw new ArgumentException($"{domain}: remote domains are not listed", nameof(domains));
            if (!table.TryAdd(domain, kind)) throw new ArgumentException($"{domain} is listed twice", nameof(domains));
        }
        _domains = table.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>The table for this configuration: its hosts (internal services and components come with their modules).</summary>
    public static DomainTable For(Configuration.StarlingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var domains = new List<KeyValuePair<string, DomainKind>>();
        foreach (var host in options.Hosts) domains.Add(new(host.Name, DomainKind.LocalHost));
        return new DomainTable(domains);
    }

    /// <summary>What <paramref name="domain"/> (normalised, RFC 7622 §3.2) is; Remote when it is not ours.</summary>
    public DomainKind Resolve(string domain) => _domains.TryGetValue(domain, out var kind) ? kind : DomainKind.Remote;
}
