using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Starling.Report;

/// <summary>One JSON line (a flat object) as name → value, plus where it came from.</summary>
internal sealed class Line
{
    public required string File { get; init; }
    public required Dictionary<string, JsonElement> Fields { get; init; }

    public string Scenario => Str("scenario") ?? "";
    public bool Unavailable => Fields.TryGetValue("unavailable", out var u) && u.ValueKind == JsonValueKind.True;

    public double? Num(string name) =>
        Fields.TryGetValue(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    public string? Str(string name) =>
        Fields.TryGetValue(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : v.ToString() : null;
}

/// <summary>A measured value over repeats: the median and the range, or why there is none.</summary>
internal sealed record Stat(IReadOnlyList<double> Values, string? Missing = null)
{
    public bool HasValue => Values.Count > 0;
    public double Median
    {
        get
        {
            if (Values.Count == 0) return double.NaN;
            var s = Values.Order().ToArray();
            return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
        }
    }

    public double Min => Values.Count == 0 ? double.NaN : Values.Min();
    public double Max => Values.Count == 0 ? double.NaN : Values.Max();

    public static Stat Of(IEnumerable<double> values, string? missing = null)
    {
        var list = values.Where(v => !double.IsNaN(v)).ToList();
        return new Stat(list, list.Count == 0 ? missing ?? "no result" : null);
    }
}

/// <summary>One step of a chat rate search, with its repeat.</summary>
internal sealed record ChatStep(int Repeat, double RateTarget, double DeliveredPerS, double P50, double P99, double P999,
    double Lost, double Sent, double ServerCpu, double LoadgenCpu, double SendLagP99, bool Pass);

/// <summary>Everything compare.sh wrote for one server (or the relay).</summary>
internal sealed class ServerResults
{
    public required string Name { get; init; }
    public List<Line> Lines { get; } = [];

    public IEnumerable<Line> In(string filePrefix) =>
        Lines.Where(l => Path.GetFileName(l.File).StartsWith(filePrefix, StringComparison.Ordinal));

    public string? UnavailableReason(string filePrefix) =>
        In(filePrefix).Where(l => l.Unavailable).Select(l => l.Str("reason")).FirstOrDefault();

    public Stat Metric(string filePrefix, string scenario, string field)
    {
        var values = In(filePrefix).Where(l => l.Scenario == scenario && !l.Unavailable).Select(l => l.Num(field) ?? double.NaN);
        return Stat.Of(values, UnavailableReason(filePrefix));
    }

    /// <summary>
    /// KB of RSS per idle session, counted from the freshly started server (median footprint): (RSS at the end − RSS
    /// 3 s after start) / N. The same rule for every server; it charges the sessions with every one-off growth too
    /// (libraries loaded by the first logins, pools), so it is conservative. (The loadgen's own "before" sample, taken
    /// after a warm-up login run, can include that run's garbage, which a server that collects after a burst — Starling
    /// does — then returns, making the delta meaningless at small N.)
    /// </summary>
    public Stat IdleKbPerSession(string filePrefix)
    {
        var start = Metric("footprint", "footprint", "rss_3s_kb");
        if (!start.HasValue) return Metric(filePrefix, "idle", "server_rss_per_session_kb");
        double startMb = start.Median / 1024.0;
        var values = In(filePrefix).Where(l => l.Scenario == "idle" && !l.Unavailable)
            .Select(l => l.Num("server_rss_end_mb") is { } end && l.Num("users") is { } n && n > 0 ? (end - startMb) * 1024.0 / n : double.NaN);
        return Stat.Of(values, UnavailableReason(filePrefix));
    }

    public List<ChatStep> ChatSteps() =>
        In("chat-").Where(l => l.Scenario == "chat" && !l.Unavailable).Select(l => new ChatStep(
            RepeatOf(l.File), l.Num("rate_target") ?? 0, l.Num("delivered_per_s") ?? 0, l.Num("p50_ms") ?? double.NaN,
            l.Num("p99_ms") ?? double.NaN, l.Num("p999_ms") ?? double.NaN, l.Num("lost") ?? 0, l.Num("sent") ?? 0,
            l.Num("server_cpu_pct") ?? double.NaN, l.Num("loadgen_cpu_pct") ?? double.NaN,
            l.Num("send_lag_p99_ms") ?? double.NaN,
            l.Fields.TryGetValue("pass", out var p) && p.ValueKind == JsonValueKind.True)).ToList();

    /// <summary>Highest passing chat rate per repeat (0 when even the first step failed).</summary>
    public Stat MaxChatRate() =>
        Stat.Of(In("chat-").Where(l => l.Scenario == "chat-search" && !l.Unavailable).Select(l => l.Num("highest_passing_rate") ?? 0),
            UnavailableReason("chat-"));

    public IEnumerable<string> ChatStopReasons() =>
        In("chat-").Where(l => l.Scenario == "chat-search" && !l.Unavailable).Select(l => l.Str("stopped_because") ?? "?");

    internal static int RepeatOf(string file)
    {
        var m = Regex.Match(Path.GetFileName(file), @"-r(\d+)\.jsonl$");
        return m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 1;
    }
}

internal sealed class Results
{
    public static readonly string[] Servers = ["starling", "prosody", "ejabberd"];

    public required Dictionary<string, string> Facts { get; init; }
    public required Dictionary<string, ServerResults> ByServer { get; init; }

    public ServerResults Get(string name) => ByServer.TryGetValue(name, out var r) ? r : new ServerResults { Name = name };

    public string Fact(string key, string fallback = "?") => Facts.TryGetValue(key, out var v) && v.Length > 0 ? v : fallback;

    public static Results Load(string dir)
    {
        var facts = new Dictionary<string, string>(StringComparer.Ordinal);
        string factsFile = Path.Combine(dir, "facts.txt");
        if (File.Exists(factsFile))
        {
            foreach (string raw in File.ReadAllLines(factsFile))
            {
                int eq = raw.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0) facts[raw[..eq]] = raw[(eq + 1)..];
            }
        }

        var by = new Dictionary<string, ServerResults>(StringComparer.Ordinal);
        foreach (string sub in Directory.GetDirectories(dir))
        {
            var sr = new ServerResults { Name = Path.GetFileName(sub) };
            foreach (string file in Directory.GetFiles(sub, "*.jsonl").Order(StringComparer.Ordinal))
            {
                foreach (string text in File.ReadLines(file))
                {
                    if (string.IsNullOrWhiteSpace(text)) continue;
                    try
                    {
                        using var doc = JsonDocument.Parse(text);
                        var fields = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal);
                        sr.Lines.Add(new Line { File = file, Fields = fields });
                    }
                    catch (JsonException)
                    {
                        Console.Error.WriteLine($"skipping a line that is not JSON in {file}");
                    }
                }
            }

            by[sr.Name] = sr;
        }

        return new Results { Facts = facts, ByServer = by };
    }
}
