using System.Globalization;
using System.Net;

namespace Starling.Load;

internal enum TlsMode
{
    None,
    StartTls,
}

internal enum ChatProtocol
{
    Xmpp,
    Relay,
}

/// <summary>Command-line options shared by all scenarios (parsed by hand: a handful of --key value pairs).</summary>
internal sealed class LoadOptions
{
    public string Host { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 5222;
    public string Domain { get; set; } = "localhost";
    public int Users { get; set; } = 100;
    public int First { get; set; } = 1;
    public string UserFormat { get; set; } = "user{0}";
    public string PasswordFormat { get; set; } = "pass{0}";
    public string Mechanism { get; set; } = "SCRAM-SHA-1";
    public TlsMode Tls { get; set; } = TlsMode.None;
    public int Concurrency { get; set; } = 50;
    /// <summary>-1 = automatic (4 for a loopback IPv4 host, else none).</summary>
    public int SourceAddresses { get; set; } = -1;
    public double Duration { get; set; } = 10;
    public double Warmup { get; set; } = 2;
    public double Drain { get; set; } = 3;
    public string? JsonFile { get; set; }
    public List<int> ServerPids { get; } = [];
    public string? ServerName { get; set; }
    public double Timeout { get; set; } = 30;
    public bool Keep { get; set; }

    /// <summary>Derive SCRAM keys at every login instead of caching them per user as reconnecting clients do.</summary>
    public bool NoKeyCache { get; set; }

    /// <summary>login: measure first logins only (no unmeasured warm pass that fills the client key cache).</summary>
    public bool Cold { get; set; }
    public double Rate { get; set; } = 500;
    public bool Search { get; set; }
    public double SearchFactor { get; set; } = 1.5;
    public double SearchStep { get; set; }
    public int SearchMaxSteps { get; set; } = 12;
    public double P99LimitMs { get; set; } = 100;
    public ChatProtocol Protocol { get; set; } = ChatProtocol.Xmpp;
    public int Contacts { get; set; } = 100;
    public bool ProvisionRosters { get; set; }

    /// <summary>fanout: approve the ring of contacts through presence subscriptions (RFC 6121 §3) before measuring.</summary>
    public bool Subscribe { get; set; }

    /// <summary>fanout: stop after the provisioning phase (--provision-rosters and/or --subscribe).</summary>
    public bool ProvisionOnly { get; set; }
    public double Window { get; set; } = 5;
    public double ProgressSeconds { get; set; } = 5;
    public string Resource { get; set; } = "load";
    public int BodyBytes { get; set; } = 64;
    public int Seed { get; set; } = 12345;
    public string? Label { get; set; }

    /// <summary>soak: users logging in and out beside the chat users (user{first+users}...).</summary>
    public int ChurnUsers { get; set; } = 1000;

    /// <summary>soak: logins per second of churn users.</summary>
    public double ChurnRate { get; set; } = 10;

    /// <summary>soak: how long each churn session stays online (s).</summary>
    public double SessionSeconds { get; set; } = 20;

    /// <summary>soak: instead of a steady churn, this many churn users log in at once every --burst-every s (0: steady churn).</summary>
    public int BurstLogins { get; set; }

    /// <summary>soak: seconds between login bursts (the first starts at --burst-every).</summary>
    public double BurstEvery { get; set; } = 30;

    /// <summary>soak: seconds per reported window.</summary>
    public double SampleSeconds { get; set; } = 60;

    /// <summary>soak: allowed RSS growth from the end of warm-up to the end (percent).</summary>
    public double MaxRssGrowthPercent { get; set; } = 10;

    public string UserName(int index) => string.Format(CultureInfo.InvariantCulture, UserFormat, index);

    public string Password(int index) => string.Format(CultureInfo.InvariantCulture, PasswordFormat, index);

    public int EffectiveSourceAddresses
    {
        get
        {
            if (SourceAddresses >= 0) return SourceAddresses;
            return IPAddress.TryParse(Host, out var ip) && IPAddress.IsLoopback(ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 4 : 0;
        }
    }

    /// <summary>Parses <paramref name="args"/> (after the scenario name); throws <see cref="ArgumentException"/> on bad input.</summary>
    public static LoadOptions Parse(IReadOnlyList<string> args)
    {
        var o = new LoadOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string key = args[i];
            string? inline = null;
            int eq = key.IndexOf('=', StringComparison.Ordinal);
            if (key.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inline = key[(eq + 1)..];
                key = key[..eq];
            }

            string Value()
            {
                if (inline is not null) return inline;
                if (i + 1 >= args.Count) throw new ArgumentException($"{key} needs a value");
                return args[++i];
            }

            int Int() => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new ArgumentException($"{key}: not an integer");
            double Dbl() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : throw new ArgumentException($"{key}: not a number");

            switch (key)
            {
                case "--host": o.Host = Value(); break;
                case "--port": o.Port = Int(); break;
                case "--domain": o.Domain = Value(); break;
                case "--users": o.Users = Int(); break;
                case "--first": o.First = Int(); break;
                case "--user-format": o.UserFormat = Value(); break;
                case "--password-format": o.PasswordFormat = Value(); break;
                case "--mechanism": o.Mechanism = Value().ToUpperInvariant(); break;
                case "--tls":
                    o.Tls = Value().ToLowerInvariant() switch
                    {
                        "none" or "plain" => TlsMode.None,
                        "starttls" => TlsMode.StartTls,
                        var v => throw new ArgumentException($"--tls: unknown mode '{v}' (none|starttls)"),
                    };
                    break;
                case "--concurrency": o.Concurrency = Int(); break;
                case "--source-addresses": o.SourceAddresses = Int(); break;
                case "--duration": o.Duration = Dbl(); break;
                case "--warmup": o.Warmup = Dbl(); break;
                case "--drain": o.Drain = Dbl(); break;
                case "--json": o.JsonFile = Value(); break;
                case "--server-pid": o.ServerPids.Add(Int()); break;
                case "--server-name": o.ServerName = Value(); break;
                case "--timeout": o.Timeout = Dbl(); break;
                case "--keep": o.Keep = true; break;
                case "--no-key-cache": o.NoKeyCache = true; break;
                case "--cold": o.Cold = true; break;
                case "--rate": o.Rate = Dbl(); break;
                case "--search": o.Search = true; break;
                case "--search-factor": o.SearchFactor = Dbl(); break;
                case "--search-step": o.SearchStep = Dbl(); break;
                case "--search-max-steps": o.SearchMaxSteps = Int(); break;
                case "--p99-limit-ms": o.P99LimitMs = Dbl(); break;
                case "--protocol":
                    o.Protocol = Value().ToLowerInvariant() switch
                    {
                        "xmpp" => ChatProtocol.Xmpp,
                        "relay" => ChatProtocol.Relay,
                        var v => throw new ArgumentException($"--protocol: unknown '{v}' (xmpp|relay)"),
                    };
                    break;
                case "--contacts": o.Contacts = Int(); break;
                case "--provision-rosters": o.ProvisionRosters = true; break;
                case "--subscribe": o.Subscribe = true; break;
                case "--provision-only": o.ProvisionOnly = true; break;
                case "--window": o.Window = Dbl(); break;
                case "--progress": o.ProgressSeconds = Dbl(); break;
                case "--resource": o.Resource = Value(); break;
                case "--body-bytes": o.BodyBytes = Int(); break;
                case "--seed": o.Seed = Int(); break;
                case "--label": o.Label = Value(); break;
                case "--churn-users": o.ChurnUsers = Int(); break;
                case "--churn-rate": o.ChurnRate = Dbl(); break;
                case "--session-seconds": o.SessionSeconds = Dbl(); break;
                case "--sample": o.SampleSeconds = Dbl(); break;
                case "--burst-logins": o.BurstLogins = Int(); break;
                case "--burst-every": o.BurstEvery = Dbl(); break;
                case "--max-rss-growth": o.MaxRssGrowthPercent = Dbl(); break;
                default: throw new ArgumentException($"unknown option '{key}'");
            }
        }

        if (o.Users < 1) throw new ArgumentException("--users must be >= 1");
        if (o.Concurrency < 1) throw new ArgumentException("--concurrency must be >= 1");
        if (o.Port is < 1 or > 65535) throw new ArgumentException("--port out of range");
        if (o.SourceAddresses > 250) throw new ArgumentException("--source-addresses must be <= 250");
        if (o.Mechanism is not ("SCRAM-SHA-1" or "SCRAM-SHA-256" or "PLAIN"))
            throw new ArgumentException("--mechanism must be SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN");
        if (o.Rate <= 0) throw new ArgumentException("--rate must be > 0");
        if (o.Duration <= 0 || o.Timeout <= 0) throw new ArgumentException("--duration and --timeout must be > 0");
        if (o.ChurnUsers < 0 || o.ChurnRate < 0 || o.SessionSeconds <= 0 || o.SampleSeconds <= 0)
            throw new ArgumentException("--churn-users and --churn-rate must be >= 0, --session-seconds and --sample > 0");
        if (o.BurstLogins < 0 || o.BurstEvery <= 0) throw new ArgumentException("--burst-logins must be >= 0 and --burst-every > 0");
        if (o.Subscribe && RingPairing.Validate(o.Users, Math.Min(o.Contacts, o.Users - 1)) is string why)
            throw new ArgumentException("--subscribe: " + why);
        if (o.ProvisionOnly && !o.Subscribe && !o.ProvisionRosters)
            throw new ArgumentException("--provision-only needs --subscribe or --provision-rosters");
        if (o.BodyBytes < 24) throw new ArgumentException("--body-bytes must be >= 24 (sequence number and timestamp)");
        return o;
    }
}
