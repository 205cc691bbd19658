using Starling.Xmpp.Sasl;

namespace Starling.Server.Storage;

/// <summary>
/// Everything the server persists, one interface per kind of data (shared/ARCHITECTURE.md §6).
/// Modules see only these interfaces, never SQL; SQLite is the embedded default, PostgreSQL comes later
/// behind the same interfaces. Hosts and usernames passed in are already normalised (RFC 7622).
/// </summary>
public interface IStorage : IAsyncDisposable
{
    IAccountStore Accounts { get; }

    IRosterStore Roster { get; }

    IPrivateXmlStore PrivateXml { get; }

    IOfflineStore Offline { get; }

    /// <summary>Creates or upgrades the schema to the version this build knows; idempotent.</summary>
    Task MigrateAsync(CancellationToken cancellationToken = default);
}

/// <summary>An account: salted SCRAM keys for each supported hash, never the password.</summary>
public sealed record StoredAccount(string Host, string User, ScramCredential Sha1, ScramCredential Sha256, DateTimeOffset CreatedAt);

public interface IAccountStore
{
    Task<StoredAccount?> GetAsync(string host, string user, CancellationToken cancellationToken = default);

    /// <summary>False if the account already exists (nothing is changed then).</summary>
    Task<bool> CreateAsync(StoredAccount account, CancellationToken cancellationToken = default);

    /// <summary>Creates many accounts in one transaction; returns how many were created (existing ones are skipped).</summary>
    Task<int> CreateManyAsync(IEnumerable<StoredAccount> accounts, CancellationToken cancellationToken = default);

    /// <summary>False if there is no such account.</summary>
    Task<bool> SetCredentialsAsync(string host, string user, ScramCredential sha1, ScramCredential sha256, CancellationToken cancellationToken = default);

    /// <summary>Deletes the account and all its data (roster, private XML, offline messages). False if there was none.</summary>
    Task<bool> DeleteAsync(string host, string user, CancellationToken cancellationToken = default);

    /// <summary>Usernames of a host, sorted.</summary>
    Task<IReadOnlyList<string>> ListAsync(string host, CancellationToken cancellationToken = default);
}

/// <summary>One roster item (RFC 6121 §2.1.2).</summary>
/// <param name="Approved">The user pre-approved the contact's subscription request (RFC 6121 §3.4).</param>
public sealed record RosterItem(string Jid, string? Name, string Subscription, bool AskSubscribe, IReadOnlyList<string> Groups, bool Approved = false);

/// <summary>A user's roster and its version (RFC 6121 §2.6).</summary>
public sealed record RosterSnapshot(string Version, IReadOnlyList<RosterItem> Items);

/// <summary>
/// The subscription side of one contact in a user's account, as RFC 6121 Appendix A counts states: whether the roster
/// has an item for it, the two directions (the user subscribed to the contact: 'to'; the contact to the user: 'from'),
/// a request the user sent and the contact has not answered (pending out, 'ask'), a request the contact sent and the
/// user has not answered (pending in, stored apart from the roster: a contact need not be in it), and a pre-approval.
/// </summary>
public readonly record struct ContactState(bool InRoster, bool To, bool From, bool AskSubscribe, bool PendingIn, bool Approved)
{
    /// <summary>No item and no pending request.</summary>
    public static ContactState Absent => default;

    /// <summary>The roster item's 'subscription' attribute (RFC 6121 §2.1.2.5).</summary>
    public string Subscription => To ? (From ? "both" : "to") : From ? "from" : "none";

    /// <summary>The directions of a stored 'subscription' value; unknown values count as none.</summary>
    public static (bool To, bool From) Directions(string subscription) => subscription switch
    {
        "both" => (true, true),
        "to" => (true, false),
        "from" => (false, true),
        _ => (false, false),
    };
}

/// <summary>What <see cref="IRosterStore.UpdateSubscriptionAsync"/> did.</summary>
public enum SubscriptionOutcome
{
    /// <summary>The transition left the state as it was; nothing was written.</summary>
    Unchanged,

    /// <summary>The new state is stored.</summary>
    Changed,

    /// <summary>The change would have added a roster item past the roster's limit; nothing was written.</summary>
    RosterFull,

    /// <summary>The change would have stored one more pending-in request than allowed; nothing was written.</summary>
    PendingFull,
}

/// <summary>
/// The result of a subscription state change: the states before and after, the roster item as stored now (null when the
/// roster has none) and the roster version when the item changed (else null: no roster push is due).
/// </summary>
public sealed record SubscriptionUpdate(SubscriptionOutcome Outcome, ContactState Before, ContactState After, RosterItem? Item, string? Version);

/// <summary>A roster item removed together with the contact's pending-in request; <see cref="Before"/> says what it was.</summary>
public sealed record RosterRemoval(ContactState Before, string Version);

/// <summary>A subscription request a contact sent that the user has not answered yet (RFC 6121 §3.1.3), as received.</summary>
public sealed record PendingSubscription(string Jid, string Xml);

public interface IRosterStore
{
    Task<RosterSnapshot> GetAsync(string host, string user, CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds or replaces an item and bumps the roster version; returns the new version, or null when the item is new and
    /// the roster already has <paramref name="maxItems"/> items (nothing is changed then). Throws if the account does not exist.
    /// </summary>
    Task<string?> SetItemAsync(string host, string user, RosterItem item, int maxItems = int.MaxValue, CancellationToken cancellationToken = default);

    /// <summary>
    /// A client's roster set (RFC 6121 §2.4): sets the item's name and groups, keeping its subscription state (a new item
    /// starts at 'none'), and bumps the version. Returns the item as stored and the new version, or null when the item is new
    /// and the roster already has <paramref name="maxItems"/> items. The subscription is read and kept in the same
    /// transaction, so a subscription change that lands meanwhile is not overwritten.
    /// </summary>
    Task<(RosterItem Item, string Version)?> SetItemDetailsAsync(string host, string user, string jid, string? name, IReadOnlyList<string> groups, int maxItems = int.MaxValue, CancellationToken cancellationToken = default);

    /// <summary>Removes an item and bumps the version; returns the new version, or null if there was no such item.</summary>
    Task<string?> RemoveItemAsync(string host, string user, string jid, CancellationToken cancellationToken = default);

    /// <summary>
    /// RFC 6121 §2.5: removes the item and the contact's pending-in request in one transaction, bumps the version and returns
    /// the state they had (the caller then cancels the subscriptions, §2.5.2); null if there was no item (nothing changed).
    /// </summary>
    Task<RosterRemoval?> RemoveContactAsync(string host, string user, string jid, CancellationToken cancellationToken = default);

    /// <summary>The subscription state of one contact (<see cref="ContactState.Absent"/> when there is neither item nor request).</summary>
    Task<ContactState> GetContactAsync(string host, string user, string jid, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies a subscription state change (RFC 6121 §3, Appendix A) atomically: reads the contact's state, runs
    /// <paramref name="transition"/> (a pure function, run inside the write transaction), and stores the result. A new roster
    /// item past <paramref name="maxItems"/> or a new pending-in request past <paramref name="maxPending"/> changes nothing.
    /// A request that becomes pending is stored with <paramref name="requestXml"/>. The version is bumped only when the
    /// roster item changed (pending-in requests are not part of the roster the client sees). Throws if the account does not exist.
    /// </summary>
    Task<SubscriptionUpdate> UpdateSubscriptionAsync(string host, string user, string jid, Func<ContactState, ContactState> transition, string? requestXml, int maxItems, int maxPending, CancellationToken cancellationToken = default);

    /// <summary>The pending-in requests of a user, oldest first (delivered again at each login until answered, RFC 6121 §3.1.3).</summary>
    Task<IReadOnlyList<PendingSubscription>> GetPendingInAsync(string host, string user, CancellationToken cancellationToken = default);
}

/// <summary>XEP-0049 private XML storage: one XML fragment per (element name, namespace).</summary>
public interface IPrivateXmlStore
{
    /// <summary>The stored element serialised as XML, or null if nothing is stored.</summary>
    Task<string?> GetAsync(string host, string user, string name, string ns, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores (or replaces) the fragment for (name, namespace); false when it is a new one and the user already has
    /// <paramref name="maxFragments"/> (nothing is changed then). Throws if the account does not exist.
    /// </summary>
    Task<bool> SetAsync(string host, string user, string name, string ns, string xml, int maxFragments = int.MaxValue, CancellationToken cancellationToken = default);
}

/// <summary>A message stored for a user who was offline (XEP-0160).</summary>
public sealed record OfflineMessage(long Id, string Xml, DateTimeOffset StoredAt);

/// <summary>The outcome of an offline store.</summary>
public enum OfflineStoreResult
{
    Stored,

    /// <summary>The user already has the most messages allowed.</summary>
    MessageQuotaReached,

    /// <summary>The message would take the user's stored messages past the byte quota.</summary>
    ByteQuotaReached,
}

public interface IOfflineStore
{
    /// <summary>
    /// Stores a message unless the user already has <paramref name="maxMessages"/> messages or it would take the user's
    /// messages past <paramref name="maxBytes"/> bytes (UTF-8 of the stored XML). Throws if the account does not exist.
    /// </summary>
    Task<OfflineStoreResult> TryStoreAsync(string host, string user, string xml, DateTimeOffset storedAt, int maxMessages, long maxBytes, CancellationToken cancellationToken = default);

    /// <summary>Up to <paramref name="limit"/> stored messages with an id above <paramref name="afterId"/>, oldest first.</summary>
    Task<IReadOnlyList<OfflineMessage>> LoadPageAsync(string host, string user, long afterId, int limit, CancellationToken cancellationToken = default);

    /// <summary>Deletes the given messages (after they were delivered).</summary>
    Task DeleteAsync(string host, string user, IReadOnlyCollection<long> ids, CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves a message that can no longer be read out of the user's queue into quarantine, with the reason: it is not
    /// delivered again and no longer counts against the quota, but stays for the operator (deleted with the account).
    /// </summary>
    Task QuarantineAsync(string host, string user, long id, string reason, CancellationToken cancellationToken = default);

    Task<int> CountAsync(string host, string user, CancellationToken cancellationToken = default);

    /// <summary>How many of the user's messages are in quarantine.</summary>
    Task<int> CountQuarantinedAsync(string host, string user, CancellationToken cancellationToken = default);
}
