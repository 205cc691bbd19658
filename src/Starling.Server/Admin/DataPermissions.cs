using System.Runtime.InteropServices;
using Starling.Server.Configuration;

namespace Starling.Server.Admin;

/// <summary>
/// The data folder holds SCRAM keys, private keys and message content, so everything Starling creates there is
/// private to the server's user from the first byte: folders 0700, files 0600. `starling check` reports what is not.
/// </summary>
public static partial class DataPermissions
{
    public const UnixFileMode PrivateDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const UnixFileMode GroupAndOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private const UnixFileMode Other = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>
    /// Sets the process umask to 077. SQLite creates the database, its -wal and -shm files itself (0644 under the
    /// usual umask 022) and Kestrel creates the control socket: a umask is the one setting that makes all of them,
    /// and anything added later, owner-only at creation rather than narrowed afterwards.
    /// </summary>
    public static void RestrictNewFiles()
    {
        if (OperatingSystem.IsWindows()) return;
        _ = umask(0x3F); // 077; the previous mask is not needed
    }

    /// <summary>Creates a folder (and missing parents) 0700. An existing folder keeps its mode; `starling check` reports it.</summary>
    public static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(path);
        else Directory.CreateDirectory(path, PrivateDirectoryMode);
    }

    /// <summary>
    /// What group or other users can reach: everything under the data folder (symbolic links are not followed), the
    /// database and its -wal/-shm files wherever they are, and private keys configured outside the data folder
    /// (those only when other users can read them: a key shared with a group such as Debian's ssl-cert is normal).
    /// Each entry is one line with the chmod that fixes it.
    /// </summary>
    public static List<string> FindLoosePermissions(LoadedConfiguration config)
    {
        var problems = new List<string>();
        if (OperatingSystem.IsWindows()) return problems;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var data = config.DataDirectory;
        if (Directory.Exists(data))
        {
            Inspect(data, GroupAndOther, problems, seen);
            var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
            int count = 0;
            foreach (var entry in Directory.EnumerateFileSystemEntries(data, "*", options))
            {
                if (++count > 100_000) break; // a data folder is small; never walk someone's whole disk
                Inspect(entry, GroupAndOther, problems, seen);
            }
        }
        foreach (var suffix in (string[])["", "-wal", "-shm", "-journal"]) Inspect(config.DatabasePath + suffix, GroupAndOther, problems, seen);
        foreach (var host in config.Options.Hosts) Inspect(config.KeyPath(host), Other, problems, seen);
        return problems;
    }

    private static void Inspect(string path, UnixFileMode forbidden, List<string> problems, HashSet<string> seen)
    {
        if (OperatingSystem.IsWindows() || !seen.Add(path)) return;
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return; // a link's own mode means nothing; its target is checked where it lives
        bool directory = Directory.Exists(path);
        if (!directory && !File.Exists(path)) return;
        UnixFileMode mode;
        try
        {
            mode = File.GetUnixFileMode(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }
        if ((mode & forbidden) == 0) return;
        var wanted = directory ? "700" : "600";
        problems.Add($"{path} is accessible to {((mode & GroupAndOther & ~Other) != 0 && (mode & Other) != 0 ? "group and other users" : (mode & Other) != 0 ? "other users" : "its group")} (mode {Octal(mode)}); run: chmod {wanted} {path}");
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode & 0xFFF, 8).PadLeft(4, '0');

    [LibraryImport("libc")]
    private static partial uint umask(uint mask);
}
