using System.Text;

namespace Starling.Xml;

/// <summary>
/// A namespace-resolved element: the unit the XML stream emits (one per top-level child of the stream)
/// and the unit sessions, routing and modules work on. Prefixes are not kept: the writer declares
/// namespaces as needed, which RFC 6120 §11.2 allows (only the namespace is significant).
/// </summary>
public sealed class XmlElement : XmlNode
{
    private List<XmlAttribute>? _attributes;
    private List<XmlNode>? _children;

    public XmlElement(string name, string ns)
    {
        Name = name;
        Namespace = ns;
    }

    /// <summary>For the parser: sizes the attribute list exactly (no regrowth per stanza).</summary>
    internal XmlElement(string name, string ns, int attributeCapacity)
        : this(name, ns)
    {
        if (attributeCapacity > 0) _attributes = new List<XmlAttribute>(attributeCapacity);
    }

    /// <summary>Local name (no prefix).</summary>
    public string Name { get; set; }

    /// <summary>Namespace URI ("" if none is in scope).</summary>
    public string Namespace { get; set; }

    public IReadOnlyList<XmlAttribute> Attributes => (IReadOnlyList<XmlAttribute>?)_attributes ?? [];

    public IReadOnlyList<XmlNode> Children => (IReadOnlyList<XmlNode>?)_children ?? [];

    public bool HasChildren => _children is { Count: > 0 };

    /// <summary>Value of an unqualified attribute, or null.</summary>
    public string? GetAttribute(string name)
    {
        if (_attributes is null) return null;
        for (int i = 0; i < _attributes.Count; i++)
        {
            var a = _attributes[i];
            if (a.Namespace.Length == 0 && a.Name == name) return a.Value;
        }
        return null;
    }

    /// <summary>Value of a namespace-qualified attribute (e.g. xml:lang), or null.</summary>
    public string? GetAttribute(string name, string ns)
    {
        if (_attributes is null) return null;
        for (int i = 0; i < _attributes.Count; i++)
        {
            var a = _attributes[i];
            if (a.Name == name && a.Namespace == ns) return a.Value;
        }
        return null;
    }

    /// <summary>Sets, replaces or (with a null value) removes an attribute.</summary>
    public XmlElement SetAttribute(string name, string? value, string ns = "")
    {
        _attributes ??= new List<XmlAttribute>(4);
        for (int i = 0; i < _attributes.Count; i++)
        {
            var a = _attributes[i];
            if (a.Name == name && a.Namespace == ns)
            {
                if (value is null) _attributes.RemoveAt(i);
                else _attributes[i] = new XmlAttribute(name, value, ns);
                return this;
            }
        }
        if (value is not null) _attributes.Add(new XmlAttribute(name, value, ns));
        return this;
    }

    /// <summary>Appends an attribute without checking for duplicates (the parser has already checked).</summary>
    public void AddAttributeUnchecked(XmlAttribute attribute)
    {
        _attributes ??= new List<XmlAttribute>(4);
        _attributes.Add(attribute);
    }

    public XmlElement Add(XmlNode child)
    {
        _children ??= new List<XmlNode>(2);
        _children.Add(child);
        return this;
    }

    /// <summary>Adds a child element and returns the child (for building trees fluently).</summary>
    public XmlElement AddElement(string name, string? ns = null)
    {
        var child = new XmlElement(name, ns ?? Namespace);
        Add(child);
        return child;
    }

    public XmlElement AddText(string text)
    {
        if (text.Length > 0) Add(new XmlText(text));
        return this;
    }

    public bool Remove(XmlNode child) => _children is not null && _children.Remove(child);

    public void RemoveChildren(string name, string ns)
    {
        _children?.RemoveAll(c => c is XmlElement e && e.Name == name && e.Namespace == ns);
    }

    public void ClearChildren() => _children?.Clear();

    /// <summary>First child element with this name and namespace, or null.</summary>
    public XmlElement? Element(string name, string ns)
    {
        if (_children is null) return null;
        for (int i = 0; i < _children.Count; i++)
        {
            if (_children[i] is XmlElement e && e.Name == name && e.Namespace == ns) return e;
        }
        return null;
    }

    /// <summary>First child element of any name, or null.</summary>
    public XmlElement? FirstElement()
    {
        if (_children is null) return null;
        for (int i = 0; i < _children.Count; i++)
        {
            if (_children[i] is XmlElement e) return e;
        }
        return null;
    }

    public IEnumerable<XmlElement> Elements()
    {
        if (_children is null) yield break;
        foreach (var c in _children)
        {
            if (c is XmlElement e) yield return e;
        }
    }

    public IEnumerable<XmlElement> Elements(string name, string ns)
    {
        if (_children is null) yield break;
        foreach (var c in _children)
        {
            if (c is XmlElement e && e.Name == name && e.Namespace == ns) yield return e;
        }
    }

    /// <summary>Concatenated character data of direct children.</summary>
    public string Text
    {
        get
        {
            if (_children is null) return string.Empty;
            string? single = null;
            StringBuilder? sb = null;
            foreach (var c in _children)
            {
                if (c is not XmlText t) continue;
                if (single is null) single = t.Value;
                else (sb ??= new StringBuilder(single)).Append(t.Value);
            }
            return sb?.ToString() ?? single ?? string.Empty;
        }
    }

    /// <summary>Text of the first child element with this name and namespace, or null.</summary>
    public string? ElementText(string name, string ns) => Element(name, ns)?.Text;

    public override XmlElement Clone()
    {
        var copy = new XmlElement(Name, Namespace);
        if (_attributes is not null) copy._attributes = new List<XmlAttribute>(_attributes);
        if (_children is not null)
        {
            copy._children = new List<XmlNode>(_children.Count);
            foreach (var c in _children) copy._children.Add(c.Clone());
        }
        return copy;
    }

    /// <summary>Serialises with this element's namespace declared (for logs and tests; the hot path uses <see cref="XmlWriter"/>).</summary>
    public override string ToString() => XmlWriter.ToXmlString(this, parentNamespace: null);
}
