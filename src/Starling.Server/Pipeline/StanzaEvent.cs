using Starling.Xmpp;

namespace Starling.Server.Pipeline;

/// <summary>When an event fires: in the sender's context before routing, or at delivery to a local address.</summary>
public enum StanzaStage : byte
{
    /// <summary>A local client's stanza before it is routed (Prosody's pre-message/…): blocking, carbons, MAM attach here.</summary>
    Pre = 0,

    /// <summary>The router delivering to a local address (Prosody's message/…): the RFC 6121 §8.5 rules are the defaults.</summary>
    Deliver = 1,
}

public enum StanzaKind : byte
{
    Message = 0,
    Presence = 1,
    Iq = 2,
}

/// <summary>How the stanza is addressed: a local part and a resource (full), a local part (bare), only a domain (host).</summary>
public enum StanzaAddressing : byte
{
    Bare = 0,
    Full = 1,
    Host = 2,

    /// <summary>message/offline: a message for an account with no resource to take it now (RFC 6121 §8.5.2.2).</summary>
    Offline = 3,
}

/// <summary>
/// A pipeline event, named as Prosody names its hooks: <c>pre-message/bare</c>, <c>message/full</c>,
/// <c>presence/bare</c>, <c>message/offline</c>… The value is an index into the frozen handler chains (dispatch costs an
/// array access, never a string or a dictionary); the name is for logs, docs and grep. Iq payload handlers have their own
/// names (<c>iq-get/self/jabber:iq:roster</c>) and are looked up by namespace (ModuleContext.OnIq).
/// </summary>
public readonly struct StanzaEvent : IEquatable<StanzaEvent>
{
    internal const int Count = 2 * 3 * 4;

    private static readonly string[] Names = BuildNames();

    public static readonly StanzaEvent PreMessageBare = Of(StanzaStage.Pre, StanzaKind.Message, StanzaAddressing.Bare);
    public static readonly StanzaEvent PreMessageFull = Of(StanzaStage.Pre, StanzaKind.Message, StanzaAddressing.Full);
    public static readonly StanzaEvent PreMessageHost = Of(StanzaStage.Pre, StanzaKind.Message, StanzaAddressing.Host);
    public static readonly StanzaEvent PrePresenceBare = Of(StanzaStage.Pre, StanzaKind.Presence, StanzaAddressing.Bare);
    public static readonly StanzaEvent PrePresenceFull = Of(StanzaStage.Pre, StanzaKind.Presence, StanzaAddressing.Full);
    public static readonly StanzaEvent PrePresenceHost = Of(StanzaStage.Pre, StanzaKind.Presence, StanzaAddressing.Host);
    public static readonly StanzaEvent PreIqBare = Of(StanzaStage.Pre, StanzaKind.Iq, StanzaAddressing.Bare);
    public static readonly StanzaEvent PreIqFull = Of(StanzaStage.Pre, StanzaKind.Iq, StanzaAddressing.Full);
    public static readonly StanzaEvent PreIqHost = Of(StanzaStage.Pre, StanzaKind.Iq, StanzaAddressing.Host);
    public static readonly StanzaEvent MessageBare = Of(StanzaStage.Deliver, StanzaKind.Message, StanzaAddressing.Bare);
    public static readonly StanzaEvent MessageFull = Of(StanzaStage.Deliver, StanzaKind.Message, StanzaAddressing.Full);
    public static readonly StanzaEvent MessageHost = Of(StanzaStage.Deliver, StanzaKind.Message, StanzaAddressing.Host);
    public static readonly StanzaEvent MessageOffline = Of(StanzaStage.Deliver, StanzaKind.Message, StanzaAddressing.Offline);
    public static readonly StanzaEvent PresenceBare = Of(StanzaStage.Deliver, StanzaKind.Presence, StanzaAddressing.Bare);
    public static readonly StanzaEvent PresenceFull = Of(StanzaStage.Deliver, StanzaKind.Presence, StanzaAddressing.Full);
    public static readonly StanzaEvent PresenceHost = Of(StanzaStage.Deliver, StanzaKind.Presence, StanzaAddressing.Host);
    public static readonly StanzaEvent IqBare = Of(StanzaStage.Deliver, StanzaKind.Iq, StanzaAddressing.Bare);
    public static readonly StanzaEvent IqFull = Of(StanzaStage.Deliver, StanzaKind.Iq, StanzaAddressing.Full);
    public static readonly StanzaEvent IqHost = Of(StanzaStage.Deliver, StanzaKind.Iq, StanzaAddressing.Host);

    private StanzaEvent(int index) => Index = index;

    internal int Index { get; }

    public StanzaStage Stage => (StanzaStage)(Index / 12);

    public StanzaKind Kind => (StanzaKind)(Index / 4 % 3);

    public StanzaAddressing Addressing => (StanzaAddressing)(Index % 4);

    /// <summary>The Prosody-style name: <c>pre-message/bare</c>, <c>presence/full</c>, <c>message/offline</c>.</summary>
    public string Name => Names[Index];

    /// <summary>The event for a stage, kind and addressing. Offline exists only as message/offline.</summary>
    public static StanzaEvent Of(StanzaStage stage, StanzaKind kind, StanzaAddressing addressing)
    {
        if (addressing == StanzaAddressing.Offline && (stage != StanzaStage.Deliver || kind != StanzaKind.Message))
            throw new ArgumentException("only message/offline exists", nameof(addressing));
        return new(Compute(stage, kind, addressing));
    }

    /// <summary>How <paramref name="to"/> is addressed (never Offline).</summary>
    public static StanzaAddressing AddressingOf(Jid to) =>
        to.Local is null ? StanzaAddressing.Host : to.Resource is null ? StanzaAddressing.Bare : StanzaAddressing.Full;

    /// <summary>The event of a stage and kind for a stanza to <paramref name="to"/>: arithmetic only (the per-stanza path).</summary>
    internal static StanzaEvent For(StanzaStage stage, StanzaKind kind, Jid to) => new(Compute(stage, kind, AddressingOf(to)));

    private static int Compute(StanzaStage stage, StanzaKind kind, StanzaAddressing addressing) =>
        ((((int)stage * 3) + (int)kind) * 4) + (int)addressing;

    private static string[] BuildNames()
    {
        var names = new string[Count];
        string[] kinds = ["message", "presence", "iq"];
        string[] addressings = ["bare", "full", "host", "offline"];
        for (int stage = 0; stage < 2; stage++)
        {
            for (int kind = 0; kind < 3; kind++)
            {
                for (int a = 0; a < 4; a++)
                    names[Compute((StanzaStage)stage, (StanzaKind)kind, (StanzaAddressing)a)] = (stage == 0 ? "pre-" : "") + kinds[kind] + "/" + addressings[a];
            }
        }
        return names;
    }

    public bool Equals(StanzaEvent other) => Index == other.Index;

    public override bool Equals(object? obj) => obj is StanzaEvent other && Equals(other);

    public override int GetHashCode() => Index;

    public override string ToString() => Name;

    public static bool operator ==(StanzaEvent left, StanzaEvent right) => left.Equals(right);

    public static bool operator !=(StanzaEvent left, StanzaEvent right) => !left.Equals(right);
}
