using System.Text.Json.Serialization;

namespace Starling.Server.Control;

/// <summary>
/// The control socket's protocol: one JSON object per line each way, request then response, as many as the client
/// sends on one connection. Small on purpose: a line protocol over a Unix socket, no HTTP stack in the server.
/// </summary>
public sealed class ControlRequest
{
    /// <summary>deluser, passwd, reload or status.</summary>
    public string? Command { get; set; }

    /// <summary>The account (bare JID) for deluser and passwd.</summary>
    public string? Jid { get; set; }

    /// <summary>The new password for passwd.</summary>
    public string? Password { get; set; }

    /// <summary>passwd: also end the account's sessions.</summary>
    public bool EndSessions { get; set; }
}

public sealed class ControlResponse
{
    public bool Ok { get; set; }

    /// <summary>Why the request failed, in one line for the admin.</summary>
    public string? Error { get; set; }

    /// <summary>What was done, in one line for the admin.</summary>
    public string? Message { get; set; }

    /// <summary>Streams ended by deluser or passwd.</summary>
    public int? SessionsEnded { get; set; }

    public ServerStatus? Status { get; set; }

    /// <summary>reload: one line per host (which file was loaded, or why the previous certificate was kept).</summary>
    public List<string>? Lines { get; set; }

    public static ControlResponse Failure(string error) => new() { Ok = false, Error = error };
}

/// <summary>What `starling status` shows.</summary>
public sealed class ServerStatus
{
    public string Version { get; set; } = "";

    public int ProcessId { get; set; }

    public long UptimeSeconds { get; set; }

    /// <summary>Open client streams, authenticated or not.</summary>
    public int Connections { get; set; }

    /// <summary>Bound resources.</summary>
    public long Sessions { get; set; }

    /// <summary>Resident set size.</summary>
    public long MemoryBytes { get; set; }

    public long ManagedHeapBytes { get; set; }

    /// <summary>Garbage collections since start, by generation (0, 1, 2).</summary>
    public List<int> Collections { get; set; } = [];

    /// <summary>Time the garbage collector has paused the process since start, in milliseconds.</summary>
    public double GcPauseMilliseconds { get; set; }

    /// <summary>Bytes allocated on the managed heap since start.</summary>
    public long AllocatedBytes { get; set; }

    /// <summary>The last young-generation (0 or 1) collection: its pause (ms), the heap before it and what it promoted (bytes).</summary>
    public double LastYoungPauseMilliseconds { get; set; }

    public long LastYoungHeapBeforeBytes { get; set; }

    public long LastYoungPromotedBytes { get; set; }

    public List<string> Hosts { get; set; } = [];
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
internal sealed partial class ControlJson : JsonSerializerContext;
