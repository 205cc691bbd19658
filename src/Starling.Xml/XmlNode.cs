namespace Starling.Xml;

/// <summary>A node of a parsed element tree: an element or a run of character data.</summary>
public abstract class XmlNode
{
    internal XmlNode() { }

    /// <summary>Deep copy.</summary>
    public abstract XmlNode Clone();
}

/// <summary>Character data (unescaped).</summary>
public sealed class XmlText : XmlNode
{
    public XmlText(string value) => Value = value;

    public string Value { get; set; }

    public override XmlNode Clone() => new XmlText(Value);

    public override string ToString() => Value;
}

/// <summary>
/// An attribute. <see cref="Namespace"/> is empty for unqualified attributes (the common case);
/// <c>xml:lang</c> has <see cref="XmlNames.XmlNamespace"/>.
/// </summary>
public readonly record struct XmlAttribute(string Name, string Value, string Namespace = "");
