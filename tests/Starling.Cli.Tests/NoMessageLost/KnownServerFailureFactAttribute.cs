namespace Starling.Cli.Tests.NoMessageLost;

/// <summary>
/// A proof test the server is known to fail today, for the reason given: skipped (the reason shows in the test
/// output) unless STARLING_PROOF_KNOWN_FAILURES=1, so whoever fixes the server runs it with
/// `STARLING_PROOF_KNOWN_FAILURES=1 dotnet test --filter FullyQualifiedName~NoMessageLost`, and turns it back into a
/// plain [Fact] once it passes.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class KnownServerFailureFactAttribute : FactAttribute
{
    public KnownServerFailureFactAttribute(string reason)
    {
        Reason = reason;
        if (Environment.GetEnvironmentVariable("STARLING_PROOF_KNOWN_FAILURES") != "1")
            Skip = "known server failure (STARLING_PROOF_KNOWN_FAILURES=1 runs it): " + reason;
    }

    public string Reason { get; }
}
