using Starling.Server.Sessions;
using Starling.Xml;

namespace Starling.Server.Pipeline;

/// <summary>What an outgoing filter decided about a stanza on its way to the client.</summary>
public enum OutgoingVerdict
{
    /// <summary>Go on (with the stanza as the filter left it: the same one, or its replacement).</summary>
    Pass,

    /// <summary>
    /// The filter keeps the stanza (XEP-0352 holding while inactive) and owns it now: it hands it on later with
    /// <see cref="C2sSession.Release"/>, and re-routes it itself if the session ends first — nothing accepted is lost.
    /// </summary>
    Hold,
}

/// <summary>
/// Sees each stanza before it is queued for one client (Prosody's stanzas/out filters). To change a stanza a filter
/// replaces <paramref name="stanza"/> with a modified copy: routed stanzas are shared by every recipient (copy on write).
/// </summary>
public delegate OutgoingVerdict OutgoingFilter(C2sSession session, ref XmlElement stanza);

/// <summary>
/// A session's outgoing filters, highest priority first (stable for equal priorities). Immutable: a session swaps the
/// whole chain when a filter is added or removed, so delivery from any thread reads it without a lock.
/// </summary>
public sealed class OutgoingFilterChain
{
    private readonly OutgoingFilter[] _filters;
    private readonly int[] _priorities;

    private OutgoingFilterChain(OutgoingFilter[] filters, int[] priorities)
    {
        _filters = filters;
        _priorities = priorities;
    }

    public int Count => _filters.Length;

    /// <summary>A chain with <paramref name="filter"/> added after the filters of the same or higher priority.</summary>
    public static OutgoingFilterChain With(OutgoingFilterChain? chain, OutgoingFilter filter, int priority)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var filters = chain?._filters ?? [];
        var priorities = chain?._priorities ?? [];
        int at = 0;
        while (at < priorities.Length && priorities[at] >= priority) at++;
        var f = new OutgoingFilter[filters.Length + 1];
        var p = new int[filters.Length + 1];
        Array.Copy(filters, f, at);
        Array.Copy(priorities, p, at);
        f[at] = filter;
        p[at] = priority;
        Array.Copy(filters, at, f, at + 1, filters.Length - at);
        Array.Copy(priorities, at, p, at + 1, filters.Length - at);
        return new OutgoingFilterChain(f, p);
    }

    /// <summary>The chain without <paramref name="filter"/>; null when it was the last one.</summary>
    public static OutgoingFilterChain? Without(OutgoingFilterChain? chain, OutgoingFilter filter)
    {
        if (chain is null) return null;
        int index = chain.IndexOf(filter);
        if (index < 0) return chain;
        if (chain._filters.Length == 1) return null;
        var f = new OutgoingFilter[chain._filters.Length - 1];
        var p = new int[f.Length];
        for (int i = 0, j = 0; i < chain._filters.Length; i++)
        {
            if (i == index) continue;
            f[j] = chain._filters[i];
            p[j++] = chain._priorities[i];
        }
        return new OutgoingFilterChain(f, p);
    }

    /// <summary>The position of <paramref name="filter"/>, or -1.</summary>
    public int IndexOf(OutgoingFilter filter) => Array.IndexOf(_filters, filter);

    /// <summary>
    /// Runs the filters from <paramref name="start"/> on. True: send <paramref name="stanza"/> (possibly replaced);
    /// false: a filter holds it.
    /// </summary>
    public bool Run(C2sSession session, ref XmlElement stanza, int start = 0)
    {
        for (int i = start; i < _filters.Length; i++)
        {
            if (_filters[i](session, ref stanza) == OutgoingVerdict.Hold) return false;
        }
        return true;
    }
}
