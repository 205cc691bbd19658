using System.Text.RegularExpressions;
using Starling.Server.Configuration;

namespace Starling.Server.Tests.Functional;

/// <summary>StarlingConfiguration.Load: every mistake is one clear message naming the key or the file position.</summary>
public sealed class ConfigurationTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "starling-cfg-" + Guid.NewGuid().ToString("N"));

    public ConfigurationTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private string Write(string json)
    {
        var path = Path.Combine(_directory, "starling.json");
        File.WriteAllText(path, json);
        return path;
    }

    private ConfigurationException LoadFails(string json, params string[] overrides) =>
        Assert.Throws<ConfigurationException>(() => StarlingConfiguration.Load(Write(json), overrides));

    [Fact]
    public void Json_syntax_error_names_file_line_and_column()
    {
        var ex = LoadFails("{\n  \"C2s\": {\n    \"Port\" 5222\n  }\n}\n");
        var path = Path.Combine(_directory, "starling.json");
        Assert.Matches(new Regex(Regex.Escape(path) + @":3:\d+: invalid JSON"), ex.Message);
    }

    [Fact]
    public void Top_level_that_is_not_an_object_is_rejected()
    {
        var ex = LoadFails("[1, 2]");
        Assert.Contains("top level must be a JSON object", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{ \"C2s\": { \"Prot\": 5222 } }", "Prot")]
    [InlineData("{ \"Hostz\": [] }", "Hostz")]
    public void Unknown_key_is_named(string json, string key)
    {
        var ex = LoadFails(json);
        Assert.Contains($"'{key}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_key_on_the_command_line_is_named()
    {
        var ex = LoadFails("{}", "--Limits:MaxStanzaByte=20000");
        Assert.Contains("MaxStanzaByte", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("70000")]
    [InlineData("-1")]
    public void Port_out_of_range_is_rejected(string port)
    {
        var ex = LoadFails("{}", "--C2s:Port=" + port);
        Assert.Contains($"C2s:Port {port} is not a TCP port", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Port_that_is_not_a_number_is_rejected_naming_the_key()
    {
        var ex = LoadFails("{ \"C2s\": { \"Port\": \"abc\" } }");
        Assert.Contains("C2s:Port", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Port_zero_means_any_free_port()
    {
        var config = StarlingConfiguration.Load(Write("{}"), ["--C2s:Port=0", "--DataDirectory=" + _directory]);
        Assert.Equal(0, config.Options.C2s.Port);
    }

    [Theory]
    [InlineData("not a host!")]
    [InlineData("exa..mple")]
    public void Invalid_host_name_is_rejected(string name)
    {
        var ex = LoadFails("{}", "--Hosts:0:Name=" + name);
        Assert.Contains($"Hosts:0:Name '{name}' is not a valid domain name", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_host_is_rejected()
    {
        var ex = LoadFails("{ \"Hosts\": [ { \"Name\": \"example.org\" }, { \"Name\": \"EXAMPLE.org\" } ] }");
        Assert.Contains("listed twice", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MaxStanzaBytes_below_10000_is_rejected()
    {
        var ex = LoadFails("{ \"Limits\": { \"MaxStanzaBytes\": 9999 } }");
        Assert.Contains("Limits:MaxStanzaBytes 9999 is below 10000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MaxStanzaBytes_of_exactly_10000_is_accepted()
    {
        var config = StarlingConfiguration.Load(Write("{ \"Limits\": { \"MaxStanzaBytes\": 10000 } }"), ["--DataDirectory=" + _directory]);
        Assert.Equal(10_000, config.Options.Limits.MaxStanzaBytes);
    }

    [Fact]
    public void Several_problems_are_all_listed()
    {
        var ex = LoadFails("{}", "--C2s:Port=70000", "--Limits:MaxStanzaBytes=100", "--C2s:ResourceConflict=kick");
        Assert.Contains("3 problems", ex.Message, StringComparison.Ordinal);
        Assert.Contains("C2s:Port", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Limits:MaxStanzaBytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains("C2s:ResourceConflict", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_disabled_module_is_rejected()
    {
        var ex = LoadFails("{}", "--Modules:Disabled:0=telepathy");
        Assert.Contains("unknown module 'telepathy'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_config_file_is_a_clear_error()
    {
        var ex = Assert.Throws<ConfigurationException>(() => StarlingConfiguration.Load(Path.Combine(_directory, "missing.json")));
        Assert.Contains("missing.json", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Relative_data_directory_is_relative_to_the_config_file()
    {
        var config = StarlingConfiguration.Load(Write("{ \"DataDirectory\": \"state\" }"));
        Assert.Equal(Path.Combine(_directory, "state"), config.DataDirectory);
    }
}
