using Starling.Server.Admin;
using Starling.Server.Tls;

namespace Starling.Server.Tests.Tls;

/// <summary>How CertificateManager writes a generated pair: owner-only, and never through a planted link (issue #13, item 9).</summary>
public sealed class CertificateWriteTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-certwrite-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void A_symlink_planted_at_the_temporary_key_path_is_not_followed()
    {
        if (OperatingSystem.IsWindows()) return;
        var certs = Path.Combine(_dir.FullName, "certs");
        Directory.CreateDirectory(certs);
        var victim = Path.Combine(_dir.FullName, "victim.txt");
        File.WriteAllText(victim, "untouched");
        var keyPath = Path.Combine(certs, "localhost.key");
        var certPath = Path.Combine(certs, "localhost.crt");
        // The name the key used to be written under before being renamed into place.
        File.CreateSymbolicLink(keyPath + ".tmp", victim);
        File.CreateSymbolicLink(certPath + ".tmp", victim);

        CertificateManager.Generate("localhost", certPath, keyPath);

        Assert.Equal("untouched", File.ReadAllText(victim));
        Assert.Null(new FileInfo(keyPath).LinkTarget);
        Assert.Equal(DataPermissions.PrivateFileMode, File.GetUnixFileMode(keyPath));
        Assert.Contains("PRIVATE KEY", File.ReadAllText(keyPath), StringComparison.Ordinal);
        using var cert = CertificateManager.LoadPem(certPath, keyPath);
        Assert.True(cert.HasPrivateKey);
        // The planted links are left as they were; no temporary file of ours is left behind.
        Assert.Equal(victim, new FileInfo(keyPath + ".tmp").LinkTarget);
        Assert.Equal(["localhost.crt", "localhost.crt.tmp", "localhost.key", "localhost.key.tmp"], Directory.GetFileSystemEntries(certs).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Generated_key_certificate_and_new_folders_are_owner_only()
    {
        if (OperatingSystem.IsWindows()) return;
        var certs = Path.Combine(_dir.FullName, "a", "certs");
        var keyPath = Path.Combine(certs, "localhost.key");
        CertificateManager.Generate("localhost", Path.Combine(certs, "localhost.crt"), keyPath);
        Assert.Equal(DataPermissions.PrivateFileMode, File.GetUnixFileMode(keyPath));
        Assert.Equal(DataPermissions.PrivateFileMode, File.GetUnixFileMode(Path.Combine(certs, "localhost.crt")));
        Assert.Equal(DataPermissions.PrivateDirectoryMode, File.GetUnixFileMode(certs));
    }
}
