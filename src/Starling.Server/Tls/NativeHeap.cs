using System.Net.Security;
using System.Runtime.InteropServices;

namespace Starling.Server.Tls;

/// <summary>
/// Keeps the native memory of many idle TLS connections small (Linux, OpenSSL 3, glibc).
/// <para>
/// OpenSSL holds a ~17 KB read buffer and a ~17 KB write buffer per connection for as long as the connection lives,
/// unless SSL_MODE_RELEASE_BUFFERS is set: then both are freed whenever they are empty, which for an idle XMPP
/// session is nearly always (measured with the runtime's OpenSSL allocation hooks: ~50 KB → ~16 KB of live OpenSSL
/// memory per server-side connection, most of the rest being the SSL object itself). Prosody (LuaSec) sets the same
/// mode. SslStream does not expose it, so the mode is set through <see cref="NativeSsl"/>, the one guarded place that
/// reaches the runtime's SSL handle. Anything unexpected turns the tweak off for the process: it is an optimisation,
/// never a requirement.
/// </para>
/// <para>
/// glibc keeps memory freed by native code (handshake buffers, released record buffers) in its heaps; after a burst of
/// handshakes that is megabytes of RSS. <see cref="TrimNativeHeap"/> (malloc_trim) hands whole free pages back.
/// </para>
/// </summary>
internal static partial class NativeHeap
{
    private const int SslModeReleaseBuffers = 0x10;

    private static int _releaseBuffersState = 1; // 1 = try, 0 = off
    private static int _trimState = OperatingSystem.IsLinux() ? 1 : 0;

    /// <summary>Whether new TLS connections still get SSL_MODE_RELEASE_BUFFERS (off after anything unexpected).</summary>
    public static bool ReleaseBuffersEnabled => Volatile.Read(ref _releaseBuffersState) == 1 && NativeSsl.Available;

    /// <summary>Asks OpenSSL to free the connection's record buffers whenever they are empty. Returns whether it did.</summary>
    public static bool ReleaseBuffersWhenIdle(SslStream stream)
    {
        if (!ReleaseBuffersEnabled) return false;
        // NativeSsl checks the handle's type before anything reaches libssl, and switches itself off if it is not the
        // runtime layout this was written for; a connection that is already gone just returns null.
        long? mode = NativeSsl.AddMode(stream, SslModeReleaseBuffers);
        if (mode is null) return false;
        if ((mode.Value & SslModeReleaseBuffers) == 0) Volatile.Write(ref _releaseBuffersState, 0);
        return (mode.Value & SslModeReleaseBuffers) != 0;
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

    [LibraryImport("libc")]
    private static partial int malloc_trim(nuint pad);
}
