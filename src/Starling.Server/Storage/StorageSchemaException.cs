namespace Starling.Server.Storage;

/// <summary>
/// The database's schema cannot be used by this build, e.g. it was written by a newer Starling.
/// Startup and the admin CLI should report <see cref="Exception.Message"/> and stop.
/// </summary>
public sealed class StorageSchemaException : Exception
{
    public StorageSchemaException()
    {
    }

    public StorageSchemaException(string message)
        : base(message)
    {
    }

    public StorageSchemaException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public StorageSchemaException(int databaseVersion, int supportedVersion)
        : base($"database schema version {databaseVersion} is newer than this Starling (max {supportedVersion}); upgrade Starling")
    {
        DatabaseVersion = databaseVersion;
        SupportedVersion = supportedVersion;
    }

    /// <summary>The schema version found in the database, when known.</summary>
    public int? DatabaseVersion { get; }

    /// <summary>The newest schema version this build knows, when relevant.</summary>
    public int? SupportedVersion { get; }
}
