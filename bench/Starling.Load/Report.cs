using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Starling.Load;

/// <summary>One result (a JSON line): ordered key/value pairs. Values: string, bool, integers, double, or a string→long map.</summary>
internal sealed class ResultLine
{
    private readonly List<KeyValuePair<string, object?>> _fields = [];

    public ResultLine(string scenario) => Set("scenario", scenario);

    public IReadOnlyList<KeyValuePair<string, object?>> Fields => _fields;

    public ResultLine Set(string key, object? value)
    {
        int i = _fields.FindIndex(f => f.Key == key);
        if (i >= 0) _fields[i] = new(key, value);
        else _fields.Add(new(key, value));
        return this;
    }

    public object? Get(string key) => _fields.Find(f => f.Key == key).Value;

    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            foreach (var (key, value) in _fields)
            {
                w.WritePropertyName(key);
                WriteValue(w, value);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case int i: w.WriteNumberValue(i); break;
            case long l: w.WriteNumberValue(l); break;
            case double d: w.WriteNumberValue(double.IsFinite(d) ? Math.Round(d, 3) : 0); break;
            case IReadOnlyDictionary<string, long> map:
                w.WriteStartObject();
                foreach (var (k, v) in map.OrderByDescending(p => p.Value)) w.WriteNumber(k, v);
                w.WriteEndObject();
                break;
            default: w.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }
}

/// <summary>Where results go: JSON lines to stdout or appended to --json FILE; a human table at the end; progress on stderr.</summary>
internal sealed class Reporter
{
    private readonly string? _jsonFile;
    private readonly List<ResultLine> _lines = [];

    public Reporter(string? jsonFile) => _jsonFile = jsonFile;

    public void Emit(ResultLine line)
    {
        _lines.Add(line);
        string json = line.ToJson();
        if (_jsonFile is null)
        {
            Console.Out.WriteLine(json);
            Console.Out.Flush();
        }
        else
        {
            File.AppendAllText(_jsonFile, json + "\n");
        }
    }

    public static void Progress(string message) =>
        Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    /// <summary>Human summary: one block per result line (stderr when JSON goes to stdout, so stdout stays parseable).</summary>
    public void PrintSummary()
    {
        var o = _jsonFile is null ? Console.Error : Console.Out;
        o.WriteLine();
        o.WriteLine("==== summary ====");
        foreach (var line in _lines)
        {
            var parts = new List<string>();
            foreach (var (key, value) in line.Fields)
            {
                if (key is "scenario") continue;
                string text = value switch
                {
                    double d => d.ToString(Math.Abs(d) >= 100 ? "F0" : "0.###", CultureInfo.InvariantCulture),
                    IReadOnlyDictionary<string, long> m => m.Count == 0 ? "-" : string.Join(",", m.OrderByDescending(p => p.Value).Take(4).Select(p => $"{p.Key}={p.Value}")),
                    null => "-",
                    _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
                };
                parts.Add($"{key}={text}");
            }
            o.WriteLine($"{line.Get("scenario"),-8} " + string.Join("  ", parts));
        }
    }
}

/// <summary>Resident memory of the server process(es) from /proc/PID/status (VmRSS), summed.</summary>
internal sealed class ServerMemory
{
    private readonly List<int> _pids;

    private ServerMemory(List<int> pids) => _pids = pids;

    public IReadOnlyList<int> Pids => _pids;

    public bool Enabled => _pids.Count > 0;

    public static ServerMemory Create(LoadOptions o)
    {
        var pids = new List<int>(o.ServerPids);
        if (o.ServerName is not null) pids.AddRange(FindByName(o.ServerName));
        return new ServerMemory(pids.Distinct().ToList());
    }

    /// <summary>Pids whose comm or command line contains <paramref name="name"/> (never this process).</summary>
    public static IEnumerable<int> FindByName(string name)
    {
        int self = Environment.ProcessId;
        if (!Directory.Exists("/proc")) yield break;
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid == self) continue;
            string comm, cmdline;
            try
            {
                comm = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }
            if (cmdline.Contains("starling-load", StringComparison.Ordinal)) continue; // other loadgens
            if (comm.Contains(name, StringComparison.Ordinal) || cmdline.Contains(name, StringComparison.Ordinal)) yield return pid;
        }
    }

    /// <summary>Sum of VmRSS over the pids, in bytes; null when no pid is set or none can be read.</summary>
    public long? SampleRssBytes()
    {
        if (_pids.Count == 0) return null;
        long total = 0;
        bool any = false;
        foreach (int pid in _pids)
        {
            long? rss = ReadRss(pid);
            if (rss is null) continue;
            total += rss.Value;
            any = true;
        }
        return any ? total : null;
    }

    public static long? ReadRss(int pid)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var digits = line.AsSpan(6).Trim();
                int space = digits.IndexOf(' ');
                if (space > 0) digits = digits[..space];
                return long.Parse(digits, CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>USER_HZ: the unit of utime/stime in /proc/PID/stat (100 on Linux).</summary>
    public const double ClockTicksPerSecond = 100.0;

    /// <summary>Sum of utime+stime (clock ticks) over the pids; 0 when unknown.</summary>
    public long SampleCpuTicks()
    {
        long total = 0;
        foreach (int pid in _pids)
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{pid}/stat");
                var parts = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                total += long.Parse(parts[11], CultureInfo.InvariantCulture) + long.Parse(parts[12], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
            }
        }
        return total;
    }

    /// <summary>The loadgen's own memory: RSS and managed heap, in bytes.</summary>
    public static (long Rss, long Managed) Self()
    {
        using var p = Process.GetCurrentProcess();
        return (ReadRss(Environment.ProcessId) ?? p.WorkingSet64, GC.GetTotalMemory(false));
    }
}
