using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Starling.Server.Admin;
using Starling.Server.Sessions;
using Starling.Xmpp;

namespace Starling.Server.Control;

/// <summary>
/// What the control socket can ask of the running server: the admin commands whose effect must reach live sessions
/// (deluser, passwd) and the server's figures (status). The account changes themselves are <see cref="AccountAdmin"/>'s,
/// the same code the CLI runs on the database when no server is running.
/// </summary>
public sealed class ControlService
{
    /// <summary>
    /// RFC 6120 §4.9.3.16 &lt;reset/&gt;: the credentials the stream was authenticated with were revoked. Prosody's
    /// mod_c2s closes a user's other sessions with it when their password changes.
    /// </summary>
    public const string PasswordChangedCondition = "reset";

    private readonly XmppServer _server;
    private readonly AccountAdmin _admin;
    private readonly ILogger _log;
    private readonly long _started = Stopwatch.GetTimestamp();

    public ControlService(XmppServer server)
    {
        _server = server;
        _admin = new AccountAdmin(server.Config, server.Storage);
        _log = server.LoggerFactory.CreateLogger<ControlService>();
    }

    /// <summary>Runs one request. Never throws: every failure is a response with a one-line error.</summary>
    public async Task<ControlResponse> ExecuteAsync(ControlRequest request)
    {
        try
        {
            switch (request.Command)
            {
                case "status":
                    return new ControlResponse { Ok = true, Status = Status() };
                case "deluser":
                    return await DeleteUserAsync(request);
                case "passwd":
                    return await SetPasswordAsync(request);
                case "reload":
                    return Reload();
                default:
                    return ControlResponse.Failure(request.Command is null
                        ? "the request has no \"command\""
                        : $"unknown command '{request.Command}' (known: deluser, passwd, reload, status)");
            }
        }
        catch (AdminException ex)
        {
            return ControlResponse.Failure(ex.Message);
        }
        catch (Exception ex) when (ex is IOException or Microsoft.Data.Sqlite.SqliteException or InvalidOperationException)
        {
            _log.LogError("control command {Command} failed: {Message}", request.Command, ex.Message);
            return ControlResponse.Failure($"{request.Command} failed in the server: {ex.Message}");
        }
    }

    private ServerStatus Status()
    {
        var hosts = new List<string>();
        foreach (var h in _server.Options.Hosts) hosts.Add(h.Name);
        return new ServerStatus
        {
            Version = XmppServer.Version,
            ProcessId = Environment.ProcessId,
            UptimeSeconds = (long)Stopwatch.GetElapsedTime(_started).TotalSeconds,
            Connections = _server.Connections.Count,
            Sessions = _server.Sessions.Count,
            MemoryBytes = Environment.WorkingSet,
            ManagedHeapBytes = GC.GetGCMemoryInfo().HeapSizeBytes,
            Hosts = hosts,
        };
    }

    /// <summary>
    /// Re-reads the certificates (as SIGHUP does): new connections get the new ones. A host whose files do not load keeps
    /// its previous certificate; the reply is then a failure that lists every host's line, so the admin sees which file.
    /// </summary>
    private ControlResponse Reload()
    {
        var result = _server.ReloadCertificates();
        var lines = new List<string>(result.Lines);
        return result.Failed == 0
            ? new ControlResponse { Ok = true, Message = "certificates reloaded", Lines = lines }
            : new ControlResponse { Ok = false, Error = $"{result.Failed} host(s) kept their previous certificate", Lines = lines };
    }

    private Jid Account(ControlRequest request) =>
        _admin.ParseAccount(string.IsNullOrEmpty(request.Jid) ? throw new AdminException($"{request.Command} needs a \"jid\"") : request.Jid);

    /// <summary>
    /// Ends the account's streams, deletes it, and ends them again. The first pass stops live sessions before their
    /// rows go; the second catches a login that read the account just before the delete (a stream records the
    /// account it looks up before reading it, see C2sSession.AccountLocalpart), so no stream outlives the account.
    /// RFC 6120 §4.9.3.12 &lt;not-authorized/&gt;, as Prosody's mod_c2s closes the sessions of a deleted user.
    /// </summary>
    private async Task<ControlResponse> DeleteUserAsync(ControlRequest request)
    {
        var jid = Account(request);
        if (await _server.Storage.Accounts.GetAsync(jid.Domain, jid.Local!) is null)
            throw new AdminException($"user {jid} does not exist");
        int ended = EndSessions(jid, StreamErrors.NotAuthorized, "the account was deleted");
        await _admin.DeleteUserAsync(jid);
        ended += EndSessions(jid, StreamErrors.NotAuthorized, "the account was deleted");
        _log.LogInformation("control: deleted {Jid}, {Count} stream(s) ended", jid, ended);
        return new ControlResponse { Ok = true, Message = $"deleted {jid}{Ended(ended)}", SessionsEnded = ended };
    }

    /// <summary>
    /// Changes the password; with EndSessions, then ends every stream authenticated (or authenticating) with the old
    /// one. Without it live sessions stay, as ejabberd's change_password leaves them: an admin resetting a forgotten
    /// password should not cut the user's other clients off; after a compromise, --end-sessions does.
    /// </summary>
    private async Task<ControlResponse> SetPasswordAsync(ControlRequest request)
    {
        var jid = Account(request);
        var password = request.Password ?? throw new AdminException("passwd needs a \"password\"");
        // Key derivation is CPU work: keep it off the socket threads (StarlingHost serves connections inline).
        await Task.Run(() => _admin.SetPasswordAsync(jid, password));
        int ended = request.EndSessions ? EndSessions(jid, PasswordChangedCondition, "the password was changed") : 0;
        _log.LogInformation("control: password of {Jid} changed, {Count} stream(s) ended", jid, ended);
        return new ControlResponse { Ok = true, Message = $"password of {jid} changed{(request.EndSessions ? Ended(ended) : "")}", SessionsEnded = ended };
    }

    private static string Ended(int n) => n == 1 ? " (1 session ended)" : $" ({n} sessions ended)";

    /// <summary>
    /// Closes with <paramref name="condition"/> every open client stream of the account: bound, authenticated but not
    /// yet bound, or in the middle of authenticating as it. Returns how many.
    /// </summary>
    public int EndSessions(Jid account, string condition, string text)
    {
        int n = 0;
        foreach (var stream in _server.Connections.Snapshot())
        {
            if (stream is not C2sStream session || session.IsClosed) continue;
            if (session.Domain != account.Domain || session.AccountLocalpart != account.Local) continue;
            session.Session?.Close(condition, text); // a bound session ends with its stream, not hibernating (XEP-0198)
            session.Close(condition, text);
            n++;
        }
        // Sessions that wait for a XEP-0198 resume have no connection to close.
        foreach (var session in _server.Sessions.GetSessions(account))
        {
            if (!session.IsHibernating) continue;
            session.Close(condition, text);
            n++;
        }
        return n;
    }
}
