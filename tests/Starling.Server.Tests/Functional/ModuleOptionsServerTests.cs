using Starling.Xmpp;

namespace Starling.Server.Tests.Functional;

/// <summary>Module options (Modules:NAME:Option) reach the running modules through ModuleContext.Options.</summary>
public sealed class ModuleOptionsServerTests
{
    [Fact]
    public async Task Version_shows_the_os_when_its_module_option_says_so()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:version:ShowOs=true");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<iq type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
        var query = (await alice.ExpectIqResultAsync("v1")).Element("query", Namespaces.Version)!;
        Assert.False(string.IsNullOrEmpty(query.ElementText("os", Namespaces.Version)), $"no os in {query}");
    }

    [Fact]
    public async Task Offline_quota_from_the_module_options_bounces_the_message_past_it()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Modules:offline:QuotaMessages=1");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>kept</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m2'><body>over quota</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "m2", "service-unavailable");
        Assert.Equal(1, await server.Server.Storage.Offline.CountAsync(TestServer.Domain, "bob"));
    }

    [Fact]
    public async Task Deprecated_key_still_works_and_is_logged_as_a_warning()
    {
        await using var server = await TestServer.StartWithAliceAndBobAsync("--Limits:OfflineQuota=1");
        var alice = await server.LoginAsync("alice", "a");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>kept</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m2'><body>over quota</body></message>");
        await alice.ExpectStanzaErrorAsync("message", "m2", "service-unavailable");
        Assert.Contains(server.Logs.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning
            && e.Message.Contains("Limits:OfflineQuota is deprecated; use Modules:offline:QuotaMessages", StringComparison.Ordinal));
    }
}
