using Starling.Server.Storage;

namespace Starling.Server.Modules.Presence;

/// <summary>
/// The subscription state machine of RFC 6121 Appendix A as pure functions of <see cref="ContactState"/>: what a
/// subscription stanza does to the state one account keeps about one contact. "Outbound" is the sender's server acting on
/// the sender's item about the addressee (§3.x.2); "inbound" is the addressee's server acting on the addressee's item
/// about the sender (§3.x.3). A function that returns its argument unchanged means the stanza changes nothing; what is then
/// routed, delivered or ignored is decided by the caller from the states before and after.
/// </summary>
internal static class SubscriptionRules
{
    /// <summary>
    /// §3.1.2: the user asks to see the contact's presence. Pending out unless already subscribed or already
    /// asked; the item is created if needed.
    /// </summary>
    public static ContactState OutboundSubscribe(ContactState s) =>
        s.To || s.AskSubscribe ? s : s with { InRoster = true, AskSubscribe = true };

    /// <summary>
    /// §3.1.5 and §3.4.1: the user lets the contact see its presence. With a request pending in it is an approval
    /// (from); without one it is a pre-approval (§3.4: the item, created if needed, is marked approved). Already 'from':
    /// nothing changes.
    /// </summary>
    public static ContactState OutboundSubscribed(ContactState s)
    {
        if (s.From) return s;
        if (s.PendingIn) return s with { InRoster = true, From = true, PendingIn = false, Approved = false };
        return s with { InRoster = true, Approved = true };
    }

    /// <summary>§3.3.2: the user cancels its subscription to the contact, or withdraws its request.</summary>
    public static ContactState OutboundUnsubscribe(ContactState s) => s with { To = false, AskSubscribe = false };

    /// <summary>
    /// §3.2.2 and §3.4 (cancelling a pre-approval): the user cancels the contact's subscription, denies its request
    /// or withdraws a pre-approval.
    /// </summary>
    public static ContactState OutboundUnsubscribed(ContactState s) => s with { From = false, PendingIn = false, Approved = false };

    /// <summary>
    /// §3.1.3 and §3.4: a request from the contact. Already 'from': nothing changes (the server answers for the
    /// user). Pre-approved: approved at once. Otherwise it becomes pending in (stored, not shown in the roster).
    /// </summary>
    public static ContactState InboundSubscribe(ContactState s)
    {
        if (s.From || s.PendingIn) return s;
        if (s.Approved) return s with { From = true, Approved = false };
        return s with { PendingIn = true };
    }

    /// <summary>§3.1.6: the contact approved the user's request; without a request pending out it is ignored.</summary>
    public static ContactState InboundSubscribed(ContactState s) =>
        s.AskSubscribe ? s with { To = true, AskSubscribe = false } : s;

    /// <summary>§3.3.3: the contact cancels its subscription to the user, or withdraws its request.</summary>
    public static ContactState InboundUnsubscribe(ContactState s) => s with { From = false, PendingIn = false };

    /// <summary>§3.2.3: the contact cancelled the user's subscription, or denied the user's request.</summary>
    public static ContactState InboundUnsubscribed(ContactState s) => s with { To = false, AskSubscribe = false };
}
