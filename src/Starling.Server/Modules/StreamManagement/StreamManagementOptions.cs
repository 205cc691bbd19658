using System.Globalization;

namespace Starling.Server.Modules.StreamManagement;

/// <summary>Options of the stream management module (Modules:sm), XEP-0198.</summary>
public sealed class StreamManagementOptions : IModuleOptions
{
    /// <summary>
    /// Seconds a session whose connection was lost waits for a resume (XEP-0198 §5) unless the client asked for less
    /// with 'max'; then it ends: contacts see it unavailable and its unacknowledged messages go to another resource or
    /// offline storage. 300 is ejabberd's resume_timeout (Prosody waits 600): long enough for a phone changing networks,
    /// short enough that a client that is gone does not look online for long. 0 turns resumption off (acks stay on).
    /// </summary>
    public int ResumeTimeoutSeconds { get; set; } = 300;

    /// <summary>The longest wait a client may ask for with &lt;enable max='…'/&gt; (Prosody's default hibernation, 600).</summary>
    public int MaxResumeTimeoutSeconds { get; set; } = 600;

    /// <summary>
    /// Stanzas kept for a client until it acknowledges them (a client that never acks must not make the server hold
    /// unbounded memory): one more, or more bytes than Limits:MaxOutboundQueueBytes, ends the session with
    /// policy-violation, and what was kept is re-routed as when any session ends. Between Prosody's 500 and ejabberd's
    /// 5,000.
    /// </summary>
    public int MaxUnackedStanzas { get; set; } = 1_000;

    /// <summary>The server asks for an acknowledgement (&lt;r/&gt;) after this many stanzas since its last request was answered.</summary>
    public int RequestAckEvery { get; set; } = 5;

    public void Validate(string section, List<string> errors)
    {
        if (ResumeTimeoutSeconds is < 0 or > 86_400) errors.Add($"{section}:ResumeTimeoutSeconds must be 0 to 86400 (is {Text(ResumeTimeoutSeconds)})");
        if (MaxResumeTimeoutSeconds < ResumeTimeoutSeconds || MaxResumeTimeoutSeconds > 86_400)
            errors.Add($"{section}:MaxResumeTimeoutSeconds must be at least ResumeTimeoutSeconds and at most 86400 (is {Text(MaxResumeTimeoutSeconds)})");
        if (MaxUnackedStanzas is < 1 or > 1_000_000) errors.Add($"{section}:MaxUnackedStanzas must be 1 to 1000000 (is {Text(MaxUnackedStanzas)})");
        if (RequestAckEvery < 1 || RequestAckEvery > MaxUnackedStanzas) errors.Add($"{section}:RequestAckEvery must be 1 to MaxUnackedStanzas (is {Text(RequestAckEvery)})");
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
