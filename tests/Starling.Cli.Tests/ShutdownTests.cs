using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Data.Sqlite;

namespace Starling.Cli.Tests;

/// <summary>
/// Issue #13, graceful shutdown: a real `starling start` gets SIGTERM while clients are connected. Connected clients get
/// &lt;system-shutdown/&gt; (RFC 6120 §4.9.3.17), the process exits 0 promptly, the database is closed cleanly, and a
/// message accepted but never written to its (non-reading) recipient is delivered from offline storage after restart.
/// </summary>
public sealed class ShutdownTests : IDisposable
{
    private const int Sigterm = 15;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-stop-");
    private readonly StarlingProcess _starling;

    public ShutdownTests() => _starling = new StarlingProcess(_dir.FullName);

    public void Dispose() => _dir.Delete(recursive: true);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [Fact]
    public async Task Sigterm_sends_system_shutdown_exits_0_closes_the_database_and_keeps_undelivered_messages()
    {
        if (!OperatingSystem.IsLinux()) return;
        foreach (var user in new[] { "alice", "bob" })
            Assert.Equal(0, (await _starling.RunWithAsync("pw\n", null, "adduser", user + "@localhost", "--password-stdin")).Exit);
        int port = StarlingProcess.FreePort();

        using (var server = await StartServer(port))
        {
            var alice = await RawClient.LoginAsync(port, "alice");
            // bob reads nothing after logging in, through a tiny receive window: what is sent to him stays queued.
            var bob = await RawClient.LoginAsync(port, "bob", receiveBuffer: 4096);
            var padding = new string('z', 20_000);
            const int Count = 300; // 6 MB for bob: far more than his socket buffers hold
            for (int i = 0; i < Count; i++)
                await alice.SendAsync($"<message to='bob@localhost' type='chat' id='q{i}'><body>{i} {padding}</body></message>");
            await alice.SendAsync("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            await alice.ReadUntilAsync("id=\"sync\"");

            var clock = Stopwatch.StartNew();
            Assert.Equal(0, kill(server.Id, Sigterm));
            var ending = await alice.ReadToEndAsync();
            Assert.Contains("<system-shutdown xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>", ending, StringComparison.Ordinal);
            Assert.EndsWith("</stream:stream>", ending, StringComparison.Ordinal);
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30))) await server.WaitForExitAsync(cts.Token);
            Assert.Equal(0, server.ExitCode);
            // bob's close cannot be flushed: dropped at C2s:CloseTimeoutSeconds (2 s here), well within this.
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the server took {clock.Elapsed.TotalSeconds:F1} s to stop");
            bob.Dispose();
            alice.Dispose();
        }

        // Closed cleanly: the WAL was checkpointed into the database and removed; the file is intact.
        var database = Path.Combine(_dir.FullName, "data", "starling.db");
        Assert.False(File.Exists(database + "-wal"), "the SQLite WAL is left over: the database was not closed");
        using (var connection = new SqliteConnection($"Data Source={database};Pooling=False"))
        {
            connection.Open();
            using var check = connection.CreateCommand();
            check.CommandText = "PRAGMA integrity_check";
            Assert.Equal("ok", check.ExecuteScalar() as string);
        }

        // After a restart bob gets, from offline storage, the tail he never received: the last message included.
        using (var server = await StartServer(port))
        {
            var bob = await RawClient.LoginAsync(port, "bob");
            var text = await bob.ReadUntilAsync($"id=\"q{299}\"", TimeSpan.FromSeconds(20));
            Assert.Contains("urn:xmpp:delay", text, StringComparison.Ordinal);
            bob.Dispose();
            Assert.Equal(0, kill(server.Id, Sigterm));
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await server.WaitForExitAsync(cts.Token);
            Assert.Equal(0, server.ExitCode);
        }
    }

    private Task<Process> StartServer(int port) => _starling.StartServerProcessAsync(
        port,
        "--Hosts:0:AllowPlainWithoutTls=true",
        "--C2s:ReadBytesPerSecond=0",
        "--C2s:CloseTimeoutSeconds=2",
        "--Limits:MaxOutboundQueueBytes=64000000",
        "--Limits:OfflineQuota=100000");

    /// <summary>A plaintext client that logs in with SASL PLAIN and reads text (enough for this test).</summary>
    private sealed class RawClient : IDisposable
    {
        private const string Header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
        private readonly Socket _socket;
        private readonly StringBuilder _received = new();
        private readonly byte[] _buffer = new byte[64 * 1024];

        private RawClient(Socket socket) => _socket = socket;

        public static async Task<RawClient> LoginAsync(int port, string user, int receiveBuffer = 0)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            if (receiveBuffer > 0) socket.ReceiveBufferSize = receiveBuffer;
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            var c = new RawClient(socket);
            await c.SendAsync(Header);
            await c.ReadUntilAsync("</stream:features>");
            var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0" + user + "\0pw"));
            await c.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
            await c.ReadUntilAsync("<success");
            await c.SendAsync(Header);
            await c.ReadUntilAsync("</stream:features>");
            await c.SendAsync("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq><presence/>");
            await c.ReadUntilAsync("<presence");
            return c;
        }

        public async Task SendAsync(string xml)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await _socket.SendAsync(Encoding.UTF8.GetBytes(xml), SocketFlags.None, cts.Token);
        }

        /// <summary>Reads until <paramref name="marker"/> has been received; returns (and forgets) what came up to there.</summary>
        public async Task<string> ReadUntilAsync(string marker, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
            while (true)
            {
                var text = _received.ToString();
                int i = text.IndexOf(marker, StringComparison.Ordinal);
                if (i >= 0)
                {
                    _received.Remove(0, i + marker.Length);
                    return text[..(i + marker.Length)];
                }
                int n = await _socket.ReceiveAsync(_buffer, SocketFlags.None, cts.Token);
                if (n == 0) Assert.Fail($"the connection ended before '{marker}': {Tail(text)}");
                _received.Append(Encoding.UTF8.GetString(_buffer, 0, n));
            }
        }

        /// <summary>Everything until the server ends the connection.</summary>
        public async Task<string> ReadToEndAsync()
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                while (true)
                {
                    int n = await _socket.ReceiveAsync(_buffer, SocketFlags.None, cts.Token);
                    if (n == 0) break;
                    _received.Append(Encoding.UTF8.GetString(_buffer, 0, n));
                }
            }
            catch (SocketException)
            {
            }
            return _received.ToString();
        }

        private static string Tail(string s) => s.Length > 400 ? s[^400..] : s;

        public void Dispose() => _socket.Dispose();
    }
}
