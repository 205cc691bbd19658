using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using Starling.Xmpp.Sasl;

namespace Starling.Benchmarks;

/// <summary>
/// SCRAM's Hi() (PBKDF2-HMAC, one block, 4096 iterations: what every stored credential and every cold client login
/// costs): Starling's <see cref="ScramPrimitives.Hi"/> against <see cref="Rfc2898DeriveBytes.Pbkdf2(byte[], byte[], int, HashAlgorithmName, int)"/>,
/// which Hi used before. Both include the UTF-8 encoding of the password.
/// </summary>
[MemoryDiagnoser]
public class Pbkdf2Benchmarks
{
    public const int Iterations = ScramCredential.DefaultIterations;
    private const string Password = "correct horse battery staple";

    private byte[] _salt = [];

    [Params(ScramHash.Sha1, ScramHash.Sha256)]
    public ScramHash Hash { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _salt = RandomNumberGenerator.GetBytes(ScramPrimitives.SaltLength);
        byte[] expected = Rfc2898DeriveBytes_Pbkdf2();
        if (!expected.AsSpan().SequenceEqual(Starling_Hi()))
            throw new InvalidOperationException("Hi and Rfc2898DeriveBytes disagree");
        if (!ScramPbkdf2.NativeAvailable)
            throw new InvalidOperationException("the native PBKDF2 backend is unavailable here: Hi would measure the fallback");
    }

    [Benchmark(Baseline = true)]
    public byte[] Rfc2898DeriveBytes_Pbkdf2() =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(Password), _salt, Iterations,
            Hash == ScramHash.Sha1 ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256, ScramPrimitives.HashLength(Hash));

    [Benchmark]
    public byte[] Starling_Hi() => ScramPrimitives.Hi(Hash, Password, _salt, Iterations);
}
