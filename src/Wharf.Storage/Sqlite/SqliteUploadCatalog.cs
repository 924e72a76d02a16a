using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// Uploads and parts in SQLite. Completing an upload is one transaction: file row, segments, status.
/// A pending upload counts in its workspace's <c>usage_bytes</c> for <c>uploads.counted_bytes</c>: the larger of its
/// announced size and the bytes of the parts it holds, reserved when it is created, grown by parts beyond its size,
/// replaced by the file's bytes when it completes and released when it ends otherwise. Every change to it is made in
/// the same transaction as the change to the usage, so usage = files' bytes + pending uploads' counted bytes.
/// </summary>
internal sealed class SqliteUploadCatalog(SqliteDatabase database) : IUploadCatalog
{
    private const string UploadColumns = "workspace_id, id, filename, purpose, bytes, mime_type, created_at, expires_at, status, file_id, file_expires_after, " +
        "metadata, collection, provider";
    private const string PartColumns = "id, upload_id, workspace_id, bytes, sha256, created_at";

    public Task<UploadInsertOutcome> InsertUploadAsync(UploadRecord upload, int maxPending, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$ws", upload.WorkspaceId);
            var (deleted, free) = await ReadWorkspaceAsync(command, cancellationToken);
            if (deleted)
            {
                return UploadInsertOutcome.WorkspaceDeleted;
            }
            if (free is { } room && upload.Bytes > room)
            {
                return UploadInsertOutcome.QuotaExceeded;
            }
            command.CommandText = $"SELECT count(*) FROM (SELECT 1 FROM uploads WHERE workspace_id = $ws AND status = 'pending' {SqliteDatabase.Limit(maxPending)});";
            if (await ScalarInt64Async(command, cancellationToken) >= maxPending)
            {
                return UploadInsertOutcome.TooManyPending;
            }
            command.CommandText = $"""
                INSERT INTO uploads ({UploadColumns}, counted_bytes)
                VALUES ($ws, $id, $filename, $purpose, $bytes, $mime, $created, $expires, $status, NULL, $fileExpires,
                    $metadata, $collection, $provider, $bytes);
                UPDATE workspaces SET usage_bytes = usage_bytes + $bytes WHERE id = $ws;
                """;
            command.Parameters.AddWithValue("$id", upload.Id);
            command.Parameters.AddWithValue("$filename", upload.Filename);
            command.Parameters.AddWithValue("$purpose", upload.Purpose);
            command.Parameters.AddWithValue("$bytes", upload.Bytes);
            command.Parameters.AddWithValue("$mime", (object?)upload.MimeType ?? DBNull.Value);
            command.Parameters.AddWithValue("$created", upload.CreatedAt);
            command.Parameters.AddWithValue("$expires", upload.ExpiresAt);
            command.Parameters.AddWithValue("$status", upload.Status);
            command.Parameters.AddWithValue("$fileExpires", (object?)upload.FileExpiresAfterSeconds ?? DBNull.Value);
            command.Parameters.AddWithValue("$metadata", upload.Metadata.Count == 0
                ? DBNull.Value
                : JsonSerializer.Serialize(upload.Metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString));
            command.Parameters.AddWithValue("$collection", (object?)upload.Collection ?? DBNull.Value);
            command.Parameters.AddWithValue("$provider", upload.Provider);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return UploadInsertOutcome.Inserted;
        }, cancellationToken);

    public Task<UploadRecord?> GetUploadAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {UploadColumns} FROM uploads WHERE workspace_id = $ws AND id = $id;",
            [new("$ws", workspaceId), new("$id", uploadId)],
            ReadUpload,
            cancellationToken);

    public Task<PartInsertOutcome> InsertPartAsync(UploadPartRecord part, long nowUnixSeconds, long maxHeldBytes, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$ws", part.WorkspaceId);
            command.Parameters.AddWithValue("$upload", part.UploadId);
            command.Parameters.AddWithValue("$now", nowUnixSeconds);
            // Writers are serialised: what these reads see holds until the transaction commits.
            command.CommandText = """
                SELECT u.bytes, u.counted_bytes,
                    (SELECT coalesce(sum(p.bytes), 0) FROM upload_parts p WHERE p.upload_id = u.id AND p.workspace_id = u.workspace_id AND p.file_id IS NULL)
                FROM uploads u WHERE u.workspace_id = $ws AND u.id = $upload AND u.status = 'pending' AND u.expires_at > $now;
                """;
            long size, counted, held;
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                if (!await reader.ReadAsync(cancellationToken))
                {
                    return PartInsertOutcome.NotPending;
                }
                (size, counted, held) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
            }
            var (deleted, free) = await ReadWorkspaceAsync(command, cancellationToken);
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
                INSERT INTO upload_parts ({PartColumns}) VALUES ($id, $upload, $ws, $bytes, $sha, $created);
                UPDATE uploads SET counted_bytes = $counted WHERE workspace_id = $ws AND id = $upload;
                UPDATE workspaces SET usage_bytes = usage_bytes + $added WHERE id = $ws;
                """;
            command.Parameters.AddWithValue("$id", part.Id);
            command.Parameters.AddWithValue("$bytes", part.Bytes);
            command.Parameters.AddWithValue("$sha", part.Sha256);
            command.Parameters.AddWithValue("$created", part.CreatedAt);
            command.Parameters.AddWithValue("$counted", nowCounted);
            command.Parameters.AddWithValue("$added", added);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return PartInsertOutcome.Inserted;
        }, cancellationToken);

    public Task<IReadOnlyList<UploadPartRecord>> ListPartsAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT {PartColumns} FROM upload_parts WHERE upload_id = $upload AND workspace_id = $ws AND file_id IS NULL ORDER BY id;",
            [new("$ws", workspaceId), new("$upload", uploadId)],
            r => new UploadPartRecord
            {
                Id = r.String(0),
                UploadId = r.String(1),
                WorkspaceId = r.String(2),
                Bytes = r.Int64(3),
                Sha256 = r.String(4),
                CreatedAt = r.Int64(5),
            },
            cancellationToken);

    public Task<(CompleteOutcome Outcome, IReadOnlyList<string> DroppedParts)> CompleteAsync(
        string uploadId, FileRecord file, IReadOnlyList<string> partIds, CancellationToken cancellationToken) =>
        database.WriteAsync<(CompleteOutcome, IReadOnlyList<string>)>(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$ws", file.WorkspaceId);
            command.Parameters.AddWithValue("$upload", uploadId);
            command.Parameters.AddWithValue("$file", file.Id);
            // Writers are serialised: what this check sees holds until the transaction commits.
            command.CommandText = "SELECT counted_bytes FROM uploads WHERE workspace_id = $ws AND id = $upload AND status = 'pending';";
            if (await command.ExecuteScalarAsync(cancellationToken) is not long counted)
            {
                return (CompleteOutcome.NotPending, []);
            }
            // The file's bytes take the place of what the upload counted (its size, or more while it held more).
            switch (await SqliteFileCatalog.InsertAsync(connection, transaction, file, counted, cancellationToken))
            {
                case FileInsertOutcome.QuotaExceeded:
                    return (CompleteOutcome.QuotaExceeded, []);
                case FileInsertOutcome.WorkspaceDeleted:
                    return (CompleteOutcome.WorkspaceDeleted, []);
            }
            command.CommandText = "UPDATE uploads SET status = 'completed', file_id = $file, counted_bytes = 0 WHERE workspace_id = $ws AND id = $upload;";
            await command.ExecuteNonQueryAsync(cancellationToken);
            // The listed parts become the file's segments, in the listed order.
            command.Parameters.AddWithValue("$order", JsonSerializer.Serialize(partIds, StorageJsonContext.Default.IReadOnlyListString));
            command.CommandText = """
                UPDATE upload_parts SET file_id = $file,
                    seq = (SELECT CAST(o.key AS INTEGER) FROM json_each($order) o WHERE o.value = upload_parts.id)
                WHERE upload_id = $upload AND workspace_id = $ws AND id IN (SELECT value FROM json_each($order));
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            command.CommandText = "DELETE FROM upload_parts WHERE upload_id = $upload AND workspace_id = $ws AND file_id IS NULL RETURNING id;";
            var dropped = new List<string>();
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    dropped.Add(reader.GetString(0));
                }
            }
            return (CompleteOutcome.Completed, dropped);
        }, cancellationToken);

    /// <summary>Ends a pending upload and drops its parts; on a full disk too (it frees their space).</summary>
    public Task<IReadOnlyList<string>?> EndAsync(string workspaceId, string uploadId, string status, CancellationToken cancellationToken) =>
        database.WriteFreeingSpaceAsync<IReadOnlyList<string>?>(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$ws", workspaceId);
            command.Parameters.AddWithValue("$upload", uploadId);
            command.Parameters.AddWithValue("$status", status);
            command.CommandText = "SELECT counted_bytes FROM uploads WHERE workspace_id = $ws AND id = $upload AND status = 'pending';";
            if (await command.ExecuteScalarAsync(cancellationToken) is not long counted)
            {
                return null;
            }
            command.CommandText = """
                UPDATE uploads SET status = $status, counted_bytes = 0 WHERE workspace_id = $ws AND id = $upload;
                UPDATE workspaces SET usage_bytes = usage_bytes - $counted WHERE id = $ws;
                """;
            command.Parameters.AddWithValue("$counted", counted);
            await command.ExecuteNonQueryAsync(cancellationToken);
            command.CommandText = "DELETE FROM upload_parts WHERE upload_id = $upload AND workspace_id = $ws AND file_id IS NULL RETURNING id;";
            var dropped = new List<string>();
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                dropped.Add(reader.GetString(0));
            }
            return dropped;
        }, cancellationToken);

    public Task<IReadOnlyList<UploadRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT {UploadColumns} FROM uploads WHERE status = 'pending' AND expires_at <= $now ORDER BY expires_at {SqliteDatabase.Limit(max)};",
            [new("$now", nowUnixSeconds)],
            ReadUpload,
            cancellationToken);

    public Task<IReadOnlyList<BlobSegment>> GetSegmentsAsync(string fileId, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            "SELECT id, bytes FROM upload_parts WHERE file_id = $file ORDER BY seq;",
            [new("$file", fileId)],
            r => new BlobSegment(r.String(0), r.Int64(1)),
            cancellationToken);

    public Task<IReadOnlySet<string>> FindExistingPartsAsync(IReadOnlyCollection<string> partIds, CancellationToken cancellationToken) =>
        database.FindExistingIdsAsync("upload_parts", partIds, cancellationToken);

    /// <summary>
    /// The workspace <c>$ws</c> of <paramref name="command"/>, as a write sees it: whether it is deleted, and how much
    /// more its usage may grow (null: no quota, or no row, which has none).
    /// </summary>
    private static async Task<(bool Deleted, long? Free)> ReadWorkspaceAsync(SqliteCommand command, CancellationToken cancellationToken)
    {
        command.CommandText = "SELECT deleted_at IS NOT NULL, storage_quota_bytes - usage_bytes FROM workspaces WHERE id = $ws;";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return (false, null);
        }
        return (reader.GetInt64(0) != 0, reader.IsDBNull(1) ? null : Math.Max(0, reader.GetInt64(1)));
    }

    private static async Task<long> ScalarInt64Async(SqliteCommand command, CancellationToken cancellationToken) =>
        Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);

    private static UploadRecord ReadUpload(SqliteRow row) => new()
    {
        WorkspaceId = row.String(0),
        Id = row.String(1),
        Filename = row.String(2),
        Purpose = row.String(3),
        Bytes = row.Int64(4),
        MimeType = row.NullableString(5),
        CreatedAt = row.Int64(6),
        ExpiresAt = row.Int64(7),
        Status = row.String(8),
        FileId = row.NullableString(9),
        FileExpiresAfterSeconds = row.NullableInt64(10),
        Metadata = row.NullableString(11) is { } metadata
            ? JsonSerializer.Deserialize(metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString) ?? FileRecord.EmptyMetadata
            : FileRecord.EmptyMetadata,
        Collection = row.NullableString(12),
        Provider = row.String(13),
    };
}
