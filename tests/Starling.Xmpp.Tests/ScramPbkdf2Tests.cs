using System.Security.Cryptography;
using System.Text;
using Starling.Xmpp.Sasl;

namespace Starling.Xmpp.Tests;

public class ScramPbkdf2Tests
{
    // Backends by name: Pbkdf2Backend is internal and public test methods cannot take it.
    public static TheoryData<string> Backends => [nameof(Pbkdf2Backend.Auto), nameof(Pbkdf2Backend.Native), nameof(Pbkdf2Backend.Framework)];

    // RFC 6070 §2, the PBKDF2-HMAC-SHA1 vectors whose dkLen is 20 (one block, as SCRAM uses).
    public static TheoryData<string, string, string, int, string> Rfc6070 => Cross(
        ("password", "salt", 1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
        ("password", "salt", 2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
        ("password", "salt", 4096, "4b007901b765489abead49d926f721d065a429c1"),
        ("password", "salt", 16777216, "eefe3d61cd4da4e4e9945b3d6ba2158c2634e984"));

    private static TheoryData<string, string, string, int, string> Cross(params (string, string, int, string)[] vectors)
    {
        var data = new TheoryData<string, string, string, int, string>();
        foreach (var backend in new[] { nameof(Pbkdf2Backend.Native), nameof(Pbkdf2Backend.Framework) })
        {
            foreach (var (password, salt, iterations, expected) in vectors) data.Add(backend, password, salt, iterations, expected);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Rfc6070))]
    public void Rfc6070_sha1_vectors(string backendName, string password, string salt, int iterations, string expected)
    {
        byte[]? derived = Derive(backendName, ScramHash.Sha1, Encoding.UTF8.GetBytes(password), Encoding.UTF8.GetBytes(salt), iterations);
        if (derived is null) return;
        Assert.Equal(expected, Convert.ToHexStringLower(derived));
    }

    [Fact]
    public void Native_backend_is_chosen_where_libcrypto_3_is_installed()
    {
        // On the machines Starling is built and measured on (Linux x64, OpenSSL 3) the fast path must not silently
        // turn into the fallback: it would only show as an import more than twice as slow.
        if (OperatingSystem.IsLinux() && BitConverter.IsLittleEndian
            && (File.Exists("/usr/lib/x86_64-linux-gnu/libcrypto.so.3") || File.Exists("/usr/lib/aarch64-linux-gnu/libcrypto.so.3")))
        {
            Assert.True(ScramPbkdf2.NativeAvailable);
        }
    }

    [Theory]
    [InlineData(ScramHash.Sha1)]
    [InlineData(ScramHash.Sha256)]
    public void Native_and_fallback_match_the_framework_on_random_inputs(ScramHash hash)
    {
        // Passwords of 0..200 bytes (keys longer than a block are hashed first), salts of 0..48 bytes, 1..5000
        // iterations; the seed is in the message of any failure.
        int seed = Environment.TickCount;
        var random = new Random(seed);
        HashAlgorithmName name = hash == ScramHash.Sha1 ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256;
        int[] edgeLengths = [0, 1, 55, 63, 64, 65, 119, 128, 200];
        for (int round = 0; round < 120; round++)
        {
            byte[] password = new byte[round < edgeLengths.Length ? edgeLengths[round] : random.Next(0, 201)];
            byte[] salt = new byte[random.Next(0, 49)];
            random.NextBytes(password);
            random.NextBytes(salt);
            int iterations = round switch { 0 => 1, 1 => 2, _ => random.Next(1, 5001) };

            byte[] expected = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, name, ScramPrimitives.HashLength(hash));
            string context = $"seed {seed}, round {round}: {password.Length}-byte password, {salt.Length}-byte salt, {iterations} iterations";
            foreach (string backend in Enum.GetNames<Pbkdf2Backend>())
            {
                byte[]? derived = Derive(backend, hash, password, salt, iterations);
                if (derived is not null) Assert.True(expected.AsSpan().SequenceEqual(derived), $"{backend}, {context}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Scram_salted_passwords_of_rfc5802_and_rfc7677(string backendName)
    {
        // SaltedPassword = Hi("pencil", salt, 4096) of the RFC examples, checked through the keys they publish
        // (the full exchanges are in ScramTests).
        byte[]? sha1 = Derive(backendName, ScramHash.Sha1, "pencil"u8.ToArray(), Convert.FromBase64String("QSXCR+Q6sek8bf92"), 4096);
        byte[]? sha256 = Derive(backendName, ScramHash.Sha256, "pencil"u8.ToArray(), Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
        if (sha1 is null || sha256 is null) return;
        Assert.Equal("HZbuOlKbWl+eR8AfIposuKbhX30=", Convert.ToBase64String(sha1));
        Assert.Equal("xKSVEDI6tPlSysH6mUQZOeeOp01r6B3fcJbodRPcYV0=", Convert.ToBase64String(sha256));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void Iterations_below_one_are_rejected(string backendName)
    {
        var backend = Enum.Parse<Pbkdf2Backend>(backendName);
        Assert.Throws<ArgumentOutOfRangeException>(() => ScramPbkdf2.Derive(ScramHash.Sha1, "p"u8, "s"u8, 0, backend));
        Assert.Throws<ArgumentOutOfRangeException>(() => ScramPbkdf2.Derive(ScramHash.Sha256, "p"u8, "s"u8, -1, backend));
    }

    [Fact]
    public void Hi_equals_the_framework_derivation()
    {
        byte[] salt = RandomNumberGenerator.GetBytes(16);
        foreach (var (hash, name) in new[] { (ScramHash.Sha1, HashAlgorithmName.SHA1), (ScramHash.Sha256, HashAlgorithmName.SHA256) })
        {
            byte[] expected = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes("pässwörd"), salt, 4096, name, ScramPrimitives.HashLength(hash));
            Assert.Equal(expected, ScramPrimitives.Hi(hash, "pässwörd", salt, 4096));
        }
    }

    /// <summary>
    /// Derives with the named backend; null for the native one where libcrypto.so.3 or its SHA*_Transform cannot be
    /// loaded (there it has nothing to test; the other backends still run). The native backend is called even when the
    /// start-up probe rejected it, so that a wrong result fails every case here, not only
    /// <see cref="Native_backend_is_chosen_where_libcrypto_3_is_installed"/>.
    /// </summary>
    private static byte[]? Derive(string backendName, ScramHash hash, byte[] password, byte[] salt, int iterations)
    {
        var backend = Enum.Parse<Pbkdf2Backend>(backendName);
        try
        {
            return ScramPbkdf2.Derive(hash, password, salt, iterations, backend);
        }
        catch (Exception ex) when (backend == Pbkdf2Backend.Native && ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }
}
