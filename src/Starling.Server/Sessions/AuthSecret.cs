using System.Security.Cryptography;
using Starling.Server.Configuration;
using Starling.Xmpp.Sasl;

namespace Starling.Server.Sessions;

/// <summary>
/// The server's secret for SCRAM stand-in credentials (<see cref="ScramStandIns"/>): a file of random bytes in the data
/// directory, so that an unknown account's salt is the same after a restart as before (a salt that changes at
/// restart while real ones do not would tell which accounts exist).
/// </summary>
public static class AuthSecret
{
    public const string FileName = "scram-stand-in.key";

    /// <summary>Reads the secret, or creates it: owner-only (0600) from the start, and atomically (never half-written, never replacing one another process just created).</summary>
    /// <exception cref="ConfigurationException">The file exists but is not a secret of the right length.</exception>
    public static byte[] LoadOrCreate(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, FileName);
        for (int attempt = 0; ; attempt++)
        {
            if (File.Exists(path)) return Read(path);
            var key = RandomNumberGenerator.GetBytes(ScramStandIns.KeyLength);
            // A fresh name opened with CreateNew (O_EXCL): it cannot be a planted symlink, and is 0600 before a byte is written.
            var temp = path + "." + Convert.ToHexString(RandomNumberGenerator.GetBytes(8)) + ".tmp";
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            try
            {
                using (var file = new FileStream(temp, options))
                {
                    file.Write(key);
                    file.Flush(flushToDisk: true);
                }
                // Without overwrite, .NET moves with link()+unlink() on Unix: it fails if another process created the file first.
                File.Move(temp, path, overwrite: false);
                return key;
            }
            catch (IOException) when (File.Exists(path) && attempt < 3)
            {
                // Another process (a second start, an admin command) won the race: use its secret.
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
        }
    }

    private static byte[] Read(string path)
    {
        byte[] key;
        try
        {
            key = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"cannot read {path}: {ex.Message}", ex);
        }
        if (key.Length != ScramStandIns.KeyLength)
            throw new ConfigurationException($"{path} is {key.Length} bytes, not the {ScramStandIns.KeyLength} of a SASL stand-in secret; delete it and a new one is created at start (unknown accounts' SCRAM salts then change once)");
        return key;
    }
}
