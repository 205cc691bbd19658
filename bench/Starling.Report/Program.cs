using System.Globalization;
using System.Text;
using Starling.Report;

// starling-report RESULTS_DIR [MARKDOWN] [PNG]
// Reads the raw JSON lines bench/compare.sh wrote and (re)writes the "Side by side" section of
// docs/benchmarks.md plus the chat chart. Everything else in the markdown file is kept as it is.
if (args.Length is < 1 or > 3)
{
    Console.Error.WriteLine("usage: starling-report RESULTS_DIR [MARKDOWN (docs/benchmarks.md)] [PNG (docs/benchmarks-chat.png)]");
    return 2;
}

string resultsDir = Path.GetFullPath(args[0]);
string markdown = args.Length > 1 ? args[1] : "docs/benchmarks.md";
string png = args.Length > 2 ? args[2] : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(markdown)) ?? ".", "benchmarks-chat.png");
if (!Directory.Exists(resultsDir))
{
    Console.Error.WriteLine($"no such results folder: {resultsDir}");
    return 2;
}

var results = Results.Load(resultsDir);
Chart.Write(results, png);
string section = MarkdownReport.Build(results, resultsDir, markdown, png);

string existing = File.Exists(markdown) ? File.ReadAllText(markdown) : "# Benchmarks\n";
File.WriteAllText(markdown, MarkdownReport.ReplaceSection(existing, "## Side by side", section), new UTF8Encoding(false));
Console.Error.WriteLine($"wrote {markdown} (section \"Side by side\") and {png}");
Console.Out.Write(section.ToString(CultureInfo.InvariantCulture));
return 0;
