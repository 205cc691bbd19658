using System.Text;
using SharpFuzz;

namespace Starling.Fuzz;

/// <summary>
/// <c>Starling.Fuzz HARNESS</c> runs one harness under afl-fuzz (SharpFuzz's in-process loop: an exception that
/// escapes the harness is reported as a crash). <c>Starling.Fuzz HARNESS --replay PATH...</c> runs files (or every
/// file of a folder) once each without afl-fuzz and prints what each one does: for seeds and for triaging crashes.
/// </summary>
public static class Program
{
    // afl-fuzz's default maximum input size is 1 MB; anything larger is cut, as afl-fuzz itself would.
    private const int MaxInput = 1 << 20;

    public static int Main(string[] args)
    {
        if (args.Length == 0 || Harness(args[0]) is not { } harness)
        {
            Console.Error.WriteLine("usage: Starling.Fuzz xml|scram|jid [--replay FILE|DIR...]");
            return 2;
        }

        if (args.Length > 1 && args[1] == "--replay")
            return Replay(harness, args.AsSpan(2));

        byte[] buffer = new byte[MaxInput];
        Fuzzer.Run(stream =>
        {
            int length = 0;
            int read;
            while (length < buffer.Length && (read = stream.Read(buffer, length, buffer.Length - length)) > 0)
                length += read;
            harness(buffer.AsSpan(0, length));
        });
        return 0;
    }

    private static HarnessAction? Harness(string name) => name switch
    {
        "xml" => XmlStreamHarness.Run,
        "scram" => ScramHarness.Run,
        "jid" => JidHarness.Run,
        _ => null,
    };

    private static int Replay(HarnessAction harness, ReadOnlySpan<string> paths)
    {
        var files = new List<string>();
        foreach (string path in paths)
        {
            if (Directory.Exists(path))
                files.AddRange(Directory.GetFiles(path).Order(StringComparer.Ordinal));
            else
                files.Add(path);
        }

        ScramHarness.Trace = line => Console.WriteLine($"      {line}");
        int failed = 0;
        foreach (string file in files)
        {
            byte[] input = File.ReadAllBytes(file);
            try
            {
                harness(input);
                Console.WriteLine($"ok    {file}");
            }
            catch (Exception ex)
            {
                failed++;
                Console.WriteLine($"FAIL  {file}");
                Console.WriteLine($"      input (base64): {Convert.ToBase64String(input)}");
                Console.WriteLine(Indent(ex.ToString()));
            }
        }

        Console.WriteLine($"{files.Count - failed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    private static string Indent(string text)
    {
        var sb = new StringBuilder();
        foreach (string line in text.Split('\n'))
            sb.Append("      ").Append(line).Append('\n');
        return sb.ToString().TrimEnd();
    }
}

/// <summary>One fuzzing target: throws <see cref="FuzzFindingException"/> (or anything else) when the code under test misbehaves.</summary>
public delegate void HarnessAction(ReadOnlySpan<byte> input);

/// <summary>An invariant the code under test broke (as opposed to an exception the code itself threw).</summary>
public sealed class FuzzFindingException : Exception
{
    public FuzzFindingException()
    {
    }

    public FuzzFindingException(string message)
        : base(message)
    {
    }

    public FuzzFindingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
