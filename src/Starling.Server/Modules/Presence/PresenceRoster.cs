using Starling.Server.Storage;
using Starling.Xmpp;

namespace Starling.Server.Modules.Presence;

/// <summary>
/// The roster as presence broadcast needs it, parsed once when a session becomes available (RFC 6121 §4.2.2, §4.4.2):
/// the contacts subscribed to the user ('from' or 'both': they receive its presence) and those the user is subscribed to
/// ('to' or 'both': they are probed). Sessions of one account share one instance; a subscription change replaces the
/// arrays (<see cref="Apply"/>, under a lock, rare), while broadcasts read them without locking (every presence update).
/// </summary>
internal sealed class PresenceRoster
{
    private readonly object _write = new();
    private Snapshot _current;

    private PresenceRoster(Snapshot current) => _current = current;

    private sealed class Snapshot(Jid[] subscribers, Jid[] subscriptions, HashSet<Jid> subscriberSet)
    {
        public readonly Jid[] Subscribers = subscribers;
        public readonly Jid[] Subscriptions = subscriptions;
        public readonly HashSet<Jid> SubscriberSet = subscriberSet;
    }

    /// <summary>
    /// Contacts with a subscription to the user's presence ('from', 'both'), as bare JIDs. The array is never written:
    /// a change replaces it, so a caller may keep it across awaits (a loop over it sees one consistent state).
    /// </summary>
    public Jid[] Subscribers => Volatile.Read(ref _current).Subscribers;

    /// <summary>Contacts whose presence the user is subscribed to ('to', 'both'), as bare JIDs; never written, as above.</summary>
    public Jid[] Subscriptions => Volatile.Read(ref _current).Subscriptions;

    /// <summary>Whether <paramref name="contact"/> (a bare JID) may see the user's presence (answering a probe, §4.3.2).</summary>
    public bool IsSubscriber(Jid contact) => Volatile.Read(ref _current).SubscriberSet.Contains(contact);

    /// <summary>Parses the stored roster once; an item whose JID no longer parses is left out (it can receive nothing).</summary>
    public static PresenceRoster From(RosterSnapshot roster)
    {
        ArgumentNullException.ThrowIfNull(roster);
        var subscribers = new List<Jid>();
        var subscriptions = new List<Jid>();
        foreach (var item in roster.Items)
        {
            var (to, from) = ContactState.Directions(item.Subscription);
            if (!(to || from) || !Jid.TryParse(item.Jid, out var contact)) continue;
            contact = contact.Bare;
            if (from) subscribers.Add(contact);
            if (to) subscriptions.Add(contact);
        }
        return new PresenceRoster(new Snapshot([.. subscribers], [.. subscriptions], [.. subscribers]));
    }

    /// <summary>Records the directions <paramref name="contact"/> now has (both false: it left the roster). Idempotent.</summary>
    public void Apply(Jid contact, bool to, bool from)
    {
        ArgumentNullException.ThrowIfNull(contact);
        contact = contact.Bare;
        lock (_write)
        {
            var current = _current;
            var subscribers = With(current.Subscribers, contact, from);
            var subscriptions = With(current.Subscriptions, contact, to);
            if (ReferenceEquals(subscribers, current.Subscribers) && ReferenceEquals(subscriptions, current.Subscriptions)) return;
            var set = ReferenceEquals(subscribers, current.Subscribers) ? current.SubscriberSet : new HashSet<Jid>(subscribers);
            Volatile.Write(ref _current, new Snapshot(subscribers, subscriptions, set));
        }
    }

    /// <summary>The array with <paramref name="contact"/> present or absent; the same array when nothing changes.</summary>
    private static Jid[] With(Jid[] contacts, Jid contact, bool present)
    {
        int index = Array.IndexOf(contacts, contact);
        if (present == index >= 0) return contacts;
        if (present)
        {
            var grown = new Jid[contacts.Length + 1];
            contacts.CopyTo(grown, 0);
            grown[^1] = contact;
            return grown;
        }
        var shrunk = new Jid[contacts.Length - 1];
        for (int i = 0, j = 0; i < contacts.Length; i++)
        {
            if (i != index) shrunk[j++] = contacts[i];
        }
        return shrunk;
    }
}
