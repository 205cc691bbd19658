using System.Globalization;
using Microsoft.Extensions.Logging;
using Starling.Server.Sessions;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Modules.Offline;

/// <summary>
/// XEP-0160 offline messages: a normal or chat message for an account with no available resource is stored and
/// delivered, stamped with a XEP-0203 delay, when the account next sends available presence with a non-negative
/// priority. When the per-user quota is full the sender gets service-unavailable — never a silent drop.
/// </summary>
public sealed class OfflineModule : IModule
{
    // One delivery at a time per account (two resources coming online together must not both get the messages):
    // a fixed set of striped locks, so the set does not grow with the number of accounts ever seen.
    private readonly SemaphoreSlim[] _deliveryLocks = CreateLocks(64);
    private ModuleContext _context = null!;
    private int _quota;

    public string Name => "offline";

    public void Register(ModuleContext context)
    {
        _context = context;
        _quota = context.Server.Options.Limits.OfflineQuota;
        context.AddDiscoFeature(Namespaces.Offline);
        context.OnUndeliverableMessage(StoreAsync);
        context.SessionAvailable += DeliverAsync;
    }

    private async ValueTask<bool> StoreAsync(Jid bare, XmlElement message)
    {
        if (!ShouldStore(message)) return true; // XEP-0085 §5.6 / XEP-0334: nothing worth keeping
        var from = message.GetAttribute("from");
        var xml = XmlWriter.ToXmlString(message, parentNamespace: null);
        if (await _context.Server.Storage.Offline.TryStoreAsync(bare.Domain, bare.Local!, xml, DateTimeOffset.UtcNow, _quota))
        {
            _context.Logger.LogDebug("stored offline message for {Jid} from {From}", bare, from);
            return true;
        }
        _context.Logger.LogInformation("offline storage of {Jid} is full ({Quota} messages)", bare, _quota);
        if (from is not null && Jid.TryParse(from, out var sender))
            _context.Server.Router.Bounce(message, sender, bare, StanzaErrorCondition.ServiceUnavailable, "the recipient is offline and their offline storage is full");
        return true;
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

    private async ValueTask DeliverAsync(C2sSession session)
    {
        if (session.Priority < 0) return; // XEP-0160 §3: only to a resource with non-negative priority
        var jid = session.Jid!;
        var gate = _deliveryLocks[(jid.Bare.GetHashCode() & int.MaxValue) % _deliveryLocks.Length];
        await gate.WaitAsync();
        try
        {
            var store = _context.Server.Storage.Offline;
            var messages = await store.LoadAsync(jid.Domain, jid.Local!);
            if (messages.Count == 0) return;
            var delivered = new List<long>(messages.Count);
            foreach (var stored in messages)
            {
                XmlElement message;
                try
                {
                    message = XmlStreamParser.ParseElement(stored.Xml);
                }
                catch (FormatException ex)
                {
                    _context.Logger.LogError("offline message {Id} of {Jid} is unreadable and kept in storage: {Error}", stored.Id, jid, ex.Message);
                    continue;
                }
                if (message.Element("delay", Namespaces.Delay) is null)
                {
                    // XEP-0203: when the server first received it.
                    var delay = message.AddElement("delay", Namespaces.Delay);
                    delay.SetAttribute("from", jid.Domain);
                    delay.SetAttribute("stamp", stored.StoredAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
                    delay.AddText("Offline Storage");
                }
                if (!session.Deliver(message)) break; // session closing: the rest stays stored
                delivered.Add(stored.Id);
            }
            if (delivered.Count > 0) await store.DeleteAsync(jid.Domain, jid.Local!, delivered);
            _context.Logger.LogDebug("delivered {Count} offline messages to {Jid}", delivered.Count, jid);
        }
        finally
        {
            gate.Release();
        }
    }
}
