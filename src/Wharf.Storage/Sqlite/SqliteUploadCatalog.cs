using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;

namespace Wharf.Storage.Sqlite;

/// <summary>Uploads and parts in SQLite. Completing an upload is one transaction: file row, segments, status.</summary>
internal sealed class SqliteUploadCatalog(SqliteDatabase database) : IUploadCatalog
{
    private const string UploadColumns = "workspace_id, id, filename, purpose, bytes, mime_type, created_at, expires_at, status, file_id, file_expires_after";
    private const string PartColumns = "id, upload_id, workspace_id, bytes, sha256, created_at";

    public Task InsertUploadAsync(UploadRecord upload, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"""
                INSERT INTO uploads ({UploadColumns})
                VALUES ($ws, $id, $filename, $purpose, $bytes, $mime, $created, $expires, $status, NULL, $fileExpires);
                """;
            command.Parameters.AddWithValue("$ws", upload.WorkspaceId);
            command.Parameters.AddWithValue("$id", upload.Id);
            command.Parameters.AddWithValue("$filename", upload.Filename);
            command.Parameters.AddWithValue("$purpose", upload.Purpose);
            command.Parameters.AddWithValue("$bytes", upload.Bytes);
            command.Parameters.AddWithValue("$mime", (object?)upload.MimeType ?? DBNull.Value);
            command.Parameters.AddWithValue("$created", upload.CreatedAt);
            command.Parameters.AddWithValue("$expires", upload.ExpiresAt);
            command.Parameters.AddWithValue("$status", upload.Status);
            command.Parameters.AddWithValue("$fileExpires", (object?)upload.FileExpiresAfterSeconds ?? DBNull.Value);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);

    public Task<UploadRecord?> GetUploadAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {UploadColumns} FROM uploads WHERE workspace_id = $ws AND id = $id;",
            [new("$ws", workspaceId), new("$id", uploadId)],
            ReadUpload,
            cancellationToken);

    public Task<bool> InsertPartAsync(UploadPartRecord part, long nowUnixSeconds, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"""
                INSERT INTO upload_parts ({PartColumns})
                SELECT $id, $upload, $ws, $bytes, $sha, $created
                WHERE EXISTS (SELECT 1 FROM uploads u WHERE u.workspace_id = $ws AND u.id = $upload AND u.status = 'pending' AND u.expires_at > $now
                    AND $bytes + (SELECT coalesce(sum(p.bytes), 0) FROM upload_parts p WHERE p.upload_id = $upload AND p.file_id IS NULL)
                        <= max(2 * u.bytes, u.bytes + $maxPart));
                """;
            command.Parameters.AddWithValue("$id", part.Id);
            command.Parameters.AddWithValue("$upload", part.UploadId);
            command.Parameters.AddWithValue("$ws", part.WorkspaceId);
            command.Parameters.AddWithValue("$bytes", part.Bytes);
            command.Parameters.AddWithValue("$sha", part.Sha256);
            command.Parameters.AddWithValue("$created", part.CreatedAt);
            command.Parameters.AddWithValue("$now", nowUnixSeconds);
            command.Parameters.AddWithValue("$maxPart", UploadService.MaxPartBytes);
            return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
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
            command.CommandText = "SELECT EXISTS (SELECT 1 FROM uploads WHERE workspace_id = $ws AND id = $upload AND status = 'pending');";
            if (Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                return (CompleteOutcome.NotPending, []);
            }
            if (!await SqliteFileCatalog.InsertAsync(connection, transaction, file, cancellationToken))
            {
                return (CompleteOutcome.QuotaExceeded, []);
            }
            command.CommandText = "UPDATE uploads SET status = 'completed', file_id = $file WHERE workspace_id = $ws AND id = $upload;";
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
            command.CommandText = "UPDATE uploads SET status = $status WHERE workspace_id = $ws AND id = $upload AND status = 'pending';";
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return null;
            }
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
    };
}
