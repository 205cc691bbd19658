namespace Starling.Server.Modules;

/// <summary>
/// The typed options of one module, bound from its section <c>Modules:NAME</c> (ejabberd's <c>mod_options</c> /
/// <c>mod_opt_type</c> / <c>mod_doc</c> are the model): each option is a property with its default as initialiser and a
/// documentation comment, mirrored next to the module's name in config/starling.example.json (ExampleConfigTests checks
/// both ways), and <see cref="Validate"/> checks the values at start, whether the module is enabled or not.
/// </summary>
/// <remarks>
/// Options types are plain sealed classes with public settable properties and a parameterless constructor, listed as
/// properties of <see cref="Configuration.ModuleOptions"/>: the configuration binding source generator then binds them
/// with generated code (no reflection, so the AOT build binds them too) and rejects unknown keys in a module's section.
/// The module reads them once, in Register, through <see cref="ModuleContext.Options{T}"/>.
/// </remarks>
public interface IModuleOptions
{
    /// <summary>Adds one line per invalid value to <paramref name="errors"/>, naming the key as <paramref name="section"/>:Option.</summary>
    void Validate(string section, List<string> errors);
}
