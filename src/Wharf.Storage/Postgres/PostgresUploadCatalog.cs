using System.Text.Json;
using Npgsql;
using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;

namespace Wharf.Storage.Postgres;

/// <summary>
/// Uploads and parts in PostgreSQL, with the accounting of <see cref="Sqlite.SqliteUploadCatalog"/>: a pending upload
/// counts in its workspace's usage for <c>uploads.counted_bytes</c> (the larger of its announced size and the bytes of
/// the parts it holds), and every change to it is made in the same transaction as the change to the usage. Parts of
/// one upload may arrive on several nodes at once: a part's transaction locks its upload's row first (so the bytes it
/// holds are summed with no other part of it in between), then its workspace's row (so the quota check sees every
/// other upload's usage).
/// </summary>
internal sealed class PostgresUploadCatalog(PostgresDatabase database) : IUploadCatalog
{
    private const string UploadColumns = "workspace_id, id, filename, purpose, bytes, mime_type, created_at, expires_at, status, file_id, file_expires_after, " +
        "metadata, collection, provider";
    private const string PartColumns = "id, upload_id, workspace_id, bytes, sha256, created_at";

    public Task<UploadInsertOutcome> InsertUploadAsync(UploadRecord upload, int maxPending, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(null, connection, transaction);
            command.Parameters.AddText("@ws", upload.WorkspaceId);
            var (deleted, free) = await LockWorkspaceAsync(command, cancellationToken);
            if (deleted)
            {
                return UploadInsertOutcome.WorkspaceDeleted;
            }
            if (free is { } room && upload.Bytes > room)
            {
                return UploadInsertOutcome.QuotaExceeded;
            }
            command.CommandText = "SELECT count(*) FROM (SELECT 1 FROM uploads WHERE workspace_id = @ws AND status = 'pending' LIMIT @max) AS pending;";
            command.Parameters.AddInt32("@max", maxPending);
            if ((long)(await command.ExecuteScalarAsync(cancellationToken))! >= maxPending)
            {
                return UploadInsertOutcome.TooManyPending;
            }
            command.CommandText = $"""
                INSERT INTO uploads ({UploadColumns}, counted_bytes)
                VALUES (@ws, @id, @filename, @purpose, @bytes, @mime, @created, @expires, @status, NULL, @fileExpires,
                    @metadata, @collection, @provider, @bytes);
                UPDATE workspaces SET usage_bytes = usage_bytes + @bytes WHERE id = @ws;
                """;
            command.Parameters.AddText("@id", upload.Id);
            command.Parameters.AddText("@filename", upload.Filename);
            command.Parameters.AddText("@purpose", upload.Purpose);
            command.Parameters.AddInt64("@bytes", upload.Bytes);
            command.Parameters.AddText("@mime", upload.MimeType);
            command.Parameters.AddInt64("@created", upload.CreatedAt);
            command.Parameters.AddInt64("@expires", upload.ExpiresAt);
            command.Parameters.AddText("@status", upload.Status);
            command.Parameters.AddInt64("@fileExpires", upload.FileExpiresAfterSeconds);
            command.Parameters.AddText("@metadata", upload.Metadata.Count == 0
                ? null
                : JsonSerializer.Serialize(upload.Metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString));
            command.Parameters.AddText("@collection", upload.Collection);
            command.Parameters.AddText("@provider", upload.Provider);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return UploadInsertOutcome.Inserted;
        }, cancellationToken);

    public Task<UploadRecord?> GetUploadAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {UploadColumns} FROM uploads WHERE workspace_id = @ws AND id = @id;",
            p => { p.AddText("@ws", workspaceId); p.AddText("@id", uploadId); },
            ReadUpload,
            cancellationToken);

    public Task<PartInsertOutcome> InsertPartAsync(UploadPartRecord part, long nowUnixSeconds, long maxHeldBytes, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(null, connection, transaction);
            command.Parameters.AddText("@ws", part.WorkspaceId);
            command.Parameters.AddText("@upload", part.UploadId);
            command.Parameters.AddInt64("@now", nowUnixSeconds);
            // The upload's row lock is held to the commit: no other part of it is added, and it does not complete or
            // end, until this part is in.
            command.CommandText = """
                SELECT bytes, counted_bytes FROM uploads
                WHERE workspace_id = @ws AND id = @upload AND status = 'pending' AND expires_at > @now
                FOR UPDATE;
                """;
            long size, counted;
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                if (!await reader.ReadAsync(cancellationToken))
                {
                    return PartInsertOutcome.NotPending;
                }
                (size, counted) = (reader.GetInt64(0), reader.GetInt64(1));
            }
            command.CommandText = "SELECT coalesce(sum(bytes), 0)::bigint FROM upload_parts WHERE upload_id = @upload AND workspace_id = @ws AND file_id IS NULL;";
            long held = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
            var (deleted, free) = await LockWorkspaceAsync(command, cancellationToken);
            if (deleted)
            {
                return PartInsertOutcome.WorkspaceDeleted;
            }
            if (held + part.Bytes > maxHeldBytes)
            {
                return PartInsertOutcome.OverAllowance;
            }
            long nowCounted = Math.Max(size, held + part.Bytes);
            long added = nowCounted - counted;
            if (added > 0 && free is { } room && added > room)
            {
                return PartInsertOutcome.QuotaExceeded;
            }
            command.CommandText = $"""
                INSERT INTO upload_parts ({PartColumns}) VALUES (@id, @upload, @ws, @bytes, @sha, @created);
                UPDATE uploads SET counted_bytes = @counted WHERE workspace_id = @ws AND id = @upload;
                UPDATE workspaces SET usage_bytes = usage_bytes + @added WHERE id = @ws;
                """;
            command.Parameters.AddText("@id", part.Id);
            command.Parameters.AddInt64("@bytes", part.Bytes);
            command.Parameters.AddText("@sha", part.Sha256);
            command.Parameters.AddInt64("@created", part.CreatedAt);
            command.Parameters.AddInt64("@counted", nowCounted);
            command.Parameters.AddInt64("@added", added);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return PartInsertOutcome.Inserted;
        }, cancellationToken);

    public async Task<IReadOnlyList<UploadPartRecord>> ListPartsAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            $"SELECT {PartColumns} FROM upload_parts WHERE upload_id = @upload AND workspace_id = @ws AND file_id IS NULL ORDER BY id;",
            p => { p.AddText("@ws", workspaceId); p.AddText("@upload", uploadId); },
            r => new UploadPartRecord
            {
                Id = r.GetString(0),
                UploadId = r.GetString(1),
                WorkspaceId = r.GetString(2),
                Bytes = r.GetInt64(3),
                Sha256 = r.GetString(4),
                CreatedAt = r.GetInt64(5),
            },
            cancellationToken);

    public Task<(CompleteOutcome Outcome, IReadOnlyList<string> DroppedParts)> CompleteAsync(
        string uploadId, FileRecord file, IReadOnlyList<string> partIds, CancellationToken cancellationToken) =>
        database.InTransactionAsync<(CompleteOutcome, IReadOnlyList<string>)>(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(null, connection, transaction);
            command.Parameters.AddText("@ws", file.WorkspaceId);
            command.Parameters.AddText("@upload", uploadId);
            command.Parameters.AddText("@file", file.Id);
            command.CommandText = "SELECT counted_bytes FROM uploads WHERE workspace_id = @ws AND id = @upload AND status = 'pending' FOR UPDATE;";
            if (await command.ExecuteScalarAsync(cancellationToken) is not long counted)
            {
                return (CompleteOutcome.NotPending, []);
            }
            // The file's bytes take the place of what the upload counted (its size, or more while it held more).
            switch (await PostgresFileCatalog.InsertAsync(connection, transaction, file, counted, cancellationToken))
            {
                case FileInsertOutcome.QuotaExceeded:
                    return (CompleteOutcome.QuotaExceeded, []);
                case FileInsertOutcome.WorkspaceDeleted:
                    return (CompleteOutcome.WorkspaceDeleted, []);
            }
            // The listed parts become the file's segments, in the listed order (seq from 0).
            command.CommandText = """
                UPDATE uploads SET status = 'completed', file_id = @file, counted_bytes = 0 WHERE workspace_id = @ws AND id = @upload;
                UPDATE upload_parts p SET file_id = @file, seq = o.ord - 1
                FROM unnest(@order) WITH ORDINALITY AS o(id, ord)
                WHERE p.id = o.id AND p.upload_id = @upload AND p.workspace_id = @ws;
                """;
            command.Parameters.AddTextArray("@order", partIds);
            await command.ExecuteNonQueryAsync(cancellationToken);
            command.CommandText = "DELETE FROM upload_parts WHERE upload_id = @upload AND workspace_id = @ws AND file_id IS NULL RETURNING id;";
            return (CompleteOutcome.Completed, await PostgresDatabase.ReadStringsAsync(command, cancellationToken));
        }, cancellationToken);

    public Task<IReadOnlyList<string>?> EndAsync(string workspaceId, string uploadId, string status, CancellationToken cancellationToken) =>
        database.InTransactionAsync<IReadOnlyList<string>?>(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(null, connection, transaction);
            command.Parameters.AddText("@ws", workspaceId);
            command.Parameters.AddText("@upload", uploadId);
            command.Parameters.AddText("@status", status);
            command.CommandText = "SELECT counted_bytes FROM uploads WHERE workspace_id = @ws AND id = @upload AND status = 'pending' FOR UPDATE;";
            if (await command.ExecuteScalarAsync(cancellationToken) is not long counted)
            {
                return null;
            }
            command.CommandText = """
                UPDATE uploads SET status = @status, counted_bytes = 0 WHERE workspace_id = @ws AND id = @upload;
                UPDATE workspaces SET usage_bytes = usage_bytes - @counted WHERE id = @ws;
                """;
            command.Parameters.AddInt64("@counted", counted);
            await command.ExecuteNonQueryAsync(cancellationToken);
            command.CommandText = "DELETE FROM upload_parts WHERE upload_id = @upload AND workspace_id = @ws AND file_id IS NULL RETURNING id;";
            return await PostgresDatabase.ReadStringsAsync(command, cancellationToken);
        }, cancellationToken);

    public async Task<IReadOnlyList<UploadRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            $"SELECT {UploadColumns} FROM uploads WHERE status = 'pending' AND expires_at <= @now ORDER BY expires_at LIMIT @max;",
            p => { p.AddInt64("@now", nowUnixSeconds); p.AddInt32("@max", max); },
            ReadUpload,
            cancellationToken);

    public async Task<IReadOnlyList<BlobSegment>> GetSegmentsAsync(string fileId, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            "SELECT id, bytes FROM upload_parts WHERE file_id = @file ORDER BY seq;",
            p => p.AddText("@file", fileId),
            r => new BlobSegment(r.GetString(0), r.GetInt64(1)),
            cancellationToken);

    public Task<IReadOnlySet<string>> FindExistingPartsAsync(IReadOnlyCollection<string> partIds, CancellationToken cancellationToken) =>
        database.FindExistingIdsAsync("upload_parts", partIds, cancellationToken);

    /// <summary>
    /// Locks the workspace <c>@ws</c> of <paramref name="command"/> to the commit and reads whether it is deleted and how
    /// much more its usage may grow (null: no quota). A workspace with no row has no quota; its uploads are
    /// serialised by an advisory lock on its id instead, so the count of its pending uploads holds all the same.
    /// </summary>
    private static async Task<(bool Deleted, long? Free)> LockWorkspaceAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        command.CommandText = "SELECT deleted_at IS NOT NULL, storage_quota_bytes - usage_bytes FROM workspaces WHERE id = @ws FOR UPDATE;";
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            if (await reader.ReadAsync(cancellationToken))
            {
                return (reader.GetBoolean(0), reader.IsDBNull(1) ? null : Math.Max(0, reader.GetInt64(1)));
            }
        }
        command.CommandText = "SELECT pg_advisory_xact_lock(hashtextextended(@ws, 0));";
        await command.ExecuteNonQueryAsync(cancellationToken);
        return (false, null);
    }

    private static UploadRecord ReadUpload(NpgsqlDataReader row) => new()
    {
        WorkspaceId = row.GetString(0),
        Id = row.GetString(1),
        Filename = row.GetString(2),
        Purpose = row.GetString(3),
        Bytes = row.GetInt64(4),
        MimeType = row.NullableString(5),
        CreatedAt = row.GetInt64(6),
        ExpiresAt = row.GetInt64(7),
        Status = row.GetString(8),
        FileId = row.NullableString(9),
        FileExpiresAfterSeconds = row.NullableInt64(10),
        Metadata = row.NullableString(11) is { } metadata
            ? JsonSerializer.Deserialize(metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString) ?? FileRecord.EmptyMetadata
            : FileRecord.EmptyMetadata,
        Collection = row.NullableString(12),
        Provider = row.GetString(13),
    };
}
