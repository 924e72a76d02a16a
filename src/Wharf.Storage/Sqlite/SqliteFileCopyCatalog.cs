using Microsoft.Data.Sqlite;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// Provider copies, copy intents and upstream deletions in SQLite (schema version 5). The file and its copy are
/// written in one transaction with the file catalog's own insert; a file's delete moves its copies to
/// <c>upstream_deletions</c> in its own transaction (<see cref="SqliteFileCatalog.DeleteAsync"/>).
/// </summary>
internal sealed class SqliteFileCopyCatalog(SqliteDatabase database) : IFileCopyCatalog
{
    private const string CopyColumns = "workspace_id, file_id, provider, upstream_id, created_at";
    private const string DeletionColumns = "provider, upstream_id, file_id, attempts, next_attempt_at";
    private const string IntentColumns = "file_id, provider, workspace_id, filename, bytes, started_at";

    public Task RecordIntentAsync(CopyIntent intent, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            $"INSERT OR REPLACE INTO copy_intents ({IntentColumns}) VALUES ($file, $provider, $ws, $filename, $bytes, $started);",
            p =>
            {
                p.AddWithValue("$file", intent.FileId);
                p.AddWithValue("$provider", intent.Provider);
                p.AddWithValue("$ws", intent.WorkspaceId);
                p.AddWithValue("$filename", intent.Filename);
                p.AddWithValue("$bytes", intent.Bytes);
                p.AddWithValue("$started", intent.StartedAt);
            },
            cancellationToken);

    public Task RemoveIntentAsync(string fileId, string provider, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "DELETE FROM copy_intents WHERE file_id = $file AND provider = $provider;",
            p => { p.AddWithValue("$file", fileId); p.AddWithValue("$provider", provider); },
            cancellationToken);

    public Task<FileInsertOutcome> InsertFileWithCopyAsync(FileRecord file, FileCopy copy, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var outcome = await SqliteFileCatalog.InsertAsync(connection, transaction, file, 0, cancellationToken);
            if (outcome != FileInsertOutcome.Inserted)
            {
                return outcome;
            }
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"""
                INSERT INTO file_copies ({CopyColumns}) VALUES ($ws, $file, $provider, $upstream, $created);
                DELETE FROM copy_intents WHERE file_id = $file AND provider = $provider;
                """;
            BindCopy(command.Parameters, copy);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return FileInsertOutcome.Inserted;
        }, cancellationToken);

    public Task<bool> InsertCopyAsync(FileCopy copy, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"""
                INSERT OR IGNORE INTO file_copies ({CopyColumns})
                    SELECT $ws, $file, $provider, $upstream, $created WHERE EXISTS (SELECT 1 FROM files WHERE workspace_id = $ws AND id = $file);
                SELECT changes();
                """;
            BindCopy(command.Parameters, copy);
            bool inserted = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) > 0;
            command.CommandText = "DELETE FROM copy_intents WHERE file_id = $file AND provider = $provider;";
            if (inserted)
            {
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            return inserted;
        }, cancellationToken);

    public Task<FileCopy?> GetCopyAsync(string workspaceId, string fileId, string provider, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {CopyColumns} FROM file_copies WHERE workspace_id = $ws AND provider = $provider AND file_id = $file;",
            [new("$ws", workspaceId), new("$provider", provider), new("$file", fileId)],
            ReadCopy,
            cancellationToken);

    public Task<bool> RetireCopyAsync(FileCopy copy, long nowUnixSeconds, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                DELETE FROM file_copies WHERE workspace_id = $ws AND provider = $provider AND file_id = $file AND upstream_id = $upstream;
                SELECT changes();
                """;
            BindCopy(command.Parameters, copy);
            bool removed = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) > 0;
            if (removed)
            {
                command.CommandText = $"INSERT OR IGNORE INTO upstream_deletions ({DeletionColumns}) VALUES ($provider, $upstream, $file, 0, $next);";
                command.Parameters.AddWithValue("$next", nowUnixSeconds);
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            return removed;
        }, cancellationToken);

    public Task QueueDeletionAsync(UpstreamDeletion deletion, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            $"""
            INSERT OR IGNORE INTO upstream_deletions ({DeletionColumns}) VALUES ($provider, $upstream, $file, $attempts, $next);
            DELETE FROM copy_intents WHERE file_id = $file AND provider = $provider;
            """,
            p =>
            {
                p.AddWithValue("$provider", deletion.Provider);
                p.AddWithValue("$upstream", deletion.UpstreamId);
                p.AddWithValue("$file", deletion.FileId);
                p.AddWithValue("$attempts", deletion.Attempts);
                p.AddWithValue("$next", deletion.NextAttemptAt);
            },
            cancellationToken);

    public Task<IReadOnlyList<UpstreamDeletion>> ListDeletionsOfFileAsync(string fileId, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT {DeletionColumns} FROM upstream_deletions WHERE file_id = $file;",
            [new("$file", fileId)],
            ReadDeletion,
            cancellationToken);

    public Task<IReadOnlyList<UpstreamDeletion>> ListDueDeletionsAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT {DeletionColumns} FROM upstream_deletions WHERE next_attempt_at <= $now ORDER BY next_attempt_at {SqliteDatabase.Limit(max)};",
            [new("$now", nowUnixSeconds)],
            ReadDeletion,
            cancellationToken);

    public Task CompleteDeletionAsync(string provider, string upstreamId, CancellationToken cancellationToken) =>
        database.WriteFreeingSpaceAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "DELETE FROM upstream_deletions WHERE provider = $provider AND upstream_id = $upstream;";
            command.Parameters.AddWithValue("$provider", provider);
            command.Parameters.AddWithValue("$upstream", upstreamId);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);

    public Task RescheduleDeletionAsync(string provider, string upstreamId, int attempts, long nextAttemptAt, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "UPDATE upstream_deletions SET attempts = $attempts, next_attempt_at = $next WHERE provider = $provider AND upstream_id = $upstream;",
            p =>
            {
                p.AddWithValue("$provider", provider);
                p.AddWithValue("$upstream", upstreamId);
                p.AddWithValue("$attempts", attempts);
                p.AddWithValue("$next", nextAttemptAt);
            },
            cancellationToken);

    public Task<IReadOnlyList<CopyIntent>> ListStaleIntentsAsync(long startedBefore, int max, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT {IntentColumns} FROM copy_intents WHERE started_at < $before ORDER BY started_at {SqliteDatabase.Limit(max)};",
            [new("$before", startedBefore)],
            r => new CopyIntent(r.String(0), r.String(1), r.String(2), r.String(3), r.Int64(4), r.Int64(5)),
            cancellationToken);

    public Task<IReadOnlySet<string>> FindKnownUpstreamIdsAsync(string provider, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken)
    {
        if (upstreamIds.Count == 0)
        {
            return Task.FromResult<IReadOnlySet<string>>(new HashSet<string>());
        }
        string ids = System.Text.Json.JsonSerializer.Serialize(upstreamIds, StorageJsonContext.Default.IReadOnlyCollectionString);
        var known = database.Query(
            """
            SELECT upstream_id FROM file_copies WHERE provider = $provider AND upstream_id IN (SELECT value FROM json_each($ids))
            UNION SELECT upstream_id FROM upstream_deletions WHERE provider = $provider AND upstream_id IN (SELECT value FROM json_each($ids));
            """,
            [new("$provider", provider), new("$ids", ids)],
            r => r.String(0),
            cancellationToken);
        return Task.FromResult<IReadOnlySet<string>>(known.ToHashSet(StringComparer.Ordinal));
    }

    public Task<IReadOnlySet<string>> FindWorkspaceUpstreamIdsAsync(string workspaceId, string provider, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken)
    {
        if (upstreamIds.Count == 0)
        {
            return Task.FromResult<IReadOnlySet<string>>(new HashSet<string>());
        }
        string ids = System.Text.Json.JsonSerializer.Serialize(upstreamIds, StorageJsonContext.Default.IReadOnlyCollectionString);
        var own = database.Query(
            """
            SELECT upstream_id FROM file_copies
            WHERE workspace_id = $ws AND provider = $provider AND upstream_id IN (SELECT value FROM json_each($ids));
            """,
            [new("$ws", workspaceId), new("$provider", provider), new("$ids", ids)],
            r => r.String(0),
            cancellationToken);
        return Task.FromResult<IReadOnlySet<string>>(own.ToHashSet(StringComparer.Ordinal));
    }

    private static void BindCopy(SqliteParameterCollection p, FileCopy copy)
    {
        p.AddWithValue("$ws", copy.WorkspaceId);
        p.AddWithValue("$file", copy.FileId);
        p.AddWithValue("$provider", copy.Provider);
        p.AddWithValue("$upstream", copy.UpstreamId);
        p.AddWithValue("$created", copy.CreatedAt);
    }

    private static FileCopy ReadCopy(SqliteRow r) => new(r.String(0), r.String(1), r.String(2), r.String(3), r.Int64(4));

    private static UpstreamDeletion ReadDeletion(SqliteRow r) => new(r.String(0), r.String(1), r.String(2), (int)r.Int64(3), r.Int64(4));
}
