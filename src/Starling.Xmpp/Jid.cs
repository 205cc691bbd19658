using System.Diagnostics.CodeAnalysis;

namespace Starling.Xmpp;

/// <summary>
/// An XMPP address (RFC 7622): [localpart@]domainpart[/resourcepart], validated and normalised.
/// CONTRACT STUB: implementation in progress.
/// </summary>
public sealed class Jid : IEquatable<Jid>
{
    private Jid(string? local, string domain, string? resource)
    {
        Local = local;
        Domain = domain;
        Resource = resource;
    }

    public string? Local { get; }
    public string Domain { get; }
    public string? Resource { get; }
    public bool IsBare => Resource is null;
    public bool IsDomain => Local is null && Resource is null;
    public Jid Bare => throw new NotImplementedException();

    public static bool TryParse(string? text, [NotNullWhen(true)] out Jid? jid) => throw new NotImplementedException();
    public static bool TryParse(string? text, [NotNullWhen(true)] out Jid? jid, out string? error) => throw new NotImplementedException();
    public static Jid Parse(string text) => throw new NotImplementedException();
    public static bool TryCreate(string? local, string domain, string? resource, [NotNullWhen(true)] out Jid? jid, out string? error) => throw new NotImplementedException();
    public static Jid Create(string? local, string domain, string? resource = null) => throw new NotImplementedException();
    public static bool TryNormalizeLocal(string local, [NotNullWhen(true)] out string? normalized) => throw new NotImplementedException();
    public static bool TryNormalizeDomain(string domain, [NotNullWhen(true)] out string? normalized) => throw new NotImplementedException();
    public static bool TryNormalizeResource(string resource, [NotNullWhen(true)] out string? normalized) => throw new NotImplementedException();
    public Jid WithResource(string? resource) => throw new NotImplementedException();
    public bool Equals(Jid? other) => throw new NotImplementedException();
    public override bool Equals(object? obj) => Equals(obj as Jid);
    public override int GetHashCode() => throw new NotImplementedException();
    public override string ToString() => throw new NotImplementedException();
    public static bool operator ==(Jid? a, Jid? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(Jid? a, Jid? b) => !(a == b);
}
