using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace Starling.Xml;

/// <summary>What <see cref="XmlStreamParser.Read(ReadOnlySpan{byte}, out int)"/> found.</summary>
public enum XmlStreamEvent
{
    /// <summary>All input was consumed without completing an event: feed more bytes.</summary>
    NeedMoreData = 0,
    /// <summary>The stream header (the opening tag of the root) is complete: see <see cref="XmlStreamParser.StreamHeader"/>.</summary>
    StreamOpen,
    /// <summary>A complete top-level child of the root: take it with <see cref="XmlStreamParser.TakeElement"/>.</summary>
    Element,
    /// <summary>The root was closed (&lt;/stream:stream&gt;).</summary>
    StreamClose,
    /// <summary>The input violates the XML subset or a limit: see <see cref="XmlStreamParser.Error"/>. The parser stays failed until <see cref="XmlStreamParser.Reset"/>.</summary>
    Error,
}

/// <summary>
/// Incremental, namespace-aware push parser for the XML subset XMPP allows (RFC 6120 §11).
/// </summary>
/// <remarks>
/// <para>
/// A byte-level state machine: every piece of state needed to resume inside a token (a name, an attribute
/// value, an entity reference, a UTF-8 sequence, a CR/LF pair, a <c>]]&gt;</c>) lives in fields, so input
/// may be split at any byte. Runs of text, names and attribute values are found with vectorised
/// <see cref="SearchValues{T}"/> scans and transcoded in bulk into reused buffers.
/// </para>
/// <para>
/// <see cref="Read(ReadOnlySpan{byte}, out int)"/> stops right after each top-level event, so a caller can
/// switch to TLS after &lt;starttls/&gt; or restart the stream after SASL success without the parser
/// having eaten bytes that belong to the next layer.
/// </para>
/// <para>Not thread-safe: one parser per stream.</para>
/// </remarks>
public sealed class XmlStreamParser
{
    private enum State : byte
    {
        Prolog,
        Content,
        TagOpen,
        StartName,
        InTag,
        AttrName,
        AfterAttrName,
        BeforeAttrValue,
        AttrValue,
        EmptyClose,
        EndName,
        AfterEndName,
        Entity,
        Bang,
        CData,
        Declaration,
        AfterRoot,
        Failed,
    }

    private struct RawAttribute
    {
        public int NameStart;
        public int NameLength;
        public int Colon; // index within the name, or -1
        public int ValueStart;
        public int ValueLength;
    }

    private const int InitialTextBuffer = 256;
    private const int MaxEntityBytes = 16;
    private const int MaxDeclarationBytes = 512;
    private const int MaxCachedValueLength = 48; // "chat", "get", "en", JIDs of the conversation; bodies are not worth it

    // Bytes that end a run of character data: '<', '&', '>' (for "]]>"), CR (normalised) and every C0
    // control except TAB and LF (not XML characters).
    private static readonly SearchValues<byte> TextStops = SearchValues.Create(
        "\0\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000B\u000C\u000D\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F<&>"u8);

    private static readonly SearchValues<byte> CDataStops = SearchValues.Create(
        "\0\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000B\u000C\u000D\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F]"u8);

    // Attribute values stop at every C0 control too: TAB, LF and CR are normalised to spaces.
    private static readonly SearchValues<byte> AttrStopsDouble = SearchValues.Create(
        "\0\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000A\u000B\u000C\u000D\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F<&\""u8);

    private static readonly SearchValues<byte> AttrStopsSingle = SearchValues.Create(
        "\0\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000A\u000B\u000C\u000D\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F<&'"u8);

    private static readonly SearchValues<byte> Whitespace = SearchValues.Create(" \t\r\n"u8);

    // Bytes that may continue a name: ASCII name characters and every non-ASCII byte (validated after decoding).
    private static readonly SearchValues<byte> NameBytes = BuildNameBytes(withHash: false);

    private static readonly SearchValues<byte> EntityBytes = BuildNameBytes(withHash: true);

    private readonly StringCache _cache = new(seeded: true);
    private readonly StringCache _values = new(seeded: false);

    private State _state;
    private State _entityReturn;
    private bool _fragment;
    private int _depth; // open elements, the stream root included
    private bool _allowDeclaration;
    private bool _pendingRootClose;
    private XmlElement? _completed;

    // Byte accounting for the header / current stanza.
    private bool _counting;
    private long _countBase;
    private int _countStart;
    private int _countLimit;
    private bool _countingStanza;

    // Token accumulation.
    private char[] _tag = []; // rented while a token is being read, returned between stanzas
    private int _tagLength;
    private char[] _text = [];
    private int _textLength;
    private readonly byte[] _pendingUtf8 = new byte[4];
    private int _pendingUtf8Length;
    private readonly byte[] _entity = new byte[MaxEntityBytes];
    private int _entityLength;
    private byte[]? _declaration;
    private int _declarationLength;
    private int _nameBytes;
    private int _elementNameLength;
    private int _elementColon;
    private RawAttribute[] _attributes = new RawAttribute[6];
    private int _attributeCount;
    private bool _sawSpace;
    private bool _quoteIsDouble;
    private bool _afterCR;
    private int _brackets; // trailing literal ']' seen in text, or pending ']' in a CDATA section
    private int _bangMatched;

    // Open elements (index 0 is the root) and namespace bindings in scope.
    private XmlElement?[] _elements = new XmlElement?[8];
    private string?[] _prefixes = new string?[8];
    private string[] _locals = new string[8];
    private int[] _nsMarks = new int[8];

    // Namespace bindings in scope, innermost last. Lookup is O(1) for the default namespace (a chain through
    // _nsPrev from _defaultHead) and for prefixes: a short chain of prefixed bindings while there are few, a
    // dictionary from prefix to innermost binding once there are more (a hostile stanza can nest thousands, and a
    // linear scan per element made one stanza quadratic).
    private const int LinearPrefixBindings = 8;
    private const int RetainedBindings = 64;
    private string[] _nsPrefixes = new string[8];
    private string[] _nsUris = new string[8];
    private int[] _nsPrev = new int[8];     // the previous binding in the same chain (default or prefixed), or -1
    private int[] _nsShadow = new int[8];   // with _prefixIndex: the binding of the same prefix this one hides, or -1
    private int[] _nsCharged = new int[8];  // serial of the last stanza charged for using this binding (see Charge)
    private int _nsCount;
    private int _defaultHead = -1;
    private int _prefixedHead = -1;
    private int _prefixedCount;
    private Dictionary<string, int>? _prefixIndex;

    // Per stanza: counters for the limits, and the namespace URIs declared in it (one string per distinct URI, so
    // 20,000 declarations of one URI cost one string, and the writer compares namespaces by reference).
    private int _stanzaSerial;
    private int _stanzaNsMark;
    private int _stanzaElements;
    private int _stanzaDeclarations;
    private string[] _stanzaUris = [];
    private int[] _stanzaUriHashes = [];
    private int _stanzaUriCount;

    public XmlStreamParser(XmlLimits? limits = null)
    {
        Limits = limits ?? XmlLimits.Default;
        MaxStanzaBytes = Limits.MaxStanzaBytes;
        Reset();
    }

    public XmlLimits Limits { get; }

    /// <summary>
    /// The size limit for stanzas, <see cref="XmlLimits.MaxStanzaBytes"/> unless set; a new value applies from the
    /// next stanza on and survives <see cref="Reset"/>. A c2s stream keeps it small until a resource is bound
    /// (as Prosody and ejabberd do): before that only negotiation elements are legitimate.
    /// </summary>
    public int MaxStanzaBytes { get; set; }

    public XmlElement? StreamHeader { get; private set; }

    public string StreamDefaultNamespace { get; private set; } = string.Empty;

    public XmlStreamErrorCondition Error { get; private set; }

    public string? ErrorDetail { get; private set; }

    /// <summary>Total bytes consumed since construction or the last <see cref="Reset"/>.</summary>
    public long BytesConsumed { get; private set; }

    /// <summary>Depth of the element being parsed below the stream root (0 between stanzas).</summary>
    public int Depth => _depth <= 1 ? 0 : _depth - 1;

    /// <summary>
    /// Consumes <paramref name="input"/> until one top-level event completes and returns it; <paramref name="consumed"/>
    /// says how many bytes were used (the caller keeps the rest for the next call). Returns
    /// <see cref="XmlStreamEvent.NeedMoreData"/> when everything was consumed without completing an event.
    /// </summary>
    public XmlStreamEvent Read(ReadOnlySpan<byte> input, out int consumed)
    {
        if (_state == State.Failed)
        {
            consumed = 0;
            return XmlStreamEvent.Error;
        }
        if (_pendingRootClose)
        {
            _pendingRootClose = false;
            _state = State.AfterRoot;
            consumed = 0;
            return XmlStreamEvent.StreamClose;
        }

        _countStart = 0;
        int pos = 0;
        var ev = XmlStreamEvent.NeedMoreData;
        while (pos < input.Length)
        {
            ev = _state switch
            {
                State.Content => _depth >= 2 ? ReadText(input, ref pos) : ReadTopLevel(input, ref pos),
                State.TagOpen => ReadTagOpen(input, ref pos),
                State.StartName => ReadStartName(input, ref pos),
                State.InTag => ReadInTag(input, ref pos),
                State.AttrName => ReadAttrName(input, ref pos),
                State.AfterAttrName => ReadAfterAttrName(input, ref pos),
                State.BeforeAttrValue => ReadBeforeAttrValue(input, ref pos),
                State.AttrValue => ReadAttrValue(input, ref pos),
                State.EmptyClose => ReadEmptyClose(input, ref pos),
                State.EndName => ReadEndName(input, ref pos),
                State.AfterEndName => ReadAfterEndName(input, ref pos),
                State.Entity => ReadEntity(input, ref pos),
                State.Bang => ReadBang(input, ref pos),
                State.CData => ReadCData(input, ref pos),
                State.Prolog => ReadProlog(input, ref pos),
                State.Declaration => ReadDeclaration(input, ref pos),
                State.AfterRoot => ReadAfterRoot(input, ref pos),
                _ => XmlStreamEvent.Error,
            };
            if (ev != XmlStreamEvent.Error && _counting && _countBase + (pos - _countStart) > _countLimit)
            {
                _completed = null;
                ev = Fail(XmlStreamErrorCondition.PolicyViolation, _countingStanza ? "stanza too large" : "stream header too large");
            }
            if (ev != XmlStreamEvent.NeedMoreData)
            {
                if (ev != XmlStreamEvent.Error && !_fragment) _counting = false;
                break;
            }
        }

        if (ev == XmlStreamEvent.NeedMoreData && _counting) _countBase += input.Length - _countStart;
        consumed = pos;
        BytesConsumed += pos;
        return ev;
    }

    /// <summary>
    /// Same as <see cref="Read(ReadOnlySpan{byte}, out int)"/> over a possibly multi-segment sequence. On
    /// <see cref="XmlStreamEvent.NeedMoreData"/>, <paramref name="consumed"/> is <c>input.End</c>.
    /// </summary>
    public XmlStreamEvent Read(in ReadOnlySequence<byte> input, out SequencePosition consumed)
    {
        if (input.IsSingleSegment)
        {
            var ev = Read(input.FirstSpan, out int used);
            consumed = input.GetPosition(used);
            return ev;
        }
        var current = input.Start;
        var next = current;
        while (input.TryGet(ref next, out var memory))
        {
            var ev = Read(memory.Span, out int used);
            if (ev != XmlStreamEvent.NeedMoreData)
            {
                consumed = input.GetPosition(used, current);
                return ev;
            }
            current = next;
        }
        consumed = input.End;
        return XmlStreamEvent.NeedMoreData;
    }

    /// <summary>The top-level element completed by the last <see cref="XmlStreamEvent.Element"/> event; ownership passes to the caller.</summary>
    public XmlElement TakeElement()
    {
        var e = _completed ?? throw new InvalidOperationException("No completed element: Read did not return XmlStreamEvent.Element.");
        _completed = null;
        return e;
    }

    /// <summary>Stream restart (RFC 6120 §4.3.3): forgets everything and expects an optional XML declaration, then a new header.</summary>
    public void Reset()
    {
        _state = State.Prolog;
        _fragment = false;
        Array.Clear(_elements, 0, Math.Min(_depth + 1, _elements.Length));
        _depth = 0;
        ClearNamespaces();
        Array.Clear(_stanzaUris, 0, _stanzaUriCount);
        _stanzaUriCount = 0;
        _allowDeclaration = true;
        _pendingRootClose = false;
        _completed = null;
        StreamHeader = null;
        StreamDefaultNamespace = string.Empty;
        Error = XmlStreamErrorCondition.None;
        ErrorDetail = null;
        BytesConsumed = 0;
        ResetTokenState();
        ShrinkBuffers();
        StartCounting(0, Limits.MaxHeaderBytes, stanza: false);
    }

    /// <summary>Parses one stand-alone element (no stream root), e.g. XML stored in a database.</summary>
    /// <exception cref="FormatException">The input is not exactly one well-formed element of the XMPP XML subset.</exception>
    /// <param name="limits">Default: <see cref="XmlLimits.Trusted"/> (stored XML the server wrote itself); pass limits for untrusted input.</param>
    public static XmlElement ParseElement(ReadOnlySpan<byte> utf8, XmlLimits? limits = null)
    {
        var parser = new XmlStreamParser(limits ?? XmlLimits.Trusted);
        parser._fragment = true;
        parser._state = State.Content;
        parser._depth = 1;
        parser._elements[0] = null;
        parser._prefixes[0] = null;
        parser._locals[0] = string.Empty;
        parser._nsMarks[0] = 0;
        parser.StartCounting(0, parser.Limits.MaxStanzaBytes, stanza: true);

        var ev = parser.Read(utf8, out int consumed);
        switch (ev)
        {
            case XmlStreamEvent.Element:
                if (utf8[consumed..].IndexOfAnyExcept(Whitespace) >= 0)
                    throw new FormatException("Unexpected content after the element.");
                return parser.TakeElement();
            case XmlStreamEvent.Error:
                throw new FormatException($"Invalid XML ({parser.Error.ToElementName()}): {parser.ErrorDetail}");
            default:
                throw new FormatException(parser._depth <= 1 && parser._state == State.Content
                    ? "No element found."
                    : "Incomplete XML: the element is not closed.");
        }
    }

    /// <inheritdoc cref="ParseElement(ReadOnlySpan{byte}, XmlLimits?)"/>
    public static XmlElement ParseElement(string xml, XmlLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(xml);
        int max = Encoding.UTF8.GetMaxByteCount(xml.Length);
        byte[] rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            int n = Encoding.UTF8.GetBytes(xml, rented);
            return ParseElement(rented.AsSpan(0, n), limits);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    // ---------------------------------------------------------------- states

    private XmlStreamEvent ReadProlog(ReadOnlySpan<byte> input, ref int pos)
    {
        int i = input[pos..].IndexOfAnyExcept(Whitespace);
        if (i < 0)
        {
            pos = input.Length;
            return XmlStreamEvent.NeedMoreData;
        }
        pos += i;
        if (input[pos] != (byte)'<') return Fail(XmlStreamErrorCondition.NotWellFormed, "content before the stream header");
        pos++;
        _state = State.TagOpen;
        return XmlStreamEvent.NeedMoreData;
    }

    private XmlStreamEvent ReadAfterRoot(ReadOnlySpan<byte> input, ref int pos)
    {
        int i = input[pos..].IndexOfAnyExcept(Whitespace);
        if (i < 0)
        {
            pos = input.Length;
            return XmlStreamEvent.NeedMoreData;
        }
        pos += i;
        return Fail(XmlStreamErrorCondition.NotWellFormed, "content after the stream was closed");
    }

    /// <summary>Between top-level elements: only whitespace (keepalives) is allowed.</summary>
    private XmlStreamEvent ReadTopLevel(ReadOnlySpan<byte> input, ref int pos)
    {
        int i = input[pos..].IndexOfAnyExcept(Whitespace);
        if (i < 0)
        {
            pos = input.Length;
            return XmlStreamEvent.NeedMoreData;
        }
        pos += i;
        byte b = input[pos];
        if (b == (byte)'<')
        {
            if (!_fragment) StartCounting(pos, MaxStanzaBytes, stanza: true);
            pos++;
            _state = State.TagOpen;
            return XmlStreamEvent.NeedMoreData;
        }
        if (b == (byte)'&')
        {
            pos++;
            _entityLength = 0;
            _entityReturn = State.Content;
            _state = State.Entity;
            return XmlStreamEvent.NeedMoreData;
        }
        return Fail(b < 0x20 ? XmlStreamErrorCondition.NotWellFormed : XmlStreamErrorCondition.BadFormat,
            _fragment ? "text outside the element" : "text directly under the stream root");
    }

    /// <summary>Character data inside a top-level element.</summary>
    private XmlStreamEvent ReadText(ReadOnlySpan<byte> input, ref int pos)
    {
        if (_afterCR)
        {
            _afterCR = false;
            if (input[pos] == (byte)'\n')
            {
                pos++;
                return XmlStreamEvent.NeedMoreData;
            }
        }
        var rest = input[pos..];
        int i = rest.IndexOfAny(TextStops);
        var run = i < 0 ? rest : rest[..i];
        if (run.Length > 0 || _pendingUtf8Length > 0)
        {
            if (!AppendUtf8(run, ref _text, ref _textLength, atInputEnd: i < 0)) return FailUtf8();
            int trailing = run.Length - run.TrimEnd((byte)']').Length;
            _brackets = trailing == run.Length ? _brackets + trailing : trailing;
        }
        if (i < 0)
        {
            pos = input.Length;
            return XmlStreamEvent.NeedMoreData;
        }
        pos += i + 1;
        switch (input[pos - 1])
        {
            case (byte)'<':
                _brackets = 0;
                _state = State.TagOpen;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'&':
                _brackets = 0;
                _entityLength = 0;
                _entityReturn = State.Content;
                _state = State.Entity;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'\r':
                _brackets = 0;
                AppendChar(ref _text, ref _textLength, '\n');
                _afterCR = true;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'>':
                if (_brackets >= 2) return Fail(XmlStreamErrorCondition.NotWellFormed, "']]>' in character data");
                _brackets = 0;
                AppendChar(ref _text, ref _textLength, '>');
                return XmlStreamEvent.NeedMoreData;
            default:
                return Fail(XmlStreamErrorCondition.NotWellFormed, "control character in character data");
        }
    }

    private XmlStreamEvent ReadTagOpen(ReadOnlySpan<byte> input, ref int pos)
    {
        byte b = input[pos];
        bool allowDeclaration = _allowDeclaration;
        _allowDeclaration = false;
        switch (b)
        {
            case (byte)'/':
                if (_depth == 0) return Fail(XmlStreamErrorCondition.NotWellFormed, "end tag before the stream header");
                pos++;
                _tagLength = 0;
                _nameBytes = 0;
                _state = State.EndName;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'!':
                pos++;
                _bangMatched = 0;
                _state = State.Bang;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'?':
                if (!allowDeclaration || (_depth != 0 && !_fragment)) return Fail(XmlStreamErrorCondition.RestrictedXml, "processing instructions are not allowed");
                pos++;
                _declaration ??= new byte[MaxDeclarationBytes];
                _declarationLength = 0;
                _state = State.Declaration;
                return XmlStreamEvent.NeedMoreData;
            default:
                if (!IsAsciiNameStart(b) && b < 0x80) return Fail(XmlStreamErrorCondition.NotWellFormed, "invalid character after '<'");
                if (_depth - 1 >= Limits.MaxDepth && _depth > 0) return Fail(XmlStreamErrorCondition.PolicyViolation, "elements nested too deeply");
                _tagLength = 0;
                _nameBytes = 0;
                _attributeCount = 0;
                _state = State.StartName;
                return XmlStreamEvent.NeedMoreData;
        }
    }

    private XmlStreamEvent ReadStartName(ReadOnlySpan<byte> input, ref int pos)
    {
        if (!ReadName(input, ref pos, out bool complete)) return ErrorEvent();
        if (!complete) return XmlStreamEvent.NeedMoreData;
        var cond = ValidateQName(_tag.AsSpan(0, _tagLength), out _elementColon);
        if (cond != XmlStreamErrorCondition.None) return Fail(cond, "invalid element name");
        _elementNameLength = _tagLength;
        _sawSpace = false;
        _state = State.InTag;
        return XmlStreamEvent.NeedMoreData;
    }

    private XmlStreamEvent ReadInTag(ReadOnlySpan<byte> input, ref int pos)
    {
        byte b = input[pos];
        switch (b)
        {
            case (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n':
                _sawSpace = true;
                int i = input[pos..].IndexOfAnyExcept(Whitespace);
                pos = i < 0 ? input.Length : pos + i;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'>':
                pos++;
                return FinishStartTag(empty: false);
            case (byte)'/':
                pos++;
                _state = State.EmptyClose;
                return XmlStreamEvent.NeedMoreData;
            default:
                if (!IsAsciiNameStart(b) && b < 0x80) return Fail(XmlStreamErrorCondition.NotWellFormed, "invalid character in start tag");
                if (!_sawSpace) return Fail(XmlStreamErrorCondition.NotWellFormed, "missing whitespace before attribute");
                if (_attributeCount >= Limits.MaxAttributes) return Fail(XmlStreamErrorCondition.PolicyViolation, "too many attributes");
                if (_attributeCount == _attributes.Length) Array.Resize(ref _attributes, _attributes.Length * 2);
                _attributes[_attributeCount].NameStart = _tagLength;
                _nameBytes = 0;
                _state = State.AttrName;
                return XmlStreamEvent.NeedMoreData;
        }
    }

    private XmlStreamEvent ReadAttrName(ReadOnlySpan<byte> input, ref int pos)
    {
        if (!ReadName(input, ref pos, out bool complete)) return ErrorEvent();
        if (!complete) return XmlStreamEvent.NeedMoreData;
        ref var a = ref _attributes[_attributeCount];
        a.NameLength = _tagLength - a.NameStart;
        var cond = ValidateQName(_tag.AsSpan(a.NameStart, a.NameLength), out a.Colon);
        if (cond != XmlStreamErrorCondition.None) return Fail(cond, "invalid attribute name");
        _state = State.AfterAttrName;
        return XmlStreamEvent.NeedMoreData;
    }

    private XmlStreamEvent ReadAfterAttrName(ReadOnlySpan<byte> input, ref int pos)
    {
        byte b = input[pos++];
        if (b == (byte)'=')
        {
            _state = State.BeforeAttrValue;
            return XmlStreamEvent.NeedMoreData;
        }
        if (IsWhitespace(b)) return XmlStreamEvent.NeedMoreData;
        return Fail(XmlStreamErrorCondition.NotWellFormed, "expected '=' after attribute name");
    }

    private XmlStreamEvent ReadBeforeAttrValue(ReadOnlySpan<byte> input, ref int pos)
    {
        byte b = input[pos++];
        if (b is (byte)'"' or (byte)'\'')
        {
            _quoteIsDouble = b == (byte)'"';
            _attributes[_attributeCount].ValueStart = _tagLength;
            _state = State.AttrValue;
            return XmlStreamEvent.NeedMoreData;
        }
        if (IsWhitespace(b)) return XmlStreamEvent.NeedMoreData;
        return Fail(XmlStreamErrorCondition.NotWellFormed, "attribute value not quoted");
    }

    private XmlStreamEvent ReadAttrValue(ReadOnlySpan<byte> input, ref int pos)
    {
        if (_afterCR)
        {
            _afterCR = false;
            if (input[pos] == (byte)'\n')
            {
                pos++;
                return XmlStreamEvent.NeedMoreData;
            }
        }
        var rest = input[pos..];
        int i = rest.IndexOfAny(_quoteIsDouble ? AttrStopsDouble : AttrStopsSingle);
        var run = i < 0 ? rest : rest[..i];
        if ((run.Length > 0 || _pendingUtf8Length > 0) && !AppendUtf8(run, ref _tag, ref _tagLength, atInputEnd: i < 0))
            return FailUtf8();
        if (i < 0)
        {
            pos = input.Length;
            return XmlStreamEvent.NeedMoreData;
        }
        pos += i + 1;
        switch (input[pos - 1])
        {
            case (byte)'"' or (byte)'\'':
                ref var a = ref _attributes[_attributeCount];
                a.ValueLength = _tagLength - a.ValueStart;
                _attributeCount++;
                _sawSpace = false;
                _state = State.InTag;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'&':
                _entityLength = 0;
                _entityReturn = State.AttrValue;
                _state = State.Entity;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'\t' or (byte)'\n':
                AppendChar(ref _tag, ref _tagLength, ' ');
                return XmlStreamEvent.NeedMoreData;
            case (byte)'\r':
                AppendChar(ref _tag, ref _tagLength, ' ');
                _afterCR = true;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'<':
                return Fail(XmlStreamErrorCondition.NotWellFormed, "'<' in attribute value");
            default:
                return Fail(XmlStreamErrorCondition.NotWellFormed, "control character in attribute value");
        }
    }

    private XmlStreamEvent ReadEmptyClose(ReadOnlySpan<byte> input, ref int pos)
    {
        if (input[pos++] != (byte)'>') return Fail(XmlStreamErrorCondition.NotWellFormed, "expected '>' after '/'");
        return FinishStartTag(empty: true);
    }

    private XmlStreamEvent ReadEndName(ReadOnlySpan<byte> input, ref int pos)
    {
        if (!ReadName(input, ref pos, out bool complete)) return ErrorEvent();
        if (!complete) return XmlStreamEvent.NeedMoreData;
        _state = State.AfterEndName;
        return XmlStreamEvent.NeedMoreData;
    }

    private XmlStreamEvent ReadAfterEndName(ReadOnlySpan<byte> input, ref int pos)
    {
        byte b = input[pos++];
        if (b == (byte)'>') return FinishEndTag();
        if (IsWhitespace(b)) return XmlStreamEvent.NeedMoreData;
        return Fail(XmlStreamErrorCondition.NotWellFormed, "expected '>' in end tag");
    }

    private XmlStreamEvent ReadEntity(ReadOnlySpan<byte> input, ref int pos)
    {
        var rest = input[pos..];
        int i = rest.IndexOfAnyExcept(EntityBytes);
        int take = i < 0 ? rest.Length : i;
        if (_entityLength + take > MaxEntityBytes)
        {
            byte first = _entityLength > 0 ? _entity[0] : rest[0];
            return first == (byte)'#'
                ? Fail(XmlStreamErrorCondition.NotWellFormed, "invalid character reference")
                : Fail(XmlStreamErrorCondition.RestrictedXml, "unknown entity reference");
        }
        rest[..take].CopyTo(_entity.AsSpan(_entityLength));
        _entityLength += take;
        if (i < 0)
        {
            pos = input.Length;
            return XmlStreamEvent.NeedMoreData;
        }
        if (rest[i] != (byte)';') return Fail(XmlStreamErrorCondition.NotWellFormed, "'&' does not start a reference");
        pos += i + 1;
        _state = _entityReturn;

        var cond = DecodeEntity(_entity.AsSpan(0, _entityLength), out int codePoint);
        if (cond != XmlStreamErrorCondition.None)
        {
            return Fail(cond, cond == XmlStreamErrorCondition.RestrictedXml ? "unknown entity reference" : "invalid entity or character reference");
        }
        if (_entityReturn == State.AttrValue)
        {
            AppendCodePoint(ref _tag, ref _tagLength, codePoint);
        }
        else if (_depth >= 2)
        {
            AppendCodePoint(ref _text, ref _textLength, codePoint);
        }
        else if (!IsWhitespace(codePoint))
        {
            return Fail(XmlStreamErrorCondition.BadFormat, _fragment ? "text outside the element" : "text directly under the stream root");
        }
        return XmlStreamEvent.NeedMoreData;
    }

    private XmlStreamEvent ReadBang(ReadOnlySpan<byte> input, ref int pos)
    {
        byte b = input[pos];
        if (_bangMatched == 0)
        {
            if (b == (byte)'[')
            {
                if (_depth == 0) return Fail(XmlStreamErrorCondition.NotWellFormed, "CDATA section outside the root");
                pos++;
                _bangMatched = 1;
                return XmlStreamEvent.NeedMoreData;
            }
            if (b == (byte)'-' || IsAsciiLetter(b)) return Fail(XmlStreamErrorCondition.RestrictedXml, "comments, DOCTYPE and declarations are not allowed");
            return Fail(XmlStreamErrorCondition.NotWellFormed, "invalid markup after '<!'");
        }
        if (b != "[CDATA["u8[_bangMatched]) return Fail(XmlStreamErrorCondition.NotWellFormed, "invalid CDATA section start");
        pos++;
        if (++_bangMatched == 7)
        {
            _brackets = 0;
            _state = State.CData;
        }
        return XmlStreamEvent.NeedMoreData;
    }

    private XmlStreamEvent ReadCData(ReadOnlySpan<byte> input, ref int pos)
    {
        if (_afterCR)
        {
            _afterCR = false;
            if (input[pos] == (byte)'\n')
            {
                pos++;
                return XmlStreamEvent.NeedMoreData;
            }
        }
        if (_brackets > 0)
        {
            byte b = input[pos];
            if (b == (byte)']')
            {
                pos++;
                if (_brackets == 2) return AppendTextChar(']');
                _brackets++;
                return XmlStreamEvent.NeedMoreData;
            }
            if (b == (byte)'>' && _brackets == 2)
            {
                pos++;
                _brackets = 0;
                _state = State.Content;
                return XmlStreamEvent.NeedMoreData;
            }
            int n = _brackets;
            _brackets = 0;
            for (int k = 0; k < n; k++)
            {
                var ev = AppendTextChar(']');
                if (ev != XmlStreamEvent.NeedMoreData) return ev;
            }
            return XmlStreamEvent.NeedMoreData;
        }

        var rest = input[pos..];
        int i = rest.IndexOfAny(CDataStops);
        var run = i < 0 ? rest : rest[..i];
        if (run.Length > 0 || _pendingUtf8Length > 0)
        {
            if (_depth >= 2)
            {
                if (!AppendUtf8(run, ref _text, ref _textLength, atInputEnd: i < 0)) return FailUtf8();
            }
            else if (run.IndexOfAnyExcept(Whitespace) >= 0)
            {
                return Fail(XmlStreamErrorCondition.BadFormat, _fragment ? "text outside the element" : "text directly under the stream root");
            }
        }
        if (i < 0)
        {
            pos = input.Length;
            return XmlStreamEvent.NeedMoreData;
        }
        pos += i + 1;
        switch (input[pos - 1])
        {
            case (byte)']':
                _brackets = 1;
                return XmlStreamEvent.NeedMoreData;
            case (byte)'\r':
                _afterCR = true;
                return AppendTextChar('\n');
            default:
                return Fail(XmlStreamErrorCondition.NotWellFormed, "control character in CDATA section");
        }
    }

    private XmlStreamEvent ReadDeclaration(ReadOnlySpan<byte> input, ref int pos)
    {
        var rest = input[pos..];
        int i = rest.IndexOf((byte)'>');
        int take = i < 0 ? rest.Length : i + 1;
        if (_declarationLength + take > MaxDeclarationBytes) return Fail(XmlStreamErrorCondition.NotWellFormed, "XML declaration too long");
        rest[..take].CopyTo(_declaration.AsSpan(_declarationLength));
        _declarationLength += take;
        pos += take;
        if (i < 0) return XmlStreamEvent.NeedMoreData;
        var decl = _declaration.AsSpan(0, _declarationLength);
        if (decl.Length < 2 || decl[^2] != (byte)'?') return XmlStreamEvent.NeedMoreData; // a '>' inside the declaration
        var cond = CheckDeclaration(decl[..^2], out string detail);
        if (cond != XmlStreamErrorCondition.None) return Fail(cond, detail);
        _state = _fragment ? State.Content : State.Prolog;
        return XmlStreamEvent.NeedMoreData;
    }

    // ---------------------------------------------------------------- tags

    private XmlStreamEvent FinishStartTag(bool empty)
    {
        var tag = _tag.AsSpan();
        int count = _attributeCount;

        // Duplicate attributes by qualified name (this also catches repeated namespace declarations).
        for (int i = 1; i < count; i++)
        {
            var ni = tag.Slice(_attributes[i].NameStart, _attributes[i].NameLength);
            for (int j = 0; j < i; j++)
            {
                if (ni.SequenceEqual(tag.Slice(_attributes[j].NameStart, _attributes[j].NameLength)))
                    return Fail(XmlStreamErrorCondition.NotWellFormed, "duplicate attribute");
            }
        }

        // Namespace declarations, scoped to this element.
        int mark = _nsCount;
        bool inStanza = _depth >= 1;
        if (inStanza && _depth == 1) StartStanza(mark);
        if (inStanza && ++_stanzaElements > Limits.MaxElements) return Fail(XmlStreamErrorCondition.PolicyViolation, "too many elements in one stanza");
        int declarations = 0;
        for (int i = 0; i < count; i++)
        {
            ref var a = ref _attributes[i];
            var name = tag.Slice(a.NameStart, a.NameLength);
            ReadOnlySpan<char> prefix;
            if (a.Colon < 0)
            {
                if (!name.SequenceEqual("xmlns")) continue;
                prefix = default;
            }
            else
            {
                if (!name[..a.Colon].SequenceEqual("xmlns")) continue;
                prefix = name[(a.Colon + 1)..];
            }
            declarations++;
            var uriSpan = tag.Slice(a.ValueStart, a.ValueLength);
            var cond = CheckDeclaration(prefix, uriSpan);
            if (cond != XmlStreamErrorCondition.None)
            {
                PopNamespaces(mark);
                return Fail(cond, "invalid namespace declaration");
            }
            if (uriSpan.Length > Limits.MaxNamespaceBytes / 3 && Encoding.UTF8.GetByteCount(uriSpan) > Limits.MaxNamespaceBytes)
            {
                PopNamespaces(mark);
                return Fail(XmlStreamErrorCondition.PolicyViolation, "namespace name too long");
            }
            if (prefix.SequenceEqual("xml")) continue; // redundant but legal
            string uri;
            if (inStanza)
            {
                if (++_stanzaDeclarations > Limits.MaxNamespaceDeclarations)
                {
                    PopNamespaces(mark);
                    return Fail(XmlStreamErrorCondition.PolicyViolation, "too many namespace declarations in one stanza");
                }
                var interned = InternStanzaUri(uriSpan);
                if (interned is null)
                {
                    PopNamespaces(mark);
                    return Fail(XmlStreamErrorCondition.PolicyViolation, "too many distinct namespaces in one stanza");
                }
                uri = interned;
            }
            else
            {
                uri = _cache.Get(uriSpan);
            }
            PushNamespace(_cache.Get(prefix), uri);
        }

        // The element itself.
        var qname = tag[.._elementNameLength];
        string? elementPrefix = null;
        string local;
        string? ns;
        if (_elementColon < 0)
        {
            local = _cache.Get(qname);
            ns = _defaultHead < 0 ? string.Empty : _nsUris[_defaultHead];
        }
        else
        {
            var p = qname[.._elementColon];
            ns = LookupPrefix(p, out int binding);
            if (ns is null)
            {
                PopNamespaces(mark);
                return Fail(XmlStreamErrorCondition.InvalidNamespace, "undeclared namespace prefix on element");
            }
            if (inStanza) Charge(binding);
            elementPrefix = _cache.Get(p);
            local = _cache.Get(qname[(_elementColon + 1)..]);
        }

        bool isRoot = _depth == 0;
        if (isRoot)
        {
            if (!string.Equals(ns, XmlNames.Streams, StringComparison.Ordinal))
                return Fail(XmlStreamErrorCondition.InvalidNamespace, "the stream root is not in the " + XmlNames.Streams + " namespace");
            if (!string.Equals(local, "stream", StringComparison.Ordinal))
                return Fail(XmlStreamErrorCondition.BadFormat, "the stream root is not <stream>");
        }

        var element = new XmlElement(local, ns, count - declarations);
        for (int i = 0; i < count; i++)
        {
            ref var a = ref _attributes[i];
            if (declarations > 0 && IsNamespaceDeclaration(tag.Slice(a.NameStart, a.NameLength), a.Colon)) continue;
            var name = tag.Slice(a.NameStart, a.NameLength);
            string attrNs;
            string attrName;
            if (a.Colon < 0)
            {
                attrNs = string.Empty;
                attrName = _cache.Get(name);
            }
            else
            {
                var p = name[..a.Colon];
                var resolved = LookupPrefix(p, out int binding);
                if (resolved is null)
                {
                    PopNamespaces(mark);
                    return Fail(XmlStreamErrorCondition.InvalidNamespace, "undeclared namespace prefix on attribute");
                }
                if (inStanza) Charge(binding);
                attrNs = resolved;
                attrName = _cache.Get(name[(a.Colon + 1)..]);
                // Two prefixes bound to the same namespace can still collide after resolution.
                var existing = element.Attributes;
                for (int k = 0; k < existing.Count; k++)
                {
                    if (string.Equals(existing[k].Name, attrName, StringComparison.Ordinal) && string.Equals(existing[k].Namespace, attrNs, StringComparison.Ordinal))
                    {
                        PopNamespaces(mark);
                        return Fail(XmlStreamErrorCondition.NotWellFormed, "duplicate attribute after namespace resolution");
                    }
                }
            }
            var valueSpan = tag.Slice(a.ValueStart, a.ValueLength);
            string value = valueSpan.Length <= MaxCachedValueLength ? _values.Get(valueSpan) : valueSpan.ToString();
            element.AddAttributeUnchecked(new XmlAttribute(attrName, value, attrNs));
        }

        FlushText();
        int d = _depth;
        EnsureDepthCapacity(d + 1);
        _nsMarks[d] = mark;
        _prefixes[d] = elementPrefix;
        _locals[d] = local;
        _tagLength = 0;
        _state = State.Content;

        if (isRoot)
        {
            _elements[0] = null; // the header is not a container: stanzas are emitted one by one
            _depth = 1;
            StreamHeader = element;
            StreamDefaultNamespace = _defaultHead < 0 ? string.Empty : _nsUris[_defaultHead];
            _pendingRootClose = empty;
            ShrinkBuffers();
            return XmlStreamEvent.StreamOpen;
        }

        if (d >= 2) _elements[d - 1]!.Add(element);
        _elements[d] = element;
        _depth = d + 1;
        return empty ? PopElement() : XmlStreamEvent.NeedMoreData;
    }

    private XmlStreamEvent FinishEndTag()
    {
        var name = _tag.AsSpan(0, _tagLength);
        int d = _depth - 1;
        if (_fragment && d == 0) return Fail(XmlStreamErrorCondition.NotWellFormed, "end tag without a start tag");
        var prefix = _prefixes[d];
        var local = _locals[d];
        bool match = prefix is null
            ? name.SequenceEqual(local)
            : name.Length == prefix.Length + 1 + local.Length && name.StartsWith(prefix) && name[prefix.Length] == ':' && name[(prefix.Length + 1)..].SequenceEqual(local);
        if (!match) return Fail(XmlStreamErrorCondition.NotWellFormed, "end tag does not match start tag");
        _tagLength = 0;
        _state = State.Content;
        FlushText();
        if (d == 0)
        {
            _depth = 0;
            ClearNamespaces();
            _state = State.AfterRoot;
            return XmlStreamEvent.StreamClose;
        }
        return PopElement();
    }

    private XmlStreamEvent PopElement()
    {
        int d = --_depth;
        PopNamespaces(_nsMarks[d]);
        var element = _elements[d]!;
        _elements[d] = null;
        if (d != 1) return XmlStreamEvent.NeedMoreData;
        _completed = element;
        EndStanza();
        ShrinkBuffers();
        return XmlStreamEvent.Element;
    }

    private void FlushText()
    {
        if (_textLength == 0) return;
        if (_depth >= 2) _elements[_depth - 1]!.Add(new XmlText(new string(_text, 0, _textLength)));
        _textLength = 0;
    }

    // ---------------------------------------------------------------- names and namespaces

    /// <summary>Accumulates name bytes into the tag buffer; <paramref name="complete"/> once a non-name byte follows (not consumed).</summary>
    private bool ReadName(ReadOnlySpan<byte> input, ref int pos, out bool complete)
    {
        var rest = input[pos..];
        int i = rest.IndexOfAnyExcept(NameBytes);
        var run = i < 0 ? rest : rest[..i];
        _nameBytes += run.Length;
        if (_nameBytes > Limits.MaxNameBytes)
        {
            complete = false;
            Fail(XmlStreamErrorCondition.PolicyViolation, "name too long");
            return false;
        }
        if ((run.Length > 0 || _pendingUtf8Length > 0) && !AppendUtf8(run, ref _tag, ref _tagLength, atInputEnd: i < 0))
        {
            complete = false;
            FailUtf8();
            return false;
        }
        if (i < 0)
        {
            pos = input.Length;
            complete = false;
            return true;
        }
        pos += i;
        complete = true;
        return true;
    }

    private static bool IsNamespaceDeclaration(ReadOnlySpan<char> name, int colon) =>
        colon < 0 ? name.SequenceEqual("xmlns") : name[..colon].SequenceEqual("xmlns");

    private static XmlStreamErrorCondition CheckDeclaration(ReadOnlySpan<char> prefix, ReadOnlySpan<char> uri)
    {
        if (prefix.IsEmpty)
        {
            // xmlns="" undeclares the default namespace; the reserved namespaces cannot be the default.
            if (uri.SequenceEqual(XmlNames.XmlNamespace) || uri.SequenceEqual(XmlNames.XmlnsNamespace)) return XmlStreamErrorCondition.InvalidNamespace;
            return XmlStreamErrorCondition.None;
        }
        if (prefix.SequenceEqual("xmlns")) return XmlStreamErrorCondition.InvalidNamespace;
        if (prefix.SequenceEqual("xml")) return uri.SequenceEqual(XmlNames.XmlNamespace) ? XmlStreamErrorCondition.None : XmlStreamErrorCondition.InvalidNamespace;
        if (uri.IsEmpty) return XmlStreamErrorCondition.InvalidNamespace; // prefix undeclaring is XML 1.1 only
        if (uri.SequenceEqual(XmlNames.XmlNamespace) || uri.SequenceEqual(XmlNames.XmlnsNamespace)) return XmlStreamErrorCondition.InvalidNamespace;
        return XmlStreamErrorCondition.None;
    }

    private void PushNamespace(string prefix, string uri)
    {
        if (_nsCount == _nsPrefixes.Length)
        {
            int n = _nsCount * 2;
            Array.Resize(ref _nsPrefixes, n);
            Array.Resize(ref _nsUris, n);
            Array.Resize(ref _nsPrev, n);
            Array.Resize(ref _nsShadow, n);
            Array.Resize(ref _nsCharged, n);
        }
        int i = _nsCount++;
        _nsPrefixes[i] = prefix;
        _nsUris[i] = uri;
        _nsCharged[i] = 0;
        if (prefix.Length == 0)
        {
            _nsPrev[i] = _defaultHead;
            _defaultHead = i;
            return;
        }
        _nsPrev[i] = _prefixedHead;
        _prefixedHead = i;
        _prefixedCount++;
        if (_prefixIndex is not null) IndexPrefix(i);
        else if (_prefixedCount > LinearPrefixBindings) BuildPrefixIndex();
    }

    private void IndexPrefix(int i)
    {
        ref int head = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_prefixIndex!, _nsPrefixes[i], out bool exists);
        _nsShadow[i] = exists ? head : -1;
        head = i;
    }

    private void BuildPrefixIndex()
    {
        _prefixIndex = new Dictionary<string, int>(_prefixedCount * 2, StringComparer.Ordinal);
        for (int i = 0; i < _nsCount; i++)
        {
            if (_nsPrefixes[i].Length > 0) IndexPrefix(i);
        }
    }

    /// <summary>Removes the bindings from <paramref name="mark"/> on (the element that declared them has ended).</summary>
    private void PopNamespaces(int mark)
    {
        for (int i = _nsCount - 1; i >= mark; i--)
        {
            var prefix = _nsPrefixes[i];
            if (prefix.Length == 0)
            {
                _defaultHead = _nsPrev[i];
                continue;
            }
            _prefixedHead = _nsPrev[i];
            _prefixedCount--;
            if (_prefixIndex is not null)
            {
                if (_nsShadow[i] < 0) _prefixIndex.Remove(prefix);
                else _prefixIndex[prefix] = _nsShadow[i];
            }
        }
        if (mark < _nsCount) _nsCount = mark;
    }

    private void ClearNamespaces()
    {
        _nsCount = 0;
        _defaultHead = -1;
        _prefixedHead = -1;
        _prefixedCount = 0;
        _prefixIndex = null;
        ShrinkNamespaceArrays();
    }

    /// <summary>A hostile stanza can leave thousands of binding slots behind; an idle connection keeps a few.</summary>
    private void ShrinkNamespaceArrays()
    {
        if (_nsPrefixes.Length <= RetainedBindings || _nsCount > RetainedBindings / 2) return;
        int n = Math.Max(8, _nsCount * 2);
        Array.Resize(ref _nsPrefixes, n);
        Array.Resize(ref _nsUris, n);
        Array.Resize(ref _nsPrev, n);
        Array.Resize(ref _nsShadow, n);
        Array.Resize(ref _nsCharged, n);
    }

    /// <summary>
    /// The namespace bound to a non-empty <paramref name="prefix"/>, or null if undeclared; <paramref name="binding"/>
    /// is the binding's index (-1 for the built-in <c>xml</c> prefix).
    /// </summary>
    private string? LookupPrefix(ReadOnlySpan<char> prefix, out int binding)
    {
        if (_prefixIndex is not null)
        {
            if (_prefixIndex.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(prefix, out binding)) return _nsUris[binding];
        }
        else
        {
            for (int i = _prefixedHead; i >= 0; i = _nsPrev[i])
            {
                if (prefix.SequenceEqual(_nsPrefixes[i]))
                {
                    binding = i;
                    return _nsUris[i];
                }
            }
        }
        binding = -1;
        if (prefix.SequenceEqual("xml")) return XmlNames.XmlNamespace;
        return null;
    }

    /// <summary>
    /// A stanza that uses a prefix declared on the stream header does not carry the declaration, but whoever
    /// forwards or stores the stanza must write it: the declaration's size is counted once into the stanza's, so
    /// that what the server writes stays within a small factor of what the stanza counted (see XmlWriter).
    /// </summary>
    private void Charge(int binding)
    {
        if (binding < 0 || binding >= _stanzaNsMark || _fragment || _nsCharged[binding] == _stanzaSerial) return;
        _nsCharged[binding] = _stanzaSerial;
        _countBase += Encoding.UTF8.GetByteCount(_nsUris[binding]) + _nsPrefixes[binding].Length + 10;
    }

    private void StartStanza(int nsMark)
    {
        if (++_stanzaSerial == 0) _stanzaSerial = 1; // 0 marks "never charged"
        _stanzaNsMark = nsMark;
        _stanzaElements = 0;
        _stanzaDeclarations = 0;
        _stanzaUriCount = 0;
    }

    private void EndStanza()
    {
        Array.Clear(_stanzaUris, 0, _stanzaUriCount);
        _stanzaUriCount = 0;
        if (_prefixIndex is not null && _prefixedCount <= LinearPrefixBindings) _prefixIndex = null;
        ShrinkNamespaceArrays();
    }

    /// <summary>The one string for this URI in the current stanza, or null when the stanza already has <see cref="XmlLimits.MaxNamespaces"/> others.</summary>
    private string? InternStanzaUri(ReadOnlySpan<char> uri)
    {
        if (uri.IsEmpty) return string.Empty; // xmlns="": no namespace
        int hash = string.GetHashCode(uri);
        for (int i = 0; i < _stanzaUriCount; i++)
        {
            if (_stanzaUriHashes[i] == hash && uri.SequenceEqual(_stanzaUris[i])) return _stanzaUris[i];
        }
        if (_stanzaUriCount >= Limits.MaxNamespaces) return null;
        if (_stanzaUriCount == _stanzaUris.Length)
        {
            int n = Math.Max(8, _stanzaUris.Length * 2);
            Array.Resize(ref _stanzaUris, n);
            Array.Resize(ref _stanzaUriHashes, n);
        }
        var s = _cache.Get(uri);
        _stanzaUris[_stanzaUriCount] = s;
        _stanzaUriHashes[_stanzaUriCount] = hash;
        _stanzaUriCount++;
        return s;
    }

    private void EnsureDepthCapacity(int size)
    {
        if (size <= _elements.Length) return;
        int n = Math.Max(size, _elements.Length * 2);
        Array.Resize(ref _elements, n);
        Array.Resize(ref _prefixes, n);
        Array.Resize(ref _locals, n);
        Array.Resize(ref _nsMarks, n);
    }

    /// <summary>Checks an XML 1.0 Name that also satisfies Namespaces in XML (at most one colon, not first or last).</summary>
    private static XmlStreamErrorCondition ValidateQName(ReadOnlySpan<char> name, out int colon)
    {
        colon = -1;
        if (name.IsEmpty) return XmlStreamErrorCondition.NotWellFormed;
        bool start = true;
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (c == ':')
            {
                if (colon >= 0 || i == 0 || i == name.Length - 1) return XmlStreamErrorCondition.NotWellFormed;
                colon = i;
                start = true;
                continue;
            }
            if (char.IsHighSurrogate(c))
            {
                // Supplementary planes: [#x10000-#xEFFFF] are name characters.
                if (i + 1 >= name.Length || !char.IsLowSurrogate(name[i + 1]) || c > '\uDB7F') return XmlStreamErrorCondition.NotWellFormed;
                i++;
                start = false;
                continue;
            }
            if (!(start ? IsNameStartChar(c) : IsNameChar(c))) return XmlStreamErrorCondition.NotWellFormed;
            start = false;
        }
        return XmlStreamErrorCondition.None;
    }

    private static bool IsNameStartChar(char c)
    {
        if (c < 0x80) return IsAsciiLetter((byte)c) || c == '_';
        return c is (>= '\u00C0' and <= '\u00D6') or (>= '\u00D8' and <= '\u00F6') or (>= '\u00F8' and <= '\u02FF')
            or (>= '\u0370' and <= '\u037D') or (>= '\u037F' and <= '\u1FFF') or (>= '\u200C' and <= '\u200D')
            or (>= '\u2070' and <= '\u218F') or (>= '\u2C00' and <= '\u2FEF') or (>= '\u3001' and <= '\uD7FF')
            or (>= '\uF900' and <= '\uFDCF') or (>= '\uFDF0' and <= '\uFFFD');
    }

    private static bool IsNameChar(char c)
    {
        if (c < 0x80) return IsAsciiLetter((byte)c) || c is '_' or '-' or '.' or (>= '0' and <= '9');
        return IsNameStartChar(c) || c == '\u00B7' || c is (>= '\u0300' and <= '\u036F') or (>= '\u203F' and <= '\u2040');
    }

    private static bool IsAsciiLetter(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    private static bool IsAsciiNameStart(byte b) => IsAsciiLetter(b) || b == (byte)'_';

    private static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    private static bool IsWhitespace(int c) => c is ' ' or '\t' or '\r' or '\n';

    private static SearchValues<byte> BuildNameBytes(bool withHash)
    {
        var bytes = new List<byte>(200);
        for (int b = 0; b < 256; b++)
        {
            if (b >= 0x80 || IsAsciiLetter((byte)b) || b is '_' or ':' or '-' or '.' or (>= '0' and <= '9') || (withHash && b == '#')) bytes.Add((byte)b);
        }
        return SearchValues.Create(bytes.ToArray());
    }

    // ---------------------------------------------------------------- entities and the declaration

    private static XmlStreamErrorCondition DecodeEntity(ReadOnlySpan<byte> e, out int codePoint)
    {
        codePoint = 0;
        if (e.IsEmpty) return XmlStreamErrorCondition.NotWellFormed;
        if (e[0] == (byte)'#')
        {
            bool hex = e.Length > 1 && e[1] == (byte)'x';
            var digits = e[(hex ? 2 : 1)..];
            if (digits.IsEmpty) return XmlStreamErrorCondition.NotWellFormed;
            long value = 0;
            foreach (byte b in digits)
            {
                int v;
                if (b is >= (byte)'0' and <= (byte)'9') v = b - '0';
                else if (hex && (b | 0x20) is >= 'a' and <= 'f') v = (b | 0x20) - 'a' + 10;
                else return XmlStreamErrorCondition.NotWellFormed;
                value = value * (hex ? 16 : 10) + v;
                if (value > 0x10FFFF) return XmlStreamErrorCondition.NotWellFormed;
            }
            bool isChar = value is 0x9 or 0xA or 0xD or (>= 0x20 and <= 0xD7FF) or (>= 0xE000 and <= 0xFFFD) or (>= 0x10000 and <= 0x10FFFF);
            if (!isChar) return XmlStreamErrorCondition.NotWellFormed;
            codePoint = (int)value;
            return XmlStreamErrorCondition.None;
        }
        if (e.SequenceEqual("lt"u8)) codePoint = '<';
        else if (e.SequenceEqual("gt"u8)) codePoint = '>';
        else if (e.SequenceEqual("amp"u8)) codePoint = '&';
        else if (e.SequenceEqual("quot"u8)) codePoint = '"';
        else if (e.SequenceEqual("apos"u8)) codePoint = '\'';
        else
        {
            // A syntactically valid name is a reference to an entity we do not (may not) define.
            if (!IsAsciiNameStart(e[0]) && e[0] < 0x80) return XmlStreamErrorCondition.NotWellFormed;
            return e.IndexOfAnyExcept(NameBytes) >= 0 ? XmlStreamErrorCondition.NotWellFormed : XmlStreamErrorCondition.RestrictedXml;
        }
        return XmlStreamErrorCondition.None;
    }

    /// <summary>Checks <c>xml version="1.x" encoding="UTF-8" standalone="yes|no"</c> (the part between "&lt;?" and "?&gt;").</summary>
    private static XmlStreamErrorCondition CheckDeclaration(ReadOnlySpan<byte> d, out string detail)
    {
        detail = "processing instructions are not allowed";
        if (d.Length < 3 || !d[..3].SequenceEqual("xml"u8) || (d.Length > 3 && !IsWhitespace(d[3])))
            return XmlStreamErrorCondition.RestrictedXml;
        detail = "malformed XML declaration";
        d = d[3..];
        int index = 0;
        while (true)
        {
            int ws = d.IndexOfAnyExcept(Whitespace);
            if (ws < 0) break;
            if (ws == 0) return XmlStreamErrorCondition.NotWellFormed; // pseudo-attributes need whitespace before them
            d = d[ws..];
            int eq = d.IndexOf((byte)'=');
            if (eq <= 0) return XmlStreamErrorCondition.NotWellFormed;
            var name = d[..eq].TrimEnd(" \t\r\n"u8);
            d = d[(eq + 1)..].TrimStart(" \t\r\n"u8);
            if (d.IsEmpty || d[0] is not ((byte)'"' or (byte)'\'')) return XmlStreamErrorCondition.NotWellFormed;
            int end = d[1..].IndexOf(d[0]);
            if (end < 0) return XmlStreamErrorCondition.NotWellFormed;
            var value = d.Slice(1, end);
            d = d[(end + 2)..];
            if (name.SequenceEqual("version"u8) && index == 0)
            {
                if (value.Length < 3 || !value.StartsWith("1."u8) || value[2..].IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0)
                    return XmlStreamErrorCondition.NotWellFormed;
                index = 1;
            }
            else if (name.SequenceEqual("encoding"u8) && index == 1)
            {
                if (!Ascii.EqualsIgnoreCase(value, "UTF-8"u8))
                {
                    detail = "only UTF-8 is supported";
                    return XmlStreamErrorCondition.UnsupportedEncoding;
                }
                index = 2;
            }
            else if (name.SequenceEqual("standalone"u8) && index is 1 or 2)
            {
                if (!value.SequenceEqual("yes"u8) && !value.SequenceEqual("no"u8)) return XmlStreamErrorCondition.NotWellFormed;
                index = 3;
            }
            else
            {
                return XmlStreamErrorCondition.NotWellFormed;
            }
        }
        return index == 0 ? XmlStreamErrorCondition.NotWellFormed : XmlStreamErrorCondition.None;
    }

    // ---------------------------------------------------------------- buffers

    /// <summary>
    /// Transcodes a run of UTF-8 into <paramref name="buffer"/>. A sequence cut by the end of the input is kept
    /// in <see cref="_pendingUtf8"/> and completed by the next run. Rejects invalid UTF-8 and U+FFFE/U+FFFF.
    /// </summary>
    private bool AppendUtf8(ReadOnlySpan<byte> run, ref char[] buffer, ref int length, bool atInputEnd)
    {
        if (_pendingUtf8Length > 0)
        {
            byte lead = _pendingUtf8[0];
            int expected = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            int need = expected - _pendingUtf8Length;
            if (run.Length < need)
            {
                if (!atInputEnd) return false;
                run.CopyTo(_pendingUtf8.AsSpan(_pendingUtf8Length));
                _pendingUtf8Length += run.Length;
                // Still incomplete, but it must still be a valid prefix: split input fails where whole input does
                // (found by fuzzing, fuzz/README.md finding 2).
                Span<char> none = stackalloc char[2];
                return Utf8.ToUtf16(_pendingUtf8.AsSpan(0, _pendingUtf8Length), none, out _, out _, replaceInvalidSequences: false, isFinalBlock: false) == OperationStatus.NeedMoreData;
            }
            run[..need].CopyTo(_pendingUtf8.AsSpan(_pendingUtf8Length));
            run = run[need..];
            _pendingUtf8Length = 0;
            EnsureCapacity(ref buffer, length, 2);
            var st = Utf8.ToUtf16(_pendingUtf8.AsSpan(0, expected), buffer.AsSpan(length), out _, out int w, replaceInvalidSequences: false, isFinalBlock: true);
            if (st != OperationStatus.Done || buffer.AsSpan(length, w).IndexOfAnyInRange('\uFFFE', '\uFFFF') >= 0) return false;
            length += w;
        }
        if (run.IsEmpty) return true;
        EnsureCapacity(ref buffer, length, run.Length);
        var status = Utf8.ToUtf16(run, buffer.AsSpan(length), out int read, out int written, replaceInvalidSequences: false, isFinalBlock: !atInputEnd);
        if (written != read && buffer.AsSpan(length, written).IndexOfAnyInRange('\uFFFE', '\uFFFF') >= 0) return false;
        length += written;
        if (status == OperationStatus.Done) return true;
        if (status == OperationStatus.NeedMoreData && atInputEnd)
        {
            var tail = run[read..];
            tail.CopyTo(_pendingUtf8);
            _pendingUtf8Length = tail.Length;
            return true;
        }
        return false;
    }

    private XmlStreamEvent AppendTextChar(char c)
    {
        if (_depth >= 2)
        {
            AppendChar(ref _text, ref _textLength, c);
            return XmlStreamEvent.NeedMoreData;
        }
        if (IsWhitespace(c)) return XmlStreamEvent.NeedMoreData;
        return Fail(XmlStreamErrorCondition.BadFormat, _fragment ? "text outside the element" : "text directly under the stream root");
    }

    private static void AppendChar(ref char[] buffer, ref int length, char c)
    {
        if (length == buffer.Length) Grow(ref buffer, length, 1);
        buffer[length++] = c;
    }

    private static void AppendCodePoint(ref char[] buffer, ref int length, int codePoint)
    {
        if (codePoint < 0x10000)
        {
            AppendChar(ref buffer, ref length, (char)codePoint);
            return;
        }
        EnsureCapacity(ref buffer, length, 2);
        int v = codePoint - 0x10000;
        buffer[length++] = (char)(0xD800 + (v >> 10));
        buffer[length++] = (char)(0xDC00 + (v & 0x3FF));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EnsureCapacity(ref char[] buffer, int length, int extra)
    {
        if (buffer.Length - length < extra) Grow(ref buffer, length, extra);
    }

    private static void Grow(ref char[] buffer, int length, int extra)
    {
        int size = Math.Max(Math.Max(buffer.Length * 2, length + extra), InitialTextBuffer);
        var bigger = ArrayPool<char>.Shared.Rent(size);
        buffer.AsSpan(0, length).CopyTo(bigger);
        if (buffer.Length > 0) ArrayPool<char>.Shared.Return(buffer);
        buffer = bigger;
    }

    /// <summary>
    /// Between stanzas the token buffers go back to the shared pool, so an idle connection holds none
    /// (memory per idle session is a target; renting again costs a few nanoseconds per stanza).
    /// </summary>
    private void ShrinkBuffers()
    {
        if (_textLength == 0 && _text.Length > 0)
        {
            ArrayPool<char>.Shared.Return(_text);
            _text = [];
        }
        if (_tagLength == 0 && _tag.Length > 0)
        {
            ArrayPool<char>.Shared.Return(_tag);
            _tag = [];
        }
    }

    private void ResetTokenState()
    {
        _tagLength = 0;
        _textLength = 0;
        _pendingUtf8Length = 0;
        _entityLength = 0;
        _declarationLength = 0;
        _attributeCount = 0;
        _afterCR = false;
        _brackets = 0;
        _sawSpace = false;
    }

    private void StartCounting(int pos, int limit, bool stanza)
    {
        _counting = true;
        _countBase = 0;
        _countStart = pos;
        _countLimit = limit;
        _countingStanza = stanza;
    }

    // ---------------------------------------------------------------- errors

    private XmlStreamEvent Fail(XmlStreamErrorCondition condition, string detail)
    {
        if (_state != State.Failed)
        {
            Error = condition;
            ErrorDetail = detail;
            _state = State.Failed;
            _counting = false;
        }
        return XmlStreamEvent.Error;
    }

    private XmlStreamEvent FailUtf8() => Fail(XmlStreamErrorCondition.NotWellFormed, "invalid UTF-8 or a character not allowed in XML");

    private static XmlStreamEvent ErrorEvent() => XmlStreamEvent.Error;
}
