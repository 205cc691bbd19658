using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Starling.Server.Configuration;

namespace Starling.Server.Tls;

/// <summary>
/// One certificate per virtual host: loaded from the configured PEM files, or generated self-signed on first
/// start (as Prosody's `prosodyctl cert generate` does on request) so STARTTLS works out of the box.
/// </summary>
public sealed class CertificateManager
{
    private readonly Dictionary<string, HostCertificate> _byHost = new(StringComparer.Ordinal);

    private CertificateManager() { }

    /// <summary>Loads (generating where missing and not configured) a certificate for every host.</summary>
    public static CertificateManager Load(LoadedConfiguration config, Action<string>? report = null)
    {
        var manager = new CertificateManager();
        foreach (var host in config.Options.Hosts)
        {
            var certPath = config.CertificatePath(host);
            var keyPath = config.KeyPath(host);
            bool configured = !string.IsNullOrWhiteSpace(host.Certificate);
            if (!File.Exists(certPath) || !File.Exists(keyPath))
            {
                if (configured)
                    throw new ConfigurationException($"certificate for {host.Name} not found: {(File.Exists(certPath) ? keyPath : certPath)} (fix Hosts:Certificate/Key, or remove both to use a generated one)");
                Generate(host.Name, certPath, keyPath);
                report?.Invoke($"generated a self-signed certificate for {host.Name}: {certPath}");
            }
            manager._byHost[host.Name] = new HostCertificate(LoadPem(certPath, keyPath), certPath);
        }
        return manager;
    }

    public HostCertificate? Get(string host) => _byHost.GetValueOrDefault(host);

    /// <summary>Writes a self-signed certificate and its key as PEM (key readable by the owner only).</summary>
    public static void Generate(string host, string certPath, string keyPath, int validDays = 3650)
    {
        Admin.DataPermissions.CreatePrivateDirectory(Path.GetDirectoryName(certPath)!);
        Admin.DataPermissions.CreatePrivateDirectory(Path.GetDirectoryName(keyPath)!);
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN={host}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(host);
        // RFC 6120 §13.7.1.2: XMPP services are identified by DNS names in subjectAltName.
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(validDays));

        // Written to fresh temporary files, then renamed into place: never half a pair behind, and rename(2)
        // replaces a link at the target instead of writing through it.
        var keyTmp = WriteNewPrivateFile(keyPath, rsa.ExportPkcs8PrivateKeyPem());
        string certTmp;
        try
        {
            certTmp = WriteNewPrivateFile(certPath, cert.ExportCertificatePem());
        }
        catch
        {
            File.Delete(keyTmp);
            throw;
        }
        File.Move(keyTmp, keyPath, overwrite: true);
        File.Move(certTmp, certPath, overwrite: true);
    }

    /// <summary>
    /// Writes <paramref name="text"/> to a new file beside <paramref name="target"/> and returns its path. The file
    /// is created 0600 (owner only from the first byte, never widened then narrowed) with CreateNew, i.e.
    /// O_CREAT|O_EXCL: if anything already exists at the name — a leftover, or a symbolic link planted to make us
    /// write the key elsewhere — the open fails instead of following it, and another, unguessable name is tried.
    /// What is found there is left alone.
    /// </summary>
    private static string WriteNewPrivateFile(string target, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = Admin.DataPermissions.PrivateFileMode;
        for (int attempt = 0; ; attempt++)
        {
            var name = attempt == 0 ? target + ".tmp" : $"{target}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(8))}.tmp";
            FileStream stream;
            try
            {
                stream = new FileStream(name, options);
            }
            catch (IOException) when (attempt < 4 && Occupied(name))
            {
                continue;
            }
            using (stream)
            {
                stream.Write(System.Text.Encoding.UTF8.GetBytes(text));
                stream.Flush(flushToDisk: true);
            }
            return name;
        }
    }

    private static bool Occupied(string path) =>
        new FileInfo(path).LinkTarget is not null || File.Exists(path) || Directory.Exists(path);

    /// <summary>Loads a PEM pair; a clear message when it does not parse or does not match.</summary>
    public static X509Certificate2 LoadPem(string certPath, string keyPath)
    {
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            // Re-import as PKCS#12 so the key is usable by SslStream on every platform.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or ArgumentException)
        {
            throw new ConfigurationException($"cannot load certificate {certPath} with key {keyPath}: {ex.Message}", ex);
        }
    }
}

/// <summary>A host's certificate and what SCRAM channel binding needs of it.</summary>
public sealed class HostCertificate
{
    public HostCertificate(X509Certificate2 certificate, string path)
    {
        Certificate = certificate;
        Path = path;
        EndpointBinding = ComputeEndpointBinding(certificate);
        // One context per host, shared by every connection: the chain is built once and the TLS library's server
        // context is reused instead of being set up again per handshake (less CPU per login, less memory per session).
        Context = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>What SslStream serves for this host.</summary>
    public SslStreamCertificateContext Context { get; }

    public string Path { get; }

    /// <summary>RFC 5929 §4.1 tls-server-end-point: hash of the DER certificate (SHA-256 when the signature uses MD5 or SHA-1).</summary>
    public byte[] EndpointBinding { get; }

    private static byte[] ComputeEndpointBinding(X509Certificate2 cert)
    {
        var oid = cert.SignatureAlgorithm.Value;
        var raw = cert.RawData;
        return oid switch
        {
            "1.2.840.113549.1.1.12" or "1.2.840.10045.4.3.3" => SHA384.HashData(raw),
            "1.2.840.113549.1.1.13" or "1.2.840.10045.4.3.4" => SHA512.HashData(raw),
            _ => SHA256.HashData(raw),
        };
    }
}
