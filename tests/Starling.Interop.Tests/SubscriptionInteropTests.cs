using Xunit.Abstractions;

namespace Starling.Interop.Tests;

/// <summary>
/// RFC 6121 presence subscriptions with real clients against a Starling started in-process: two users who have never
/// met add each other through the protocol — Profanity (the lab's client, tests/interop/profanity_subscribe.sh) with
/// /sub request and /sub allow, and slixmpp (tests/interop/subscriptions.py) checking the roster state the server
/// returns at every step and a request to an offline user delivered at its login.
/// </summary>
public sealed class SubscriptionInteropTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Two_profanity_users_who_never_met_subscribe_to_each_other_see_each_others_presence_and_chat()
    {
        await using var server = await InteropServer.StartAsync(output, requireEncryption: true);
        var (exit, text) = await InteropServer.RunClientAsync("bash",
        [
            Path.Combine(InteropServer.RepoRoot(), "tests", "interop", "profanity_subscribe.sh"),
            server.Port, InteropServer.User1, InteropServer.Password1, InteropServer.User2, InteropServer.Password2,
        ], TimeSpan.FromSeconds(120));
        output.WriteLine(text);
        Assert.True(exit == 0, text);
        Assert.Contains("SUMMARY profanity_subscribe: all checks passed", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Slixmpp_users_subscribe_mutually_through_none_ask_to_and_both_starting_with_an_offline_request()
    {
        await using var server = await InteropServer.StartAsync(output, requireEncryption: false);
        var (exit, text) = await InteropServer.RunClientAsync("/usr/bin/python3",
        [
            Path.Combine(InteropServer.RepoRoot(), "tests", "interop", "subscriptions.py"),
            "--host", "127.0.0.1", "--port", server.Port, "--domain", "localhost",
            "--user1", InteropServer.User1, "--pass1", InteropServer.Password1,
            "--user2", InteropServer.User2, "--pass2", InteropServer.Password2,
            "--timeout", "10",
        ], TimeSpan.FromSeconds(120));
        output.WriteLine(text);
        Assert.True(exit == 0, $"subscriptions.py exited {exit}:\n{text}");
        Assert.Contains("SUMMARY subscriptions 5/5 steps passed", text, StringComparison.Ordinal);
    }
}
