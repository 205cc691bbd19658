using System.Net.Sockets;
using Starling.Server.Admin;
using Starling.Server.Configuration;

namespace Starling.Server.Control;

/// <summary>
/// Where the control socket lives and how it is set up: in its own 0700 folder, the socket itself 0600, as Prosody's
/// admin socket (prosodyctl shell) is private to the prosody user. Linux only: the peer check needs SO_PEERCRED.
/// </summary>
public static class ControlSocket
{
    /// <summary>Whether this configuration serves a control socket on this system.</summary>
    public static bool IsServed(LoadedConfiguration config) => config.Options.Control.Enabled && OperatingSystem.IsLinux();

    /// <summary>
    /// Before listening: the folder exists (0700), and what a crashed run left at the path is removed — unless a
    /// server still answers there, which would be a second server on the same data.
    /// </summary>
    public static void Prepare(string path)
    {
        DataPermissions.CreatePrivateDirectory(Path.GetDirectoryName(path)!);
        if (new FileInfo(path).LinkTarget is null && !File.Exists(path)) return;
        if (Probe(path) == SocketError.Success)
            throw new ConfigurationException($"another Starling is already running with the control socket {path}; stop it, or give this one another DataDirectory or Control:SocketPath");
        File.Delete(path);
    }

    /// <summary>After listening: owner read/write only (connecting to a Unix socket needs write permission).</summary>
    public static void Restrict(string path)
    {
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, DataPermissions.PrivateFileMode);
    }

    /// <summary>Tries to connect: Success when a server answers, ConnectionRefused when the socket is stale.</summary>
    internal static SocketError Probe(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return SocketError.Success;
        }
        catch (SocketException ex)
        {
            return ex.SocketErrorCode;
        }
    }
}
