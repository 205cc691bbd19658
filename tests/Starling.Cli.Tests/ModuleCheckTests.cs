namespace Starling.Cli.Tests;

/// <summary>`starling check` on module options and modules per host: what each host runs, deprecated keys, bad options.</summary>
public sealed class ModuleCheckTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("starling-cli-mod-");
    private readonly StarlingProcess _starling;

    public ModuleCheckTests() => _starling = new StarlingProcess(_dir.FullName);

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Check_lists_the_modules_each_host_runs()
    {
        var (exit, stdout, stderr) = await _starling.RunAsync("check", "--C2s:Port=0", "--Hosts:0:Name=a.example", "--Hosts:1:Name=b.example",
            "--Modules:Disabled:0=version", "--Hosts:1:Modules:Disabled:0=offline", "--Hosts:1:Modules:Enabled:0=version");
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("ok: host a.example: modules disco, ping, roster, private, presence, offline", stdout, StringComparison.Ordinal);
        Assert.Contains("ok: host b.example: modules disco, ping, version, roster, private, presence", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_warns_about_a_deprecated_key_and_passes()
    {
        var (exit, stdout, stderr) = await _starling.RunAsync("check", "--C2s:Port=0", "--Limits:OfflineQuota=10");
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("warning: Limits:OfflineQuota is deprecated; use Modules:offline:QuotaMessages", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_reports_an_invalid_module_option_by_its_key()
    {
        var (exit, stdout, _) = await _starling.RunAsync("check", "--C2s:Port=0", "--Modules:offline:QuotaMessages=-5");
        Assert.Equal(1, exit);
        Assert.Contains("Modules:offline:QuotaMessages must be 0 or more (is -5)", stdout, StringComparison.Ordinal);
    }
}
