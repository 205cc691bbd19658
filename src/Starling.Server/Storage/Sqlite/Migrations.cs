namespace Starling.Server.Storage.Sqlite;

/// <summary>One schema step: applied once, in its own transaction, in ascending <see cref="Version"/> order.</summary>
/// <param name="Version">Schema version the database has after this step (1, 2, 3, ...; never renumbered).</param>
/// <param name="Description">Human-readable summary, for logs.</param>
/// <param name="Sql">The statements of the step (SQLite dialect).</param>
internal sealed record Migration(int Version, string Description, string Sql);

/// <summary>
/// The SQLite schema history. Append new steps at the end; never edit a released step, since databases
/// already at that version will not run it again. A PostgreSQL backend keeps its own list in its own dialect.
/// </summary>
/// <remarks>
/// Hosts and usernames are stored as given (already normalised) and compared with SQLite's BINARY collation,
/// i.e. case-sensitively. Timestamps are unix milliseconds (INTEGER).
/// </remarks>
internal static class Migrations
{
    public static IReadOnlyList<Migration> All { get; } =
    [
        new(1, "accounts, SCRAM credentials, roster, private XML, offline messages", """
            CREATE TABLE accounts (
                host       TEXT    NOT NULL,
                username   TEXT    NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (host, username)
            ) WITHOUT ROWID;

            -- One row per SCRAM hash ('SHA-1', 'SHA-256'); never a password (RFC 5802 §5).
            CREATE TABLE scram_credentials (
                host       TEXT    NOT NULL,
                username   TEXT    NOT NULL,
                hash       TEXT    NOT NULL,
                salt       BLOB    NOT NULL,
                iterations INTEGER NOT NULL,
                stored_key BLOB    NOT NULL,
                server_key BLOB    NOT NULL,
                PRIMARY KEY (host, username, hash),
                FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
            ) WITHOUT ROWID;

            -- groups_json: JSON array of group names.
            CREATE TABLE roster_items (
                host         TEXT    NOT NULL,
                username     TEXT    NOT NULL,
                jid          TEXT    NOT NULL,
                name         TEXT,
                subscription TEXT    NOT NULL,
                ask          INTEGER NOT NULL,
                groups_json  TEXT    NOT NULL,
                PRIMARY KEY (host, username, jid)
            ) WITHOUT ROWID;

            -- A user's roster version; values come from counters('roster_version'), so they only ever grow,
            -- even across deleting and re-creating an account.
            CREATE TABLE roster_versions (
                host     TEXT    NOT NULL,
                username TEXT    NOT NULL,
                version  INTEGER NOT NULL,
                PRIMARY KEY (host, username)
            ) WITHOUT ROWID;

            CREATE TABLE counters (
                name  TEXT    NOT NULL PRIMARY KEY,
                value INTEGER NOT NULL
            ) WITHOUT ROWID;

            INSERT INTO counters (name, value) VALUES ('roster_version', 0);

            CREATE TABLE private_xml (
                host     TEXT NOT NULL,
                username TEXT NOT NULL,
                ns       TEXT NOT NULL,
                name     TEXT NOT NULL,
                xml      TEXT NOT NULL,
                PRIMARY KEY (host, username, ns, name)
            ) WITHOUT ROWID;

            CREATE TABLE offline_messages (
                id        INTEGER PRIMARY KEY AUTOINCREMENT,
                host      TEXT    NOT NULL,
                username  TEXT    NOT NULL,
                xml       TEXT    NOT NULL,
                stored_at INTEGER NOT NULL
            );

            CREATE INDEX offline_messages_by_user ON offline_messages (host, username, id);
            """),
    ];

    /// <summary>The schema version this build creates and understands.</summary>
    public static int Latest => All[^1].Version;
}
