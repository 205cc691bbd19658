using Xunit.Abstractions;

namespace Starling.Interop.Tests;

/// <summary>
/// The lab report's own client: two Profanity instances (Debian's profanity, driven in tmux by
/// tests/interop/profanity_chat.sh) log in with accounts made by the admin code, over STARTTLS with the generated
/// self-signed certificate, chat both ways, and the message to the user who quit arrives at re-login.
/// </summary>
public sealed class ProfanityTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Two_profanity_clients_chat_and_the_offline_message_arrives()
    {
        await using var server = await InteropServer.StartAsync(output, requireEncryption: true);
        var (exit, text) = await InteropServer.RunClientAsync("bash",
        [
            Path.Combine(InteropServer.RepoRoot(), "tests", "interop", "profanity_chat.sh"),
            server.Port, InteropServer.User1, InteropServer.Password1, InteropServer.User2, InteropServer.Password2,
        ], TimeSpan.FromSeconds(180));
        output.WriteLine(text);
        Assert.True(exit == 0, text);
        Assert.Contains("SUMMARY profanity: all checks passed", text, StringComparison.Ordinal);
    }
}
