using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Starling.Server.Admin;
using Starling.Server.Configuration;
using Starling.Server.Hosting;
using Xunit.Abstractions;

namespace Starling.Interop.Tests;

/// <summary>
/// The lab report's own client: two Profanity instances (Debian's profanity, driven in tmux by
/// tests/interop/profanity_chat.sh) log in with accounts made by `starling adduser`'s code, over STARTTLS with the
/// generated self-signed certificate, chat both ways, and the message to the user who quit arrives at re-login.
/// </summary>
public sealed class ProfanityTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Two_profanity_clients_chat_and_the_offline_message_arrives()
    {
        var data = Directory.CreateTempSubdirectory("starling-profanity-");
        try
        {
            var config = StarlingConfiguration.Load(null,
            [
                "--DataDirectory=" + data.FullName,
                "--Hosts:0:Name=localhost",
                "--C2s:Port=0",
                "--C2s:Addresses:0=127.0.0.1",
            ]);
            await using var host = await StarlingHost.StartAsync(config, logging => logging.AddProvider(new TestLoggerProvider(output)));
            var admin = new AccountAdmin(config, host.Server.Storage);
            await admin.AddUserAsync(admin.ParseAccount("sergio@localhost"), "sergio-pw");
            await admin.AddUserAsync(admin.ParseAccount("lucas@localhost"), "lucas-pw");
            var port = host.C2sEndPoints[0].Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(LabSessionTests.RepoRoot(), "tests", "interop", "profanity_chat.sh"), port, "sergio", "sergio-pw", "lucas", "lucas-pw" })
                psi.ArgumentList.Add(a);
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(180));
            await process.WaitForExitAsync(timeout.Token);
            var text = await stdout + await stderr;
            output.WriteLine(text);
            Assert.True(process.ExitCode == 0, text);
            Assert.Contains("SUMMARY profanity: all checks passed", text, StringComparison.Ordinal);
        }
        finally
        {
            data.Delete(recursive: true);
        }
    }
}
