using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Starling.Server.Negotiation;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.StreamManagement;

/// <summary>
/// XEP-0198 stream management: &lt;enable/&gt; after binding, the counts and &lt;r/&gt;/&lt;a/&gt; (an outgoing filter keeps
/// what the client has not acknowledged), resumption of a session whose connection was lost (&lt;resume/&gt; after SASL,
/// instead of binding), and at the end of a session that is not resumed every unacknowledged message goes to another
/// resource or offline storage with a XEP-0203 delay — never dropped, never duplicated. The per-session part is
/// <see cref="StreamManagementState"/>.
/// </summary>
public sealed class StreamManagementModule : IModule
{
    /// <summary>At a graceful shutdown, how long live sessions get to acknowledge what they were sent.</summary>
    internal static readonly TimeSpan ShutdownAckWait = TimeSpan.FromMilliseconds(1500);

    internal static readonly SessionKey<StreamManagementState> StateKey = new("sm.state");

    // Sessions that may be resumed, by resumption id; and every session with stream management on (for shutdown).
    private readonly ConcurrentDictionary<string, StreamManagementState> _resumable = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<StreamManagementState, byte> _enabled = new();

    public string Name => "sm";

    internal ModuleContext Context { get; private set; } = null!;

    internal StreamManagementOptions Options { get; private set; } = null!;

    internal long MaxQueueBytes { get; private set; }

    public void Register(ModuleContext context)
    {
        Context = context;
        Options = context.Options<StreamManagementOptions>();
        MaxQueueBytes = context.Server.Options.Limits.MaxOutboundQueueBytes;
        // XEP-0198 §2: offered once authenticated; enable needs a bound resource, resume comes instead of binding.
        context.AddStreamFeature(StreamFeatureStage.Authenticated, StreamFeatureRegistry.StreamManagementOrder,
            static _ => new XmlElement("sm", Namespaces.StreamManagement));
        context.OnNonza(Namespaces.StreamManagement, "enable", EnableAsync);
        context.OnNonza(Namespaces.StreamManagement, "r", RequestAsync);
        context.OnNonza(Namespaces.StreamManagement, "a", AckAsync);
        context.OnNonza(Namespaces.StreamManagement, "resume", ResumeAfterBindAsync);
        context.OnNonzaBeforeBind(Namespaces.StreamManagement, "enable", EnableBeforeBindAsync);
        context.OnNonzaBeforeBind(Namespaces.StreamManagement, "resume", ResumeAsync);
        context.ServerStopping += StoppingAsync;
    }

    // ---- enable (XEP-0198 §3) ----

    private ValueTask EnableAsync(C2sSession session, XmlElement enable)
    {
        var transport = session.Transport;
        if (transport is null) return ValueTask.CompletedTask;
        if (session.Get(StateKey) is not null)
        {
            // XEP-0198 §3: enabling twice is an error; the stream stays up (stream management errors are recoverable).
            transport.Send(Failed("unexpected-request", "stream management is already enabled on this stream"));
            return ValueTask.CompletedTask;
        }
        bool resume = enable.GetAttribute("resume") is "true" or "1" && Options.ResumeTimeoutSeconds > 0;
        int timeout = Options.ResumeTimeoutSeconds;
        if (resume && enable.GetAttribute("max") is { } max && int.TryParse(max, NumberStyles.None, CultureInfo.InvariantCulture, out int asked) && asked > 0)
            timeout = Math.Min(asked, Options.MaxResumeTimeoutSeconds); // §3: the client's preference, within our bound
        var state = new StreamManagementState(this, session, resume ? XmppStream.NewId() : null, timeout);
        if (state.ResumeId is { } id) _resumable[id] = state;
        _enabled[state] = 0;
        var enabled = new XmlElement("enabled", Namespaces.StreamManagement);
        if (state.ResumeId is not null)
        {
            enabled.SetAttribute("id", state.ResumeId).SetAttribute("resume", "true");
            enabled.SetAttribute("max", timeout.ToString(CultureInfo.InvariantCulture));
        }
        state.Start(enabled);
        Context.Logger.LogDebug("{Connection}: stream management enabled for {Jid} (resumable: {Resume})", session.ConnectionId, session.Jid, resume);
        return ValueTask.CompletedTask;
    }

    private ValueTask EnableBeforeBindAsync(C2sStream stream, XmlElement enable)
    {
        // XEP-0198 §3: not before authentication (ejabberd answers not-authorized), and for a client not before binding.
        stream.Reply(stream.IsAuthenticated
            ? Failed("unexpected-request", "bind a resource before enabling stream management")
            : Failed("not-authorized", "authenticate first"));
        return ValueTask.CompletedTask;
    }

    // ---- acks (XEP-0198 §4) ----

    private ValueTask RequestAsync(C2sSession session, XmlElement r)
    {
        // Prosody's mod_smacks ignores <r/> on a stream without stream management; so do we (the read budget bounds a flood).
        session.Get(StateKey)?.AnswerRequest();
        return ValueTask.CompletedTask;
    }

    private ValueTask AckAsync(C2sSession session, XmlElement a)
    {
        var state = session.Get(StateKey);
        if (state is null) return ValueTask.CompletedTask;
        if (!TryParseH(a, out uint h))
        {
            session.Close(StreamErrors.UndefinedCondition, "<a/> needs an 'h' attribute: the count of stanzas handled (XEP-0198 §4)");
            return ValueTask.CompletedTask;
        }
        state.Acknowledge(h);
        return ValueTask.CompletedTask;
    }

    internal static bool TryParseH(XmlElement element, out uint h)
    {
        h = 0;
        return element.GetAttribute("h") is { } text && uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out h);
    }

    /// <summary>XEP-0198 §4: an ack of more stanzas than were sent is a stream error with the counts.</summary>
    internal static XmlElement HandledCountTooHigh(uint h, uint sent)
    {
        var e = new XmlElement("handled-count-too-high", Namespaces.StreamManagement);
        e.SetAttribute("h", h.ToString(CultureInfo.InvariantCulture));
        e.SetAttribute("send-count", sent.ToString(CultureInfo.InvariantCulture));
        return e;
    }

    // ---- resumption (XEP-0198 §5) ----

    private ValueTask ResumeAfterBindAsync(C2sSession session, XmlElement resume)
    {
        // XEP-0198 §5: a resume replaces binding; on a bound stream it is out of order.
        session.Transport?.Send(Failed("unexpected-request", "a session is already bound on this stream"));
        return ValueTask.CompletedTask;
    }

    private ValueTask ResumeAsync(C2sStream stream, XmlElement resume)
    {
        var account = stream.AccountJid;
        if (account is null)
        {
            stream.Reply(Failed("not-authorized", "authenticate first"));
            return ValueTask.CompletedTask;
        }
        var previd = resume.GetAttribute("previd");
        if (previd is null || !TryParseH(resume, out uint h))
        {
            stream.Reply(Failed("bad-request", "<resume/> needs 'previd' and 'h'"));
            return ValueTask.CompletedTask;
        }
        // Another account's id is as unknown as an expired one: nothing tells the client the id exists.
        if (!_resumable.TryGetValue(previd, out var state) || state.Session.Jid?.Bare != account)
        {
            stream.Reply(Failed("item-not-found", "no session to resume with that id (it ended, or it never existed)"));
            return ValueTask.CompletedTask;
        }
        state.Resume(stream, h);
        return ValueTask.CompletedTask;
    }

    internal void Forget(StreamManagementState state)
    {
        if (state.ResumeId is { } id) _resumable.TryRemove(new KeyValuePair<string, StreamManagementState>(id, state));
        _enabled.TryRemove(state, out _);
    }

    /// <summary>&lt;failed/&gt; with a stanza error condition (XEP-0198 §6; RFC 6120 §8.3.3).</summary>
    internal static XmlElement Failed(string condition, string text, uint? h = null)
    {
        var failed = new XmlElement("failed", Namespaces.StreamManagement);
        if (h is { } value) failed.SetAttribute("h", value.ToString(CultureInfo.InvariantCulture));
        failed.AddElement(condition, Namespaces.Stanzas);
        failed.AddElement("text", Namespaces.Stanzas).AddText(text);
        return failed;
    }

    // ---- graceful shutdown ----

    /// <summary>
    /// Before the streams close: live sessions are asked to acknowledge (&lt;r/&gt;) and given a moment, so what they did
    /// receive is not stored offline again; what stays unacknowledged is re-routed when their streams close (no
    /// hibernation while stopping). Hibernating sessions have no stream: they end here, while storage is open.
    /// </summary>
    private async ValueTask StoppingAsync()
    {
        var states = new List<StreamManagementState>(_enabled.Keys);
        if (states.Count == 0) return;
        foreach (var state in states) state.RequestAckForShutdown();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < ShutdownAckWait)
        {
            bool waiting = false;
            foreach (var state in states)
            {
                if (state.IsLiveWithUnacked) { waiting = true; break; }
            }
            if (!waiting) break;
            await Task.Delay(20);
        }
        foreach (var state in states)
        {
            if (state.Session.IsHibernating) await state.Session.EndAsync([]);
        }
    }
}
