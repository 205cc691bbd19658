using System.Buffers;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Starling.Xml;

namespace Starling.Benchmarks;

/// <summary>
/// The XML hot path: parsing a c2s stream of typical chat messages fed in 4 KiB reads, and serialising them.
/// Each operation handles <see cref="Stanzas"/> stanzas; the extra columns turn that into MB/s and bytes/stanza.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ThroughputConfig))]
public class ParserBenchmarks
{
    public const int Stanzas = 1000;
    private const int ChunkSize = 4096;

    private const string Header =
        "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>";

    private byte[] _stream = [];
    private XmlStreamParser _parser = null!;
    private XmlElement[] _elements = [];
    private ArrayBufferWriter<byte> _output = null!;

    /// <summary>Bytes handled per operation, by benchmark method name (read by <see cref="ThroughputConfig"/>).</summary>
    internal static Dictionary<string, long> BytesPerOperation { get; } = [];

    public static string Message(int i) =>
        "<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' type='chat' id='" +
        (0x5EED0000 + i).ToString("x8", CultureInfo.InvariantCulture) + "-4b1d' xml:lang='en'>" +
        "<body>Art thou not Romeo, and a Montague? Neither, fair saint, if either thee dislike. &lt;3 #" +
        i.ToString(CultureInfo.InvariantCulture) + "</body>" +
        "<request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>";

    [GlobalSetup]
    public void Setup()
    {
        var sb = new StringBuilder(Header);
        for (int i = 0; i < Stanzas; i++) sb.Append(Message(i));
        _stream = Encoding.UTF8.GetBytes(sb.ToString());
        _parser = new XmlStreamParser();
        _elements = new XmlElement[Stanzas];
        for (int i = 0; i < Stanzas; i++) _elements[i] = XmlStreamParser.ParseElement(Message(i).Replace("<message ", "<message xmlns='jabber:client' ", StringComparison.Ordinal));
        _output = new ArrayBufferWriter<byte>(64 * 1024);

        BytesPerOperation[nameof(Parse_stream_in_4KiB_reads)] = _stream.Length;
        int written = 0;
        foreach (var e in _elements) written += XmlWriter.ToUtf8(e, "jabber:client").Length;
        BytesPerOperation[nameof(Write_stanzas_to_reused_buffer)] = written;
    }

    /// <summary>Parses the header and 1,000 messages (~324 bytes each) as a connection would: 4 KiB reads, events as they complete.</summary>
    [Benchmark]
    public int Parse_stream_in_4KiB_reads()
    {
        var parser = _parser;
        parser.Reset();
        int elements = 0;
        var data = _stream.AsSpan();
        while (!data.IsEmpty)
        {
            var chunk = data[..Math.Min(ChunkSize, data.Length)];
            data = data[chunk.Length..];
            while (true)
            {
                var ev = parser.Read(chunk, out int consumed);
                chunk = chunk[consumed..];
                if (ev == XmlStreamEvent.NeedMoreData) break;
                if (ev == XmlStreamEvent.Element)
                {
                    parser.TakeElement();
                    elements++;
                }
                else if (ev == XmlStreamEvent.Error)
                {
                    throw new InvalidOperationException(parser.ErrorDetail);
                }
            }
        }
        if (elements != Stanzas) throw new InvalidOperationException("lost stanzas");
        return elements;
    }

    /// <summary>Serialises the same 1,000 messages as stanzas of a jabber:client stream into one reused buffer.</summary>
    [Benchmark]
    public int Write_stanzas_to_reused_buffer()
    {
        var output = _output;
        output.ResetWrittenCount();
        foreach (var e in _elements) XmlWriter.Write(output, e, "jabber:client");
        return output.WrittenCount;
    }

    private sealed class ThroughputConfig : ManualConfig
    {
        public ThroughputConfig()
        {
            AddColumn(new ThroughputColumn());
            AddColumn(new AllocatedPerStanzaColumn());
        }
    }

    private sealed class ThroughputColumn : IColumn
    {
        public string Id => nameof(ThroughputColumn);
        public string ColumnName => "MB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Megabytes (10^6 bytes) of XML parsed or written per second, from the mean";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report?.ResultStatistics is null || !BytesPerOperation.TryGetValue(benchmarkCase.Descriptor.WorkloadMethod.Name, out long bytes))
                return BytesPerOperationFallback(benchmarkCase, report);
            double seconds = report.ResultStatistics.Mean / 1e9;
            return (bytes / seconds / 1e6).ToString("N1", CultureInfo.InvariantCulture);
        }

        // The column is evaluated in the host process, where GlobalSetup has not run: recompute the sizes.
        private static string BytesPerOperationFallback(BenchmarkCase benchmarkCase, BenchmarkReport? report)
        {
            if (report?.ResultStatistics is null) return "?";
            var b = new ParserBenchmarks();
            b.Setup();
            if (!BytesPerOperation.TryGetValue(benchmarkCase.Descriptor.WorkloadMethod.Name, out long bytes)) return "?";
            return (bytes / (report.ResultStatistics.Mean / 1e9) / 1e6).ToString("N1", CultureInfo.InvariantCulture);
        }
    }

    private sealed class AllocatedPerStanzaColumn : IColumn
    {
        public string Id => nameof(AllocatedPerStanzaColumn);
        public string ColumnName => "Alloc/stanza";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 1;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Managed bytes allocated per stanza (Allocated / 1,000)";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (report is null) return "?";
            long? bytes = report.GcStats.GetBytesAllocatedPerOperation(benchmarkCase);
            return bytes is null ? "?" : ((double)bytes.Value / Stanzas).ToString("N0", CultureInfo.InvariantCulture) + " B";
        }
    }
}
