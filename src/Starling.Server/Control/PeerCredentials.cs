using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Starling.Server.Control;

/// <summary>
/// Who is on the other end of the control socket, from the kernel (SO_PEERCRED, unix(7)): only the server's own
/// user and root may administer it. The socket's 0600 mode and its 0700 folder already keep others out; this holds
/// even if someone loosens those.
/// </summary>
internal static partial class PeerCredentials
{
    private const int SolSocket = 1;   // SOL_SOCKET on Linux
    private const int SoPeerCred = 17; // SO_PEERCRED on Linux: struct ucred { pid_t pid; uid_t uid; gid_t gid; }

    /// <summary>The server's effective uid.</summary>
    public static uint ServerUid => geteuid();

    /// <summary>The peer's uid, or null when the kernel does not say (then nobody is let in).</summary>
    public static uint? PeerUid(Socket socket)
    {
        if (!OperatingSystem.IsLinux()) return null;
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) != ucred.Length) return null;
        }
        catch (SocketException)
        {
            return null;
        }
        return MemoryMarshal.Read<uint>(ucred[4..]);
    }

    public static bool IsAllowed(uint peerUid) => peerUid == 0 || peerUid == ServerUid;

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
