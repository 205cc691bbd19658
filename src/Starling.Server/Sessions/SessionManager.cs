using System.Collections.Concurrent;
using Starling.Xmpp;

namespace Starling.Server.Sessions;

/// <summary>Outcome of binding a resource.</summary>
public enum BindOutcome
{
    Bound,
    /// <summary>The resource was in use and the policy is "reject".</summary>
    Conflict,
    /// <summary>The account already has the most resources allowed.</summary>
    TooManyResources,
}

/// <summary>
/// The local session directory: bare JID → bound resources. Reads are lock-free (copy-on-write arrays),
/// writes lock per account. The cluster implementation will sit behind the router, not here.
/// </summary>
public sealed class SessionManager
{
    private readonly ConcurrentDictionary<Jid, Account> _accounts = new();
    private long _count;

    /// <summary>Bound sessions on this node.</summary>
    public long Count => Interlocked.Read(ref _count);

    private sealed class Account
    {
        public C2sSession[] Sessions = [];
    }

    /// <summary>
    /// Binds <paramref name="session"/> to its full JID. With <paramref name="replace"/> a session already bound to the
    /// same resource is returned in <paramref name="replaced"/> (the caller closes it with a conflict stream error).
    /// </summary>
    public BindOutcome Bind(C2sSession session, Jid fullJid, bool replace, int maxResources, out C2sSession? replaced)
    {
        replaced = null;
        var bare = fullJid.Bare;
        while (true)
        {
            var account = _accounts.GetOrAdd(bare, static _ => new Account());
            lock (account)
            {
                // The account entry may have been removed concurrently by the last unbind; retry on a fresh one.
                if (!_accounts.TryGetValue(bare, out var current) || !ReferenceEquals(current, account)) continue;
                var sessions = account.Sessions;
                int existing = -1;
                for (int i = 0; i < sessions.Length; i++)
                {
                    if (sessions[i].Jid!.Resource == fullJid.Resource) existing = i;
                }
                if (existing >= 0)
                {
                    if (!replace) return BindOutcome.Conflict;
                    replaced = sessions[existing];
                    var copy = (C2sSession[])sessions.Clone();
                    copy[existing] = session;
                    session.Jid = fullJid;
                    account.Sessions = copy;
                    return BindOutcome.Bound;
                }
                if (sessions.Length >= maxResources) return BindOutcome.TooManyResources;
                var grown = new C2sSession[sessions.Length + 1];
                sessions.CopyTo(grown, 0);
                grown[^1] = session;
                session.Jid = fullJid;
                account.Sessions = grown;
                Interlocked.Increment(ref _count);
                return BindOutcome.Bound;
            }
        }
    }

    /// <summary>Removes the session if it is still the one bound to its JID.</summary>
    public bool Unbind(C2sSession session)
    {
        var jid = session.Jid;
        if (jid is null) return false;
        var bare = jid.Bare;
        if (!_accounts.TryGetValue(bare, out var account)) return false;
        lock (account)
        {
            var sessions = account.Sessions;
            int index = Array.IndexOf(sessions, session);
            if (index < 0) return false;
            if (sessions.Length == 1)
            {
                account.Sessions = [];
                _accounts.TryRemove(new KeyValuePair<Jid, Account>(bare, account));
            }
            else
            {
                var shrunk = new C2sSession[sessions.Length - 1];
                for (int i = 0, j = 0; i < sessions.Length; i++)
                {
                    if (i != index) shrunk[j++] = sessions[i];
                }
                account.Sessions = shrunk;
            }
            Interlocked.Decrement(ref _count);
            return true;
        }
    }

    /// <summary>Every bound session of an account (possibly empty). Safe to iterate without locks.</summary>
    public ReadOnlySpan<C2sSession> GetSessions(Jid bare) =>
        _accounts.TryGetValue(bare, out var account) ? account.Sessions : [];

    /// <summary>The session bound to a full JID, or null.</summary>
    public C2sSession? GetSession(Jid full)
    {
        foreach (var s in GetSessions(full.Bare))
        {
            if (s.Jid!.Resource == full.Resource) return s;
        }
        return null;
    }

    /// <summary>Closes every session (shutdown).</summary>
    public IEnumerable<C2sSession> All()
    {
        foreach (var kv in _accounts)
        {
            foreach (var s in kv.Value.Sessions) yield return s;
        }
    }
}
