namespace Starling.Xml;

/// <summary>
/// A small direct-mapped cache of recently seen strings (element/attribute names, prefixes, namespace URIs,
/// short attribute values), so that parsing the thousandth <c>&lt;message type='chat'&gt;</c> allocates no new
/// string for "message", "type" or "chat". One per parser (no locking); seeded with XMPP's most common strings.
/// A miss replaces the slot: the cache can only ever cost one hash and one comparison.
/// </summary>
internal sealed class StringCache
{
    private const int SeededSize = 512; // powers of two

    /// <summary>Longest string worth caching; longer ones (ids, bodies) are rarely repeated.</summary>
    public const int MaxCachedLength = 64;

    private static readonly string[] Seeds =
    [
        // Stanzas and their usual attributes and values.
        "message", "presence", "iq", "body", "subject", "thread", "id", "to", "from", "type", "lang",
        "chat", "normal", "groupchat", "headline", "error", "get", "set", "result", "unavailable", "subscribe",
        "subscribed", "unsubscribe", "unsubscribed", "probe", "show", "status", "priority", "away", "xa", "dnd",
        "en", "xmlns", "xml", "stream", "version", "1.0", "features",
        // Namespaces.
        "jabber:client", "jabber:server", "jabber:iq:roster", "jabber:iq:private", "jabber:iq:version",
        XmlNames.Streams, XmlNames.XmlNamespace,
        "urn:ietf:params:xml:ns:xmpp-tls", "urn:ietf:params:xml:ns:xmpp-sasl", "urn:ietf:params:xml:ns:xmpp-bind",
        "urn:ietf:params:xml:ns:xmpp-session", "urn:ietf:params:xml:ns:xmpp-stanzas", "urn:ietf:params:xml:ns:xmpp-streams",
        "urn:xmpp:receipts", "urn:xmpp:sm:3", "urn:xmpp:ping", "urn:xmpp:mam:2", "urn:xmpp:carbons:2",
        "urn:xmpp:delay", "urn:xmpp:chat-markers:0", "urn:xmpp:hints", "urn:xmpp:sid:0",
        "http://jabber.org/protocol/chatstates", "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/caps", "http://jabber.org/protocol/muc",
        "vcard-temp", "storage:bookmarks",
        // Common children.
        "starttls", "auth", "mechanism", "response", "challenge", "success", "failure", "bind", "resource", "jid",
        "session", "query", "item", "request", "received", "active", "composing", "paused", "inactive", "gone",
        "ping", "enable", "enabled", "r", "a", "h", "c", "x", "delay", "stamp", "origin-id", "stanza-id", "by",
        "name", "node", "ver", "hash", "sha-1", "subscription", "both", "none", "ask", "group", "PLAIN",
        "SCRAM-SHA-1", "SCRAM-SHA-256", "markable", "displayed", "store", "no-store",
    ];

    private static readonly string?[] Seeded = BuildSeeded();

    // Connection-local strings (the JIDs of this conversation, ids of repeated shapes): small, allocated on first miss,
    // so an idle connection pays 64 references at most (memory per idle session is a target, see docs/benchmarks.md).
    private const int LocalSize = 64;

    private readonly bool _seeded;
    private string?[]? _local;

    /// <param name="seeded">Look in the shared table of XMPP's common names, values and namespaces first.</param>
    public StringCache(bool seeded)
    {
        _seeded = seeded;
    }

    private static string?[] BuildSeeded()
    {
        var table = new string?[SeededSize];
        foreach (var s in Seeds)
        {
            ref var slot = ref table[string.GetHashCode(s.AsSpan()) & (SeededSize - 1)];
            slot ??= s;
        }
        return table;
    }

    public string Get(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty) return string.Empty;
        if (value.Length > MaxCachedLength) return value.ToString();
        int hash = string.GetHashCode(value);
        if (_seeded)
        {
            // The shared table is never written after start-up, so reading it needs no lock.
            var common = Seeded[hash & (SeededSize - 1)];
            if (common is not null && value.SequenceEqual(common)) return common;
        }
        // Two-way: a value may sit in either slot of its pair, so two strings of one conversation whose hashes share a
        // slot (string hashing is randomised per process: 1 run in 64 for any two) do not evict each other per stanza.
        var local = _local ??= new string?[LocalSize];
        int i = hash & (LocalSize - 1);
        var first = local[i];
        if (first is not null && value.SequenceEqual(first)) return first;
        int j = i ^ 1;
        var second = local[j];
        if (second is not null && value.SequenceEqual(second)) return second;
        var s = value.ToString();
        if (first is null) local[i] = s;
        else if (second is null) local[j] = s;
        else
        {
            local[j] = first; // the older of the two leaves
            local[i] = s;
        }
        return s;
    }
}
