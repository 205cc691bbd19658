using Microsoft.Extensions.Logging;
using Starling.Server.Storage;
using Starling.Xmpp;

namespace Starling.Server.Pipeline;

/// <summary>
/// Collects hooks while the modules register (at start only), then builds the frozen <see cref="StanzaPipeline"/>.
/// </summary>
public sealed class StanzaPipelineBuilder
{
    private readonly List<(int Priority, int Order, StanzaHandler Handler)>[] _hooks = CreateLists();
    private int _order;

    /// <summary>
    /// Adds <paramref name="handler"/> to <paramref name="e"/>'s chain. Higher priorities run first (as Prosody's
    /// util/events); equal priorities run in registration order. The router's defaults are at priority 0.
    /// </summary>
    public void Hook(StanzaEvent e, StanzaHandler handler, int priority = 0)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _hooks[e.Index].Add((priority, _order++, handler));
    }

    public StanzaPipeline Build(ILogger log, StanzaBounce bounce)
    {
        var chains = new StanzaHandler[StanzaEvent.Count][];
        for (int i = 0; i < chains.Length; i++)
        {
            var hooks = _hooks[i];
            // Start-up only: a stable sort of a handful of entries (priority descending, then registration order).
            hooks.Sort(static (a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority) : a.Order.CompareTo(b.Order));
            var chain = new StanzaHandler[hooks.Count];
            for (int j = 0; j < chain.Length; j++) chain[j] = hooks[j].Handler;
            chains[i] = chain;
        }
        return new StanzaPipeline(chains, log, bounce);
    }

    private static List<(int, int, StanzaHandler)>[] CreateLists()
    {
        var lists = new List<(int, int, StanzaHandler)>[StanzaEvent.Count];
        for (int i = 0; i < lists.Length; i++) lists[i] = [];
        return lists;
    }
}

/// <summary>
/// The stanza pipeline (shared/ARCHITECTURE.md §4, Prosody's util/events): one frozen handler chain per
/// <see cref="StanzaEvent"/>, built when the server starts. Firing an event is an array index and a loop; an empty
/// chain costs a length check.
/// </summary>
public sealed class StanzaPipeline
{
    private readonly StanzaHandler[][] _chains;
    private readonly ILogger _log;
    private readonly StanzaBounce _bounce;

    internal StanzaPipeline(StanzaHandler[][] chains, ILogger log, StanzaBounce bounce)
    {
        _chains = chains;
        _log = log;
        _bounce = bounce;
    }

    /// <summary>How many handlers the event has (for tests and diagnostics).</summary>
    public int HandlerCount(StanzaEvent e) => _chains[e.Index].Length;

    /// <summary>Runs <paramref name="e"/>'s chain until a handler returns true. True if one did.</summary>
    public ValueTask<bool> FireAsync(StanzaEvent e, StanzaContext context)
    {
        var chain = _chains[e.Index];
        return chain.Length == 0 ? new ValueTask<bool>(false) : RunAsync(e, chain, context);
    }

    private async ValueTask<bool> RunAsync(StanzaEvent e, StanzaHandler[] chain, StanzaContext context)
    {
        for (int i = 0; i < chain.Length; i++)
        {
            bool handled;
            try
            {
                handled = await chain[i](context);
            }
            catch (Exception ex)
            {
                Contain(e, context, ex);
                return true;
            }
            if (handled) return true;
        }
        return false;
    }

    /// <summary>
    /// A failing handler must not close the sender's stream or lose the stanza silently (issue #13): storage conditions
    /// (busy, full, account gone) log one line and get their own error; anything else is a bug, logged with its
    /// exception, and internal-server-error (RFC 6120 §8.3.3.8). The chain stops: the sender has its answer.
    /// </summary>
    private void Contain(StanzaEvent e, StanzaContext context, Exception ex)
    {
        var kind = StorageFailure.Classify(ex);
        if (kind == StorageFailureKind.Unexpected)
        {
            _log.LogError(ex, "{Event} handler failed on a {Stanza} from {From} to {To}", e.Name, context.Stanza.Name, context.From, context.To);
            _bounce(context, StanzaErrorCondition.InternalServerError, null);
        }
        else
        {
            _log.LogWarning("{Event} handler: storage {Kind} ({Message}) on a {Stanza} from {From} to {To}", e.Name, kind, ex.Message, context.Stanza.Name, context.From, context.To);
            _bounce(context, StorageFailure.Condition(kind), StorageFailure.Text(kind));
        }
    }
}
