using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Authentication;
using Starling.Server.Transport;

namespace Starling.Server.Tls;

/// <summary>
/// The TLS policy of every c2s connection: TLS 1.2 and 1.3 only; TLS 1.2 limited to forward-secret key exchange
/// (ECDHE) with AEAD ciphers (AES-GCM, ChaCha20-Poly1305), as RFC 9325 §4.2 recommends and Mozilla's "intermediate"
/// profile (which Prosody and ejabberd follow) allows; TLS 1.3 keeps its three standard suites.
/// <para>
/// The obvious way, <see cref="CipherSuitesPolicy"/>, makes .NET on Linux build a new OpenSSL SSL_CTX for every
/// connection instead of sharing the certificate context's cached one (System.Net.Security, AllocateSslHandle: no
/// context caching when a policy is set). Measured on this machine: ~12 KB more native memory per idle TLS connection,
/// a quarter more than the whole OpenSSL state of a connection with release-buffers (~16 KB), against the idle
/// STARTTLS target of issue #3. So the policy is applied once, natively, to that shared SSL_CTX
/// (<see cref="TryRestrictSharedContext"/>), and <see cref="CipherSuitesPolicy"/> is the fallback when that is not
/// possible. Either way <see cref="IsAllowed"/> checks the suite of every handshake before any XMPP data flows.
/// </para>
/// </summary>
internal static class TlsPolicy
{
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>OpenSSL cipher list for TLS 1.2 (ECDHE key exchange, AEAD only; RSA and ECDSA certificates).</summary>
    public const string OpenSslTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";

    /// <summary>OpenSSL TLS 1.3 ciphersuites (RFC 8446 §9.1 mandatory and recommended ones).</summary>
    public const string OpenSslTls13Suites = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

    private static readonly TlsCipherSuite[] AllowedSuites =
    [
        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];

    private static CipherSuitesPolicy? _fallback;

    /// <summary>The managed policy, for when the shared context could not be restricted natively (null on Windows, where SChannel's system policy applies).</summary>
    public static CipherSuitesPolicy? Fallback
    {
        get
        {
            if (OperatingSystem.IsWindows()) return null;
            return _fallback ??= new CipherSuitesPolicy(AllowedSuites);
        }
    }

    /// <summary>Whether a negotiated suite is one this policy allows (checked after every handshake).</summary>
    public static bool IsAllowed(TlsCipherSuite suite) => Array.IndexOf(AllowedSuites, suite) >= 0;

    /// <summary>
    /// Restricts the SSL_CTX that every handshake with <paramref name="context"/> shares: one in-memory handshake makes the
    /// runtime create and cache it, the cipher lists are set on it, and a second handshake checks that it is reused and
    /// negotiates an allowed suite. False (the caller then uses <see cref="Fallback"/>) when anything did not work.
    /// </summary>
    public static bool TryRestrictSharedContext(SslStreamCertificateContext context, out string? why)
    {
        why = null;
        if (!NativeSsl.Available)
        {
            why = "native OpenSSL access is not available on this runtime";
            return false;
        }
        // One at a time in the process: the SSL_CTX the first handshake creates is restricted before another start or
        // reload can pick it up from the runtime's cache (see NativeSsl.RestrictContextCiphers).
        lock (RestrictLock)
        {
            return TryRestrictLocked(context, out why);
        }
    }

    private static readonly Lock RestrictLock = new();

    private static bool TryRestrictLocked(SslStreamCertificateContext context, out string? why)
    {
        why = null;
        try
        {
            IntPtr restricted = IntPtr.Zero;
            bool ok = InMemoryHandshake(context, server =>
                NativeSsl.RestrictContextCiphers(server, OpenSslTls12Ciphers, OpenSslTls13Suites, out restricted));
            if (!ok)
            {
                why = "could not set the cipher lists on the shared SSL_CTX";
                return false;
            }
            ok = InMemoryHandshake(context, server => NativeSsl.GetContext(server) == restricted && IsAllowed(server.NegotiatedCipherSuite));
            if (!ok) why = "the runtime did not reuse the restricted SSL_CTX";
            return ok;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException or InvalidOperationException)
        {
            why = ex.Message;
            return false;
        }
    }

    /// <summary>One server/client handshake over in-memory pipes; <paramref name="check"/> sees the server side.</summary>
    private static bool InMemoryHandshake(SslStreamCertificateContext context, Func<SslStream, bool> check)
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        using var server = new SslStream(new DuplexPipeStream(new MemoryDuplex(toServer.Reader, toClient.Writer)));
        // The client is our own, talking to itself: it accepts exactly the certificate of the context being primed.
        var expected = context.TargetCertificate.RawDataMemory;
        using var client = new SslStream(new DuplexPipeStream(new MemoryDuplex(toClient.Reader, toServer.Writer)), false,
            (_, presented, _, _) => presented is not null && presented.GetRawCertData().AsSpan().SequenceEqual(expected.Span));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var serverOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            EnabledSslProtocols = Protocols,
            ClientCertificateRequired = false,
            CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
        };
        var clientOptions = new SslClientAuthenticationOptions { TargetHost = "starling.invalid", EnabledSslProtocols = Protocols };
        Task.WhenAll(
            server.AuthenticateAsServerAsync(serverOptions, timeout.Token),
            client.AuthenticateAsClientAsync(clientOptions, timeout.Token)).GetAwaiter().GetResult();
        return check(server);
    }

    private sealed class MemoryDuplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
