using System.Reflection;
using System.Text;
using Starling.Xmpp.Sasl;

namespace Starling.Fuzz;

/// <summary>
/// SCRAM (src/Starling.Xmpp/Sasl/Scram.cs, ScramClient.cs) and SASLprep (SaslPrep.cs) on hostile messages.
/// </summary>
/// <remarks>
/// <para>Input: one mode character, then up to two messages separated by the first '\n'. Modes '0'-'3' and '7' are
/// the server reading client-first then client-final; '4'-'6' the client reading server-first then server-final:</para>
/// <list type="bullet">
/// <item>'0' server SCRAM-SHA-1 (RFC 5802 §5 example nonce), '1' server SCRAM-SHA-256 (RFC 7677 §3 example nonce),</item>
/// <item>'2' server SCRAM-SHA-256-PLUS with tls-server-end-point data, '3' server SCRAM-SHA-1 on a connection that
/// could bind (the 'y' downgrade check), '7' server SCRAM-SHA-256-PLUS on a connection without binding,</item>
/// <item>'4' client SCRAM-SHA-1, '5' client SCRAM-SHA-256, '6' client SCRAM-SHA-256-PLUS.</item>
/// </list>
/// <para>The server knows one user, "user" with password "pencil" (the RFC examples), and fixed nonces, so the RFC
/// exchanges succeed end to end and mutations start from a complete exchange. Invariants: the server never throws and
/// fails only with not-authorized or malformed-request, never succeeds for an unknown user; the client throws only
/// <see cref="FormatException"/> on a bad server-first and never throws on a bad server-final; SASLprep never throws,
/// fails with a reason, and is idempotent.</para>
/// </remarks>
public static class ScramHarness
{
    public const string User = "user";
    public const string Password = "pencil";
    public const string Sha1ClientNonce = "fyko+d2lbbFgONRv9qkxdawL";
    public const string Sha1ServerNonce = "3rfcNHYJY1ZVvWVs7j";
    public const string Sha256ClientNonce = "rOprNGfwEbeRWgbNEkqO";
    public const string Sha256ServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    public const string BindingType = "tls-server-end-point";

    // A hostile server-first may ask for up to ScramClient.MaxIterations PBKDF2 rounds: correct, but it would turn
    // every such input into a multi-second "hang". Inputs asking for more than this are skipped.
    private const int MaxFuzzedIterations = 4096;

    public static readonly byte[] BindingData = Encoding.ASCII.GetBytes("starling-fuzz-channel-binding-32");

    private static readonly ScramCredential Sha1Credential =
        ScramCredential.Derive(ScramHash.Sha1, Password, Convert.FromBase64String("QSXCR+Q6sek8bf92"), 4096);

    private static readonly ScramCredential Sha256Credential =
        ScramCredential.Derive(ScramHash.Sha256, Password, Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);

    // The fixed-nonce constructors are internal test hooks; the harness is not a friend assembly.
    private static readonly ConstructorInfo ServerWithNonce = typeof(ScramServer).GetConstructor(
        BindingFlags.Instance | BindingFlags.NonPublic, [typeof(ScramHash), typeof(bool), typeof(string), typeof(byte[]), typeof(string)])
        ?? throw new InvalidOperationException("ScramServer's fixed-nonce constructor is gone");

    private static readonly ConstructorInfo ClientWithNonce = typeof(ScramClient).GetConstructor(
        BindingFlags.Instance | BindingFlags.NonPublic,
        [typeof(ScramHash), typeof(string), typeof(string), typeof(string), typeof(byte[]), typeof(string)])
        ?? throw new InvalidOperationException("ScramClient's fixed-nonce constructor is gone");

    // Repeated salts (the seeds' and their mutations of other fields) skip PBKDF2; KeyCache is init-only.
    private static readonly ScramKeyCache KeyCache = new();

    private static readonly PropertyInfo KeyCacheProperty = typeof(ScramClient).GetProperty(nameof(ScramClient.KeyCache))
        ?? throw new InvalidOperationException("ScramClient.KeyCache is gone");

    /// <summary>Where replay prints each exchange's outcome (null while fuzzing).</summary>
    public static Action<string>? Trace { get; set; }

    public static void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
            return;
        int mode = input[0] % 8;
        ReadOnlySpan<byte> rest = input[1..];
        int newline = rest.IndexOf((byte)'\n');
        ReadOnlySpan<byte> first = newline < 0 ? rest : rest[..newline];
        ReadOnlySpan<byte> second = newline < 0 ? default : rest[(newline + 1)..];
        bool hasSecond = newline >= 0;

        CheckSaslPrep(Encoding.UTF8.GetString(first));
        CheckSaslPrep(Encoding.UTF8.GetString(second));

        switch (mode)
        {
            case 0: Server(ScramHash.Sha1, plus: false, null, null, Sha1ServerNonce, first, second, hasSecond); break;
            case 1: Server(ScramHash.Sha256, plus: false, null, null, Sha256ServerNonce, first, second, hasSecond); break;
            case 2: Server(ScramHash.Sha256, plus: true, BindingType, BindingData, Sha256ServerNonce, first, second, hasSecond); break;
            case 3: Server(ScramHash.Sha1, plus: false, BindingType, BindingData, Sha1ServerNonce, first, second, hasSecond); break;
            case 4: Client(ScramHash.Sha1, null, null, Sha1ClientNonce, first, second, hasSecond); break;
            case 5: Client(ScramHash.Sha256, null, null, Sha256ClientNonce, first, second, hasSecond); break;
            case 6: Client(ScramHash.Sha256, BindingType, BindingData, Sha256ClientNonce, first, second, hasSecond); break;
            default: Server(ScramHash.Sha256, plus: true, null, null, Sha256ServerNonce, first, second, hasSecond); break;
        }
    }

    private static void Server(
        ScramHash hash, bool plus, string? bindingType, byte[]? bindingData, string serverNonce,
        ReadOnlySpan<byte> clientFirst, ReadOnlySpan<byte> clientFinal, bool hasFinal)
    {
        var server = (ScramServer)ServerWithNonce.Invoke([hash, plus, bindingType, bindingData, serverNonce]);
        var result = server.HandleClientFirst(clientFirst);
        if (result != SaslStepResult.Continue)
        {
            CheckFailure(server, result, "client-first");
            Trace?.Invoke($"server: client-first failed: {server.FailureCondition}");
            return;
        }

        string username = server.Username ?? throw new FuzzFindingException("client-first accepted without a username");
        bool known = username == User;
        ScramCredential? credential = known ? (hash == ScramHash.Sha1 ? Sha1Credential : Sha256Credential) : null;
        byte[] serverFirst = server.CreateServerFirst(credential);
        if (!Encoding.ASCII.GetString(serverFirst).StartsWith("r=", StringComparison.Ordinal))
            throw new FuzzFindingException("server-first does not start with r=");
        if (!hasFinal)
            return;

        result = server.HandleClientFinal(clientFinal, out byte[]? serverFinal);
        Trace?.Invoke($"server: user '{username}', client-final: {result} {server.FailureCondition}");
        switch (result)
        {
            case SaslStepResult.Success:
                if (!known)
                    throw new FuzzFindingException($"an unknown user authenticated: {username}");
                if (serverFinal is null || serverFinal.Length < 3 || serverFinal[0] != 'v' || serverFinal[1] != '=')
                    throw new FuzzFindingException("success without a v= server-final");
                break;
            case SaslStepResult.Failure:
                CheckFailure(server, result, "client-final");
                if (serverFinal is not null)
                    throw new FuzzFindingException("failure with a server-final message");
                break;
            default:
                throw new FuzzFindingException($"client-final gave {result}");
        }
    }

    private static void CheckFailure(ScramServer server, SaslStepResult result, string step)
    {
        if (result != SaslStepResult.Failure)
            throw new FuzzFindingException($"{step} gave {result}");
        if (server.FailureCondition is not (ScramServer.NotAuthorized or ScramServer.MalformedRequest))
            throw new FuzzFindingException($"{step} failed with condition '{server.FailureCondition}'");
    }

    private static void Client(
        ScramHash hash, string? bindingType, byte[]? bindingData, string clientNonce,
        ReadOnlySpan<byte> serverFirst, ReadOnlySpan<byte> serverFinal, bool hasFinal)
    {
        if (AsksTooManyIterations(serverFirst))
            return;
        var client = (ScramClient)ClientWithNonce.Invoke([hash, User, Password, bindingType, bindingData, clientNonce]);
        KeyCacheProperty.SetValue(client, KeyCache);
        _ = client.ClientFirst();
        try
        {
            _ = client.ClientFinal(serverFirst);
        }
        catch (FormatException ex)
        {
            Trace?.Invoke($"client: server-first rejected: {ex.Message}");
            return; // documented: an invalid server-first-message
        }

        if (hasFinal)
        {
            bool verified = client.VerifyServerFinal(serverFinal);
            Trace?.Invoke($"client: server-final verified: {verified}");
        }
    }

    /// <summary>True if any i= attribute asks for more than <see cref="MaxFuzzedIterations"/> (leading zeros allowed, as the client allows them).</summary>
    private static bool AsksTooManyIterations(ReadOnlySpan<byte> message)
    {
        foreach (Range range in message.Split((byte)','))
        {
            ReadOnlySpan<byte> attribute = message[range];
            if (attribute.Length < 3 || attribute[0] != 'i' || attribute[1] != '=')
                continue;
            long value = 0;
            foreach (byte b in attribute[2..])
            {
                if (b is < (byte)'0' or > (byte)'9')
                    break;
                value = (value * 10) + (b - '0');
                if (value > MaxFuzzedIterations)
                    return true;
            }
        }

        return false;
    }

    private static void CheckSaslPrep(string input)
    {
        bool ok = SaslPrep.TryNormalize(input, out string? prepared, out string? error);
        if (!ok)
        {
            if (error is null)
                throw new FuzzFindingException("SASLprep failed without a reason");
            try
            {
                _ = SaslPrep.Normalize(input);
            }
            catch (ArgumentException)
            {
                return;
            }

            throw new FuzzFindingException("SaslPrep.Normalize accepted what TryNormalize rejected");
        }

        if (!SaslPrep.TryNormalize(prepared!, out string? again, out string? againError))
            throw new FuzzFindingException($"SASLprep rejects its own output ({againError}): {Escape(prepared!)}");
        if (!string.Equals(prepared, again, StringComparison.Ordinal))
            throw new FuzzFindingException($"SASLprep is not idempotent: {Escape(input)} -> {Escape(prepared!)} -> {Escape(again)}");
    }

    internal static string Escape(string s)
    {
        var sb = new StringBuilder();
        foreach (char c in s)
        {
            if (c is >= ' ' and < (char)0x7F)
                sb.Append(c);
            else
                sb.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }
}
