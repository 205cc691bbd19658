using System.Buffers;
using System.Text;

namespace Starling.Xml;

/// <summary>
/// Serialises elements as UTF-8 straight into a pooled <see cref="IBufferWriter{T}"/> (no intermediate strings).
/// </summary>
/// <remarks>
/// <para>
/// Namespaces are declared once per scope, so the output never amplifies what was received (ARCHITECTURE.md §2:
/// a stanza of 20,000 <c>&lt;p:x/&gt;</c> children under one long <c>xmlns:p</c> declaration must not become 20,000
/// copies of the URI). Before writing, one pass over the tree counts, per namespace, how many times the plain
/// form (a default <c>xmlns='…'</c> wherever an element's namespace differs from its parent's) would declare it:
/// </para>
/// <list type="bullet">
/// <item>Default declarations are kept (the form every client knows, <c>&lt;request xmlns='urn:xmpp:receipts'/&gt;</c>)
/// for a namespace declared once, a short one (≤ 19 bytes: a declaration then costs at most 28 bytes, and the
/// element it sits on at least 4), or one whose declarations add up to ≤ 88 bytes (the two of
/// urn:ietf:params:xml:ns:xmpp-stanzas in an error reply).</item>
/// <item>Any other namespace gets a prefix declared once on the element written (the stanza): its elements are
/// unprefixed where it is already the default namespace, prefixed elsewhere.</item>
/// <item>Namespaced attributes get one prefix per namespace, declared on their element when only one element uses it,
/// else once on the stanza. Elements of the stream namespace use the <c>stream:</c> prefix the stream header declares
/// (declared the same way when written stand-alone).</item>
/// </list>
/// <para>
/// With the parser's limits this bounds the output: at most 8 times the bytes of the stanza as received (escaping
/// a quote costs 6 bytes, a repeated short declaration 7 per 1-byte-named element), plus the stanza's own namespace
/// when it inherited it from the stream (tests/Starling.Xml.Tests/WriterBoundTests.cs checks it).
/// </para>
/// </remarks>
public static class XmlWriter
{
    private static readonly SearchValues<char> TextSpecials = SearchValues.Create("&<>\r");
    private static readonly SearchValues<char> AttributeSpecials = SearchValues.Create("&<>\"'\r\n\t");

    /// <summary>Namespaces up to this many bytes (escaped) keep default declarations however often they repeat.</summary>
    internal const int ShortNamespaceBytes = 19;

    /// <summary>Bytes of repeated default declarations of one namespace tolerated before it gets a prefix instead.</summary>
    internal const int RepeatedDeclarationBudget = 88;

    [ThreadStatic]
    private static NamespacePlan? t_plan;

    /// <summary>
    /// Writes <paramref name="element"/> as a child of an element whose namespace is <paramref name="parentNamespace"/>
    /// (for a stanza on a c2s stream: "jabber:client"). With <paramref name="streamPrefixDeclared"/> false,
    /// a stream-namespace element also declares the prefix (stand-alone output).
    /// </summary>
    public static void Write(IBufferWriter<byte> output, XmlElement element, string? parentNamespace, bool streamPrefixDeclared = true)
    {
        // One plan per thread, taken while in use (a nested Write, e.g. from a custom IBufferWriter, gets its own).
        var plan = t_plan ?? new NamespacePlan();
        t_plan = null;
        try
        {
            plan.Analyse(element, parentNamespace, streamPrefixDeclared);
            WriteElement(output, element, parentNamespace, plan, isRoot: true);
        }
        finally
        {
            plan.Clear();
            t_plan = plan;
        }
    }

    public static string ToXmlString(XmlElement element, string? parentNamespace, bool streamPrefixDeclared = false)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, element, parentNamespace, streamPrefixDeclared);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static byte[] ToUtf8(XmlElement element, string? parentNamespace, bool streamPrefixDeclared = true)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, element, parentNamespace, streamPrefixDeclared);
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteElement(IBufferWriter<byte> o, XmlElement e, string? inScopeDefault, NamespacePlan plan, bool isRoot)
    {
        var ns = e.Namespace;
        bool streamPrefixed = IsStreams(ns);
        string? prefix = null;
        bool declareDefault = false;
        string? childDefault = inScopeDefault;
        if (streamPrefixed)
        {
            prefix = "stream";
        }
        else if (!string.Equals(ns, inScopeDefault, StringComparison.Ordinal))
        {
            int entry = plan.HasPrefixes ? plan.Find(ns) : -1;
            if (entry >= 0 && plan.IsHoisted(entry))
            {
                prefix = plan.Prefix(entry);
            }
            else
            {
                declareDefault = true;
                childDefault = ns;
            }
        }

        WriteRaw(o, "<"u8);
        if (prefix is not null)
        {
            WriteString(o, prefix);
            WriteRaw(o, ":"u8);
        }
        WriteString(o, e.Name);
        if (declareDefault)
        {
            WriteRaw(o, " xmlns=\""u8);
            WriteEscaped(o, ns, AttributeSpecials);
            WriteRaw(o, "\""u8);
        }
        if (plan.DeclaresStreamPrefixOn(e, isRoot))
        {
            WriteRaw(o, " xmlns:stream=\""u8);
            WriteString(o, XmlNames.Streams);
            WriteRaw(o, "\""u8);
        }
        if (isRoot && plan.HasPrefixes) plan.WriteRootDeclarations(o);

        var attrs = e.Attributes;
        for (int i = 0; i < attrs.Count; i++)
        {
            var a = attrs[i];
            if (a.Namespace.Length == 0)
            {
                WriteRaw(o, " "u8);
                WriteString(o, a.Name);
            }
            else if (a.Namespace == XmlNames.XmlNamespace)
            {
                WriteRaw(o, " xml:"u8);
                WriteString(o, a.Name);
            }
            else if (IsStreams(a.Namespace))
            {
                WriteRaw(o, " stream:"u8);
                WriteString(o, a.Name);
            }
            else
            {
                int entry = plan.Find(a.Namespace);
                plan.DeclareOnElement(o, entry, e);
                WriteRaw(o, " "u8);
                WriteString(o, plan.Prefix(entry));
                WriteRaw(o, ":"u8);
                WriteString(o, a.Name);
            }
            WriteRaw(o, "=\""u8);
            WriteEscaped(o, a.Value, AttributeSpecials);
            WriteRaw(o, "\""u8);
        }

        var children = e.Children;
        if (children.Count == 0)
        {
            WriteRaw(o, "/>"u8);
            return;
        }
        WriteRaw(o, ">"u8);
        for (int i = 0; i < children.Count; i++)
        {
            switch (children[i])
            {
                case XmlElement child:
                    WriteElement(o, child, childDefault, plan, isRoot: false);
                    break;
                case XmlText text:
                    WriteEscaped(o, text.Value, TextSpecials);
                    break;
            }
        }
        WriteRaw(o, "</"u8);
        if (prefix is not null)
        {
            WriteString(o, prefix);
            WriteRaw(o, ":"u8);
        }
        WriteString(o, e.Name);
        WriteRaw(o, ">"u8);
    }

    private static bool IsStreams(string ns) =>
        ReferenceEquals(ns, XmlNames.Streams) || (ns.Length == XmlNames.Streams.Length && ns == XmlNames.Streams);

    /// <summary>Bytes <paramref name="value"/> takes as an escaped attribute value.</summary>
    internal static int EscapedAttributeBytes(string value)
    {
        int n = Encoding.UTF8.GetByteCount(value);
        ReadOnlySpan<char> rest = value;
        int i;
        while ((i = rest.IndexOfAny(AttributeSpecials)) >= 0)
        {
            n += rest[i] switch
            {
                '&' => 4,
                '"' or '\'' => 5,
                _ => 3, // &lt; &gt; &#9; &#10; (&#13; is 4 more, counted below)
            };
            if (rest[i] == '\r') n++;
            rest = rest[(i + 1)..];
        }
        return n;
    }

    /// <summary>Which namespaces of one tree get prefixes, and where they are declared (see the class remarks).</summary>
    private sealed class NamespacePlan
    {
        private static readonly string[] CommonPrefixes = BuildPrefixes(64);

        private string?[] _ns = new string?[8];
        private int[] _defaultDeclarations = new int[8];
        private int[] _attributeElements = new int[8];
        private XmlElement?[] _attributeElement = new XmlElement?[8]; // the last element using it for attributes
        private bool[] _hoisted = new bool[8];
        private bool[] _prefixed = new bool[8];
        private bool[] _declaredOnElement = new bool[8];
        private string?[] _prefixes = new string?[8];
        private int _count;
        private bool _streamPrefixDeclared;
        private int _streamUses;
        private XmlElement? _streamElement;

        /// <summary>Some namespace needs a prefix of ours.</summary>
        public bool HasPrefixes { get; private set; }

        public void Analyse(XmlElement root, string? parentNamespace, bool streamPrefixDeclared)
        {
            _streamPrefixDeclared = streamPrefixDeclared;
            Visit(root, parentNamespace);
            int next = 0;
            for (int i = 0; i < _count; i++)
            {
                // A namespace that both elements and attributes use gets one prefix for both, unless it is short: a
                // default declaration beside the attributes' prefix would write a long (maybe escaping-heavy) URI twice.
                bool hoisted = (_defaultDeclarations[i] >= 2 && !KeepsDefaultDeclarations(_ns[i]!, _defaultDeclarations[i]))
                    || (_defaultDeclarations[i] >= 1 && _attributeElements[i] >= 1 && EscapedAttributeBytes(_ns[i]!) > ShortNamespaceBytes);
                _hoisted[i] = hoisted;
                if (!hoisted && _attributeElements[i] == 0) continue;
                _prefixed[i] = true;
                _prefixes[i] = next < CommonPrefixes.Length ? CommonPrefixes[next] : "n" + next.ToString(System.Globalization.CultureInfo.InvariantCulture);
                next++;
                HasPrefixes = true;
            }
        }

        private static bool KeepsDefaultDeclarations(string ns, int declarations)
        {
            int bytes = EscapedAttributeBytes(ns);
            return bytes <= ShortNamespaceBytes || (long)declarations * (bytes + 9) <= RepeatedDeclarationBudget;
        }

        private void Visit(XmlElement e, string? inScopeDefault)
        {
            var ns = e.Namespace;
            string? childDefault = inScopeDefault;
            if (IsStreams(ns))
            {
                _streamUses++;
                _streamElement = e;
            }
            else if (!string.Equals(ns, inScopeDefault, StringComparison.Ordinal))
            {
                int k = FindOrAdd(ns); // before indexing: it may replace the array
                _defaultDeclarations[k]++;
                childDefault = ns;
            }
            var attrs = e.Attributes;
            for (int i = 0; i < attrs.Count; i++)
            {
                var ans = attrs[i].Namespace;
                if (ans.Length == 0 || ans == XmlNames.XmlNamespace) continue;
                if (IsStreams(ans))
                {
                    if (_streamElement != e) _streamUses++;
                    _streamElement = e;
                    continue;
                }
                int k = FindOrAdd(ans);
                if (_attributeElement[k] == e) continue;
                _attributeElements[k]++;
                _attributeElement[k] = e;
            }
            var children = e.Children;
            for (int i = 0; i < children.Count; i++)
            {
                if (children[i] is XmlElement child) Visit(child, childDefault);
            }
        }

        /// <summary>The entry of <paramref name="ns"/>. The parser hands out one string per namespace, so a reference match is the rule.</summary>
        public int Find(string ns)
        {
            for (int i = 0; i < _count; i++)
            {
                if (ReferenceEquals(_ns[i], ns)) return i;
            }
            for (int i = 0; i < _count; i++)
            {
                if (string.Equals(_ns[i], ns, StringComparison.Ordinal)) return i;
            }
            return -1;
        }

        private int FindOrAdd(string ns)
        {
            int i = Find(ns);
            if (i >= 0) return i;
            if (_count == _ns.Length)
            {
                int n = _count * 2;
                Array.Resize(ref _ns, n);
                Array.Resize(ref _defaultDeclarations, n);
                Array.Resize(ref _attributeElements, n);
                Array.Resize(ref _attributeElement, n);
                Array.Resize(ref _hoisted, n);
                Array.Resize(ref _prefixed, n);
                Array.Resize(ref _declaredOnElement, n);
                Array.Resize(ref _prefixes, n);
            }
            _ns[_count] = ns;
            return _count++;
        }

        public bool IsHoisted(int entry) => _hoisted[entry];

        public string Prefix(int entry) => _prefixes[entry]!;

        /// <summary>Declared on the stanza: hoisted namespaces, and attribute namespaces more than one element uses.</summary>
        private bool OnRoot(int entry) => _prefixed[entry] && (_hoisted[entry] || _attributeElements[entry] >= 2);

        public bool DeclaresStreamPrefixOn(XmlElement e, bool isRoot) =>
            !_streamPrefixDeclared && _streamUses > 0 && (_streamUses == 1 ? _streamElement == e : isRoot);

        public void WriteRootDeclarations(IBufferWriter<byte> o)
        {
            for (int i = 0; i < _count; i++)
            {
                if (OnRoot(i)) WriteDeclaration(o, i);
            }
        }

        /// <summary>Before an attribute: declares its prefix here if this is the one element that uses it.</summary>
        public void DeclareOnElement(IBufferWriter<byte> o, int entry, XmlElement e)
        {
            if (OnRoot(entry) || _declaredOnElement[entry]) return;
            _declaredOnElement[entry] = true; // only one element uses it: declared once, on this one
            WriteDeclaration(o, entry);
        }

        private void WriteDeclaration(IBufferWriter<byte> o, int entry)
        {
            WriteRaw(o, " xmlns:"u8);
            WriteString(o, _prefixes[entry]);
            WriteRaw(o, "=\""u8);
            WriteEscaped(o, _ns[entry]!, AttributeSpecials);
            WriteRaw(o, "\""u8);
        }

        public void Clear()
        {
            Array.Clear(_ns, 0, _count);
            Array.Clear(_defaultDeclarations, 0, _count);
            Array.Clear(_attributeElements, 0, _count);
            Array.Clear(_attributeElement, 0, _count);
            Array.Clear(_hoisted, 0, _count);
            Array.Clear(_prefixed, 0, _count);
            Array.Clear(_declaredOnElement, 0, _count);
            Array.Clear(_prefixes, 0, _count);
            _count = 0;
            _streamUses = 0;
            _streamElement = null;
            HasPrefixes = false;
            // A huge tree can grow the arrays; a thread keeps a small plan.
            if (_ns.Length > 256) _ns = [];
            if (_ns.Length == 0)
            {
                _ns = new string?[8];
                _defaultDeclarations = new int[8];
                _attributeElements = new int[8];
                _attributeElement = new XmlElement?[8];
                _hoisted = new bool[8];
                _prefixed = new bool[8];
                _declaredOnElement = new bool[8];
                _prefixes = new string?[8];
            }
        }

        private static string[] BuildPrefixes(int n)
        {
            var prefixes = new string[n];
            for (int i = 0; i < n; i++) prefixes[i] = "n" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return prefixes;
        }
    }

    /// <summary>
    /// An upper bound of <paramref name="element"/>'s serialised size without serialising it: 3 bytes per UTF-16
    /// code unit (the most UTF-8 needs for one), tag and attribute syntax counted generously. A walk over the tree
    /// that only adds string lengths (no encoding, no escaping scan, no buffer), where the exact size would mean
    /// serialising every stanza once more. Escaping (&amp;amp; and the like) is the one thing it does not bound: at
    /// most 6 bytes per special character, which only a stanza of nothing but '&amp;' approaches.
    /// </summary>
    /// <remarks>
    /// Namespaces follow this writer's rules (each declared once per scope): a namespace is counted where an element's
    /// differs from its parent's, a long one (over XmlWriter's short-namespace size) only the first time in the
    /// stanza plus the writer's budget for its repeated default declarations, later uses as a prefix. Counting the URI
    /// on every element instead would let a 250 KB stanza of 9,000 children under one long namespace weigh 27 MB
    /// in a session's outbound queue, and get the client it is sent to cut off as a slow reader.
    /// </remarks>
    public static long MaxSerializedBytes(XmlElement element)
    {
        var seen = t_seenNamespaces ??= new string[MaxTrackedNamespaces];
        int count = 0;
        try
        {
            return ElementBytes(element, null, seen, ref count);
        }
        finally
        {
            Array.Clear(seen, 0, count);
        }
    }

    private const int MaxTrackedNamespaces = 64; // XmlLimits.MaxNamespaces' default
    private const int PrefixBytes = 8;           // "nNN:" on a start and an end tag

    [ThreadStatic]
    private static string[]? t_seenNamespaces;

    private static long NamespaceBytes(string ns, string[] seen, ref int count)
    {
        if (ns.Length <= ShortNamespaceBytes) return 3L * ns.Length + 10;
        for (int i = 0; i < count; i++)
        {
            if (ReferenceEquals(seen[i], ns) || string.Equals(seen[i], ns, StringComparison.Ordinal)) return PrefixBytes;
        }
        if (count < seen.Length) seen[count++] = ns;
        return 3L * ns.Length + 16 + RepeatedDeclarationBudget;
    }

    private static long ElementBytes(XmlElement e, string? parentNs, string[] seen, ref int count)
    {
        // <p:name xmlns='ns'> ... </p:name>
        long n = 3 * 2L * e.Name.Length + 16 + PrefixBytes;
        if (!string.Equals(e.Namespace, parentNs, StringComparison.Ordinal)) n += NamespaceBytes(e.Namespace, seen, ref count);
        var attributes = e.Attributes;
        for (int i = 0; i < attributes.Count; i++)
        {
            var a = attributes[i];
            n += 3 * (a.Name.Length + a.Value.Length) + 8;
            if (a.Namespace.Length > 0) n += NamespaceBytes(a.Namespace, seen, ref count) + PrefixBytes;
        }
        var children = e.Children;
        for (int i = 0; i < children.Count; i++)
        {
            n += children[i] is XmlElement child ? ElementBytes(child, e.Namespace, seen, ref count) : 3L * ((XmlText)children[i]).Value.Length;
        }
        return n;
    }

    /// <summary>Writes character data with the escaping XML requires.</summary>
    public static void WriteText(IBufferWriter<byte> o, string text) => WriteEscaped(o, text, TextSpecials);

    /// <summary>Writes an attribute value with the escaping XML requires (quotes, and whitespace kept as character references).</summary>
    public static void WriteAttributeValue(IBufferWriter<byte> o, string value) => WriteEscaped(o, value, AttributeSpecials);

    private static void WriteEscaped(IBufferWriter<byte> o, string value, SearchValues<char> specials)
    {
        ReadOnlySpan<char> rest = value;
        while (rest.Length > 0)
        {
            int i = rest.IndexOfAny(specials);
            if (i < 0)
            {
                WriteString(o, rest);
                return;
            }
            if (i > 0) WriteString(o, rest[..i]);
            WriteRaw(o, rest[i] switch
            {
                '&' => "&amp;"u8,
                '<' => "&lt;"u8,
                '>' => "&gt;"u8,
                '"' => "&quot;"u8,
                '\'' => "&apos;"u8,
                '\r' => "&#13;"u8,
                '\n' => "&#10;"u8,
                _ => "&#9;"u8,
            });
            rest = rest[(i + 1)..];
        }
    }

    public static void WriteRaw(IBufferWriter<byte> o, ReadOnlySpan<byte> bytes)
    {
        var span = o.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        o.Advance(bytes.Length);
    }

    public static void WriteString(IBufferWriter<byte> o, ReadOnlySpan<char> s)
    {
        if (s.IsEmpty) return;
        var span = o.GetSpan(Encoding.UTF8.GetMaxByteCount(s.Length));
        int n = Encoding.UTF8.GetBytes(s, span);
        o.Advance(n);
    }
}
