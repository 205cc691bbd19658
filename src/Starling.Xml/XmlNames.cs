namespace Starling.Xml;

/// <summary>Namespaces that the XML layer itself must know about.</summary>
public static class XmlNames
{
    /// <summary>The namespace bound to the reserved <c>xml</c> prefix.</summary>
    public const string XmlNamespace = "http://www.w3.org/XML/1998/namespace";

    /// <summary>The namespace bound to the reserved <c>xmlns</c> prefix.</summary>
    public const string XmlnsNamespace = "http://www.w3.org/2000/xmlns/";

    /// <summary>RFC 6120 stream namespace; written with the <c>stream:</c> prefix declared on the stream header.</summary>
    public const string Streams = "http://etherx.jabber.org/streams";
}
