using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;

namespace Starling.Xmpp.Sasl;

/// <summary>Which code computes PBKDF2 in <see cref="ScramPbkdf2.Derive"/>.</summary>
internal enum Pbkdf2Backend
{
    /// <summary><see cref="Native"/> when the start-up probe passed, else <see cref="Framework"/>.</summary>
    Auto,

    /// <summary>Precomputed HMAC states and OpenSSL's SHA1_Transform/SHA256_Transform (libcrypto.so.3).</summary>
    Native,

    /// <summary><see cref="Rfc2898DeriveBytes.Pbkdf2(ReadOnlySpan{byte}, ReadOnlySpan{byte}, int, HashAlgorithmName, int)"/>.</summary>
    Framework,
}

/// <summary>
/// PBKDF2-HMAC-SHA1 / -SHA256 (RFC 8018 §5.2) with one block of output (dkLen = hash length): all that SCRAM's
/// Hi() needs (RFC 5802 §2.2).
/// </summary>
/// <remarks>
/// <para>
/// Rfc2898DeriveBytes goes through OpenSSL 3's PKCS5_PBKDF2_HMAC, which pays the EVP/HMAC dispatch on every
/// iteration: ~3× the cost of the two compression-function calls an iteration really is. The native backend computes
/// the HMAC inner and outer states once (the hashes of key⊕ipad and key⊕opad), then per iteration restores a state and
/// runs one compression on one pre-padded 64-byte block, twice: inner(U_{i-1}), outer(inner digest). The compression
/// is libcrypto's SHA1_Transform / SHA256_Transform (deprecated in OpenSSL 3 but exported, and dispatching to the same
/// SHA-NI/AVX code as the rest of libcrypto); U1 (which hashes the salt) is an ordinary HMAC. The state words are
/// moved, byte-swapped and xored as 128-bit vectors between the calls, so an iteration costs about its two
/// compressions (4096 iterations: ~0.30 ms for SHA-1, ~0.33 ms for SHA-256 on the 2-core EPYC of docs/benchmarks.md,
/// against 0.71 / 0.75 ms for Rfc2898DeriveBytes).
/// </para>
/// <para>
/// Whether the native backend is used is decided once per process: on little-endian Linux, the library and both entry
/// points must load and give the same results as the framework on test inputs (short and long keys); on anything else,
/// any exception or any mismatch, every derivation uses the framework. It never guesses.
/// </para>
/// </remarks>
internal static unsafe partial class ScramPbkdf2
{
    private const string LibCrypto = "libcrypto.so.3";

    /// <summary>uints in the larger of OpenSSL's SHA_CTX (24: h0..h4, Nl, Nh, data[16], num) and SHA256_CTX (28: h[8], Nl, Nh, data[16], num, md_len).</summary>
    private const int ContextWords = 28;

    private const int BlockBytes = 64;
    private const int BlockWords = BlockBytes / sizeof(uint);

    /// <summary>True when <see cref="Pbkdf2Backend.Auto"/> means <see cref="Pbkdf2Backend.Native"/> in this process.</summary>
    public static bool NativeAvailable => Probe.Passed;

    /// <summary>Hi(password, salt, iterations): PBKDF2 with HMAC-<paramref name="hash"/> as PRF, dkLen = hash length.</summary>
    public static byte[] Derive(ScramHash hash, ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, int iterations, Pbkdf2Backend backend = Pbkdf2Backend.Auto)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        if (hash is not (ScramHash.Sha1 or ScramHash.Sha256)) throw new ArgumentOutOfRangeException(nameof(hash));
        if (backend == Pbkdf2Backend.Auto) backend = NativeAvailable ? Pbkdf2Backend.Native : Pbkdf2Backend.Framework;
        return backend switch
        {
            Pbkdf2Backend.Native when hash == ScramHash.Sha1 => DeriveNative<Sha1Block>(password, salt, iterations),
            Pbkdf2Backend.Native => DeriveNative<Sha256Block>(password, salt, iterations),
            Pbkdf2Backend.Framework => DeriveFramework(hash, password, salt, iterations),
            _ => throw new ArgumentOutOfRangeException(nameof(backend)),
        };
    }

    private static byte[] DeriveFramework(ScramHash hash, ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations,
            hash == ScramHash.Sha1 ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256, ScramPrimitives.HashLength(hash));

    private static byte[] DeriveNative<T>(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, int iterations)
        where T : struct, IBlockFunction
    {
        int words = T.DigestWords;
        int hLen = words * sizeof(uint);

        // U1 = HMAC(P, S || INT(1)). HMAC hashes a key longer than a block first, as done for the states below.
        byte[] firstMessage = new byte[salt.Length + 4];
        salt.CopyTo(firstMessage);
        firstMessage[^1] = 1;
        byte[] result = T.Hmac(password, firstMessage);
        if (iterations == 1) return result;
        bool done = false;

        uint* context = stackalloc uint[ContextWords];
        uint* inner = stackalloc uint[8];
        uint* outer = stackalloc uint[8];
        uint* block = stackalloc uint[BlockWords];
        uint* sum = stackalloc uint[8];
        var blockBytes = new Span<byte>(block, BlockBytes);
        try
        {
            // The states after hashing one block of key⊕ipad (0x36) and key⊕opad (0x5c).
            blockBytes.Clear();
            if (password.Length > BlockBytes) T.Hash(password, blockBytes);
            else password.CopyTo(blockBytes);
            for (int j = 0; j < BlockWords; j++) block[j] ^= 0x36363636u;
            T.SetInitialState(context);
            T.Transform(context, (byte*)block);
            new ReadOnlySpan<uint>(context, words).CopyTo(new Span<uint>(inner, words));
            for (int j = 0; j < BlockWords; j++) block[j] ^= 0x36363636u ^ 0x5c5c5c5cu;
            T.SetInitialState(context);
            T.Transform(context, (byte*)block);
            new ReadOnlySpan<uint>(context, words).CopyTo(new Span<uint>(outer, words));

            // Both messages an iteration hashes after a state are one block long (64 + hLen bytes), so they share the
            // padding: the hLen message bytes, 0x80, zeros, the bit length as a 64-bit big-endian number.
            blockBytes.Clear();
            result.CopyTo(blockBytes);
            blockBytes[hLen] = 0x80;
            BinaryPrimitives.WriteUInt64BigEndian(blockBytes[(BlockBytes - 8)..], (ulong)(BlockBytes + hLen) * 8);
            for (int j = 0; j < words; j++) sum[j] = block[j];

            // block holds U_{i-1} in its first hLen bytes; sum is U1 ⊕ … ⊕ U_{i-1}, word by word in the same byte order.
            T.Iterate(context, inner, outer, block, sum, iterations - 1);

            new ReadOnlySpan<byte>(sum, hLen).CopyTo(result);
            done = true;
            return result;
        }
        finally
        {
            if (!done) CryptographicOperations.ZeroMemory(result);
            CryptographicOperations.ZeroMemory(new Span<byte>(context, ContextWords * sizeof(uint)));
            CryptographicOperations.ZeroMemory(new Span<byte>(inner, 8 * sizeof(uint)));
            CryptographicOperations.ZeroMemory(new Span<byte>(outer, 8 * sizeof(uint)));
            CryptographicOperations.ZeroMemory(blockBytes);
            CryptographicOperations.ZeroMemory(new Span<byte>(sum, 8 * sizeof(uint)));
        }
    }

    /// <summary>A state word (a number) as the four digest bytes it stands for, read back as a uint in memory order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ToBigEndianBytes(uint word) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(word) : word;

    /// <summary>Four state words as the digest bytes they stand for, read back as uints in memory order.</summary>
    /// <remarks>
    /// Shifts and masks rather than a byte shuffle: the native (AOT) build targets a baseline without SSSE3's pshufb and
    /// would call a software Vector128.Shuffle; shifts are SSE2/AdvSimd everywhere and cost about the same on the JIT.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<uint> ToBigEndianBytes(Vector128<uint> words)
    {
        if (!BitConverter.IsLittleEndian) return words;
        var mask = Vector128.Create(0x00FF00FFu);
        Vector128<uint> swappedPairs = ((words >>> 8) & mask) | ((words & mask) << 8); // b0 b1 b2 b3 -> b1 b0 b3 b2
        return (swappedPairs >>> 16) | (swappedPairs << 16);                         // -> b3 b2 b1 b0
    }

    private interface IBlockFunction
    {
        static abstract int DigestWords { get; }

        static abstract void SetInitialState(uint* context);

        /// <summary>One compression of the 64-byte block into the state words at the start of context.</summary>
        static abstract void Transform(uint* context, byte* block);

        /// <summary>
        /// <paramref name="count"/> PBKDF2 iterations: from the inner state, compress block (U_{i-1} + padding), put
        /// the digest in block; from the outer state, compress block, put the digest U_i in block and xor it into sum.
        /// </summary>
        static abstract void Iterate(uint* context, uint* inner, uint* outer, uint* block, uint* sum, int count);

        static abstract byte[] Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data);

        static abstract void Hash(ReadOnlySpan<byte> data, Span<byte> destination);
    }

    // CA5350: SHA-1 is SCRAM-SHA-1's PRF (RFC 5802); collisions do not matter for HMAC/PBKDF2.
#pragma warning disable CA5350
    private readonly struct Sha1Block : IBlockFunction
    {
        public static int DigestWords => 5;

        public static void SetInitialState(uint* context)
        {
            // FIPS 180-4 §5.3.1.
            context[0] = 0x67452301u;
            context[1] = 0xEFCDAB89u;
            context[2] = 0x98BADCFEu;
            context[3] = 0x10325476u;
            context[4] = 0xC3D2E1F0u;
        }

        public static void Transform(uint* context, byte* block) => Sha1Transform(context, block);

        public static void Iterate(uint* context, uint* inner, uint* outer, uint* block, uint* sum, int count)
        {
            // Five words: four in a vector, the fifth on its own.
            Vector128<uint> inner0 = Vector128.Load(inner), outer0 = Vector128.Load(outer), sum0 = Vector128.Load(sum);
            uint inner4 = inner[4], outer4 = outer[4], sum4 = sum[4];
            for (int i = 0; i < count; i++)
            {
                inner0.Store(context);
                context[4] = inner4;
                Sha1Transform(context, (byte*)block);
                ToBigEndianBytes(Vector128.Load(context)).Store(block);
                block[4] = ToBigEndianBytes(context[4]);
                outer0.Store(context);
                context[4] = outer4;
                Sha1Transform(context, (byte*)block);
                Vector128<uint> u0 = ToBigEndianBytes(Vector128.Load(context));
                uint u4 = ToBigEndianBytes(context[4]);
                u0.Store(block);
                block[4] = u4;
                sum0 ^= u0;
                sum4 ^= u4;
            }
            sum0.Store(sum);
            sum[4] = sum4;
        }

        public static byte[] Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) => HMACSHA1.HashData(key, data);

        public static void Hash(ReadOnlySpan<byte> data, Span<byte> destination) => SHA1.HashData(data, destination);
    }
#pragma warning restore CA5350

    private readonly struct Sha256Block : IBlockFunction
    {
        public static int DigestWords => 8;

        public static void SetInitialState(uint* context)
        {
            // FIPS 180-4 §5.3.3.
            context[0] = 0x6A09E667u;
            context[1] = 0xBB67AE85u;
            context[2] = 0x3C6EF372u;
            context[3] = 0xA54FF53Au;
            context[4] = 0x510E527Fu;
            context[5] = 0x9B05688Cu;
            context[6] = 0x1F83D9ABu;
            context[7] = 0x5BE0CD19u;
        }

        public static void Transform(uint* context, byte* block) => Sha256Transform(context, block);

        public static void Iterate(uint* context, uint* inner, uint* outer, uint* block, uint* sum, int count)
        {
            // Eight words: two vectors (Vector128 is hardware-accelerated wherever .NET runs on x64 or Arm64).
            Vector128<uint> inner0 = Vector128.Load(inner), inner1 = Vector128.Load(inner + 4);
            Vector128<uint> outer0 = Vector128.Load(outer), outer1 = Vector128.Load(outer + 4);
            Vector128<uint> sum0 = Vector128.Load(sum), sum1 = Vector128.Load(sum + 4);
            for (int i = 0; i < count; i++)
            {
                inner0.Store(context);
                inner1.Store(context + 4);
                Sha256Transform(context, (byte*)block);
                ToBigEndianBytes(Vector128.Load(context)).Store(block);
                ToBigEndianBytes(Vector128.Load(context + 4)).Store(block + 4);
                outer0.Store(context);
                outer1.Store(context + 4);
                Sha256Transform(context, (byte*)block);
                Vector128<uint> u0 = ToBigEndianBytes(Vector128.Load(context)), u1 = ToBigEndianBytes(Vector128.Load(context + 4));
                u0.Store(block);
                u1.Store(block + 4);
                sum0 ^= u0;
                sum1 ^= u1;
            }
            sum0.Store(sum);
            sum1.Store(sum + 4);
        }

        public static byte[] Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) => HMACSHA256.HashData(key, data);

        public static void Hash(ReadOnlySpan<byte> data, Span<byte> destination) => SHA256.HashData(data, destination);
    }

    // void SHA1_Transform(SHA_CTX *c, const unsigned char *data) / SHA256_Transform(SHA256_CTX *, ...): one block, only
    // the h words of the context are read and written. ~35-40 ns a call with SHA-NI, hence no GC transition.
    [LibraryImport(LibCrypto, EntryPoint = "SHA1_Transform")]
    [SuppressGCTransition]
    private static partial void Sha1Transform(uint* context, byte* block);

    [LibraryImport(LibCrypto, EntryPoint = "SHA256_Transform")]
    [SuppressGCTransition]
    private static partial void Sha256Transform(uint* context, byte* block);

    /// <summary>Runs once, on first use: the native backend must load and agree with the framework.</summary>
    private static class Probe
    {
        public static readonly bool Passed = Run();

        private static bool Run()
        {
            if (!OperatingSystem.IsLinux() || !BitConverter.IsLittleEndian) return false;
            try
            {
                // Keys of a few bytes, exactly a block and more than a block (hashed first); a few iterations.
                byte[] salt = "probe salt"u8.ToArray();
                foreach (int keyLength in (int[])[9, 64, 100])
                {
                    byte[] key = new byte[keyLength];
                    for (int i = 0; i < key.Length; i++) key[i] = (byte)(i * 7 + 1);
                    foreach (var hash in (ScramHash[])[ScramHash.Sha1, ScramHash.Sha256])
                    {
                        byte[] expected = DeriveFramework(hash, key, salt, 3);
                        byte[] actual = Derive(hash, key, salt, 3, Pbkdf2Backend.Native);
                        if (!expected.AsSpan().SequenceEqual(actual)) return false;
                    }
                }
                return true;
            }
#pragma warning disable CA1031 // Any failure at all (missing library or symbol, anything else) means: use the framework.
            catch (Exception)
            {
                return false;
            }
#pragma warning restore CA1031
        }
    }
}
