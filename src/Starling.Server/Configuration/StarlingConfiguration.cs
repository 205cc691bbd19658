using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Starling.Xmpp;

namespace Starling.Server.Configuration;

/// <summary>A configuration problem, said in one line that tells the admin what to fix and where.</summary>
public sealed class ConfigurationException : Exception
{
    public ConfigurationException(string message) : base(message) { }

    public ConfigurationException(string message, Exception inner) : base(message, inner) { }

    public ConfigurationException() { }
}

/// <summary>Loaded, validated configuration plus where it came from.</summary>
public sealed class LoadedConfiguration
{
    public required StarlingOptions Options { get; init; }

    /// <summary>The config file used, or null when running on defaults.</summary>
    public string? FilePath { get; init; }

    /// <summary>Absolute data folder.</summary>
    public required string DataDirectory { get; init; }

    public string DatabasePath => Path.GetFullPath(Path.Combine(DataDirectory, Options.Storage.SqlitePath));

    public string CertificateDirectory => Path.Combine(DataDirectory, "certs");

    public string CertificatePath(HostOptions host) =>
        ResolvePath(host.Certificate) ?? Path.Combine(CertificateDirectory, host.Name + ".crt");

    public string KeyPath(HostOptions host) =>
        ResolvePath(host.Key) ?? Path.Combine(CertificateDirectory, host.Name + ".key");

    public HostOptions? FindHost(string domain)
    {
        foreach (var h in Options.Hosts)
        {
            if (h.Name == domain) return h;
        }
        return null;
    }

    private string? ResolvePath(string? path)
    {
        if (string.IsNullOrWhiteSpace(path)) return null;
        var baseDir = FilePath is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(FilePath)!;
        return Path.GetFullPath(Path.Combine(baseDir, path));
    }
}

public static class StarlingConfiguration
{
    /// <summary>Environment variables with this prefix override config keys: STARLING_C2s__Port=5223.</summary>
    public const string EnvironmentPrefix = "STARLING_";

    /// <summary>Name of the config file looked for in the working directory when none is given.</summary>
    public const string DefaultFileName = "starling.json";

    /// <summary>
    /// Loads the config: file (explicit path, else $STARLING_CONFIG, else ./starling.json if present, else defaults),
    /// then STARLING_* environment variables, then --Key=Value overrides; binds and validates.
    /// </summary>
    public static LoadedConfiguration Load(string? configPath, IEnumerable<string>? overrides = null)
    {
        string? file = configPath;
        if (file is null)
        {
            var env = Environment.GetEnvironmentVariable("STARLING_CONFIG");
            if (!string.IsNullOrEmpty(env)) file = env;
            else if (File.Exists(DefaultFileName)) file = DefaultFileName;
        }

        var builder = new ConfigurationBuilder();
        if (file is not null)
        {
            file = Path.GetFullPath(file);
            CheckJson(file);
            builder.AddJsonFile(file, optional: false, reloadOnChange: false);
        }
        builder.AddInMemoryCollection(EnvironmentOverrides());
        var args = overrides?.ToArray() ?? [];
        if (args.Length > 0) builder.AddCommandLine(args);

        IConfigurationRoot root;
        try
        {
            root = builder.Build();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or IOException)
        {
            throw new ConfigurationException($"cannot read configuration: {ex.Message}", ex);
        }

        var options = new StarlingOptions();
        try
        {
            root.Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException ex)
        {
            throw new ConfigurationException($"{Where(file)}{ex.Message} See config/starling.example.json for every key.", ex);
        }
        if (options.Hosts.Count == 0) options.Hosts.Add(new HostOptions { Name = "localhost" });

        Validate(options, file);

        var baseDir = file is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(file)!;
        return new LoadedConfiguration
        {
            Options = options,
            FilePath = file,
            DataDirectory = Path.GetFullPath(Path.Combine(baseDir, options.DataDirectory)),
        };
    }

    /// <summary>Variables with the prefix that are not config keys: the config file, and the wrapper script's build mode.</summary>
    private static readonly string[] ReservedVariables = ["STARLING_CONFIG", "STARLING_BUILD"];

    /// <summary>STARLING_Section__Key=value → Section:Key (except <see cref="ReservedVariables"/>).</summary>
    private static Dictionary<string, string?> EnvironmentOverrides()
    {
        var result = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var name = (string)e.Key;
            if (!name.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase) || ReservedVariables.Contains(name, StringComparer.OrdinalIgnoreCase)) continue;
            result[name[EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal)] = (string?)e.Value;
        }
        return result;
    }

    private static string Where(string? file) => file is null ? "" : $"{file}: ";

    /// <summary>Parses the file ourselves first so a syntax error names the file, line and column.</summary>
    private static void CheckJson(string file)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"cannot read config file {file}: {ex.Message}", ex);
        }
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip,
                AllowTrailingCommas = true,
            });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ConfigurationException($"{file}: the top level must be a JSON object {{ ... }}");
        }
        catch (JsonException ex)
        {
            long line = (ex.LineNumber ?? 0) + 1;
            long col = (ex.BytePositionInLine ?? 0) + 1;
            throw new ConfigurationException($"{file}:{line}:{col}: invalid JSON: {FirstSentence(ex.Message)}", ex);
        }
    }

    private static string FirstSentence(string message)
    {
        int i = message.IndexOf(" Path:", StringComparison.Ordinal);
        return i > 0 ? message[..i] : message;
    }

    private static void Validate(StarlingOptions o, string? file)
    {
        var errors = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < o.Hosts.Count; i++)
        {
            var h = o.Hosts[i];
            if (string.IsNullOrWhiteSpace(h.Name))
            {
                errors.Add($"Hosts:{i}:Name is empty; give the domain name of the virtual host");
                continue;
            }
            if (!Jid.TryNormalizeDomain(h.Name, out var normalized))
            {
                errors.Add($"Hosts:{i}:Name '{h.Name}' is not a valid domain name");
                continue;
            }
            h.Name = normalized;
            if (!names.Add(normalized)) errors.Add($"Hosts:{i}:Name '{normalized}' is listed twice");
            if (string.IsNullOrWhiteSpace(h.Certificate) != string.IsNullOrWhiteSpace(h.Key))
                errors.Add($"Hosts:{i} ({normalized}): set both Certificate and Key, or neither (a self-signed pair is generated)");
        }
        // 0 asks the OS for a free port (StarlingHost.C2sEndPoints reports the one bound); tests rely on it.
        if (o.C2s.Port is < 0 or > 65535) errors.Add($"C2s:Port {o.C2s.Port} is not a TCP port (1-65535, or 0 for any free port)");
        foreach (var a in o.C2s.Addresses)
        {
            if (!IPAddress.TryParse(a, out _)) errors.Add($"C2s:Addresses: '{a}' is not an IP address");
        }
        if (o.C2s.ResourceConflict is not ("replace" or "reject"))
            errors.Add($"C2s:ResourceConflict '{o.C2s.ResourceConflict}' must be \"replace\" or \"reject\"");
        Positive(errors, "C2s:NegotiationTimeoutSeconds", o.C2s.NegotiationTimeoutSeconds);
        Positive(errors, "C2s:IdleTimeoutSeconds", o.C2s.IdleTimeoutSeconds);
        Positive(errors, "C2s:KeepaliveSeconds", o.C2s.KeepaliveSeconds);
        Positive(errors, "C2s:CloseTimeoutSeconds", o.C2s.CloseTimeoutSeconds);
        Positive(errors, "C2s:MaxAuthFailures", o.C2s.MaxAuthFailures);
        if (o.C2s.ReadBytesPerSecond < 0) errors.Add("C2s:ReadBytesPerSecond must be 0 (off) or more");
        if (o.C2s.ReadBytesPerSecond > 0 && o.C2s.ReadBurstBytes < o.Limits.MaxStanzaBytes)
            errors.Add($"C2s:ReadBurstBytes {o.C2s.ReadBurstBytes} must be at least Limits:MaxStanzaBytes ({o.Limits.MaxStanzaBytes}), or one stanza could not pass at once");
        // RFC 6120 §13.12: a server must accept stanzas of at least 10,000 bytes.
        if (o.Limits.MaxStanzaBytes < 10_000) errors.Add($"Limits:MaxStanzaBytes {o.Limits.MaxStanzaBytes} is below 10000, the minimum RFC 6120 §13.12 requires");
        Positive(errors, "Limits:MaxDepth", o.Limits.MaxDepth);
        Positive(errors, "Limits:MaxAttributes", o.Limits.MaxAttributes);
        if (o.Limits.MaxOutboundQueueBytes < o.Limits.MaxStanzaBytes)
            errors.Add($"Limits:MaxOutboundQueueBytes {o.Limits.MaxOutboundQueueBytes} must be at least Limits:MaxStanzaBytes ({o.Limits.MaxStanzaBytes})");
        Positive(errors, "Limits:MaxConnections", o.Limits.MaxConnections);
        Positive(errors, "Limits:MaxConnectionsPerAddress", o.Limits.MaxConnectionsPerAddress);
        Positive(errors, "Limits:MaxUnauthenticatedConnections", o.Limits.MaxUnauthenticatedConnections);
        Positive(errors, "Limits:MaxResourcesPerUser", o.Limits.MaxResourcesPerUser);
        if (o.Limits.OfflineQuota < 0) errors.Add("Limits:OfflineQuota must be 0 or more");
        if (!string.Equals(o.Storage.Provider, "sqlite", StringComparison.OrdinalIgnoreCase))
            errors.Add($"Storage:Provider '{o.Storage.Provider}' is not supported (supported: sqlite)");
        if (string.IsNullOrWhiteSpace(o.Storage.SqlitePath)) errors.Add("Storage:SqlitePath is empty");
        if (string.IsNullOrWhiteSpace(o.DataDirectory)) errors.Add("DataDirectory is empty");
        if (!Enum.TryParse<Microsoft.Extensions.Logging.LogLevel>(o.Log.Level, ignoreCase: true, out _))
            errors.Add($"Log:Level '{o.Log.Level}' must be one of Trace, Debug, Information, Warning, Error, Critical");
        if (o.Log.Format is not ("text" or "json")) errors.Add($"Log:Format '{o.Log.Format}' must be \"text\" or \"json\"");
        foreach (var m in o.Modules.Disabled)
        {
            if (!Modules.ModuleCatalog.Names.Contains(m))
                errors.Add($"Modules:Disabled: unknown module '{m}' (known: {string.Join(", ", Modules.ModuleCatalog.Names)})");
        }

        if (errors.Count > 0)
        {
            var prefix = file is null ? "configuration" : file;
            throw new ConfigurationException(errors.Count == 1
                ? $"{prefix}: {errors[0]}"
                : $"{prefix}: {errors.Count} problems:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors));
        }
    }

    private static void Positive(List<string> errors, string key, int value)
    {
        if (value <= 0) errors.Add($"{key} must be a positive number (is {value.ToString(CultureInfo.InvariantCulture)})");
    }
}
