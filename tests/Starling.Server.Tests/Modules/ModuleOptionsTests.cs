using System.Text.Json;
using Starling.Server.Configuration;
using Starling.Server.Modules;
using Starling.Server.Modules.Offline;
using Starling.Server.Modules.Version;

namespace Starling.Server.Tests.Modules;

/// <summary>Per-module typed options (Modules:NAME:Option) and modules per host (Hosts:N:Modules) as the configuration loads them.</summary>
public sealed class ModuleOptionsTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "starling-modcfg-" + Guid.NewGuid().ToString("N"));

    public ModuleOptionsTests() => Directory.CreateDirectory(_directory);

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

    private LoadedConfiguration Load(string json, params string[] overrides)
    {
        var path = Path.Combine(_directory, "starling.json");
        File.WriteAllText(path, json);
        return StarlingConfiguration.Load(path, ["--DataDirectory=" + _directory, .. overrides]);
    }

    private ConfigurationException LoadFails(string json, params string[] overrides) =>
        Assert.Throws<ConfigurationException>(() => Load(json, overrides));

    [Fact]
    public void Module_options_are_bound_from_the_section_named_after_the_module()
    {
        var config = Load("{ \"Modules\": { \"offline\": { \"QuotaMessages\": 7, \"QuotaBytes\": 9000 }, \"version\": { \"ShowOs\": true } } }");
        Assert.Equal(7, config.Options.Modules.Offline.QuotaMessages);
        Assert.Equal(9000, config.Options.Modules.Offline.QuotaBytes);
        Assert.True(config.Options.Modules.Version.ShowOs);
        Assert.Empty(config.Warnings);
    }

    [Fact]
    public void Module_options_keep_their_defaults_without_a_section()
    {
        var config = Load("{}");
        Assert.Equal(new OfflineOptions().QuotaMessages, config.Options.Modules.Offline.QuotaMessages);
        Assert.False(config.Options.Modules.Version.ShowOs);
    }

    [Fact]
    public void Module_option_can_be_set_on_the_command_line()
    {
        var config = Load("{}", "--Modules:offline:QuotaMessages=3");
        Assert.Equal(3, config.Options.Modules.Offline.QuotaMessages);
    }

    [Fact]
    public void Unknown_key_in_a_module_section_is_named()
    {
        var ex = LoadFails("{ \"Modules\": { \"offline\": { \"QuotaMesages\": 7 } } }");
        Assert.Contains("'QuotaMesages'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_key_of_a_module_on_the_command_line_is_named()
    {
        var ex = LoadFails("{}", "--Modules:offline:Quota=7");
        Assert.Contains("--Modules:offline:Quota is not a configuration key", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Section_of_an_unknown_module_is_rejected_as_an_unknown_module()
    {
        var ex = LoadFails("{ \"Modules\": { \"telepathy\": { \"Range\": 3 } } }");
        Assert.Contains("Modules:telepathy: unknown module 'telepathy'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Section_for_a_module_without_options_is_rejected()
    {
        var ex = LoadFails("{ \"Modules\": { \"ping\": { \"Interval\": 3 } } }");
        Assert.Contains("module 'ping' has no options", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--Modules:offline:QuotaMessages=-1", "Modules:offline:QuotaMessages must be 0 or more")]
    [InlineData("--Modules:offline:QuotaBytes=-1", "Modules:offline:QuotaBytes must be 0 or more")]
    [InlineData("--Modules:roster:MaxItems=0", "Modules:roster:MaxItems must be a positive number")]
    [InlineData("--Modules:roster:MaxGroups=0", "Modules:roster:MaxGroups must be a positive number")]
    [InlineData("--Modules:private:MaxFragmentBytes=0", "Modules:private:MaxFragmentBytes must be a positive number")]
    [InlineData("--Modules:presence:MaxDirectedPresence=0", "Modules:presence:MaxDirectedPresence must be a positive number")]
    public void Invalid_module_option_is_rejected_naming_the_key(string option, string message)
    {
        var ex = LoadFails("{}", option);
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_of_a_disabled_module_are_still_validated()
    {
        var ex = LoadFails("{}", "--Modules:Disabled:0=offline", "--Modules:offline:QuotaMessages=-1");
        Assert.Contains("Modules:offline:QuotaMessages must be 0 or more", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Limits:OfflineQuota", "Modules:offline:QuotaMessages", "7")]
    [InlineData("Limits:OfflineQuotaBytes", "Modules:offline:QuotaBytes", "7000")]
    [InlineData("Limits:MaxRosterItems", "Modules:roster:MaxItems", "7")]
    [InlineData("Limits:MaxRosterNameLength", "Modules:roster:MaxNameLength", "7")]
    [InlineData("Limits:MaxRosterGroups", "Modules:roster:MaxGroups", "7")]
    [InlineData("Limits:MaxRosterGroupNameLength", "Modules:roster:MaxGroupNameLength", "7")]
    [InlineData("Limits:MaxPrivateFragments", "Modules:private:MaxFragments", "7")]
    [InlineData("Limits:MaxPrivateFragmentBytes", "Modules:private:MaxFragmentBytes", "7")]
    [InlineData("Limits:MaxDirectedPresence", "Modules:presence:MaxDirectedPresence", "7")]
    [InlineData("Modules:VersionShowOs", "Modules:version:ShowOs", "true")]
    public void Deprecated_key_sets_its_module_option_with_a_warning(string oldKey, string newKey, string value)
    {
        var viaNew = Load("{}", $"--{newKey}={value}");
        var viaOld = Load("{}", $"--{oldKey}={value}");
        Assert.Empty(viaNew.Warnings);
        Assert.NotEqual(ModuleOptionsJson(Load("{}")), ModuleOptionsJson(viaNew));
        Assert.Equal(ModuleOptionsJson(viaNew), ModuleOptionsJson(viaOld));
        var warning = Assert.Single(viaOld.Warnings);
        Assert.Contains($"{oldKey} is deprecated; use {newKey}", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Deprecated_key_and_its_new_key_both_set_is_an_error()
    {
        var ex = LoadFails("{ \"Modules\": { \"offline\": { \"QuotaMessages\": 5 } } }", "--Limits:OfflineQuota=7");
        Assert.Contains("Limits:OfflineQuota is a deprecated alias of Modules:offline:QuotaMessages, and both are set", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deprecated_key_is_validated_under_its_new_name()
    {
        var ex = LoadFails("{}", "--Limits:OfflineQuota=-1");
        Assert.Contains("Modules:offline:QuotaMessages must be 0 or more", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Disabled")]
    [InlineData("Enabled")]
    public void Unknown_module_in_a_host_list_is_rejected_naming_the_key(string list)
    {
        var ex = LoadFails("{}", $"--Hosts:0:Name=localhost", $"--Hosts:0:Modules:{list}:0=telepathy");
        Assert.Contains($"Hosts:0:Modules:{list}: unknown module 'telepathy'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Module_both_enabled_and_disabled_on_a_host_is_rejected()
    {
        var ex = LoadFails("{}", "--Hosts:0:Name=localhost", "--Hosts:0:Modules:Enabled:0=ping", "--Hosts:0:Modules:Disabled:0=ping");
        Assert.Contains("Hosts:0:Modules: module 'ping' is both in Enabled and in Disabled", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Host_runs_every_module_but_the_disabled_ones_plus_its_own_enabled_ones()
    {
        var config = Load("""
            {
              "Modules": { "Disabled": [ "version", "ping" ] },
              "Hosts": [
                { "Name": "a.example" },
                { "Name": "b.example", "Modules": { "Disabled": [ "offline" ], "Enabled": [ "ping" ] } }
              ]
            }
            """);
        var a = ModuleCatalog.EnabledNames(config.Options, config.Options.Hosts[0]);
        var b = ModuleCatalog.EnabledNames(config.Options, config.Options.Hosts[1]);
        Assert.Equal(["disco", "roster", "private", "presence", "offline", "sm"], a);
        Assert.Equal(["disco", "ping", "roster", "private", "presence", "sm"], b);
        var flags = ModuleCatalog.EnabledOn(config.Options, config.Options.Hosts[1]);
        Assert.True(flags[ModuleCatalog.Find("ping")!.Index]);
        Assert.False(flags[ModuleCatalog.Find("offline")!.Index]);
        Assert.False(flags[ModuleCatalog.Find("version")!.Index]);
    }

    [Fact]
    public void Every_module_with_options_gets_its_own_options_object()
    {
        var modules = new ModuleOptions();
        var seen = new HashSet<IModuleOptions>(ReferenceEqualityComparer.Instance);
        foreach (var m in ModuleCatalog.All)
        {
            var options = m.OptionsOf(modules);
            Assert.Equal(m.HasOptions, options is not null);
            if (options is not null) Assert.True(seen.Add(options), $"module {m.Name} shares its options object");
        }
        Assert.IsType<VersionOptions>(ModuleCatalog.Find("version")!.OptionsOf(modules));
    }

    /// <summary>Every module's options, as JSON (test-side reflection; the server itself never serialises them).</summary>
    private static string ModuleOptionsJson(LoadedConfiguration config)
    {
        var parts = new List<string>();
        foreach (var m in ModuleCatalog.All)
        {
            if (m.OptionsOf(config.Options.Modules) is { } options) parts.Add(m.Name + "=" + JsonSerializer.Serialize(options, options.GetType()));
        }
        return string.Join(";", parts);
    }
}
