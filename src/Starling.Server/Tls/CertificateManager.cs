using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Starling.Server.Configuration;

namespace Starling.Server.Tls;

/// <summary>
/// One certificate per virtual host: loaded from the configured PEM files, or generated self-signed on first
/// start (as Prosody's `prosodyctl cert generate` does on request) so STARTTLS works out of the box.
/// The certificate file may be a full chain (leaf first, then intermediates, as Let's Encrypt's fullchain.pem): the
/// intermediates are sent in the handshake. <see cref="Reload"/> re-reads every host's files while the server runs.
/// </summary>
public sealed class CertificateManager
{
    // Replaced as a whole on reload: a connection reads one consistent table without a lock.
    private volatile Dictionary<string, HostCertificate> _byHost = new(StringComparer.Ordinal);
    private readonly LoadedConfiguration _config;
    private readonly Lock _reloadLock = new();

    private CertificateManager(LoadedConfiguration config)
    {
        _config = config;
    }

    /// <summary>Loads (generating where missing and not configured) a certificate for every host.</summary>
    public static CertificateManager Load(LoadedConfiguration config, Action<string>? report = null)
    {
        var manager = new CertificateManager(config);
        var table = new Dictionary<string, HostCertificate>(StringComparer.Ordinal);
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
            var loaded = HostCertificate.Load(certPath, keyPath);
            if (loaded.CipherPolicyNote is { } note) report?.Invoke($"TLS for {host.Name}: {note}");
            table[host.Name] = loaded;
        }
        manager._byHost = table;
        return manager;
    }

    /// <summary>The certificate new connections to <paramref name="host"/> get (null for an unknown host).</summary>
    public HostCertificate? Get(string host) => _byHost.GetValueOrDefault(host);

    /// <summary>
    /// Re-reads every host's certificate and key (`starling reload`, SIGHUP). New connections get the new certificate;
    /// established ones keep the one they negotiated. A pair that does not load (missing, unreadable, not matching)
    /// leaves that host on its previous certificate. Returns one line per host saying what happened (which file, why).
    /// </summary>
    public CertificateReloadResult Reload()
    {
        lock (_reloadLock)
        {
            var current = _byHost;
            var table = new Dictionary<string, HostCertificate>(current, StringComparer.Ordinal);
            var lines = new List<string>();
            int failed = 0;
            foreach (var host in _config.Options.Hosts)
            {
                var certPath = _config.CertificatePath(host);
                var keyPath = _config.KeyPath(host);
                try
                {
                    if (!File.Exists(certPath)) throw new ConfigurationException($"{certPath} does not exist");
                    if (!File.Exists(keyPath)) throw new ConfigurationException($"{keyPath} does not exist");
                    var loaded = HostCertificate.Load(certPath, keyPath);
                    table[host.Name] = loaded;
                    lines.Add($"{host.Name}: loaded {certPath} ({loaded.Certificate.Subject}, valid until {loaded.Certificate.NotAfter:yyyy-MM-dd}, {loaded.Context.IntermediateCertificates.Count} intermediate(s))");
                }
                catch (ConfigurationException ex)
                {
                    failed++;
                    lines.Add($"{host.Name}: kept the previous certificate: {ex.Message}");
                }
                catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
                {
                    failed++;
                    lines.Add($"{host.Name}: kept the previous certificate: cannot use {certPath} with key {keyPath}: {ex.Message}");
                }
            }
            _byHost = table;
            return new CertificateReloadResult(lines, failed);
        }
    }

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

    /// <summary>Loads a PEM pair (the leaf: the first certificate of the file); a clear message when it does not parse or does not match.</summary>
    public static X509Certificate2 LoadPem(string certPath, string keyPath) => LoadChain(certPath, keyPath).Leaf;

    /// <summary>
    /// Loads a PEM certificate file with its key: the first certificate is the leaf (it must match the key), the
    /// others (a fullchain.pem's intermediates) are returned to be sent along with it (RFC 8446 §4.4.2).
    /// </summary>
    public static (X509Certificate2 Leaf, X509Certificate2Collection Chain) LoadChain(string certPath, string keyPath)
    {
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            // Re-import as PKCS#12 so the key is usable by SslStream on every platform.
            var leaf = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(certPath);
            var chain = new X509Certificate2Collection();
            foreach (var c in all)
            {
                if (c.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span)) c.Dispose();
                else chain.Add(c);
            }
            return (leaf, chain);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"cannot load certificate {certPath} with key {keyPath}: {ex.Message}", ex);
        }
    }
}

/// <summary>What <see cref="CertificateManager.Reload"/> did: one line per host, and how many kept their old certificate.</summary>
public sealed record CertificateReloadResult(IReadOnlyList<string> Lines, int Failed)
{
    public bool Succeeded => Failed == 0;

    public override string ToString() => string.Join(Environment.NewLine, Lines);
}

/// <summary>A host's certificate, its chain, and what SCRAM channel binding needs of it.</summary>
public sealed class HostCertificate
{
    public HostCertificate(X509Certificate2 certificate, string path)
        : this(certificate, null, path)
    {
    }

    public HostCertificate(X509Certificate2 certificate, X509Certificate2Collection? intermediates, string path)
    {
        Certificate = certificate;
        Path = path;
        EndpointBinding = ComputeEndpointBinding(certificate);
        // One context per host, shared by every connection: the chain is built once and the TLS library's server
        // context is reused instead of being set up again per handshake (less CPU per login, less memory per session).
        // offline: the intermediates come from the file, nothing is downloaded (AIA) at start.
        Context = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
        if (!TlsPolicy.TryRestrictSharedContext(Context, out var why))
        {
            CipherPolicy = TlsPolicy.Fallback;
            CipherPolicyNote = $"cipher policy applied per connection ({why})";
        }
    }

    /// <summary>Loads a host's PEM pair (see <see cref="CertificateManager.LoadChain"/>).</summary>
    public static HostCertificate Load(string certPath, string keyPath)
    {
        var (leaf, chain) = CertificateManager.LoadChain(certPath, keyPath);
        return new HostCertificate(leaf, chain, certPath);
    }

    /// <summary>The per-connection cipher policy, only when the shared context could not be restricted (see <see cref="TlsPolicy"/>).</summary>
    public CipherSuitesPolicy? CipherPolicy { get; }

    /// <summary>Why the fallback policy is used, for the start-up report; null normally.</summary>
    public string? CipherPolicyNote { get; }

    public X509Certificate2 Certificate { get; }

    /// <summary>What SslStream serves for this host.</summary>
    public SslStreamCertificateContext Context { get; }

    public string Path { get; }

    /// <summary>RFC 5929 §4.1 tls-server-end-point: hash of the DER certificate (SHA-256 when the signature uses MD5 or SHA-1).</summary>
    public byte[] EndpointBinding { get; }

    /// <summary>
    /// tls-server-end-point of the certificate a connection actually negotiated (SslStream.LocalCertificate): this
    /// host's, or, for a connection made before a reload, the previous one's.
    /// </summary>
    public byte[] EndpointBindingOf(X509Certificate? negotiated)
    {
        if (negotiated is null || ReferenceEquals(negotiated, Certificate)) return EndpointBinding;
        if (negotiated is X509Certificate2 n && n.RawDataMemory.Span.SequenceEqual(Certificate.RawDataMemory.Span)) return EndpointBinding;
        return ComputeEndpointBinding(negotiated);
    }

    /// <summary>RFC 5929 §4.1 tls-server-end-point of any certificate.</summary>
    public static byte[] ComputeEndpointBinding(X509Certificate cert)
    {
        if (cert is X509Certificate2 c2) return ComputeEndpointBinding(c2);
        using var copy = X509CertificateLoader.LoadCertificate(cert.GetRawCertData());
        return ComputeEndpointBinding(copy);
    }

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
