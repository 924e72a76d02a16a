using Npgsql;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>
/// Provider copies, copy intents and upstream deletions in PostgreSQL. A copy of an existing file is recorded while
/// its file's row is locked (<c>FOR SHARE</c>), so a delete of the file on another node either runs first (and the copy
/// is refused) or waits and then turns the copy into an upstream deletion: a copy is never left without its file.
/// </summary>
internal sealed class PostgresFileCopyCatalog(PostgresDatabase database) : IFileCopyCatalog
{
    private const string CopyColumns = "workspace_id, file_id, provider, upstream_id, created_at";
    private const string DeletionColumns = "provider, upstream_id, file_id, attempts, next_attempt_at";
    private const string IntentColumns = "file_id, provider, workspace_id, filename, bytes, started_at";

    public Task RecordIntentAsync(CopyIntent intent, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            $"""
            INSERT INTO copy_intents ({IntentColumns}) VALUES (@file, @provider, @ws, @filename, @bytes, @started)
            ON CONFLICT (file_id, provider) DO UPDATE SET workspace_id = excluded.workspace_id, filename = excluded.filename,
                bytes = excluded.bytes, started_at = excluded.started_at;
            """,
            p =>
            {
                p.AddText("@file", intent.FileId);
                p.AddText("@provider", intent.Provider);
                p.AddText("@ws", intent.WorkspaceId);
                p.AddText("@filename", intent.Filename);
                p.AddInt64("@bytes", intent.Bytes);
                p.AddInt64("@started", intent.StartedAt);
            },
            cancellationToken);

    public Task RemoveIntentAsync(string fileId, string provider, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "DELETE FROM copy_intents WHERE file_id = @file AND provider = @provider;",
            p => { p.AddText("@file", fileId); p.AddText("@provider", provider); },
            cancellationToken);

    public Task<FileInsertOutcome> InsertFileWithCopyAsync(FileRecord file, FileCopy copy, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            var outcome = await PostgresFileCatalog.InsertAsync(connection, transaction, file, 0, cancellationToken);
            if (outcome != FileInsertOutcome.Inserted)
            {
                return outcome;
            }
            await using var command = new NpgsqlCommand($"""
                INSERT INTO file_copies ({CopyColumns}) VALUES (@ws, @file, @provider, @upstream, @created);
                DELETE FROM copy_intents WHERE file_id = @file AND provider = @provider;
                """, connection, transaction);
            BindCopy(command.Parameters, copy);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return FileInsertOutcome.Inserted;
        }, cancellationToken);

    public Task<bool> InsertCopyAsync(FileCopy copy, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand("SELECT 1 FROM files WHERE workspace_id = @ws AND id = @file FOR SHARE;", connection, transaction);
            BindCopy(command.Parameters, copy);
            if (await command.ExecuteScalarAsync(cancellationToken) is null)
            {
                return false;
            }
            command.CommandText = $"INSERT INTO file_copies ({CopyColumns}) VALUES (@ws, @file, @provider, @upstream, @created) ON CONFLICT DO NOTHING;";
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return false;
            }
            command.CommandText = "DELETE FROM copy_intents WHERE file_id = @file AND provider = @provider;";
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public Task<FileCopy?> GetCopyAsync(string workspaceId, string fileId, string provider, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {CopyColumns} FROM file_copies WHERE workspace_id = @ws AND provider = @provider AND file_id = @file;",
            p => { p.AddText("@ws", workspaceId); p.AddText("@provider", provider); p.AddText("@file", fileId); },
            ReadCopy,
            cancellationToken);

    public Task<bool> RetireCopyAsync(FileCopy copy, long nowUnixSeconds, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(
                "DELETE FROM file_copies WHERE workspace_id = @ws AND provider = @provider AND file_id = @file AND upstream_id = @upstream;",
                connection, transaction);
            BindCopy(command.Parameters, copy);
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return false;
            }
            command.CommandText = $"INSERT INTO upstream_deletions ({DeletionColumns}) VALUES (@provider, @upstream, @file, 0, @next) ON CONFLICT DO NOTHING;";
            command.Parameters.AddInt64("@next", nowUnixSeconds);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public Task QueueDeletionAsync(UpstreamDeletion deletion, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand($"""
                INSERT INTO upstream_deletions ({DeletionColumns}) VALUES (@provider, @upstream, @file, @attempts, @next) ON CONFLICT DO NOTHING;
                DELETE FROM copy_intents WHERE file_id = @file AND provider = @provider;
                """, connection, transaction);
            command.Parameters.AddText("@provider", deletion.Provider);
            command.Parameters.AddText("@upstream", deletion.UpstreamId);
            command.Parameters.AddText("@file", deletion.FileId);
            command.Parameters.AddInt32("@attempts", deletion.Attempts);
            command.Parameters.AddInt64("@next", deletion.NextAttemptAt);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);

    public async Task<IReadOnlyList<UpstreamDeletion>> ListDeletionsOfFileAsync(string fileId, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            $"SELECT {DeletionColumns} FROM upstream_deletions WHERE file_id = @file;",
            p => p.AddText("@file", fileId),
            ReadDeletion,
            cancellationToken);

    public async Task<IReadOnlyList<UpstreamDeletion>> ListDueDeletionsAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            $"SELECT {DeletionColumns} FROM upstream_deletions WHERE next_attempt_at <= @now ORDER BY next_attempt_at LIMIT @max;",
            p => { p.AddInt64("@now", nowUnixSeconds); p.AddInt32("@max", max); },
            ReadDeletion,
            cancellationToken);

    public Task CompleteDeletionAsync(string provider, string upstreamId, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "DELETE FROM upstream_deletions WHERE provider = @provider AND upstream_id = @upstream;",
            p => { p.AddText("@provider", provider); p.AddText("@upstream", upstreamId); },
            cancellationToken);

    public Task RescheduleDeletionAsync(string provider, string upstreamId, int attempts, long nextAttemptAt, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "UPDATE upstream_deletions SET attempts = @attempts, next_attempt_at = @next WHERE provider = @provider AND upstream_id = @upstream;",
            p =>
            {
                p.AddText("@provider", provider);
                p.AddText("@upstream", upstreamId);
                p.AddInt32("@attempts", attempts);
                p.AddInt64("@next", nextAttemptAt);
            },
            cancellationToken);

    public async Task<IReadOnlyList<CopyIntent>> ListStaleIntentsAsync(long startedBefore, int max, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            $"SELECT {IntentColumns} FROM copy_intents WHERE started_at < @before ORDER BY started_at LIMIT @max;",
            p => { p.AddInt64("@before", startedBefore); p.AddInt32("@max", max); },
            r => new CopyIntent(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetInt64(5)),
            cancellationToken);

    public async Task<IReadOnlySet<string>> FindKnownUpstreamIdsAsync(string provider, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken) =>
        upstreamIds.Count == 0
            ? new HashSet<string>()
            : (await database.QueryAsync(
                """
                SELECT upstream_id FROM file_copies WHERE provider = @provider AND upstream_id = ANY(@ids)
                UNION SELECT upstream_id FROM upstream_deletions WHERE provider = @provider AND upstream_id = ANY(@ids);
                """,
                p => { p.AddText("@provider", provider); p.AddTextArray("@ids", upstreamIds); },
                r => r.GetString(0),
                cancellationToken)).ToHashSet(StringComparer.Ordinal);

    public async Task<IReadOnlySet<string>> FindWorkspaceUpstreamIdsAsync(
        string workspaceId, string provider, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken) =>
        upstreamIds.Count == 0
            ? new HashSet<string>()
            : (await database.QueryAsync(
                "SELECT upstream_id FROM file_copies WHERE workspace_id = @ws AND provider = @provider AND upstream_id = ANY(@ids);",
                p => { p.AddText("@ws", workspaceId); p.AddText("@provider", provider); p.AddTextArray("@ids", upstreamIds); },
                r => r.GetString(0),
                cancellationToken)).ToHashSet(StringComparer.Ordinal);

    private static void BindCopy(NpgsqlParameterCollection p, FileCopy copy)
    {
        p.AddText("@ws", copy.WorkspaceId);
        p.AddText("@file", copy.FileId);
        p.AddText("@provider", copy.Provider);
        p.AddText("@upstream", copy.UpstreamId);
        p.AddInt64("@created", copy.CreatedAt);
    }

    private static FileCopy ReadCopy(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4));

    private static UpstreamDeletion ReadDeletion(NpgsqlDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetInt64(4));
}
