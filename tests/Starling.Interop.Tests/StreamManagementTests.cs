using Xunit.Abstractions;

namespace Starling.Interop.Tests;

/// <summary>
/// XEP-0198 resumption by a real third-party client library: slixmpp's xep_0198 plugin enables stream management,
/// its socket is cut, the other user sends meanwhile, and it resumes the old session and gets those messages exactly
/// once (tests/interop/sm_resume.py).
/// </summary>
public sealed class StreamManagementTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Slixmpp_resumes_after_its_socket_is_cut_and_gets_the_messages_sent_meanwhile_once()
    {
        await using var server = await InteropServer.StartAsync(output, requireEncryption: false);
        var (exit, text) = await InteropServer.RunClientAsync("/usr/bin/python3",
        [
            Path.Combine(InteropServer.RepoRoot(), "tests", "interop", "sm_resume.py"),
            "--host", "127.0.0.1", "--port", server.Port, "--domain", "localhost",
            "--user1", InteropServer.User1, "--pass1", InteropServer.Password1,
            "--user2", InteropServer.User2, "--pass2", InteropServer.Password2,
            "--tls", "plain", "--timeout", "6",
        ], TimeSpan.FromSeconds(55));
        output.WriteLine(text);
        Assert.True(exit == 0, $"sm_resume.py exited {exit}:\n{text}");
        Assert.Contains("SUMMARY 7/7", text, StringComparison.Ordinal);
    }
}
