using System.Globalization;
using Microsoft.Extensions.Logging;
using Starling.Server.Pipeline;
using Starling.Server.Sessions;
using Starling.Server.Storage;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Offline;

/// <summary>
/// XEP-0160 offline messages: a normal or chat message for an account with no available resource is stored and
/// delivered, stamped with a XEP-0203 delay, when the account next sends available presence with a non-negative
/// priority. When the per-user quota (messages or bytes) is full the sender gets service-unavailable, and when the
/// storage fails (busy, full disk) an error per StorageFailure — never a silent drop.
/// </summary>
/// <remarks>
/// Issue #13 (offline storage poisoning): the row holds exactly what will be delivered (the delay is stamped when
/// storing) and is read back with limits derived from the row itself, not the client stanza limits — a stanza accepted
/// under one configuration still loads after the limits were lowered, and the serialiser's growth (escaping, namespace
/// declarations) cannot push it past a limit. Delivery reads pages, not the whole backlog; a row that still does not
/// parse is moved to quarantine with one log line, so it neither blocks delivery nor counts against the quota.
///
/// With XEP-0198 on the session (<see cref="C2sSession.Acknowledgements"/>), a row is deleted only once the client
/// acknowledged its message; a session that ends first leaves the row stored, so it comes again at the next login
/// (never lost, and never stored a second time: stream management does not re-route what has a row). Rows on their
/// way to such a session are skipped by other deliveries meanwhile. Without stream management — or when the client
/// enables it only after its initial presence started the delivery — rows are deleted once queued, as before.
/// </remarks>
public sealed class OfflineModule : IModule
{
    /// <summary>Messages read from storage at a time when delivering.</summary>
    internal const int PageSize = 50;

    /// <summary>How long delivery waits for a client to read before it leaves the rest of the backlog stored.</summary>
    private static readonly TimeSpan QueueRoomTimeout = TimeSpan.FromSeconds(30);

    // One delivery at a time per account (two resources coming online together must not both get the messages):
    // a fixed set of striped locks, so the set does not grow with the number of accounts ever seen.
    private readonly SemaphoreSlim[] _deliveryLocks = CreateLocks(64);
    // Rows delivered to a stream-management session and not acknowledged yet (row ids are unique in the table).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, byte> _awaitingAck = new();
    private ModuleContext _context = null!;
    private int _quota;
    private long _quotaBytes;

    public string Name => "offline";

    public void Register(ModuleContext context)
    {
        _context = context;
        var options = context.Options<OfflineOptions>();
        _quota = options.QuotaMessages;
        _quotaBytes = options.QuotaBytes;
        context.AddDiscoFeature(Namespaces.Offline);
        // message/offline (RFC 6121 §8.5.2.2): the router's service-unavailable at the end of the chain is the fallback.
        context.Hook(StanzaEvent.MessageOffline, StoreAsync);
        context.SessionAvailable += DeliverAsync;
    }

    private async ValueTask<bool> StoreAsync(StanzaContext offline)
    {
        var bare = offline.To;
        var message = offline.Stanza;
        if (!ShouldStore(message)) return true; // XEP-0085 §5.6 / XEP-0334: nothing worth keeping
        var from = message.GetAttribute("from");
        var xml = XmlWriter.ToXmlString(WithDelay(message, bare.Domain, DateTimeOffset.UtcNow), parentNamespace: null);
        OfflineStoreResult result;
        try
        {
            result = await _context.Server.Storage.Offline.TryStoreAsync(bare.Domain, bare.Local!, xml, DateTimeOffset.UtcNow, _quota, _quotaBytes);
        }
        catch (Exception ex)
        {
            // The message is not stored: the sender is told so (issue #13), its stream stays up.
            var kind = StorageFailure.Log(_context.Logger, ex, "storing an offline message", bare);
            Bounce(message, from, bare, StorageFailure.Condition(kind), StorageFailure.Text(kind));
            return true;
        }
        if (result == OfflineStoreResult.Stored)
        {
            _context.Logger.LogDebug("stored offline message for {Jid} from {From}", bare, from);
            return true;
        }
        _context.Logger.LogInformation("offline storage of {Jid} is full ({Quota} messages, {QuotaBytes} bytes): {Result}", bare, _quota, _quotaBytes, result);
        // XEP-0160 §3: storage full — service-unavailable.
        Bounce(message, from, bare, StanzaErrorCondition.ServiceUnavailable, "the recipient is offline and their offline storage is full");
        return true;
    }

    private void Bounce(XmlElement message, string? from, Jid bare, StanzaErrorCondition condition, string text)
    {
        if (from is not null && Jid.TryParse(from, out var sender))
            _context.Server.Router.Bounce(message, sender, bare, condition, text);
    }

    /// <summary>
    /// The message as it will be delivered: XEP-0203 delay stamped with when the server first received it, unless the
    /// message already carries one. A copy when a delay is added — routed stanzas are shared.
    /// </summary>
    internal static XmlElement WithDelay(XmlElement message, string domain, DateTimeOffset receivedAt)
    {
        if (message.Element("delay", Namespaces.Delay) is not null) return message;
        var copy = message.Clone();
        var delay = copy.AddElement("delay", Namespaces.Delay);
        delay.SetAttribute("from", domain);
        delay.SetAttribute("stamp", receivedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        delay.AddText("Offline Storage");
        return copy;
    }

    /// <summary>Only messages with content: a message that is nothing but a chat state or asks not to be stored is not kept.</summary>
    private static bool ShouldStore(XmlElement message)
    {
        bool content = false;
        foreach (var child in message.Elements())
        {
            if (child.Namespace == Namespaces.Hints && child.Name is "no-store" or "no-permanent-store") return false;
            if (child.Namespace == Namespaces.Hints && child.Name == "store") return true;
            if (child.Namespace is Namespaces.ChatStates or Namespaces.Hints) continue;
            if (child.Name == "thread" && child.Namespace == Namespaces.Client) continue;
            content = true;
        }
        return content;
    }

    private static SemaphoreSlim[] CreateLocks(int count)
    {
        var locks = new SemaphoreSlim[count];
        for (int i = 0; i < count; i++) locks[i] = new SemaphoreSlim(1, 1);
        return locks;
    }

    private ValueTask DeliverAsync(C2sSession session)
    {
        if (session.Priority < 0) return ValueTask.CompletedTask; // XEP-0160 §3: only to a resource with non-negative priority
        if (session.Acknowledgements is null) return DeliverBacklogAsync(session);
        // With XEP-0198 the delivery is paced by the client's acks, which the session's read loop must be free to read:
        // it runs beside it (one delivery per account at a time still, through the account's lock).
        _ = Task.Run(() => DeliverBacklogAsync(session).AsTask());
        return ValueTask.CompletedTask;
    }

    private async ValueTask DeliverBacklogAsync(C2sSession session)
    {
        var jid = session.Jid!;
        var gate = _deliveryLocks[(jid.Bare.GetHashCode() & int.MaxValue) % _deliveryLocks.Length];
        await gate.WaitAsync();
        int total = 0;
        try
        {
            var store = _context.Server.Storage.Offline;
            long after = 0;
            var delivered = new List<long>(PageSize);
            while (true)
            {
                // A page at a time: a full backlog (QuotaMessages messages of up to MaxStanzaBytes) is never all in memory
                // here; what was handed to the session is deleted before the next page is read.
                var page = await store.LoadPageAsync(jid.Domain, jid.Local!, after, PageSize);
                if (page.Count == 0) break;
                delivered.Clear();
                bool closing = false;
                int tracked = 0;
                foreach (var stored in page)
                {
                    after = stored.Id;
                    if (_awaitingAck.ContainsKey(stored.Id)) continue; // on its way to another resource, waiting for its ack
                    XmlElement message;
                    try
                    {
                        message = StoredXml.Parse(stored.Xml);
                    }
                    catch (FormatException ex)
                    {
                        await QuarantineAsync(jid, stored.Id, ex.Message);
                        continue;
                    }
                    if (message.Element("delay", Namespaces.Delay) is null)
                    {
                        // Rows stored before the delay was stamped at store time (schema version 1).
                        message = WithDelay(message, jid.Domain, stored.StoredAt);
                    }
                    // Paced by the client's reading: a backlog larger than the outbound queue's byte bound must not get
                    // the client cut off as a slow reader (and the backlog re-stored) at every login. A client that stops
                    // reading keeps the rest stored for its next session.
                    if (!session.HasQueueRoom && !await session.WaitForQueueRoomAsync(QueueRoomTimeout)) { closing = true; break; }
                    if (session.Acknowledgements is { } acks)
                    {
                        // Paced by the client's acks too: the unacknowledged queue is bounded (Modules:sm:MaxUnackedStanzas), so
                        // a backlog longer than it waits for acks rather than get the session ended at every login.
                        if (!acks.HasRoom && !await acks.WaitForAcknowledgementAsync(QueueRoomTimeout)) { closing = true; break; }
                        // XEP-0198: the row goes when the client acknowledges the message (RowReceipt), not now.
                        if (!_awaitingAck.TryAdd(stored.Id, 0)) continue;
                        if (!acks.Deliver(session, message, new RowReceipt(this, jid.Bare, stored.Id)))
                        {
                            _awaitingAck.TryRemove(stored.Id, out _);
                            closing = true;
                            break;
                        }
                        tracked++;
                        continue;
                    }
                    if (!session.Deliver(message)) { closing = true; break; } // session closing: the rest stays stored
                    delivered.Add(stored.Id);
                }
                if (delivered.Count > 0) await store.DeleteAsync(jid.Domain, jid.Local!, delivered);
                total += delivered.Count + tracked;
                if (tracked > 0) session.Acknowledgements?.RequestAck(session); // the last few of a run would otherwise wait for more traffic
                if (closing || page.Count < PageSize) break;
            }
            _context.Logger.LogDebug("delivered {Count} offline messages to {Jid}", total, jid);
        }
        catch (Exception ex)
        {
            // Whatever was not deleted stays stored and is delivered next time; the session goes on.
            StorageFailure.Log(_context.Logger, ex, "delivering offline messages", jid.Bare);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>A row delivered to a XEP-0198 session: deleted when the client acknowledges it, kept when the session ends first.</summary>
    private sealed class RowReceipt(OfflineModule module, Jid bare, long id) : IDeliveryReceipt
    {
        public void Acknowledged() => _ = module.DeleteAcknowledgedAsync(bare, id);

        public void Unacknowledged() => module._awaitingAck.TryRemove(id, out _);
    }

    private async Task DeleteAcknowledgedAsync(Jid bare, long id)
    {
        try
        {
            await _context.Server.Storage.Offline.DeleteAsync(bare.Domain, bare.Local!, [id]);
        }
        catch (Exception ex)
        {
            // Not deleted: it is delivered again next time (a duplicate rather than a loss).
            StorageFailure.Log(_context.Logger, ex, "deleting an acknowledged offline message", bare);
        }
        finally
        {
            // Only now: until the delete is done another delivery must not pick the row up again.
            _awaitingAck.TryRemove(id, out _);
        }
    }

    private async ValueTask QuarantineAsync(Jid jid, long id, string reason)
    {
        await _context.Server.Storage.Offline.QuarantineAsync(jid.Domain, jid.Local!, id, reason);
        _context.Logger.LogError("offline message {Id} of {Jid} cannot be parsed; moved to quarantine (table offline_quarantine): {Reason}", id, jid.Bare, reason);
    }
}
