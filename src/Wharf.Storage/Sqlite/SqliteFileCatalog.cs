using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// Files in SQLite. A page is one range scan of an index that starts with the workspace id and ends with the file
/// id: the primary key, a per-filter index, or — for <c>metadata.k=v</c> — the <c>file_metadata</c> key index.
/// </summary>
internal sealed class SqliteFileCatalog(SqliteDatabase database, TimeProvider time) : IFileCatalog
{
    // The columns Read maps, in its order.
    private const string Columns =
        "f.workspace_id, f.id, f.bytes, f.created_at, f.filename, f.purpose, f.status, f.status_details, " +
        "f.expires_at, f.metadata, f.collection, f.provider, f.sha256, f.content_type, f.segmented";

    public Task<FileInsertOutcome> InsertAsync(FileRecord file, CancellationToken cancellationToken) =>
        database.WriteAsync((connection, transaction) => InsertAsync(connection, transaction, file, 0, cancellationToken), cancellationToken);

    /// <summary>
    /// The insert inside a caller's write transaction (completing an upload writes more in the same one). The file's
    /// bytes take the place of <paramref name="releasedBytes"/> already counted in the usage (a completed upload's),
    /// so only what goes beyond them meets the quota check.
    /// </summary>
    internal static async Task<FileInsertOutcome> InsertAsync(
        SqliteConnection connection, SqliteTransaction transaction, FileRecord file, long releasedBytes, CancellationToken cancellationToken)
    {
        // Writers are serialised, so the quota check and the usage update see no concurrent upload.
        await using (var usage = connection.CreateCommand())
        {
            usage.Transaction = transaction;
            usage.CommandText = """
                UPDATE workspaces SET usage_bytes = usage_bytes + $bytes - $released
                WHERE id = $ws AND deleted_at IS NULL
                    AND (storage_quota_bytes IS NULL OR $bytes <= $released OR usage_bytes + $bytes - $released <= storage_quota_bytes);
                SELECT CASE WHEN changes() > 0 THEN 'inserted'
                    ELSE coalesce((SELECT CASE WHEN deleted_at IS NULL THEN 'quota' ELSE 'deleted' END FROM workspaces WHERE id = $ws), 'inserted') END;
                """;
            usage.Parameters.AddWithValue("$ws", file.WorkspaceId);
            usage.Parameters.AddWithValue("$bytes", file.Bytes);
            usage.Parameters.AddWithValue("$released", releasedBytes);
            string? verdict = await usage.ExecuteScalarAsync(cancellationToken) as string;
            if (verdict != "inserted")
            {
                return verdict == "deleted" ? FileInsertOutcome.WorkspaceDeleted : FileInsertOutcome.QuotaExceeded;
            }
        }

        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO files (workspace_id, id, bytes, created_at, filename, purpose, status, status_details, expires_at,
                               metadata, collection, provider, sha256, content_type, segmented)
            VALUES ($ws, $id, $bytes, $created, $filename, $purpose, $status, $details, $expires,
                    $metadata, $collection, $provider, $sha, $ctype, $segmented);
            """;
        command.Parameters.AddWithValue("$ws", file.WorkspaceId);
        command.Parameters.AddWithValue("$id", file.Id);
        command.Parameters.AddWithValue("$bytes", file.Bytes);
        command.Parameters.AddWithValue("$created", file.CreatedAt);
        command.Parameters.AddWithValue("$filename", file.Filename);
        command.Parameters.AddWithValue("$purpose", file.Purpose);
        command.Parameters.AddWithValue("$status", file.Status);
        command.Parameters.AddWithValue("$details", (object?)file.StatusDetails ?? DBNull.Value);
        command.Parameters.AddWithValue("$expires", (object?)file.ExpiresAt ?? DBNull.Value);
        command.Parameters.AddWithValue("$metadata", file.Metadata.Count == 0
            ? DBNull.Value
            : JsonSerializer.Serialize(file.Metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString));
        command.Parameters.AddWithValue("$collection", (object?)file.Collection ?? DBNull.Value);
        command.Parameters.AddWithValue("$provider", file.Provider);
        command.Parameters.AddWithValue("$sha", (object?)file.Sha256 ?? DBNull.Value);
        command.Parameters.AddWithValue("$ctype", (object?)file.ContentType ?? DBNull.Value);
        command.Parameters.AddWithValue("$segmented", file.Segmented ? 1 : 0);
        await command.ExecuteNonQueryAsync(cancellationToken);

        if (file.Metadata.Count > 0)
        {
            await using var meta = connection.CreateCommand();
            meta.Transaction = transaction;
            meta.CommandText = "INSERT INTO file_metadata (workspace_id, key, value, file_id) VALUES ($ws, $key, $value, $id);";
            meta.Parameters.AddWithValue("$ws", file.WorkspaceId);
            meta.Parameters.AddWithValue("$id", file.Id);
            var key = meta.Parameters.Add("$key", SqliteType.Text);
            var value = meta.Parameters.Add("$value", SqliteType.Text);
            foreach (var (k, v) in file.Metadata)
            {
                key.Value = k;
                value.Value = v;
                await meta.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        return FileInsertOutcome.Inserted;
    }

    public Task<FileRecord?> GetAsync(string workspaceId, string fileId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {Columns} FROM files f WHERE f.workspace_id = $ws AND f.id = $id;",
            [new("$ws", workspaceId), new("$id", fileId)],
            Read,
            cancellationToken);

    public Task<Page<FileRecord>> ListAsync(FileListQuery query, CancellationToken cancellationToken)
    {
        var parameters = new List<SqliteParameter>(8);
        string sql = BuildListSql(query, parameters, time.GetUtcNow().ToUnixTimeSeconds());
        var items = database.Query(sql, parameters, Read, cancellationToken);
        bool hasMore = items.Count > query.Limit;
        if (hasMore)
        {
            items.RemoveAt(items.Count - 1);
        }
        if (query.Before is not null)
        {
            // A 'before' page is read away from the cursor and handed back in the list's order.
            items.Reverse();
        }
        return Task.FromResult(new Page<FileRecord>(items, hasMore));
    }

    /// <summary>
    /// Builds one keyset query. A provider filter drives the scan over <c>file_copies</c>' key (workspace, provider,
    /// file id), else the first metadata filter (when any) over <c>file_metadata</c>'s key (workspace, key, value,
    /// file id); otherwise SQLite uses the files index that matches the filters.
    /// </summary>
    internal static string BuildListSql(FileListQuery query, List<SqliteParameter> parameters, long nowUnixSeconds)
    {
        // Scan direction: 'after' reads in the list's order; 'before' reads away from the cursor, in reverse.
        bool scanDescending = query.Before is null ? query.Descending : !query.Descending;
        string? cursor = query.After ?? query.Before;
        // A provider filter drives the scan over file_copies' key (workspace, provider, file id); else the first
        // metadata filter (when any) over file_metadata's key; else a files index.
        bool drivenByCopies = query.Provider is not null;
        bool drivenByMetadata = !drivenByCopies && query.Metadata.Count > 0;
        string idColumn = drivenByCopies ? "c.file_id" : drivenByMetadata ? "m0.file_id" : "f.id";

        var sql = new StringBuilder(512);
        sql.Append("SELECT ").Append(Columns);
        if (drivenByCopies)
        {
            sql.Append(" FROM file_copies c CROSS JOIN files f ON f.workspace_id = c.workspace_id AND f.id = c.file_id")
               .Append(" WHERE c.workspace_id = $ws AND c.provider = $provider");
            parameters.Add(new SqliteParameter("$provider", query.Provider));
        }
        else if (drivenByMetadata)
        {
            sql.Append(" FROM file_metadata m0 CROSS JOIN files f ON f.workspace_id = m0.workspace_id AND f.id = m0.file_id")
               .Append(" WHERE m0.workspace_id = $ws AND m0.key = $k0 AND m0.value = $v0");
            parameters.Add(new SqliteParameter("$k0", query.Metadata[0].Key));
            parameters.Add(new SqliteParameter("$v0", query.Metadata[0].Value));
        }
        else
        {
            // Name the index: without statistics (no ANALYZE) SQLite would walk the primary key and test the
            // filter row by row, so a rare value would cost a walk over the whole workspace.
            sql.Append(" FROM files f").Append(FilterIndex(query)).Append(" WHERE f.workspace_id = $ws");
        }
        parameters.Add(new SqliteParameter("$ws", query.WorkspaceId));

        if (cursor is not null)
        {
            sql.Append(" AND ").Append(idColumn).Append(scanDescending ? " < $cursor" : " > $cursor");
            parameters.Add(new SqliteParameter("$cursor", cursor));
        }
        if (query.Purpose is not null)
        {
            sql.Append(" AND f.purpose = $purpose");
            parameters.Add(new SqliteParameter("$purpose", query.Purpose));
        }
        if (query.Status == FileStatus.Processing)
        {
            // A file being processed is 'uploaded' until done; the status index narrows the scan to those.
            sql.Append(" AND f.status = 'uploaded' AND f.processing_status IN ('queued', 'processing')");
        }
        else if (query.Status is not null)
        {
            sql.Append(" AND f.status = $status");
            parameters.Add(new SqliteParameter("$status", query.Status));
        }
        if (query.Collection is not null)
        {
            sql.Append(" AND f.collection = $collection");
            parameters.Add(new SqliteParameter("$collection", query.Collection));
        }
        for (int i = drivenByMetadata ? 1 : 0; i < query.Metadata.Count; i++)
        {
            sql.Append(" AND EXISTS (SELECT 1 FROM file_metadata m WHERE m.workspace_id = f.workspace_id AND m.key = $k")
               .Append(i).Append(" AND m.value = $v").Append(i).Append(" AND m.file_id = f.id)");
            parameters.Add(new SqliteParameter("$k" + i, query.Metadata[i].Key));
            parameters.Add(new SqliteParameter("$v" + i, query.Metadata[i].Value));
        }
        sql.Append(" AND (f.expires_at IS NULL OR f.expires_at > $now)");
        parameters.Add(new SqliteParameter("$now", nowUnixSeconds));

        sql.Append(" ORDER BY ").Append(idColumn).Append(scanDescending ? " DESC" : " ASC")
           .Append(' ').Append(SqliteDatabase.Limit(query.Limit + 1)).Append(';');
        return sql.ToString();
    }

    /// <summary>The index whose range holds the page: the most selective filter given, else the primary key.</summary>
    private static string FilterIndex(FileListQuery query) =>
        query.Collection is not null ? " INDEXED BY ix_files_collection"
        : query.Purpose is not null ? " INDEXED BY ix_files_purpose"
        : query.Status is not null ? " INDEXED BY ix_files_status"
        : "";

    /// <summary>
    /// Deletes the row, and turns its provider copies into upstream deletions, due at once; on a full disk too
    /// (<see cref="SqliteDatabase.WriteFreeingSpaceAsync{T}"/>: a deletion row is smaller than the copy row it replaces).
    /// </summary>
    public Task<bool> DeleteAsync(string workspaceId, string fileId, CancellationToken cancellationToken) =>
        database.WriteFreeingSpaceAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                UPDATE workspaces SET usage_bytes = usage_bytes - (SELECT bytes FROM files WHERE workspace_id = $ws AND id = $id)
                    WHERE id = $ws AND EXISTS (SELECT 1 FROM files WHERE workspace_id = $ws AND id = $id);
                INSERT OR IGNORE INTO upstream_deletions (provider, upstream_id, file_id, attempts, next_attempt_at)
                    SELECT provider, upstream_id, file_id, 0, $now FROM file_copies
                    WHERE file_id = $id AND workspace_id = $ws AND EXISTS (SELECT 1 FROM files WHERE workspace_id = $ws AND id = $id);
                DELETE FROM file_copies WHERE file_id = $id AND workspace_id = $ws;
                DELETE FROM file_metadata WHERE file_id = $id AND workspace_id = $ws;
                DELETE FROM upload_parts WHERE file_id = $id AND workspace_id = $ws;
                DELETE FROM files WHERE workspace_id = $ws AND id = $id;
                SELECT changes();
                """;
            command.Parameters.AddWithValue("$ws", workspaceId);
            command.Parameters.AddWithValue("$id", fileId);
            command.Parameters.AddWithValue("$now", time.GetUtcNow().ToUnixTimeSeconds());
            return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) > 0;
        }, cancellationToken);

    public Task<IReadOnlyList<FileRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT {Columns} FROM files f WHERE f.expires_at IS NOT NULL AND f.expires_at <= $now ORDER BY f.expires_at {SqliteDatabase.Limit(max)};",
            [new("$now", nowUnixSeconds)],
            Read,
            cancellationToken);

    public async Task<bool> SetSha256Async(string workspaceId, string fileId, string sha256, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            "UPDATE files SET sha256 = $sha WHERE workspace_id = $ws AND id = $id AND sha256 IS NULL;",
            p => { p.AddWithValue("$ws", workspaceId); p.AddWithValue("$id", fileId); p.AddWithValue("$sha", sha256); },
            cancellationToken) > 0;

    public Task<IReadOnlyList<FileRecord>> ListUnhashedAsync(string? afterId, int max, long nowUnixMilliseconds, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT {Columns} FROM files f INDEXED BY ix_files_unhashed WHERE f.sha256 IS NULL AND f.id > $after AND f.hash_until <= $now ORDER BY f.id {SqliteDatabase.Limit(max)};",
            [new("$after", afterId ?? ""), new("$now", nowUnixMilliseconds)],
            Read,
            cancellationToken);

    public async Task<bool> ClaimHashingAsync(
        string workspaceId, string fileId, string owner, long nowUnixMilliseconds, long untilUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            """
            UPDATE files SET hash_owner = $owner, hash_until = $until
            WHERE workspace_id = $ws AND id = $id AND sha256 IS NULL AND (hash_until <= $now OR hash_owner = $owner);
            """,
            p =>
            {
                p.AddWithValue("$ws", workspaceId);
                p.AddWithValue("$id", fileId);
                p.AddWithValue("$owner", owner);
                p.AddWithValue("$now", nowUnixMilliseconds);
                p.AddWithValue("$until", untilUnixMilliseconds);
            },
            cancellationToken) > 0;

    public Task ReleaseHashingAsync(string workspaceId, string fileId, string owner, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "UPDATE files SET hash_owner = NULL, hash_until = 0 WHERE workspace_id = $ws AND id = $id AND hash_owner = $owner;",
            p =>
            {
                p.AddWithValue("$ws", workspaceId);
                p.AddWithValue("$id", fileId);
                p.AddWithValue("$owner", owner);
            },
            cancellationToken);

    public Task<IReadOnlySet<string>> FindExistingAsync(IReadOnlyCollection<string> fileIds, CancellationToken cancellationToken) =>
        database.FindExistingIdsAsync("files", fileIds, cancellationToken);

    public Task CheckAsync(CancellationToken cancellationToken) =>
        Task.FromResult(database.Query("SELECT count(*) FROM sqlite_schema;", [], r => r.Int64(0), cancellationToken));

    private static FileRecord Read(SqliteRow row) => new()
    {
        WorkspaceId = row.String(0),
        Id = row.String(1),
        Bytes = row.Int64(2),
        CreatedAt = row.Int64(3),
        Filename = row.String(4),
        Purpose = row.String(5),
        Status = row.String(6),
        StatusDetails = row.NullableString(7),
        ExpiresAt = row.NullableInt64(8),
        Metadata = Metadata(row.Utf8(9)),
        Collection = row.NullableString(10),
        Provider = row.String(11),
        Sha256 = row.NullableString(12),
        ContentType = row.NullableString(13),
        Segmented = row.Int64(14) != 0,
    };

    // An object of strings (as InsertAsync writes it; null when empty), read in place: the serializer's entry costs
    // more than the reading.
    private static IReadOnlyDictionary<string, string> Metadata(ReadOnlySpan<byte> json)
    {
        if (json.IsEmpty)
        {
            return FileRecord.EmptyMetadata;
        }
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new InvalidOperationException("A file's metadata is not a JSON object.");
        }
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = reader.GetString()!;
            metadata[key] = reader.Read() && reader.TokenType == JsonTokenType.String
                ? reader.GetString()!
                : throw new InvalidOperationException("A file's metadata holds a value that is not a string.");
        }
        return metadata; // Utf8JsonReader rejects malformed JSON, so the loop ended on the object's end
    }
}
