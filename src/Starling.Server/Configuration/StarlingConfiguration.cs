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

    /// <summary>What is accepted but should change (deprecated keys): shown by `starling check` and logged at start.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    public string DatabasePath => Path.GetFullPath(Path.Combine(DataDirectory, Options.Storage.SqlitePath));

    public string CertificateDirectory => Path.Combine(DataDirectory, "certs");

    /// <summary>The control socket (Control:SocketPath, relative to the data folder; default control/starling.sock).</summary>
    public string ControlSocketPath => Path.GetFullPath(Path.Combine(DataDirectory,
        string.IsNullOrWhiteSpace(Options.Control.SocketPath) ? Path.Combine("control", "starling.sock") : Options.Control.SocketPath));

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

    private const int MaxSocketPathBytes = 107;

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
        CheckCommandLine(args);
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

        CheckModuleSections(root, file);
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

        var warnings = new List<string>();
        Validate(options, root, file, warnings);

        var baseDir = file is null ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(file)!;
        var loaded = new LoadedConfiguration
        {
            Options = options,
            FilePath = file,
            DataDirectory = Path.GetFullPath(Path.Combine(baseDir, options.DataDirectory)),
            Warnings = warnings,
        };
        // unix(7): sun_path holds 108 bytes with the terminating NUL.
        if (options.Control.Enabled && System.Text.Encoding.UTF8.GetByteCount(loaded.ControlSocketPath) > MaxSocketPathBytes)
            throw new ConfigurationException($"{(file is null ? "configuration" : file)}: the control socket path {loaded.ControlSocketPath} is longer than the {MaxSocketPathBytes} bytes a Unix socket allows; set Control:SocketPath to a shorter path (or Control:Enabled to false)");
        return loaded;
    }

    /// <summary>
    /// STARLING_* variables that are not configuration keys, the one list of them: the config file's path (read by
    /// <see cref="Load"/>), the ./starling wrapper's build mode and the bench scripts' build folder. The binder never sees them.
    /// </summary>
    public static readonly IReadOnlyList<string> ReservedVariables = ["STARLING_CONFIG", "STARLING_BUILD", "STARLING_BIN"];

    /// <summary>
    /// STARLING_Section__Key=value → Section:Key. The prefix is matched case-sensitively, as Unix names are:
    /// Starling_X or starling_x belong to someone else. Each variable is checked on its own first, so a stray one is
    /// named as a variable instead of being blamed on the config file.
    /// </summary>
    private static Dictionary<string, string?> EnvironmentOverrides()
    {
        var result = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var name = (string)e.Key;
            if (!name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal) || ReservedVariables.Contains(name, StringComparer.Ordinal)) continue;
            var key = name[EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal);
            var value = (string?)e.Value;
            CheckKey(key, value, $"environment variable {name}");
            result[key] = value;
        }
        return result;
    }

    /// <summary>Checks each --Section:Key=value override on its own, so a typo is named as the option it is.</summary>
    private static void CheckCommandLine(string[] args)
    {
        foreach (var arg in args)
        {
            if (!arg.StartsWith("--", StringComparison.Ordinal)) continue;
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0) continue;
            CheckKey(arg[2..eq], arg[(eq + 1)..], $"command-line option {arg[..eq]}");
        }
    }

    /// <summary>
    /// Binds one key alone: if that fails even with unknown keys allowed, the value is wrong; if it fails only when
    /// they are not, the key does not exist.
    /// </summary>
    private static void CheckKey(string key, string? value, string source)
    {
        if (key.Length == 0 || key.StartsWith(':') || key.EndsWith(':'))
            throw new ConfigurationException($"{source} is not a configuration key (see config/starling.example.json)");
        var single = new ConfigurationBuilder().AddInMemoryCollection([new KeyValuePair<string, string?>(key, value)]).Build();
        try
        {
            single.Bind(new StarlingOptions(), o => o.ErrorOnUnknownConfiguration = false);
        }
        catch (InvalidOperationException ex)
        {
            throw new ConfigurationException($"{source}: {ex.Message}", ex);
        }
        try
        {
            single.Bind(new StarlingOptions(), o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException ex)
        {
            throw new ConfigurationException($"{source} is not a configuration key (see config/starling.example.json)", ex);
        }
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

    /// <summary>
    /// The sections under Modules are the module names (plus Disabled): an unknown module, or options for a module that
    /// has none, is named as such rather than as an unknown key of the binder's.
    /// </summary>
    private static void CheckModuleSections(IConfiguration root, string? file)
    {
        var errors = new List<string>();
        foreach (var section in root.GetSection("Modules").GetChildren())
        {
            var key = section.Key;
            if (string.Equals(key, "Disabled", StringComparison.OrdinalIgnoreCase) || string.Equals(key, "VersionShowOs", StringComparison.OrdinalIgnoreCase)) continue;
            var module = Modules.ModuleCatalog.Find(key, StringComparison.OrdinalIgnoreCase);
            if (module is null)
                errors.Add($"Modules:{key}: unknown module '{key}' (known: {string.Join(", ", Modules.ModuleCatalog.Names)})");
            else if (!module.HasOptions)
                errors.Add($"Modules:{key}: module '{module.Name}' has no options");
        }
        if (errors.Count > 0) Fail(file, errors);
    }

    /// <summary>
    /// Keys that moved into a module's options (issue #14), accepted for one release: the old value goes to the new key,
    /// with a warning. Setting both is an error, since one of them would be silently ignored.
    /// </summary>
    private static void ApplyDeprecatedAliases(StarlingOptions o, IConfiguration root, List<string> warnings, List<string> errors)
    {
        var m = o.Modules;
        Alias(root, "Limits:OfflineQuota", "Modules:offline:QuotaMessages", o.Limits.OfflineQuota, v => m.Offline.QuotaMessages = v, warnings, errors);
        Alias(root, "Limits:OfflineQuotaBytes", "Modules:offline:QuotaBytes", o.Limits.OfflineQuotaBytes, v => m.Offline.QuotaBytes = v, warnings, errors);
        Alias(root, "Limits:MaxRosterItems", "Modules:roster:MaxItems", o.Limits.MaxRosterItems, v => m.Roster.MaxItems = v, warnings, errors);
        Alias(root, "Limits:MaxRosterNameLength", "Modules:roster:MaxNameLength", o.Limits.MaxRosterNameLength, v => m.Roster.MaxNameLength = v, warnings, errors);
        Alias(root, "Limits:MaxRosterGroups", "Modules:roster:MaxGroups", o.Limits.MaxRosterGroups, v => m.Roster.MaxGroups = v, warnings, errors);
        Alias(root, "Limits:MaxRosterGroupNameLength", "Modules:roster:MaxGroupNameLength", o.Limits.MaxRosterGroupNameLength, v => m.Roster.MaxGroupNameLength = v, warnings, errors);
        Alias(root, "Limits:MaxPrivateFragments", "Modules:private:MaxFragments", o.Limits.MaxPrivateFragments, v => m.Private.MaxFragments = v, warnings, errors);
        Alias(root, "Limits:MaxPrivateFragmentBytes", "Modules:private:MaxFragmentBytes", o.Limits.MaxPrivateFragmentBytes, v => m.Private.MaxFragmentBytes = v, warnings, errors);
        Alias(root, "Limits:MaxDirectedPresence", "Modules:presence:MaxDirectedPresence", o.Limits.MaxDirectedPresence, v => m.Presence.MaxDirectedPresence = v, warnings, errors);
        Alias(root, "Modules:VersionShowOs", "Modules:version:ShowOs", m.VersionShowOs, v => m.Version.ShowOs = v, warnings, errors);
    }

    private static void Alias<T>(IConfiguration root, string oldKey, string newKey, T? value, Action<T> set, List<string> warnings, List<string> errors)
        where T : struct
    {
        if (value is not { } v) return;
        if (root[newKey] is not null)
        {
            errors.Add($"{oldKey} is a deprecated alias of {newKey}, and both are set; remove {oldKey}");
            return;
        }
        set(v);
        warnings.Add($"{oldKey} is deprecated; use {newKey} (the old key is accepted until the next release)");
    }

    private static void Validate(StarlingOptions o, IConfiguration root, string? file, List<string> warnings)
    {
        var errors = new List<string>();
        ApplyDeprecatedAliases(o, root, warnings, errors);
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
            KnownModules(errors, $"Hosts:{i}:Modules:Disabled", h.Modules.Disabled);
            KnownModules(errors, $"Hosts:{i}:Modules:Enabled", h.Modules.Enabled);
            foreach (var m in h.Modules.Enabled)
            {
                if (h.Modules.Disabled.Contains(m)) errors.Add($"Hosts:{i}:Modules: module '{m}' is both in Enabled and in Disabled");
            }
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
        Positive(errors, "Auth:AddressFreeFailures", o.Auth.AddressFreeFailures);
        Positive(errors, "Auth:AddressDelayMilliseconds", o.Auth.AddressDelayMilliseconds);
        Positive(errors, "Auth:AddressMaxDelaySeconds", o.Auth.AddressMaxDelaySeconds);
        Positive(errors, "Auth:AccountFreeFailures", o.Auth.AccountFreeFailures);
        Positive(errors, "Auth:AccountDelayMilliseconds", o.Auth.AccountDelayMilliseconds);
        Positive(errors, "Auth:AccountMaxDelaySeconds", o.Auth.AccountMaxDelaySeconds);
        Positive(errors, "Auth:ForgetAfterSeconds", o.Auth.ForgetAfterSeconds);
        if (o.Auth.MaxTrackedEntries < 100) errors.Add($"Auth:MaxTrackedEntries must be at least 100 (is {o.Auth.MaxTrackedEntries.ToString(CultureInfo.InvariantCulture)})");
        if (o.C2s.ReadBytesPerSecond < 0) errors.Add("C2s:ReadBytesPerSecond must be 0 (off) or more");
        if (o.C2s.ReadBytesPerSecond > 0 && o.C2s.ReadBurstBytes < o.Limits.MaxStanzaBytes)
            errors.Add($"C2s:ReadBurstBytes {o.C2s.ReadBurstBytes} must be at least Limits:MaxStanzaBytes ({o.Limits.MaxStanzaBytes}), or one stanza could not pass at once");
        // RFC 6120 §13.12: a server must accept stanzas of at least 10,000 bytes.
        if (o.Limits.MaxStanzaBytes < 10_000) errors.Add($"Limits:MaxStanzaBytes {o.Limits.MaxStanzaBytes} is below 10000, the minimum RFC 6120 §13.12 requires");
        Positive(errors, "Limits:MaxDepth", o.Limits.MaxDepth);
        Positive(errors, "Limits:MaxAttributes", o.Limits.MaxAttributes);
        // Before bind a stream carries SASL and the bind request (~1 KB with a long resource); 4096 leaves room.
        if (o.Limits.MaxStanzaBytesBeforeBind < 4096 || (o.Limits.MaxStanzaBytes >= 10_000 && o.Limits.MaxStanzaBytesBeforeBind > o.Limits.MaxStanzaBytes))
            errors.Add($"Limits:MaxStanzaBytesBeforeBind {o.Limits.MaxStanzaBytesBeforeBind} must be between 4096 and Limits:MaxStanzaBytes ({o.Limits.MaxStanzaBytes})");
        Positive(errors, "Limits:MaxElementsPerStanza", o.Limits.MaxElementsPerStanza);
        Positive(errors, "Limits:MaxNamespaceDeclarations", o.Limits.MaxNamespaceDeclarations);
        Positive(errors, "Limits:MaxNamespacesPerStanza", o.Limits.MaxNamespacesPerStanza);
        // The longest namespace of RFC 6120/6121 (urn:ietf:params:xml:ns:xmpp-streams) must fit, with room.
        if (o.Limits.MaxNamespaceBytes < 256) errors.Add($"Limits:MaxNamespaceBytes {o.Limits.MaxNamespaceBytes} is below 256");
        if (o.Limits.MaxOutboundQueueBytes < o.Limits.MaxStanzaBytes)
            errors.Add($"Limits:MaxOutboundQueueBytes {o.Limits.MaxOutboundQueueBytes} must be at least Limits:MaxStanzaBytes ({o.Limits.MaxStanzaBytes})");
        Positive(errors, "Limits:MaxConnections", o.Limits.MaxConnections);
        Positive(errors, "Limits:MaxConnectionsPerAddress", o.Limits.MaxConnectionsPerAddress);
        Positive(errors, "Limits:MaxUnauthenticatedConnections", o.Limits.MaxUnauthenticatedConnections);
        Positive(errors, "Limits:MaxResourcesPerUser", o.Limits.MaxResourcesPerUser);
        if (!string.Equals(o.Storage.SqliteSynchronous, "normal", StringComparison.OrdinalIgnoreCase) && !string.Equals(o.Storage.SqliteSynchronous, "full", StringComparison.OrdinalIgnoreCase))
            errors.Add($"Storage:SqliteSynchronous '{o.Storage.SqliteSynchronous}' must be \"normal\" or \"full\"");
        if (!string.Equals(o.Storage.Provider, "sqlite", StringComparison.OrdinalIgnoreCase))
            errors.Add($"Storage:Provider '{o.Storage.Provider}' is not supported (supported: sqlite)");
        if (string.IsNullOrWhiteSpace(o.Storage.SqlitePath)) errors.Add("Storage:SqlitePath is empty");
        if (string.IsNullOrWhiteSpace(o.DataDirectory)) errors.Add("DataDirectory is empty");
        if (!Enum.TryParse<Microsoft.Extensions.Logging.LogLevel>(o.Log.Level, ignoreCase: true, out _))
            errors.Add($"Log:Level '{o.Log.Level}' must be one of Trace, Debug, Information, Warning, Error, Critical");
        if (o.Log.Format is not ("text" or "json")) errors.Add($"Log:Format '{o.Log.Format}' must be \"text\" or \"json\"");
        KnownModules(errors, "Modules:Disabled", o.Modules.Disabled);
        // Every module's options are checked, enabled or not: a host may turn it on, and a typo should not wait for that.
        foreach (var module in Modules.ModuleCatalog.All)
            module.OptionsOf(o.Modules)?.Validate("Modules:" + module.Name, errors);

        if (errors.Count > 0) Fail(file, errors);
    }

    private static void KnownModules(List<string> errors, string key, List<string> names)
    {
        foreach (var m in names)
        {
            if (!Modules.ModuleCatalog.Names.Contains(m))
                errors.Add($"{key}: unknown module '{m}' (known: {string.Join(", ", Modules.ModuleCatalog.Names)})");
        }
    }

    private static void Fail(string? file, List<string> errors)
    {
        var prefix = file is null ? "configuration" : file;
        throw new ConfigurationException(errors.Count == 1
            ? $"{prefix}: {errors[0]}"
            : $"{prefix}: {errors.Count} problems:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors));
    }

    private static void Positive(List<string> errors, string key, int value)
    {
        if (value <= 0) errors.Add($"{key} must be a positive number (is {value.ToString(CultureInfo.InvariantCulture)})");
    }
}
