namespace Starling.Xmpp;

/// <summary>XML namespaces of the protocols Starling speaks (one place, so grep finds every use).</summary>
public static class Namespaces
{
    public const string Streams = "http://etherx.jabber.org/streams";
    public const string Client = "jabber:client";
    public const string Server = "jabber:server";
    public const string StreamErrors = "urn:ietf:params:xml:ns:xmpp-streams";
    public const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    public const string Tls = "urn:ietf:params:xml:ns:xmpp-tls";
    public const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    public const string Bind = "urn:ietf:params:xml:ns:xmpp-bind";
    public const string Session = "urn:ietf:params:xml:ns:xmpp-session";
    public const string RosterVersioning = "urn:xmpp:features:rosterver";
    public const string Roster = "jabber:iq:roster";
    public const string Private = "jabber:iq:private";
    public const string Version = "jabber:iq:version";
    public const string Ping = "urn:xmpp:ping";
    public const string DiscoInfo = "http://jabber.org/protocol/disco#info";
    public const string DiscoItems = "http://jabber.org/protocol/disco#items";
    public const string Caps = "http://jabber.org/protocol/caps";
    public const string Delay = "urn:xmpp:delay";
    public const string Offline = "msgoffline";
    public const string Receipts = "urn:xmpp:receipts";
    public const string ChatStates = "http://jabber.org/protocol/chatstates";
    public const string Hints = "urn:xmpp:hints";
    public const string ChannelBinding = "urn:xmpp:sasl-cb:0";
    public const string StreamManagement = "urn:xmpp:sm:3";
    public const string XmlLang = "http://www.w3.org/XML/1998/namespace";
}
