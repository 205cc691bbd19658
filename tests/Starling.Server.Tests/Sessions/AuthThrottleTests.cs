using System.Net;
using Starling.Server.Configuration;
using Starling.Server.Sessions;

namespace Starling.Server.Tests.Sessions;

/// <summary>The throttle's rules on a fake clock (the functional LoginThrottleTests check them on the wire).</summary>
public sealed class AuthThrottleTests : IDisposable
{
    private readonly List<string> _files = [];
    private long _now = 1_000_000;

    public void Dispose()
    {
        foreach (var file in _files) File.Delete(file);
    }

    private AuthThrottle Create(AuthOptions? options = null) => new(options ?? new AuthOptions(), () => _now);

    /// <summary>An explicit empty config file, so that ./starling.json and STARLING_CONFIG are never read.</summary>
    private string EmptyConfigFile()
    {
        var path = Path.Combine(Path.GetTempPath(), "starling-auth-" + Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, "{}");
        _files.Add(path);
        return path;
    }

    private static IPEndPoint At(string address) => new(IPAddress.Parse(address), 40000);

    [Theory]
    [InlineData("--Auth:AddressFreeFailures=0", "Auth:AddressFreeFailures must be a positive number")]
    [InlineData("--Auth:AccountMaxDelaySeconds=-1", "Auth:AccountMaxDelaySeconds must be a positive number")]
    [InlineData("--Auth:MaxTrackedEntries=10", "Auth:MaxTrackedEntries must be at least 100")]
    public void Invalid_auth_options_are_rejected_with_the_key_named(string option, string message)
    {
        var error = Assert.Throws<ConfigurationException>(() => StarlingConfiguration.Load(EmptyConfigFile(), ["--DataDirectory=" + Path.GetTempPath(), option]));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Auth_defaults_are_valid_and_never_met_by_a_client_with_a_typo_or_two()
    {
        var options = StarlingConfiguration.Load(EmptyConfigFile(), ["--DataDirectory=" + Path.GetTempPath()]).Options.Auth;
        Assert.True(options.AddressFreeFailures >= 3 && options.AccountFreeFailures >= 3);
        var throttle = Create(options);
        var from = At("192.0.2.1");
        for (int i = 0; i < 2; i++)
        {
            Assert.True(throttle.TryBegin(from, out _, out _));
            throttle.Failed(from, "localhost", "alice");
        }
        Assert.True(throttle.TryBegin(from, out _, out long r));
        Assert.True(throttle.TryHoldForAccount(from, "localhost", "alice", out var wait));
        Assert.Equal(TimeSpan.Zero, wait);
        throttle.Succeeded(from, "localhost", "alice", r);
    }

    [Fact]
    public void Ipv6_addresses_in_one_64_share_a_block_and_ipv4_is_per_address()
    {
        Assert.Equal(AuthThrottle.BlockOf(At("2001:db8:1:2::1")), AuthThrottle.BlockOf(At("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        Assert.NotEqual(AuthThrottle.BlockOf(At("2001:db8:1:2::1")), AuthThrottle.BlockOf(At("2001:db8:1:3::1")));
        Assert.NotEqual(AuthThrottle.BlockOf(At("192.0.2.1")), AuthThrottle.BlockOf(At("192.0.2.2")));
        Assert.Equal(AuthThrottle.BlockOf(At("192.0.2.1")), AuthThrottle.BlockOf(At("::ffff:192.0.2.1")));
    }

    [Fact]
    public void A_block_past_its_free_failures_refuses_new_attempts_until_the_penalty_ends()
    {
        var throttle = Create(new AuthOptions { AddressFreeFailures = 2, AddressDelayMilliseconds = 1000 });
        var from = At("2001:db8::1");
        for (int i = 0; i < 3; i++)
        {
            Assert.True(throttle.TryBegin(from, out _, out _));
            throttle.Failed(from, "localhost", "alice");
        }
        // Another address of the same /64: the same block.
        Assert.False(throttle.TryBegin(At("2001:db8::2"), out var wait, out _));
        Assert.Equal(TimeSpan.FromSeconds(1), wait);
        _now += 1000;
        Assert.True(throttle.TryBegin(from, out _, out _));
    }

    [Fact]
    public void Penalties_grow_with_failures_up_to_the_cap()
    {
        var throttle = Create(new AuthOptions { AddressFreeFailures = 1, AddressDelayMilliseconds = 1000, AddressMaxDelaySeconds = 3 });
        var from = At("192.0.2.1");
        Assert.True(throttle.TryBegin(from, out _, out _));
        throttle.Failed(from, "localhost", "alice"); // the free one
        var waits = new List<double>();
        for (int i = 0; i < 4; i++)
        {
            Assert.True(throttle.TryBegin(from, out _, out _));
            throttle.Failed(from, "localhost", "alice");
            Assert.False(throttle.TryBegin(from, out var wait, out _));
            waits.Add(wait.TotalMilliseconds);
            _now += (long)wait.TotalMilliseconds;
        }
        Assert.Equal(new double[] { 1000, 2000, 3000, 3000 }, waits);
    }

    [Fact]
    public void Success_takes_back_only_its_own_attempt()
    {
        var throttle = Create(new AuthOptions { AddressFreeFailures = 2 });
        var from = At("192.0.2.1");
        for (int i = 0; i < 2; i++)
        {
            Assert.True(throttle.TryBegin(from, out _, out _));
            throttle.Failed(from, "localhost", "bob");
        }
        Assert.True(throttle.TryBegin(from, out _, out long reservation));
        throttle.Succeeded(from, "localhost", "alice", reservation);
        Assert.True(throttle.TryBegin(from, out _, out _)); // the success lifted its own bar...
        throttle.Failed(from, "localhost", "bob");
        Assert.False(throttle.TryBegin(from, out _, out _)); // ...but the two failures before it still count
    }

    [Fact]
    public void Account_attempts_from_anywhere_queue_one_delay_apart_and_are_refused_past_the_cap()
    {
        var throttle = Create(new AuthOptions { AddressFreeFailures = 1000, AccountFreeFailures = 2, AccountDelayMilliseconds = 1000, AccountMaxDelaySeconds = 5 });
        throttle.Failed(At("192.0.2.1"), "localhost", "alice");
        throttle.Failed(At("192.0.2.2"), "localhost", "alice");
        var waits = new List<double>();
        for (int i = 3; i < 8; i++)
        {
            if (throttle.TryHoldForAccount(At("192.0.2." + i), "localhost", "alice", out var wait)) waits.Add(wait.TotalMilliseconds);
            else waits.Add(-1);
        }
        Assert.Equal(new double[] { 1000, 2000, 3000, 4000, 5000 }, waits);
        Assert.False(throttle.TryHoldForAccount(At("192.0.2.9"), "localhost", "alice", out _));
        Assert.True(throttle.TryHoldForAccount(At("192.0.2.9"), "localhost", "bob", out var other));
        Assert.Equal(TimeSpan.Zero, other);
    }

    [Fact]
    public void An_account_is_not_delayed_from_an_address_it_recently_logged_in_from()
    {
        var throttle = Create(new AuthOptions { AccountFreeFailures = 2 });
        var home = At("198.51.100.7");
        Assert.True(throttle.TryBegin(home, out _, out long r));
        throttle.Failed(At("192.0.2.1"), "localhost", "alice"); // creates the account entry
        throttle.Succeeded(home, "localhost", "alice", r);
        for (int i = 0; i < 10; i++) throttle.Failed(At("192.0.2." + (i + 2)), "localhost", "alice");
        Assert.True(throttle.TryHoldForAccount(home, "localhost", "alice", out var wait));
        Assert.Equal(TimeSpan.Zero, wait);
        Assert.True(throttle.TryHoldForAccount(At("203.0.113.1"), "localhost", "alice", out var elsewhere));
        Assert.True(elsewhere > TimeSpan.Zero);
    }

    [Fact]
    public void Tables_stay_within_the_cap_and_idle_entries_are_forgotten()
    {
        var throttle = Create(new AuthOptions { MaxTrackedEntries = 100, ForgetAfterSeconds = 60 });
        for (int i = 0; i < 1000; i++)
        {
            var from = new IPEndPoint(new IPAddress(0x0A000000u + (uint)i), 1);
            throttle.TryBegin(from, out _, out _);
            throttle.Failed(from, "localhost", "user" + i);
        }
        Assert.InRange(throttle.TrackedBlocks, 1, 101);
        Assert.InRange(throttle.TrackedAccounts, 1, 101);
        _now += 120_000;
        throttle.TryBegin(At("192.0.2.1"), out _, out _);
        Assert.InRange(throttle.TrackedBlocks, 1, 2);
    }
}
