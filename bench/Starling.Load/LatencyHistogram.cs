using System.Numerics;

namespace Starling.Load;

/// <summary>
/// Log-linear histogram of non-negative values (microseconds here), in the spirit of HdrHistogram:
/// values below 64 get their own bucket, above that each power of two is split into 32 linear
/// sub-buckets, so any value is recorded within ~3% (bucket width / lower bound ≤ 1/32).
/// Recording is lock-free (Interlocked) and allocation-free; 1,920 buckets cover the whole long range.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBits = 5;                  // 32 sub-buckets per power of two
    private const int Linear = 2 << SubBits;        // 64 exact buckets
    private const int BucketCount = (64 - SubBits) * (1 << SubBits) + Linear;

    private readonly long[] _counts = new long[BucketCount];
    private long _total;
    private long _sum;
    private long _max;
    private long _min = long.MaxValue;

    public long Count => Volatile.Read(ref _total);

    public long Max => Count == 0 ? 0 : Volatile.Read(ref _max);

    public long Min => Count == 0 ? 0 : Volatile.Read(ref _min);

    public double Mean => Count == 0 ? 0 : (double)Volatile.Read(ref _sum) / Count;

    internal static int BucketOf(long value)
    {
        if (value < Linear) return (int)value;
        int exp = BitOperations.Log2((ulong)value) - SubBits;      // >= 1
        long sub = value >> exp;                                     // 32..63
        return exp * (1 << SubBits) + (int)sub;
    }

    /// <summary>Highest value that falls in <paramref name="bucket"/> (what percentiles report, like HdrHistogram's "highest equivalent value").</summary>
    internal static long UpperBound(int bucket)
    {
        if (bucket < Linear) return bucket;
        int exp = bucket / (1 << SubBits) - 1;
        long sub = bucket - exp * (1 << SubBits);
        return ((sub + 1) << exp) - 1;
    }

    public void Record(long value)
    {
        if (value < 0) value = 0;
        Interlocked.Increment(ref _counts[BucketOf(value)]);
        Interlocked.Increment(ref _total);
        Interlocked.Add(ref _sum, value);
        long m;
        while (value > (m = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, value, m) != m)
        {
        }
        while (value < (m = Volatile.Read(ref _min)) && Interlocked.CompareExchange(ref _min, value, m) != m)
        {
        }
    }

    /// <summary>Value at percentile <paramref name="percent"/> (0..100]: the upper bound of the bucket holding that rank, capped at the max seen.</summary>
    public long Percentile(double percent)
    {
        long total = Count;
        if (total == 0) return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(percent / 100.0 * total));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += Volatile.Read(ref _counts[i]);
            if (seen >= rank) return Math.Min(UpperBound(i), Max);
        }
        return Max;
    }
}
