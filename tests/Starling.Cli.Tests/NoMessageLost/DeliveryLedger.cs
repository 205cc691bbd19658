using System.Globalization;
using System.Text;

namespace Starling.Cli.Tests.NoMessageLost;

/// <summary>The way a numbered message reached the receiver.</summary>
public enum DeliveryPath
{
    /// <summary>Written to the receiver's live session as it was routed.</summary>
    Live,
    /// <summary>Sent again by the server after a XEP-0198 resumption (it was sent before the resumption).</summary>
    Resumed,
    /// <summary>From offline storage, in a new session (the server's XEP-0203 delay stamp).</summary>
    Offline,
}

/// <summary>
/// The books of the no-message-lost proof: which numbers the sender sent, which the server acknowledged (XEP-0198
/// &lt;a h/&gt;), which the receiver got and how. The verdict: every acknowledged number received, none received
/// twice. A number sent but never acknowledged may arrive or not (the sender cannot know whether the server took
/// it), but at most once. Thread-safe: the sender's and the receiver's read loops write into it.
/// </summary>
public sealed class DeliveryLedger
{
    private readonly object _lock = new();
    private readonly bool[] _sent;
    private readonly bool[] _acked;
    private readonly int[] _received;
    private readonly int[] _byPath = new int[3];
    private readonly List<string> _duplicates = [];
    private readonly List<string> _bounced = [];
    private readonly List<string> _foreign = [];
    private int _deliveries;

    public DeliveryLedger(int count)
    {
        Count = count;
        _sent = new bool[count + 1];
        _acked = new bool[count + 1];
        _received = new int[count + 1];
    }

    /// <summary>Messages are numbered 1..Count.</summary>
    public int Count { get; }

    /// <summary>Messages received so far, duplicates and foreign ones included.</summary>
    public int Deliveries
    {
        get
        {
            lock (_lock) return _deliveries;
        }
    }

    /// <summary>The highest number sent so far (0 before the first).</summary>
    public int LastSent { get; private set; }

    public void Sent(int n)
    {
        lock (_lock)
        {
            _sent[n] = true;
            if (n > LastSent) LastSent = n;
        }
    }

    public void Acknowledged(int n)
    {
        lock (_lock) _acked[n] = true;
    }

    /// <summary>The server answered message <paramref name="n"/> with an error.</summary>
    public void Bounced(int n, string error)
    {
        lock (_lock) _bounced.Add($"m-{n}: {error}");
    }

    /// <summary>A message arrived; <paramref name="body"/> is its body (the number). Anything that is not one of ours is kept as foreign.</summary>
    public void Received(string? body, DeliveryPath path)
    {
        lock (_lock)
        {
            _deliveries++;
            if (!int.TryParse(body, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || n > Count)
            {
                _foreign.Add(body ?? "(no body)");
                return;
            }
            _received[n]++;
            _byPath[(int)path]++;
            if (_received[n] > 1) _duplicates.Add($"{n} (copy {_received[n]}, {path})");
        }
    }

    /// <summary>True when every acknowledged number has been received at least once.</summary>
    public bool AllAcknowledgedReceived()
    {
        lock (_lock)
        {
            for (int n = 1; n <= Count; n++)
            {
                if (_acked[n] && _received[n] == 0) return false;
            }
            return true;
        }
    }

    public LedgerVerdict Verdict()
    {
        lock (_lock)
        {
            var missing = new List<int>();
            int sent = 0, acked = 0, received = 0, receivedUnacked = 0;
            for (int n = 1; n <= Count; n++)
            {
                if (_sent[n]) sent++;
                if (_acked[n]) acked++;
                if (_received[n] > 0) received++;
                if (_received[n] > 0 && !_acked[n]) receivedUnacked++;
                if (_acked[n] && _received[n] == 0) missing.Add(n);
            }
            return new LedgerVerdict(Count, sent, acked, received, receivedUnacked, _byPath[(int)DeliveryPath.Live], _byPath[(int)DeliveryPath.Resumed],
                _byPath[(int)DeliveryPath.Offline], missing, [.. _duplicates], [.. _bounced], [.. _foreign]);
        }
    }
}

/// <summary>The outcome of a run: counts, and the numbers that break the promise.</summary>
public sealed record LedgerVerdict(
    int Count,
    int Sent,
    int Acknowledged,
    int Received,
    int ReceivedUnacknowledged,
    int Live,
    int Resumed,
    int Offline,
    List<int> Missing,
    List<string> Duplicates,
    List<string> Bounced,
    List<string> Foreign)
{
    /// <summary>Every acknowledged message received, none twice, none bounced, nothing unexpected.</summary>
    public bool Holds => Missing.Count == 0 && Duplicates.Count == 0 && Bounced.Count == 0 && Foreign.Count == 0;

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"N {Count}: sent {Sent}, acknowledged {Acknowledged}, received {Received} distinct ({ReceivedUnacknowledged} of them unacknowledged); ");
        sb.Append(CultureInfo.InvariantCulture, $"deliveries by path: live {Live}, resumed {Resumed}, offline {Offline}; ");
        sb.Append(CultureInfo.InvariantCulture, $"missing (acknowledged, never received) {Missing.Count}{List(Ranges(Missing))}; duplicates {Duplicates.Count}{List(Duplicates)}");
        if (Bounced.Count > 0) sb.Append(CultureInfo.InvariantCulture, $"; bounced {Bounced.Count}{List(Bounced)}");
        if (Foreign.Count > 0) sb.Append(CultureInfo.InvariantCulture, $"; not ours {Foreign.Count}{List(Foreign)}");
        return sb.ToString();
    }

    private static string List(List<string> items) =>
        items.Count == 0 ? "" : " [" + string.Join(", ", items.Count > 40 ? [.. items[..40], "…"] : items) + "]";

    /// <summary>1,2,3,7 → "1-3", "7".</summary>
    private static List<string> Ranges(List<int> numbers)
    {
        var ranges = new List<string>();
        for (int i = 0; i < numbers.Count;)
        {
            int j = i;
            while (j + 1 < numbers.Count && numbers[j + 1] == numbers[j] + 1) j++;
            ranges.Add(i == j ? numbers[i].ToString(CultureInfo.InvariantCulture) : $"{numbers[i]}-{numbers[j]}");
            i = j + 1;
        }
        return ranges;
    }
}
