using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Starling.Xmpp;

namespace Starling.Server.Storage;

/// <summary>What went wrong with a storage operation, as far as the sender of the stanza is concerned.</summary>
public enum StorageFailureKind
{
    /// <summary>The database was locked by another writer past the busy timeout (SQLITE_BUSY/LOCKED): try again later.</summary>
    Busy,

    /// <summary>The disk or database is full (SQLITE_FULL): nothing more can be stored for now.</summary>
    Full,

    /// <summary>The account the data belongs to does not exist (any more): a foreign-key violation.</summary>
    AccountMissing,

    /// <summary>Anything else: a bug or a damaged database.</summary>
    Unexpected,
}

/// <summary>
/// The one place where storage failures become XMPP errors (issue #13: a busy or full database used to close the
/// sender's stream with no error). Expected database conditions log one line without a stack trace; unexpected ones
/// log the exception.
/// </summary>
public static class StorageFailure
{
    // https://www.sqlite.org/rescode.html
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int SqliteFull = 13;
    private const int SqliteConstraint = 19;
    private const int SqliteConstraintForeignKey = 787;

    public static StorageFailureKind Classify(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception is AggregateException { InnerExceptions.Count: 1 } aggregate) exception = aggregate.InnerExceptions[0];
        if (exception is not SqliteException sqlite) return StorageFailureKind.Unexpected;
        return sqlite.SqliteErrorCode switch
        {
            SqliteBusy or SqliteLocked => StorageFailureKind.Busy,
            SqliteFull => StorageFailureKind.Full,
            SqliteConstraint when sqlite.SqliteExtendedErrorCode == SqliteConstraintForeignKey => StorageFailureKind.AccountMissing,
            _ => StorageFailureKind.Unexpected,
        };
    }

    /// <summary>
    /// The stanza error for a failure: resource-constraint (type wait, RFC 6120 §8.3.3.18) when the database is busy or
    /// full — the sender may retry later; forbidden (§8.3.3.4) when the account is gone (its data may no longer be
    /// written: the account was deleted under a live session); internal-server-error (§8.3.3.8) otherwise.
    /// </summary>
    public static StanzaErrorCondition Condition(StorageFailureKind kind) => kind switch
    {
        StorageFailureKind.Busy or StorageFailureKind.Full => StanzaErrorCondition.ResourceConstraint,
        StorageFailureKind.AccountMissing => StanzaErrorCondition.Forbidden,
        _ => StanzaErrorCondition.InternalServerError,
    };

    /// <summary>Human-readable text for the error stanza (no internals).</summary>
    public static string Text(StorageFailureKind kind) => kind switch
    {
        StorageFailureKind.Busy => "the server's storage is busy; try again later",
        StorageFailureKind.Full => "the server's storage is full",
        StorageFailureKind.AccountMissing => "the account does not exist",
        _ => "the server could not store this",
    };

    /// <summary>Classifies, logs one line (with the exception only when unexpected) and returns the kind.</summary>
    public static StorageFailureKind Log(ILogger logger, Exception exception, string operation, object? account)
    {
        ArgumentNullException.ThrowIfNull(logger);
        var kind = Classify(exception);
        if (kind == StorageFailureKind.Unexpected)
            logger.LogError(exception, "storage failed while {Operation} for {Account}", operation, account);
        else
            logger.LogWarning("storage failed while {Operation} for {Account}: {Kind} ({Message})", operation, account, kind, exception.Message);
        return kind;
    }
}
