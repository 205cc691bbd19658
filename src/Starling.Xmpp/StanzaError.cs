using Starling.Xml;

namespace Starling.Xmpp;

/// <summary>RFC 6120 §8.3.3 stanza error conditions used by Starling, with their default error types (§8.3.2).</summary>
public enum StanzaErrorCondition
{
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    RemoteServerNotFound,
    ResourceConstraint,
    ServiceUnavailable,
    UndefinedCondition,
    UnexpectedRequest,
}

/// <summary>Builds error replies: every failure maps to its XMPP condition here and nowhere else.</summary>
public static class StanzaError
{
    public static string ElementName(StanzaErrorCondition condition) => condition switch
    {
        StanzaErrorCondition.BadRequest => "bad-request",
        StanzaErrorCondition.Conflict => "conflict",
        StanzaErrorCondition.FeatureNotImplemented => "feature-not-implemented",
        StanzaErrorCondition.Forbidden => "forbidden",
        StanzaErrorCondition.InternalServerError => "internal-server-error",
        StanzaErrorCondition.ItemNotFound => "item-not-found",
        StanzaErrorCondition.JidMalformed => "jid-malformed",
        StanzaErrorCondition.NotAcceptable => "not-acceptable",
        StanzaErrorCondition.NotAllowed => "not-allowed",
        StanzaErrorCondition.NotAuthorized => "not-authorized",
        StanzaErrorCondition.PolicyViolation => "policy-violation",
        StanzaErrorCondition.RecipientUnavailable => "recipient-unavailable",
        StanzaErrorCondition.RemoteServerNotFound => "remote-server-not-found",
        StanzaErrorCondition.ResourceConstraint => "resource-constraint",
        StanzaErrorCondition.ServiceUnavailable => "service-unavailable",
        StanzaErrorCondition.UnexpectedRequest => "unexpected-request",
        _ => "undefined-condition",
    };

    /// <summary>The error type RFC 6120 §8.3.3 gives for each condition.</summary>
    public static string DefaultType(StanzaErrorCondition condition) => condition switch
    {
        StanzaErrorCondition.BadRequest => "modify",
        StanzaErrorCondition.JidMalformed => "modify",
        StanzaErrorCondition.NotAcceptable => "modify",
        StanzaErrorCondition.PolicyViolation => "modify",
        StanzaErrorCondition.Forbidden => "auth",
        StanzaErrorCondition.NotAuthorized => "auth",
        StanzaErrorCondition.InternalServerError => "cancel",
        StanzaErrorCondition.RecipientUnavailable => "wait",
        StanzaErrorCondition.ResourceConstraint => "wait",
        StanzaErrorCondition.UnexpectedRequest => "wait",
        _ => "cancel",
    };

    /// <summary>The &lt;error/&gt; child alone.</summary>
    public static XmlElement CreateErrorElement(StanzaErrorCondition condition, string? text = null, string? by = null)
    {
        var error = new XmlElement("error", Namespaces.Client);
        error.SetAttribute("type", DefaultType(condition));
        if (by is not null) error.SetAttribute("by", by);
        error.Add(new XmlElement(ElementName(condition), Namespaces.Stanzas));
        if (text is not null)
        {
            var t = new XmlElement("text", Namespaces.Stanzas);
            t.SetAttribute("lang", "en", XmlNames.XmlNamespace);
            t.AddText(text);
            error.Add(t);
        }
        return error;
    }

    /// <summary>
    /// The error reply to <paramref name="original"/> (RFC 6120 §8.3.1): same kind and id, addresses swapped,
    /// type "error". For messages the original payload is kept (the RFC allows it) so the sender's client can
    /// show what failed; iq payloads are dropped.
    /// </summary>
    public static XmlElement CreateReply(XmlElement original, StanzaErrorCondition condition, string? text = null)
    {
        var reply = new XmlElement(original.Name, original.Namespace);
        var id = original.GetAttribute("id");
        if (id is not null) reply.SetAttribute("id", id);
        var to = original.GetAttribute("to");
        var from = original.GetAttribute("from");
        if (to is not null) reply.SetAttribute("from", to);
        if (from is not null) reply.SetAttribute("to", from);
        reply.SetAttribute("type", "error");
        if (original.Name == "message")
        {
            foreach (var child in original.Children)
            {
                if (child is XmlElement e && e.Name != "error") reply.Add(e.Clone());
            }
        }
        reply.Add(CreateErrorElement(condition, text));
        return reply;
    }

    /// <summary>RFC 6120 §8.3.1: never answer an error with an error (avoids loops).</summary>
    public static bool MayReplyTo(XmlElement stanza) => stanza.GetAttribute("type") != "error";
}
