using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using Starling.Server.Configuration;

namespace Starling.Server.Sessions;

/// <summary>
/// Slows down password guessing, shared by every connection: per address block and per account.
/// </summary>
/// <remarks>
/// <para>Address blocks are IPv4 /32 and IPv6 /64 (one subscriber's IPv6 network: a /128 key would give an attacker
/// 2^64 fresh counters). Once a block has failed at least once, every attempt in flight from it counts as a failure
/// from the moment it starts (an <c>&lt;auth/&gt;</c>) until it succeeds, so parallel connections do not multiply
/// guesses: past <see cref="AuthOptions.AddressFreeFailures"/> an attempt that starts bars the whole block for a
/// penalty that grows with its failures, and while a block is barred new attempts are refused at once
/// (<c>&lt;temporary-auth-failure/&gt;</c>, RFC 6120 §6.5.11) instead of being held open. A block with no failure on
/// record is not held back however many logins it has in flight: a NAT'd office whose clients all reconnect when the
/// server restarts must get in (the first parallel round of a guesser is bounded by the unauthenticated-connection cap
/// per address instead). A success only takes back its own attempt: it does not wipe the block's failures.</para>
/// <para>Per account (any address): past <see cref="AuthOptions.AccountFreeFailures"/> each attempt on the account
/// waits a delay before its answer, and attempts queue one delay apart, so guesses on one account are bounded no
/// matter how many addresses send them. It is a delay, not a lock: attempts that would wait longer than
/// <see cref="AuthOptions.AccountMaxDelaySeconds"/> are refused, and the address blocks the account last logged in from
/// are not delayed at all, so an attacker elsewhere cannot keep the owner out. (ejabberd's mod_fail2ban and Prosody's
/// mod_limit_auth throttle per address only and neither locks accounts, for the same reason: an account lock is a
/// lever for anyone to lock anyone out.)</para>
/// <para>Memory is bounded: entries idle for <see cref="AuthOptions.ForgetAfterSeconds"/> are pruned, and past
/// <see cref="AuthOptions.MaxTrackedEntries"/> the least recently active half of a table is dropped.</para>
/// </remarks>
public sealed class AuthThrottle
{
    private const int TrustedBlocksPerAccount = 4;
    private static readonly UInt128 NonIpBlock = UInt128.MaxValue;

    private readonly ConcurrentDictionary<UInt128, BlockEntry> _blocks = new();
    private readonly ConcurrentDictionary<(string Host, string User), AccountEntry> _accounts = new();
    private readonly Func<long> _clock;
    private readonly int _addressFree;
    private readonly long _addressStep;
    private readonly long _addressMax;
    private readonly int _accountFree;
    private readonly long _accountStep;
    private readonly long _accountMax;
    private readonly long _forget;
    private readonly int _maxEntries;
    private long _lastPrune;
    private int _pruning;

    public AuthThrottle(AuthOptions options)
        : this(options, static () => Environment.TickCount64)
    {
    }

    /// <summary>Test hook: a clock in milliseconds.</summary>
    internal AuthThrottle(AuthOptions options, Func<long> clock)
    {
        _clock = clock;
        _addressFree = options.AddressFreeFailures;
        _addressStep = options.AddressDelayMilliseconds;
        _addressMax = options.AddressMaxDelaySeconds * 1000L;
        _accountFree = options.AccountFreeFailures;
        _accountStep = options.AccountDelayMilliseconds;
        _accountMax = options.AccountMaxDelaySeconds * 1000L;
        _forget = options.ForgetAfterSeconds * 1000L;
        _maxEntries = options.MaxTrackedEntries;
        _lastPrune = clock();
    }

    private sealed class BlockEntry
    {
        public int Failures; // attempts that failed (or were abandoned) within the window
        public int Pending;  // attempts in flight
        public long LastActivity;
        public long BarredUntil;
    }

    private sealed class AccountEntry
    {
        public int Failures;
        public long LastActivity;
        public long NextSlot;
        public UInt128[]? Trusted;
        public int TrustedNext;
        public int TrustedCount;
    }

    /// <summary>Address blocks tracked (for tests and diagnostics).</summary>
    public int TrackedBlocks => _blocks.Count;

    /// <summary>Accounts tracked (for tests and diagnostics).</summary>
    public int TrackedAccounts => _accounts.Count;

    /// <summary>The key of an address's block: IPv4 (also IPv4-mapped IPv6) /32, IPv6 /64.</summary>
    internal static UInt128 BlockOf(EndPoint? remote)
    {
        if (remote is not IPEndPoint ip) return NonIpBlock;
        var address = ip.Address;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            // ::ffff:a.b.c.d, the whole address: IPv4 blocks are single addresses.
            bytes[10] = 0xff;
            bytes[11] = 0xff;
            address.TryWriteBytes(bytes[12..], out _);
        }
        else
        {
            address.TryWriteBytes(bytes, out _);
            bytes[8..].Clear();
        }
        return BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    /// <summary>
    /// A new authentication attempt from <paramref name="remote"/>. False while its block is barred: refuse it at once
    /// and tell the client to wait <paramref name="wait"/>. True: the attempt is in flight until <see cref="Succeeded"/>
    /// or <see cref="Failed"/>; once the block has failed before, attempts in flight count as failures, and past the free
    /// failures one bars the block for the penalty it would earn by failing (so a thousand parallel connections get one
    /// guess, not a thousand); <paramref name="reservation"/> identifies that bar, which a success lifts again.
    /// </summary>
    public bool TryBegin(EndPoint? remote, out TimeSpan wait, out long reservation)
    {
        reservation = 0;
        long now = _clock();
        var entry = Block(BlockOf(remote), now);
        lock (entry)
        {
            Expire(entry, now);
            if (now < entry.BarredUntil)
            {
                wait = TimeSpan.FromMilliseconds(entry.BarredUntil - now);
                return false;
            }
            entry.Pending++;
            entry.LastActivity = now;
            int counted = entry.Failures + entry.Pending;
            if (entry.Failures > 0 && counted > _addressFree)
            {
                entry.BarredUntil = now + Penalty(counted - _addressFree, _addressStep, _addressMax);
                // Never 0, so that 0 means "no reservation".
                reservation = entry.BarredUntil == 0 ? 1 : entry.BarredUntil;
                entry.BarredUntil = reservation;
            }
        }
        wait = TimeSpan.Zero;
        return true;
    }

    /// <summary>
    /// Before the credentials of an attempt on <paramref name="user"/> are checked: how long to hold the answer.
    /// False: refuse the attempt (it would wait longer than the cap), telling the client to wait <paramref name="wait"/>.
    /// <paramref name="user"/> null (a name no account can have): no account delay.
    /// </summary>
    public bool TryHoldForAccount(EndPoint? remote, string host, string? user, out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        if (user is null) return true;
        long now = _clock();
        if (!_accounts.TryGetValue((host, user), out var entry)) return true;
        var block = BlockOf(remote);
        lock (entry)
        {
            Expire(entry, now);
            if (entry.Failures < _accountFree || IsTrusted(entry, block)) return true;
            // Attempts queue one delay apart: N parallel guesses take N delays, whatever their addresses.
            long slot = Math.Max(now, entry.NextSlot) + Penalty(entry.Failures - _accountFree + 1, _accountStep, _accountMax);
            if (slot - now > _accountMax)
            {
                wait = TimeSpan.FromMilliseconds(entry.NextSlot - now);
                return false;
            }
            entry.NextSlot = slot;
            wait = TimeSpan.FromMilliseconds(slot - now);
        }
        return true;
    }

    /// <summary>An attempt from <paramref name="remote"/> failed or was abandoned; <paramref name="user"/> is the account tried, if known.</summary>
    public void Failed(EndPoint? remote, string host, string? user)
    {
        long now = _clock();
        var block = Block(BlockOf(remote), now);
        lock (block)
        {
            Expire(block, now);
            if (block.Pending > 0) block.Pending--;
            block.Failures++;
            block.LastActivity = now;
            if (block.Failures > _addressFree)
                block.BarredUntil = Math.Max(block.BarredUntil, now + Penalty(block.Failures - _addressFree, _addressStep, _addressMax));
        }
        if (user is null) return;
        var account = Account(host, user, now);
        lock (account)
        {
            Expire(account, now);
            account.Failures++;
            account.LastActivity = now;
        }
    }

    /// <summary>
    /// An attempt succeeded: it is no longer in flight, and the bar it reserved is lifted when no failure or attempt
    /// since has replaced it (not its other failures, so logging in to an account of one's own does not clear the
    /// penalty of guesses on others); the account's failures are cleared and the block is remembered as one the
    /// account logs in from.
    /// </summary>
    public void Succeeded(EndPoint? remote, string host, string user, long reservation)
    {
        long now = _clock();
        var key = BlockOf(remote);
        if (_blocks.TryGetValue(key, out var block))
        {
            lock (block)
            {
                if (block.Pending > 0) block.Pending--;
                if (reservation != 0 && block.BarredUntil == reservation) block.BarredUntil = 0;
            }
        }
        if (_accounts.TryGetValue((host, user), out var account))
        {
            lock (account)
            {
                account.Failures = 0;
                account.NextSlot = 0;
                account.LastActivity = now;
                Trust(account, key);
            }
        }
    }

    private static long Penalty(int excess, long step, long max)
    {
        long penalty = step * excess;
        return penalty > max || penalty < 0 ? max : penalty;
    }

    private void Expire(BlockEntry entry, long now)
    {
        if (now - entry.LastActivity <= _forget || now < entry.BarredUntil) return;
        entry.Failures = 0;
        entry.BarredUntil = 0;
    }

    private void Expire(AccountEntry entry, long now)
    {
        if (now - entry.LastActivity <= _forget || now < entry.NextSlot) return;
        entry.Failures = 0;
        entry.NextSlot = 0;
    }

    private static bool IsTrusted(AccountEntry entry, UInt128 block)
    {
        for (int i = 0; i < entry.TrustedCount; i++)
        {
            if (entry.Trusted![i] == block) return true;
        }
        return false;
    }

    /// <summary>Remembers the last few blocks the account logged in from (oldest replaced first).</summary>
    private static void Trust(AccountEntry entry, UInt128 block)
    {
        if (IsTrusted(entry, block)) return;
        entry.Trusted ??= new UInt128[TrustedBlocksPerAccount];
        entry.Trusted[entry.TrustedNext] = block;
        entry.TrustedNext = (entry.TrustedNext + 1) % TrustedBlocksPerAccount;
        if (entry.TrustedCount < TrustedBlocksPerAccount) entry.TrustedCount++;
    }

    private BlockEntry Block(UInt128 key, long now)
    {
        if (_blocks.TryGetValue(key, out var entry)) return entry;
        MaybePrune(now, _blocks.Count + 1);
        return _blocks.GetOrAdd(key, static (_, t) => new BlockEntry { LastActivity = t }, now);
    }

    private AccountEntry Account(string host, string user, long now)
    {
        if (_accounts.TryGetValue((host, user), out var entry)) return entry;
        MaybePrune(now, _accounts.Count + 1);
        return _accounts.GetOrAdd((host, user), static (_, t) => new AccountEntry { LastActivity = t }, now);
    }

    /// <summary>Prunes idle entries once a minute, and at once when a table would pass the cap.</summary>
    private void MaybePrune(long now, int size)
    {
        bool full = size > _maxEntries;
        if (!full && now - Volatile.Read(ref _lastPrune) < 60_000) return;
        if (Interlocked.Exchange(ref _pruning, 1) != 0) return;
        try
        {
            Volatile.Write(ref _lastPrune, now);
            PruneIdle(_blocks, now, static e => (e.LastActivity, e.BarredUntil));
            PruneIdle(_accounts, now, static e => (e.LastActivity, e.NextSlot));
            if (_blocks.Count >= _maxEntries) DropOldestHalf(_blocks, static e => e.LastActivity);
            if (_accounts.Count >= _maxEntries) DropOldestHalf(_accounts, static e => e.LastActivity);
        }
        finally
        {
            Volatile.Write(ref _pruning, 0);
        }
    }

    private void PruneIdle<TKey, TEntry>(ConcurrentDictionary<TKey, TEntry> table, long now, Func<TEntry, (long Last, long Until)> times)
        where TKey : notnull
    {
        foreach (var kv in table)
        {
            var (last, until) = times(kv.Value);
            if (now - last > _forget && now >= until) table.TryRemove(kv);
        }
    }

    /// <summary>The table is full of recently active entries (an attacker with many addresses): forget the least recently active half.</summary>
    private static void DropOldestHalf<TKey, TEntry>(ConcurrentDictionary<TKey, TEntry> table, Func<TEntry, long> last)
        where TKey : notnull
    {
        var times = new List<long>(table.Count);
        foreach (var kv in table) times.Add(last(kv.Value));
        if (times.Count == 0) return;
        times.Sort();
        long cutoff = times[times.Count / 2];
        foreach (var kv in table)
        {
            if (last(kv.Value) <= cutoff) table.TryRemove(kv);
        }
    }
}
