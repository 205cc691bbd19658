using Starling.Load;

const string Usage = """
    starling-load SCENARIO [options]     (real client XMPP against any server)

    Scenarios:
      login            N users log in (connect, [STARTTLS], SASL, restart, bind, presence); logins/s, latency, failures
      idle             log in N sessions, hold them --duration s answering pings; server RSS per session
      chat             N online users, open-loop --rate msgs/s to random bare JIDs; delivered/s, p50/p99/p99.9, losses
                       (--search: raise the rate until p99 >= --p99-limit-ms, any loss, or delivered < 95%)
                       (--protocol relay: drive the relay floor instead of XMPP; --port is the relay's)
      flood            user{first} floods its own bare JID from one resource, a second resource reads, user{first+1}
                       pings the server for --duration s; ping RTT p50/p99, whether anyone was cut off
      soak             --users chat users exchange --rate msgs/s for --duration s while churn users log in and out;
                       a line per --sample s window (delivered, lost, p99, logins, server RSS/CPU) and a pass/fail summary
                       (peak RSS over the last 5 min within --max-rss-growth % of the peak over the 5 min after --warmup,
                       no loss, no failed login; RSS read every second)
      fanout           users log in and send presence; presences received/s (--provision-rosters: add --contacts items first;
                       --subscribe: first approve --contacts subscriptions per user through the protocol, state 'both')
      relay serve      minimal TCP relay (the routing floor); serves --duration s (default 300)
      relay chat       = chat --protocol relay

    Common options (defaults in brackets):
      --host [127.0.0.1] --port [5222] --domain [localhost] --users N [100] --first [1]
      --user-format ['user{0}'] --password-format ['pass{0}'] --mechanism SCRAM-SHA-1|SCRAM-SHA-256|PLAIN [SCRAM-SHA-1]
      --tls none|starttls [none] --concurrency C [50] --source-addresses K [4 on loopback: 127.0.0.2..K+1; 0 = off]
      --duration s [10] --warmup s [2] --drain s [3] --timeout s [30] --json FILE (append JSON lines; else stdout)
      --server-pid PID (repeatable) --server-name NAME (RSS/CPU of matching processes) --progress s [5] --label TEXT
    chat:   --rate R [500] --search --search-factor [1.5] --search-step R --search-max-steps [12] --p99-limit-ms [100]
            --body-bytes [64] --seed [12345] --protocol xmpp|relay
    login:  --keep (keep sessions open until all have logged in), --cold (measure first logins: no warm pass; also fanout)
    all:    --no-key-cache (derive SCRAM keys at every login; default: cached per user like reconnecting clients)
    soak:   --rate R --churn-users [1000] --churn-rate [10] --session-seconds [20] --sample [60] --max-rss-growth [10]
            (churn users are user{first+users}...; --warmup is the RSS baseline time)
            --burst-logins N --burst-every [30]: instead of the steady churn, N churn users log in at once (--concurrency
            at a time) every --burst-every s and stay --session-seconds: the tail latency of the chat right after bursts
    fanout: --contacts [100] --provision-rosters --window s [5]
            --subscribe: all users online, each pair of a ring (user i with i±1..i±contacts/2; an odd --contacts adds
            the user opposite) subscribes both ways (subscribe -> subscribed -> subscribe back -> subscribed) within
            --timeout s; a fanout-provision line (pairs approved, seconds, a sampled roster get); then all log out
            and the measured phase runs (--drain s later). --provision-only: stop after provisioning
            measured phase: an unmeasured login pass without presence fills the SCRAM key cache first (--cold: none)

    Exit codes: 0 ran, 2 bad usage, 3 setup failure (nobody could connect or log in).
    """;

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.Out.WriteLine(Usage);
    return args.Length == 0 ? ExitCodes.Usage : ExitCodes.Ok;
}

string scenario = args[0];
var rest = args.Skip(1).ToList();
if (scenario == "relay")
{
    string mode = rest.Count > 0 ? rest[0] : "";
    rest = rest.Skip(1).ToList();
    if (mode == "serve")
    {
        if (!rest.Contains("--duration")) rest.AddRange(["--duration", "300"]);
        scenario = "relay-serve";
    }
    else if (mode is "chat" or "client")
    {
        rest.AddRange(["--protocol", "relay"]);
        scenario = "chat";
    }
    else
    {
        Console.Error.WriteLine("usage: relay serve|chat [options]");
        return ExitCodes.Usage;
    }
}

LoadOptions options;
try
{
    options = LoadOptions.Parse(rest);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine("error: " + ex.Message);
    return ExitCodes.Usage;
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};

var reporter = new Reporter(options.JsonFile);
int rc;
try
{
    rc = scenario switch
    {
        "login" => await Scenarios.LoginAsync(options, reporter, cts.Token),
        "idle" => await Scenarios.IdleAsync(options, reporter, cts.Token),
        "chat" => await ChatScenario.RunAsync(options, reporter, cts.Token),
        "fanout" => await FanoutScenario.RunAsync(options, reporter, cts.Token),
        "flood" => await FloodScenario.RunAsync(options, reporter, cts.Token),
        "soak" => await SoakScenario.RunAsync(options, reporter, cts.Token),
        "relay-serve" => await RelayServer.ServeCommandAsync(options),
        _ => -1,
    };
}
catch (System.Net.Sockets.SocketException ex)
{
    Console.Error.WriteLine($"setup failure: {ex.Message}");
    return ExitCodes.SetupFailure;
}
if (rc == -1)
{
    Console.Error.WriteLine($"unknown scenario '{scenario}'\n\n{Usage}");
    return ExitCodes.Usage;
}
if (scenario != "relay-serve") reporter.PrintSummary();
return rc;
