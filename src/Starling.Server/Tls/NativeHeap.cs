using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Starling.Server.Tls;

/// <summary>
/// Keeps the native memory of many idle TLS connections small (Linux, OpenSSL 3, glibc).
/// <para>
/// OpenSSL holds a ~17 KB read buffer and a ~17 KB write buffer per connection for as long as the connection lives,
/// unless SSL_MODE_RELEASE_BUFFERS is set: then both are freed whenever they are empty, which for an idle XMPP
/// session is nearly always (measured with the runtime's OpenSSL allocation hooks: ~50 KB → ~16 KB of live OpenSSL
/// memory per server-side connection, most of the rest being the SSL object itself). Prosody (LuaSec) sets the same
/// mode. SslStream does not expose it, so the mode is set on the SSL handle the runtime keeps in SslStream's
/// <c>_securityContext</c> field (.NET 10 on Unix: a SafeHandle whose handle is the SSL*). Anything unexpected
/// (another runtime version, another OS, the field gone) turns the tweak off for the process: it is an optimisation,
/// never a requirement.
/// </para>
/// <para>
/// glibc keeps memory freed by native code (handshake buffers, released record buffers) in its heaps; after a burst of
/// handshakes that is megabytes of RSS. <see cref="TrimNativeHeap"/> (malloc_trim) hands whole free pages back.
/// </para>
/// </summary>
internal static partial class NativeHeap
{
    private const int SslCtrlMode = 33;          // SSL_CTRL_MODE: ORs the given bits into the mode
    private const int SslModeReleaseBuffers = 0x10;

    private static int _releaseBuffersState = IsSupportedRuntime() ? 1 : 0; // 1 = try, 0 = off
    private static int _trimState = OperatingSystem.IsLinux() ? 1 : 0;

    /// <summary>Whether new TLS connections still get SSL_MODE_RELEASE_BUFFERS (off after anything unexpected).</summary>
    public static bool ReleaseBuffersEnabled => Volatile.Read(ref _releaseBuffersState) == 1;

    private static bool IsSupportedRuntime() =>
        OperatingSystem.IsLinux() && Environment.Version.Major == 10 && BitConverter.IsLittleEndian;

    /// <summary>Asks OpenSSL to free the connection's record buffers whenever they are empty. Returns whether it did.</summary>
    public static bool ReleaseBuffersWhenIdle(SslStream stream)
    {
        if (Volatile.Read(ref _releaseBuffersState) == 0) return false;
        try
        {
            if (SecurityContextField?.GetValue(stream) is not SafeHandle handle)
            {
                Volatile.Write(ref _releaseBuffersState, 0); // not the runtime layout this was written for
                return false;
            }

            if (handle.IsInvalid || handle.IsClosed) return false; // this connection is already gone

            bool added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                nint mode = SSL_ctrl(handle.DangerousGetHandle(), SslCtrlMode, SslModeReleaseBuffers, IntPtr.Zero);
                if ((mode & SslModeReleaseBuffers) == 0) Volatile.Write(ref _releaseBuffersState, 0);
                return (mode & SslModeReleaseBuffers) != 0;
            }
            finally
            {
                if (added) handle.DangerousRelease();
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Whatever went wrong (a runtime whose SslStream is laid out differently, no libssl.so.3), the connection
            // itself is fine: only the optimisation is switched off.
            Volatile.Write(ref _releaseBuffersState, 0);
            return false;
        }
    }

    /// <summary>Returns free pages of the C heap to the OS (glibc malloc_trim); a no-op elsewhere.</summary>
    public static void TrimNativeHeap()
    {
        if (Volatile.Read(ref _trimState) == 0) return;
        try
        {
            _ = malloc_trim(0); // 1 if memory was released, 0 if not: either is fine
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            Volatile.Write(ref _trimState, 0); // not glibc (e.g. musl): nothing to trim this way
        }
    }

    // Reflection with a constant name: the trimmer keeps the field for native AOT (UnsafeAccessorType, which would avoid
    // reflection, is not supported by native AOT in .NET 10).
    private static readonly FieldInfo? SecurityContextField = GetSecurityContextField();

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

    [LibraryImport("libssl.so.3")]
    private static partial nint SSL_ctrl(IntPtr ssl, int cmd, nint larg, IntPtr parg);

    [LibraryImport("libc")]
    private static partial int malloc_trim(nuint pad);
}
