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

        // Issue #13: rows of a deleted account stayed (a re-created account inherited them, a deleted user's live
        // session kept writing). Every per-user table now references its account with ON DELETE CASCADE, so deleting
        // the account row removes everything and a write for a missing account fails on the foreign key. SQLite cannot
        // add a foreign key to an existing table: each table is rebuilt, keeping only rows whose account exists.
        // Offline rows gain their size in bytes (the per-user byte quota) and a quarantine table takes rows that can no
        // longer be parsed, so they neither block delivery nor count against the quota.
        new(2, "per-user rows reference their account (ON DELETE CASCADE); offline byte sizes and quarantine", """
            CREATE TABLE roster_items_v2 (
                host         TEXT    NOT NULL,
                username     TEXT    NOT NULL,
                jid          TEXT    NOT NULL,
                name         TEXT,
                subscription TEXT    NOT NULL,
                ask          INTEGER NOT NULL,
                groups_json  TEXT    NOT NULL,
                PRIMARY KEY (host, username, jid),
                FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
            ) WITHOUT ROWID;
            INSERT INTO roster_items_v2 SELECT r.host, r.username, r.jid, r.name, r.subscription, r.ask, r.groups_json
                FROM roster_items r JOIN accounts a ON a.host = r.host AND a.username = r.username;
            DROP TABLE roster_items;
            ALTER TABLE roster_items_v2 RENAME TO roster_items;

            CREATE TABLE roster_versions_v2 (
                host     TEXT    NOT NULL,
                username TEXT    NOT NULL,
                version  INTEGER NOT NULL,
                PRIMARY KEY (host, username),
                FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
            ) WITHOUT ROWID;
            INSERT INTO roster_versions_v2 SELECT v.host, v.username, v.version
                FROM roster_versions v JOIN accounts a ON a.host = v.host AND a.username = v.username;
            DROP TABLE roster_versions;
            ALTER TABLE roster_versions_v2 RENAME TO roster_versions;

            CREATE TABLE private_xml_v2 (
                host     TEXT NOT NULL,
                username TEXT NOT NULL,
                ns       TEXT NOT NULL,
                name     TEXT NOT NULL,
                xml      TEXT NOT NULL,
                PRIMARY KEY (host, username, ns, name),
                FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
            ) WITHOUT ROWID;
            INSERT INTO private_xml_v2 SELECT p.host, p.username, p.ns, p.name, p.xml
                FROM private_xml p JOIN accounts a ON a.host = p.host AND a.username = p.username;
            DROP TABLE private_xml;
            ALTER TABLE private_xml_v2 RENAME TO private_xml;

            -- bytes: UTF-8 length of xml, summed for the per-user byte quota (the index covers the sum).
            CREATE TABLE offline_messages_v2 (
                id        INTEGER PRIMARY KEY AUTOINCREMENT,
                host      TEXT    NOT NULL,
                username  TEXT    NOT NULL,
                xml       TEXT    NOT NULL,
                bytes     INTEGER NOT NULL,
                stored_at INTEGER NOT NULL,
                FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
            );
            INSERT INTO offline_messages_v2 (id, host, username, xml, bytes, stored_at)
                SELECT o.id, o.host, o.username, o.xml, length(CAST(o.xml AS BLOB)), o.stored_at
                FROM offline_messages o JOIN accounts a ON a.host = o.host AND a.username = o.username;
            DROP TABLE offline_messages;
            ALTER TABLE offline_messages_v2 RENAME TO offline_messages;
            CREATE INDEX offline_messages_by_user ON offline_messages (host, username, id, bytes);

            -- Offline rows that could not be parsed for delivery, kept for the operator with the reason.
            CREATE TABLE offline_quarantine (
                id             INTEGER NOT NULL PRIMARY KEY,
                host           TEXT    NOT NULL,
                username       TEXT    NOT NULL,
                xml            TEXT    NOT NULL,
                stored_at      INTEGER NOT NULL,
                quarantined_at INTEGER NOT NULL,
                reason         TEXT    NOT NULL,
                FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
            );
            CREATE INDEX offline_quarantine_by_user ON offline_quarantine (host, username);
            """),

        // Issue #14, RFC 6121 §3: presence subscriptions. A roster item gains its pre-approval flag (§3.4; 'ask' already
        // holds pending out). A subscription request the user has not answered (pending in, §3.1.3) is kept apart from
        // the roster, since the contact need not be in it and the roster the client sees never shows it; it is stored as
        // received and delivered again at each login until the user answers it.
        new(3, "roster pre-approval flag; pending-in subscription requests", """
            ALTER TABLE roster_items ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;

            CREATE TABLE roster_pending_in (
                host        TEXT    NOT NULL,
                username    TEXT    NOT NULL,
                jid         TEXT    NOT NULL,
                xml         TEXT    NOT NULL,
                received_at INTEGER NOT NULL,
                PRIMARY KEY (host, username, jid),
                FOREIGN KEY (host, username) REFERENCES accounts (host, username) ON DELETE CASCADE
            ) WITHOUT ROWID;
            """),
    ];

    /// <summary>The schema version this build creates and understands.</summary>
    public static int Latest => All[^1].Version;
}
