namespace Starling.Cli.Tests;

/// <summary>STARLING_* environment overrides (issue #13, item 14), with real processes.</summary>
public sealed class EnvironmentTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-env-");
    private readonly StarlingProcess _starling;

    public EnvironmentTests() => _starling = new StarlingProcess(_dir.FullName);

    public void Dispose() => _dir.Delete(recursive: true);

    private static Dictionary<string, string> Env(params string[] pairs)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in pairs) env[p[..p.IndexOf('=', StringComparison.Ordinal)]] = p[(p.IndexOf('=', StringComparison.Ordinal) + 1)..];
        return env;
    }

    [Fact]
    public async Task An_unrelated_STARLING_variable_is_named_as_not_a_configuration_key_and_the_config_file_is_not_blamed()
    {
        var config = Path.Combine(_dir.FullName, "starling.json");
        await File.WriteAllTextAsync(config, "{ \"C2s\": { \"Port\": 0 } }");
        var (exit, stdout, stderr) = await _starling.RunWithAsync(null, Env("STARLING_HOME=/opt/starling"), "start", "--config", config);
        Assert.Equal(1, exit);
        Assert.Equal("starling: environment variable STARLING_HOME is not a configuration key (see config/starling.example.json)", stderr.Trim());
        Assert.DoesNotContain("starling.json", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("ready", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_value_in_a_STARLING_variable_names_the_variable()
    {
        var (exit, _, stderr) = await _starling.RunWithAsync(null, Env("STARLING_C2s__Port=many"), "users");
        Assert.Equal(1, exit);
        Assert.StartsWith("starling: environment variable STARLING_C2s__Port: ", stderr, StringComparison.Ordinal);
        Assert.Contains("'many'", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_STARLING_variable_still_overrides_its_key()
    {
        var (exit, _, stderr) = await _starling.RunWithAsync(null, Env("STARLING_C2s__Port=70000"), "users");
        Assert.Equal(1, exit);
        Assert.Contains("C2s:Port 70000 is not a TCP port", stderr, StringComparison.Ordinal);
        var ok = await _starling.RunWithAsync(null, Env("STARLING_Hosts__0__Name=example.org"), "users", "example.org");
        Assert.True(ok.Exit == 0, ok.Err);
    }

    [Fact]
    public async Task The_prefix_is_case_sensitive_and_the_wrappers_own_variables_are_left_alone()
    {
        // Not ours: another program's starling_* / Starling_* variables, and the ./starling wrapper's settings.
        var (exit, stdout, stderr) = await _starling.RunWithAsync(null,
            Env("starling_c2s__port=70000", "Starling_Home=/x", "STARLING_BUILD=native", "STARLING_BIN=/tmp/starling-build"), "users");
        Assert.True(exit == 0, stderr);
        Assert.Equal("", stdout.Trim());
        Assert.Equal("", stderr);
    }

    [Fact]
    public async Task A_mistyped_command_line_override_is_named_as_the_option()
    {
        var (exit, _, stderr) = await _starling.RunAsync("users", "--C2s:Prot=5222");
        Assert.Equal(1, exit);
        Assert.Equal("starling: command-line option --C2s:Prot is not a configuration key (see config/starling.example.json)", stderr.Trim());
    }
}
