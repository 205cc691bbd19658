using System.Globalization;
using ScottPlot;

namespace Starling.Report;

/// <summary>The chat chart: delivered msgs/s and p99 latency by offered rate, per server and the relay floor (log axes).</summary>
internal static class Chart
{
    private static readonly (string Key, string Label, Color Color, MarkerShape Marker)[] Series =
    [
        ("relay", "relay floor (no XMPP)", Colors.Gray, MarkerShape.OpenCircle),
        ("starling", "Starling", new Color(0x1f, 0x77, 0xb4), MarkerShape.FilledCircle),
        ("prosody", "Prosody", new Color(0xd6, 0x27, 0x28), MarkerShape.FilledSquare),
        ("ejabberd", "ejabberd", new Color(0x2c, 0xa0, 0x2c), MarkerShape.FilledTriangleUp),
    ];

    /// <summary>Median over repeats per offered rate: (rate, delivered/s, p99 ms).</summary>
    public static List<(double Rate, double Delivered, double P99)> Curve(ServerResults r) =>
        r.ChatSteps().GroupBy(s => s.RateTarget).OrderBy(g => g.Key)
            .Select(g => (g.Key, Stat.Of(g.Select(s => s.DeliveredPerS)).Median, Stat.Of(g.Select(s => s.P99)).Median))
            .ToList();

    public static void Write(Results results, string path)
    {
        var throughput = new Plot();
        var latency = new Plot();
        double maxRate = 0, minRate = double.MaxValue;
        foreach (var (key, label, color, marker) in Series)
        {
            var curve = Curve(results.Get(key));
            if (curve.Count == 0) continue;
            maxRate = Math.Max(maxRate, curve.Max(c => c.Rate));
            minRate = Math.Min(minRate, curve.Min(c => c.Rate));
            double[] xs = curve.Select(c => Math.Log10(c.Rate)).ToArray();

            var t = throughput.Add.Scatter(xs, curve.Select(c => Math.Log10(Math.Max(1, c.Delivered))).ToArray());
            Style(t, label, color, marker, key == "relay");

            var l = latency.Add.Scatter(xs, curve.Select(c => Math.Log10(Math.Max(0.01, c.P99))).ToArray());
            Style(l, label, color, marker, key == "relay");
        }

        // The ideal: delivered = offered.
        if (maxRate <= 0) (minRate, maxRate) = (100, 1000);   // no chat results: an empty chart with sane axes
        double lo = Math.Log10(Math.Max(1, minRate));
        double hi = Math.Log10(Math.Max(minRate * 2, maxRate));
        var ideal = throughput.Add.Line(lo, lo, hi, hi);
        ideal.LineColor = Colors.Black.WithAlpha(0.35);
        ideal.LinePattern = LinePattern.Dotted;
        ideal.LegendText = "delivered = offered";

        var limit = latency.Add.HorizontalLine(Math.Log10(100));
        limit.LineColor = Colors.Black.WithAlpha(0.5);
        limit.LinePattern = LinePattern.Dashed;
        limit.LegendText = "p99 limit (100 ms)";

        Configure(throughput, "Chat throughput by offered rate", "delivered messages/s", static v => Count(v));
        Configure(latency, "Chat p99 latency by offered rate", "p99 latency (ms)", static v => Millis(v));
        throughput.Axes.SetLimitsY(lo - 0.3, hi + 0.15);

        const int W = 900, H = 560;
        using var img1 = throughput.GetImage(W, H);
        using var img2 = latency.GetImage(W, H);
        using var surface = SkiaSharp.SKSurface.Create(new SkiaSharp.SKImageInfo(W * 2, H));
        surface.Canvas.Clear(SkiaSharp.SKColors.White);
        using (var a = SkiaSharp.SKImage.FromEncodedData(img1.GetImageBytes(ImageFormat.Png)))
        using (var b = SkiaSharp.SKImage.FromEncodedData(img2.GetImageBytes(ImageFormat.Png)))
        {
            surface.Canvas.DrawImage(a, 0, 0);
            surface.Canvas.DrawImage(b, W, 0);
        }

        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".");
        using var fs = File.Create(path);
        data.SaveTo(fs);
    }

    private static void Style(ScottPlot.Plottables.Scatter s, string label, Color color, MarkerShape marker, bool dashed)
    {
        s.LegendText = label;
        s.Color = color;
        s.LineWidth = 2;
        s.MarkerSize = 8;
        s.MarkerShape = marker;
        if (dashed) s.LinePattern = LinePattern.Dashed;
    }

    private static void Configure(Plot plot, string title, string yLabel, Func<double, string> yFormat)
    {
        plot.Title(title);
        plot.XLabel("offered rate (messages/s, log scale)");
        plot.YLabel(yLabel + ", log scale");
        plot.Axes.Bottom.TickGenerator = LogTicks(static v => Count(v));
        plot.Axes.Left.TickGenerator = LogTicks(yFormat);
        plot.ShowLegend(Alignment.UpperLeft);
    }

    private static ScottPlot.TickGenerators.NumericAutomatic LogTicks(Func<double, string> format) => new()
    {
        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = format,
    };

    private static string Count(double log10)
    {
        double v = Math.Pow(10, log10);
        return v >= 1000 ? (v / 1000).ToString("0.#", CultureInfo.InvariantCulture) + "k" : v.ToString("0", CultureInfo.InvariantCulture);
    }

    private static string Millis(double log10)
    {
        double v = Math.Pow(10, log10);
        return v < 1 ? v.ToString("0.##", CultureInfo.InvariantCulture) : v.ToString("0", CultureInfo.InvariantCulture);
    }
}
