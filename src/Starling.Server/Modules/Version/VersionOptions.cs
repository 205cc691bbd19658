namespace Starling.Server.Modules.Version;

/// <summary>Options of the version module (Modules:version), XEP-0092 Software Version.</summary>
public sealed class VersionOptions : IModuleOptions
{
    /// <summary>Include the operating system in software version answers (off by default: it helps attackers more than users).</summary>
    public bool ShowOs { get; set; }

    public void Validate(string section, List<string> errors)
    {
    }
}
