using System.Globalization;
using System.Text;
using System.Text.Json;
using Starling.Server.Configuration;
using Starling.Server.Modules;

namespace Starling.Server.Tests.Modules;

/// <summary>
/// config/starling.example.json against the module options types (ejabberd's mod_doc idea: the reference follows the
/// code): every option of every module is in the example, in the module's section, with a comment and its default; no
/// key there is stale; and the example uses no deprecated key.
/// </summary>
public sealed class ExampleConfigTests
{
    private static string ExamplePath()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(root.FullName, "Starling.sln"))) root = root.Parent!;
        return Path.Combine(root.FullName, "config", "starling.example.json");
    }

    /// <summary>Each key of Modules:NAME in the example, with its value as JSON text and whether a comment precedes it.</summary>
    private static Dictionary<string, Dictionary<string, (string Value, bool Documented)>> ModuleSections()
    {
        var reader = new Utf8JsonReader(File.ReadAllBytes(ExamplePath()), new JsonReaderOptions
        {
            CommentHandling = JsonCommentHandling.Allow,
            AllowTrailingCommas = true,
        });
        var sections = new Dictionary<string, Dictionary<string, (string, bool)>>(StringComparer.Ordinal);
        var path = new List<string?>();
        string? pendingName = null;
        bool commented = false;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.Comment:
                    commented = true;
                    break;
                case JsonTokenType.PropertyName:
                    pendingName = reader.GetString();
                    if (path is [null, "Modules", _] && path[^1] is { } module && sections.TryGetValue(module, out var keys))
                    {
                        bool documented = commented;
                        reader.Read();
                        keys[pendingName!] = (ValueText(ref reader), documented);
                        pendingName = null;
                    }
                    commented = false;
                    break;
                case JsonTokenType.StartObject:
                case JsonTokenType.StartArray:
                    path.Add(pendingName);
                    if (path is [null, "Modules", { } name] && reader.TokenType == JsonTokenType.StartObject) sections[name] = [];
                    pendingName = null;
                    commented = false;
                    break;
                case JsonTokenType.EndObject:
                case JsonTokenType.EndArray:
                    path.RemoveAt(path.Count - 1);
                    commented = false;
                    break;
                default:
                    pendingName = null;
                    commented = false;
                    break;
            }
        }
        return sections;
    }

    private static string ValueText(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.True => "true",
        JsonTokenType.False => "false",
        JsonTokenType.Number => Encoding.UTF8.GetString(reader.ValueSpan),
        JsonTokenType.String => reader.GetString()!,
        _ => throw new InvalidOperationException($"module options are scalars, not {reader.TokenType}"),
    };

    private static string DefaultText(object? value) => value switch
    {
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value?.ToString() ?? "null",
    };

    [Fact]
    public void Every_module_option_is_documented_in_the_example_with_its_default_and_no_key_there_is_stale()
    {
        var sections = ModuleSections();
        var defaults = new ModuleOptions();
        foreach (var module in ModuleCatalog.All)
        {
            var options = module.OptionsOf(defaults);
            if (options is null)
            {
                Assert.False(sections.ContainsKey(module.Name), $"the example has a section for module {module.Name}, which has no options");
                continue;
            }
            Assert.True(sections.TryGetValue(module.Name, out var keys), $"the example has no Modules:{module.Name} section");
            var properties = options.GetType().GetProperties();
            foreach (var property in properties)
            {
                Assert.True(keys.TryGetValue(property.Name, out var entry), $"Modules:{module.Name}:{property.Name} is not in the example");
                Assert.True(entry.Documented, $"Modules:{module.Name}:{property.Name} has no comment in the example");
                Assert.Equal(DefaultText(property.GetValue(options)), entry.Value);
            }
            foreach (var key in keys.Keys)
                Assert.True(properties.Any(p => p.Name == key), $"Modules:{module.Name}:{key} in the example is not an option of the module");
        }
        foreach (var name in sections.Keys) Assert.True(ModuleCatalog.Find(name) is not null, $"the example has a section for an unknown module '{name}'");
    }

    [Fact]
    public void The_example_uses_no_deprecated_key()
    {
        var directory = Directory.CreateTempSubdirectory("starling-example-");
        try
        {
            var copy = Path.Combine(directory.FullName, "starling.json");
            File.Copy(ExamplePath(), copy);
            var config = StarlingConfiguration.Load(copy);
            Assert.Empty(config.Warnings);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
