using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Starling.Server.Tls;

/// <summary>
/// The one place that reaches into <see cref="SslStream"/> for the OpenSSL <c>SSL*</c> of a connection, for what .NET
/// has no public API for: SSL_MODE_RELEASE_BUFFERS (<see cref="NativeHeap"/>) and the RFC 9266 tls-exporter channel
/// binding (<see cref="ExportChannelBinding"/>).
/// <para>
/// This depends on the runtime's private layout, so it is guarded twice: the field must be there, and the object in it
/// must be the runtime's <c>Microsoft.Win32.SafeHandles.SafeSslHandle</c> (.NET 10 on Linux: a SafeHandle whose handle is
/// the SSL* of the libssl.so.3 the runtime loaded). Only then is libssl called with it: handing any other pointer to
/// OpenSSL could crash the process. Any mismatch (another runtime version or OS, the field renamed, another handle type,
/// no libssl.so.3, CLR_OPENSSL_VERSION_OVERRIDE choosing another OpenSSL) switches this off for the whole process, and
/// every caller then does without: no release-buffers tweak, no tls-exporter offered (tls-server-end-point still is).
/// </para>
/// </summary>
internal static partial class NativeSsl
{
    /// <summary>The runtime type we know the layout of (System.Net.Security, .NET 10, Unix).</summary>
    internal const string ExpectedHandleType = "Microsoft.Win32.SafeHandles.SafeSslHandle";

    // Reflection with a constant name: the trimmer keeps the field for native AOT (UnsafeAccessorType, which would avoid
    // reflection, is not supported by native AOT in .NET 10).
    private static readonly FieldInfo? SecurityContextField = GetSecurityContextField();

    private static int _state = IsSupportedRuntime() ? 1 : 0; // 1 = usable, 0 = off for the process

    /// <summary>Whether the SSL* of connections can be used (false once anything did not look as expected).</summary>
    public static bool Available => Volatile.Read(ref _state) == 1;

    /// <summary>Switches native access off for the process (something did not look as this code expects).</summary>
    public static void Disable() => Volatile.Write(ref _state, 0);

    private static bool IsSupportedRuntime()
    {
        if (!OperatingSystem.IsLinux() || Environment.Version.Major != 10 || !BitConverter.IsLittleEndian) return false;
        // The runtime may be told to load another OpenSSL than the libssl.so.3 we bind to; its SSL* would not be ours.
        var over = Environment.GetEnvironmentVariable("CLR_OPENSSL_VERSION_OVERRIDE");
        return string.IsNullOrEmpty(over) || over == "3";
    }

    private static FieldInfo? GetSecurityContextField()
    {
        try
        {
            return typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return null;
        }
    }

    /// <summary>
    /// The connection's SSL handle, if native access is available and the field holds the handle type this code was
    /// written for. Null for a connection that is already gone (that says nothing about the runtime).
    /// </summary>
    private static SafeHandle? GetHandle(SslStream stream)
    {
        if (!Available) return null;
        object? value;
        try
        {
            value = SecurityContextField?.GetValue(stream);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Disable();
            return null;
        }
        if (value is null)
        {
            // Before the handshake or after disposal the field is empty; a missing field is a layout change.
            if (SecurityContextField is null) Disable();
            return null;
        }
        if (!IsRuntimeSslHandle(value))
        {
            Disable();
            return null;
        }
        var handle = (SafeHandle)value;
        return handle.IsInvalid || handle.IsClosed ? null : handle;
    }

    /// <summary>
    /// Whether <paramref name="value"/> is the runtime's SSL handle: checked by type name, not just "some SafeHandle",
    /// because another SafeHandle's handle (a file, a key) is not an SSL* and OpenSSL would crash on it.
    /// </summary>
    internal static bool IsRuntimeSslHandle(object? value) =>
        value is SafeHandle && value.GetType().FullName == ExpectedHandleType;

    /// <summary>For tests: what the SslStream's private field holds (null when the field is gone).</summary>
    internal static object? RawSecurityContext(SslStream stream) => SecurityContextField?.GetValue(stream);

    /// <summary>Runs <paramref name="call"/> with the SSL* held (so it cannot be freed meanwhile). Returns false if there is none.</summary>
    private static bool TryWithSsl<TState>(SslStream stream, TState state, Func<IntPtr, TState, bool> call)
    {
        var handle = GetHandle(stream);
        if (handle is null) return false;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return call(handle.DangerousGetHandle(), state);
        }
        catch (ObjectDisposedException)
        {
            return false; // the connection closed meanwhile
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or MarshalDirectiveException)
        {
            Disable(); // no libssl.so.3 (or not the one we expect): nothing native for the rest of the run
            return false;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    private const int SslCtrlMode = 33; // SSL_CTRL_MODE: ORs the given bits into the mode

    /// <summary>SSL_ctrl(SSL_CTRL_MODE, <paramref name="mode"/>): returns the connection's mode afterwards, or null.</summary>
    public static long? AddMode(SslStream stream, long mode)
    {
        long result = 0;
        bool ok = TryWithSsl(stream, mode, (ssl, m) =>
        {
            result = SSL_ctrl(ssl, SslCtrlMode, (nint)m, IntPtr.Zero);
            return true;
        });
        return ok ? result : null;
    }

    /// <summary>RFC 9266 §2: the label of the tls-exporter channel binding.</summary>
    internal const string ChannelBindingLabel = "EXPORTER-Channel-Binding";

    /// <summary>RFC 9266 §2: 32 bytes of exported keying material.</summary>
    internal const int ChannelBindingLength = 32;

    /// <summary>
    /// RFC 9266 tls-exporter channel binding: RFC 5705 / RFC 8446 §7.5 keying material with the label
    /// "EXPORTER-Channel-Binding", a zero-length context and 32 bytes. Null when native access is not available.
    /// </summary>
    public static byte[]? ExportChannelBinding(SslStream stream) =>
        ExportKeyingMaterial(stream, ChannelBindingLabel, ChannelBindingLength);

    /// <summary>SSL_export_keying_material with a zero-length context (use_context = 1). Null on any failure.</summary>
    public static unsafe byte[]? ExportKeyingMaterial(SslStream stream, string label, int length)
    {
        var output = new byte[length];
        byte[] labelBytes = System.Text.Encoding.ASCII.GetBytes(label);
        bool ok = TryWithSsl(stream, (output, labelBytes), static (ssl, s) =>
        {
            byte empty = 0;
            fixed (byte* o = s.output)
            fixed (byte* l = s.labelBytes)
            {
                return SSL_export_keying_material(ssl, o, (nuint)s.output.Length, l, (nuint)s.labelBytes.Length, &empty, 0, 1) == 1;
            }
        });
        return ok ? output : null;
    }

    /// <summary>
    /// Restricts the cipher suites of the OpenSSL SSL_CTX behind <paramref name="stream"/> (shared by every later
    /// connection made from the same certificate context): <paramref name="tls12"/> is an OpenSSL cipher list for TLS 1.2,
    /// <paramref name="tls13"/> the TLS 1.3 ciphersuites. True if both were applied.
    /// </summary>
    /// <remarks>
    /// An SSL_CTX is restricted once. The runtime caches them by certificate, so a second certificate context for the same
    /// certificate (a reload of an unchanged file; in tests, servers sharing one certificate) gets the SSL_CTX that live
    /// handshakes are using, and SSL_CTX_set_cipher_list is not safe while other threads create connections from it (the
    /// test host crashed in OpenSSL's sort of the list). Contexts already restricted are remembered and left alone.
    /// </remarks>
    public static bool RestrictContextCiphers(SslStream stream, string tls12, string tls13, out IntPtr context)
    {
        IntPtr ctx = IntPtr.Zero;
        bool ok = TryWithSsl(stream, (tls12, tls13), (ssl, s) =>
        {
            ctx = SSL_get_SSL_CTX(ssl);
            if (ctx == IntPtr.Zero) return false;
            lock (RestrictedContexts)
            {
                if (RestrictedContexts.Contains(ctx)) return true;
                if (SSL_CTX_set_cipher_list(ctx, s.tls12) != 1 || SSL_CTX_set_ciphersuites(ctx, s.tls13) != 1) return false;
                RestrictedContexts.Add(ctx);
                return true;
            }
        });
        context = ok ? ctx : IntPtr.Zero;
        return ok;
    }

    // Addresses only, never dereferenced; a handful per process (one per certificate).
    private static readonly HashSet<IntPtr> RestrictedContexts = [];

    /// <summary>Whether the cipher lists were set on <paramref name="context"/> (for tests).</summary>
    internal static bool WasRestricted(IntPtr context)
    {
        lock (RestrictedContexts) return RestrictedContexts.Contains(context);
    }

    /// <summary>The SSL_CTX the connection was made from (compared by address only, never dereferenced), or zero.</summary>
    public static IntPtr GetContext(SslStream stream)
    {
        IntPtr ctx = IntPtr.Zero;
        TryWithSsl(stream, 0, (ssl, _) =>
        {
            ctx = SSL_get_SSL_CTX(ssl);
            return true;
        });
        return ctx;
    }

    [LibraryImport("libssl.so.3")]
    private static partial nint SSL_ctrl(IntPtr ssl, int cmd, nint larg, IntPtr parg);

    [LibraryImport("libssl.so.3")]
    private static unsafe partial int SSL_export_keying_material(IntPtr ssl, byte* output, nuint olen, byte* label, nuint llen, byte* context, nuint contextlen, int useContext);

    [LibraryImport("libssl.so.3")]
    private static partial IntPtr SSL_get_SSL_CTX(IntPtr ssl);

    [LibraryImport("libssl.so.3", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SSL_CTX_set_cipher_list(IntPtr ctx, string list);

    [LibraryImport("libssl.so.3", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SSL_CTX_set_ciphersuites(IntPtr ctx, string list);
}
