using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Starling.Cli.Tests;

/// <summary>
/// Issue #13 ("SIGKILL during load"): a real `starling start` process is killed with SIGKILL after it stored offline
/// messages; after a restart every message whose sender got no error is delivered (SQLite WAL with synchronous=NORMAL
/// survives a process crash: docs/operations.md, "Durability").
/// </summary>
public sealed class CrashDurabilityTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-crash-");
    private readonly StarlingProcess _starling;

    public CrashDurabilityTests() => _starling = new StarlingProcess(_dir.FullName);

    public void Dispose() => _dir.Delete(recursive: true);

    private async Task AddUserAsync(string jid) =>
        Assert.Equal(0, (await _starling.RunWithAsync("pw\n", null, "adduser", jid, "--password-stdin")).Exit);

    private Task<Process> StartAsync(int port) => _starling.StartServerProcessAsync(port, "--Hosts:0:AllowPlainWithoutTls=true");

    [Fact]
    public async Task Offline_messages_acknowledged_before_a_sigkill_are_delivered_after_restart()
    {
        int port = StarlingProcess.FreePort();

        await AddUserAsync("alice@localhost");
        await AddUserAsync("bob@localhost");
        const int Count = 200;

        var server = await StartAsync(port);
        try
        {
            await using var alice = await RawClient.LoginAsync(port, "alice", "pc");
            for (int i = 0; i < Count; i++)
                await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{i}'><body>crash-{i}-end</body></message>");
            // The server handles a stream's stanzas in order and stores an offline message before reading the next
            // stanza: once the ping is answered, every message before it was stored (or bounced).
            await alice.SendAsync("<iq type='get' id='barrier' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            string seen = await alice.ReadUntilAsync(s => s.Contains("id=\"barrier\"", StringComparison.Ordinal));
            Assert.DoesNotContain("type=\"error\"", seen, StringComparison.Ordinal);

            server.Kill(); // SIGKILL: no shutdown, no checkpoint
            await server.WaitForExitAsync();
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            server.Dispose();
        }

        var restarted = await StartAsync(port);
        try
        {
            await using var bob = await RawClient.LoginAsync(port, "bob", "phone");
            await bob.SendAsync("<presence/>");
            string received = await bob.ReadUntilAsync(s => s.Contains($"crash-{Count - 1}-end", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            for (int i = 0; i < Count; i++)
                Assert.Contains($"crash-{i}-end", received, StringComparison.Ordinal);
        }
        finally
        {
            restarted.Kill();
            await restarted.WaitForExitAsync();
            restarted.Dispose();
        }
    }

    /// <summary>Just enough XMPP over plaintext for this test: SASL PLAIN, bind, raw text in and out.</summary>
    private sealed class RawClient : IAsyncDisposable
    {
        private const string Header = "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
        private readonly TcpClient _tcp;
        private readonly NetworkStream _stream;
        private readonly StringBuilder _received = new();
        private readonly byte[] _buffer = new byte[64 * 1024];

        private RawClient(TcpClient tcp)
        {
            _tcp = tcp;
            _stream = tcp.GetStream();
        }

        public static async Task<RawClient> LoginAsync(int port, string user, string resource)
        {
            var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            var client = new RawClient(tcp);
            await client.SendAsync(Header);
            await client.ReadUntilAsync(s => s.Contains("</stream:features>", StringComparison.Ordinal));
            string plain = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0" + user + "\0pw"));
            await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
            Assert.Contains("<success", await client.ReadUntilAsync(s => s.Contains("<success", StringComparison.Ordinal) || s.Contains("<failure", StringComparison.Ordinal)), StringComparison.Ordinal);
            await client.SendAsync(Header);
            await client.ReadUntilAsync(s => s.Contains("</stream:features>", StringComparison.Ordinal));
            await client.SendAsync($"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
            Assert.Contains("</jid>", await client.ReadUntilAsync(s => s.Contains("id=\"bind\"", StringComparison.Ordinal) && s.Contains("</iq>", StringComparison.Ordinal)), StringComparison.Ordinal);
            return client;
        }

        public async Task SendAsync(string xml) => await _stream.WriteAsync(Encoding.UTF8.GetBytes(xml));

        /// <summary>Reads until <paramref name="done"/> holds for what was received since the last call; returns that text.</summary>
        public async Task<string> ReadUntilAsync(Func<string, bool> done, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
            while (!done(_received.ToString()))
            {
                int n;
                try
                {
                    n = await _stream.ReadAsync(_buffer, cts.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"timed out; received: {Tail()}");
                    throw;
                }

                if (n == 0) Assert.Fail($"connection closed; received: {Tail()}");
                _received.Append(Encoding.UTF8.GetString(_buffer, 0, n));
            }

            string text = _received.ToString();
            _received.Clear();
            return text;
        }

        private string Tail()
        {
            string s = _received.ToString();
            return s.Length > 2000 ? s[^2000..] : s;
        }

        public ValueTask DisposeAsync()
        {
            _tcp.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
