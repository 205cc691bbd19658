using Xunit.Abstractions;

namespace Starling.Interop.Tests;

/// <summary>
/// The lab report's whole session (shared/seed/lab-report.md) replayed by a real third-party client library,
/// slixmpp from Debian, against a Starling started in-process: two users, SCRAM-SHA-1, bind "profanity", session,
/// roster, private storage, presence with caps, chat both ways with a receipt request, ping, close, and the message
/// the lab lost — delivered after re-login with a delay stamp. See tests/interop/README.md.
/// </summary>
public sealed class LabSessionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("plain")]
    [InlineData("starttls")]
    public async Task Slixmpp_replays_the_lab_session(string tls)
    {
        // The lab's capture was plaintext; STARTTLS is still offered (and required by the starttls run's client).
        await using var server = await InteropServer.StartAsync(output, requireEncryption: tls != "plain");
        var (exit, text) = await InteropServer.RunClientAsync("/usr/bin/python3",
        [
            Path.Combine(InteropServer.RepoRoot(), "tests", "interop", "lab_session.py"),
            "--host", "127.0.0.1", "--port", server.Port, "--domain", "localhost",
            "--user1", InteropServer.User1, "--pass1", InteropServer.Password1,
            "--user2", InteropServer.User2, "--pass2", InteropServer.Password2,
            "--tls", tls, "--timeout", "10",
        ], TimeSpan.FromSeconds(150));
        output.WriteLine(text);
        Assert.True(exit == 0, $"lab_session.py exited {exit}:\n{text}");
        Assert.Contains("SUMMARY 12/12", text, StringComparison.Ordinal);
    }
}
