using System.Text;
using System.Text.Json;
using Npgsql;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>
/// Files in PostgreSQL. A page is one range scan of an index that starts with the workspace id and ends with the file
/// id (ids compare bytewise, <c>COLLATE "C"</c>): the primary key, a per-filter index, <c>file_copies</c>' key for a
/// provider filter, or <c>file_metadata</c>'s key for a <c>metadata.k=v</c> filter. The usage a file adds is written by
/// an <c>UPDATE</c> of its workspace's row whose quota condition PostgreSQL checks again on the row's latest version
/// once it holds its lock, so uploads on several nodes at once never take a workspace past its quota.
/// </summary>
internal sealed class PostgresFileCatalog(PostgresDatabase database, TimeProvider time) : IFileCatalog
{
    // The columns Read maps, in its order.
    private const string Columns =
        "f.workspace_id, f.id, f.bytes, f.created_at, f.filename, f.purpose, f.status, f.status_details, " +
        "f.expires_at, f.metadata, f.collection, f.provider, f.sha256, f.content_type, f.segmented";

    public Task<FileInsertOutcome> InsertAsync(FileRecord file, CancellationToken cancellationToken) =>
        database.InTransactionAsync((connection, transaction) => InsertAsync(connection, transaction, file, 0, cancellationToken), cancellationToken);

    /// <summary>
    /// The insert inside a caller's transaction (completing an upload writes more in the same one). The file's bytes
    /// take the place of <paramref name="releasedBytes"/> already counted in the usage (a completed upload's), so only
    /// what goes beyond them meets the quota check.
    /// </summary>
    internal static async Task<FileInsertOutcome> InsertAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, FileRecord file, long releasedBytes, CancellationToken cancellationToken)
    {
        await using (var usage = new NpgsqlCommand(null, connection, transaction))
        {
            // The row lock the UPDATE takes is held to the commit: the check and the new usage see every other
            // node's committed change, and none can slip in between.
            usage.CommandText = """
                UPDATE workspaces SET usage_bytes = usage_bytes + @bytes - @released
                WHERE id = @ws AND deleted_at IS NULL
                    AND (storage_quota_bytes IS NULL OR @bytes <= @released OR usage_bytes + @bytes - @released <= storage_quota_bytes);
                """;
            usage.Parameters.AddText("@ws", file.WorkspaceId);
            usage.Parameters.AddInt64("@bytes", file.Bytes);
            usage.Parameters.AddInt64("@released", releasedBytes);
            if (await usage.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                usage.CommandText = "SELECT deleted_at IS NULL FROM workspaces WHERE id = @ws;";
                switch (await usage.ExecuteScalarAsync(cancellationToken))
                {
                    case true:
                        return FileInsertOutcome.QuotaExceeded;
                    case false:
                        return FileInsertOutcome.WorkspaceDeleted;
                    // No row: a workspace without one has no quota.
                }
            }
        }

        await using var command = new NpgsqlCommand(null, connection, transaction);
        command.CommandText = """
            INSERT INTO files (workspace_id, id, bytes, created_at, filename, purpose, status, status_details, expires_at,
                               metadata, collection, provider, sha256, content_type, segmented)
            VALUES (@ws, @id, @bytes, @created, @filename, @purpose, @status, @details, @expires,
                    @metadata, @collection, @provider, @sha, @ctype, @segmented);
            """;
        var p = command.Parameters;
        p.AddText("@ws", file.WorkspaceId);
        p.AddText("@id", file.Id);
        p.AddInt64("@bytes", file.Bytes);
        p.AddInt64("@created", file.CreatedAt);
        p.AddText("@filename", file.Filename);
        p.AddText("@purpose", file.Purpose);
        p.AddText("@status", file.Status);
        p.AddText("@details", file.StatusDetails);
        p.AddInt64("@expires", file.ExpiresAt);
        p.AddText("@metadata", file.Metadata.Count == 0
            ? null
            : JsonSerializer.Serialize(file.Metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString));
        p.AddText("@collection", file.Collection);
        p.AddText("@provider", file.Provider);
        p.AddText("@sha", file.Sha256);
        p.AddText("@ctype", file.ContentType);
        p.AddBoolean("@segmented", file.Segmented);
        await command.ExecuteNonQueryAsync(cancellationToken);

        if (file.Metadata.Count > 0)
        {
            await using var meta = new NpgsqlCommand(
                "INSERT INTO file_metadata (workspace_id, key, value, file_id) SELECT @ws, k, v, @id FROM unnest(@keys, @values) AS m(k, v);",
                connection, transaction);
            meta.Parameters.AddText("@ws", file.WorkspaceId);
            meta.Parameters.AddText("@id", file.Id);
            meta.Parameters.AddTextArray("@keys", file.Metadata.Keys);
            meta.Parameters.AddTextArray("@values", file.Metadata.Values);
            await meta.ExecuteNonQueryAsync(cancellationToken);
        }
        return FileInsertOutcome.Inserted;
    }

    public Task<FileRecord?> GetAsync(string workspaceId, string fileId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {Columns} FROM files f WHERE f.workspace_id = @ws AND f.id = @id;",
            p => { p.AddText("@ws", workspaceId); p.AddText("@id", fileId); },
            Read,
            cancellationToken);

    public async Task<Page<FileRecord>> ListAsync(FileListQuery query, CancellationToken cancellationToken)
    {
        var parameters = new List<NpgsqlParameter>(12);
        string sql = BuildListSql(query, parameters, time.GetUtcNow().ToUnixTimeSeconds());
        var items = await database.QueryInIndexOrderAsync(sql, p => p.AddRange(parameters.ToArray()), Read, cancellationToken, IsOneRange(query));
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
        return new Page<FileRecord>(items, hasMore);
    }

    /// <summary>
    /// Whether the page is one index range whatever the values: no filter, or one that has an index of its own
    /// (purpose, status, collection, provider, one metadata pair). With two or more, which range to read depends on how
    /// many rows each matches, and the page is planned with its values.
    /// </summary>
    internal static bool IsOneRange(FileListQuery query) =>
        (query.Purpose is null ? 0 : 1) + (query.Status is null ? 0 : 1) + (query.Collection is null ? 0 : 1)
        + (query.Provider is null ? 0 : 1) + query.Metadata.Count <= 1;

    /// <summary>
    /// Builds one keyset query. A provider filter drives the scan over <c>file_copies</c>' key (workspace, provider,
    /// file id), else the first metadata filter (when any) over <c>file_metadata</c>'s key (workspace, key, value,
    /// file id); otherwise PostgreSQL scans the files index whose columns the filters and the order match.
    /// </summary>
    internal static string BuildListSql(FileListQuery query, List<NpgsqlParameter> parameters, long nowUnixSeconds)
    {
        // Scan direction: 'after' reads in the list's order; 'before' reads away from the cursor, in reverse.
        bool scanDescending = query.Before is null ? query.Descending : !query.Descending;
        string? cursor = query.After ?? query.Before;
        bool drivenByCopies = query.Provider is not null;
        bool drivenByMetadata = !drivenByCopies && query.Metadata.Count > 0;
        string idColumn = drivenByCopies ? "c.file_id" : drivenByMetadata ? "m0.file_id" : "f.id";

        var sql = new StringBuilder(512);
        sql.Append("SELECT ").Append(Columns);
        if (drivenByCopies)
        {
            sql.Append(" FROM file_copies c JOIN files f ON f.workspace_id = c.workspace_id AND f.id = c.file_id")
               .Append(" WHERE c.workspace_id = @ws AND c.provider = @provider");
            parameters.Add(Text("@provider", query.Provider));
        }
        else if (drivenByMetadata)
        {
            sql.Append(" FROM file_metadata m0 JOIN files f ON f.workspace_id = m0.workspace_id AND f.id = m0.file_id")
               .Append(" WHERE m0.workspace_id = @ws AND m0.key = @k0 AND m0.value = @v0");
            parameters.Add(Text("@k0", query.Metadata[0].Key));
            parameters.Add(Text("@v0", query.Metadata[0].Value));
        }
        else
        {
            sql.Append(" FROM files f WHERE f.workspace_id = @ws");
        }
        parameters.Add(Text("@ws", query.WorkspaceId));

        if (cursor is not null)
        {
            sql.Append(" AND ").Append(idColumn).Append(scanDescending ? " < @cursor" : " > @cursor");
            parameters.Add(Text("@cursor", cursor));
        }
        if (query.Purpose is not null)
        {
            sql.Append(" AND f.purpose = @purpose");
            parameters.Add(Text("@purpose", query.Purpose));
        }
        if (query.Status == FileStatus.Processing)
        {
            // A file being processed is 'uploaded' until done; the status index narrows the scan to those.
            sql.Append(" AND f.status = 'uploaded' AND f.processing_status IN ('queued', 'processing')");
        }
        else if (query.Status is not null)
        {
            sql.Append(" AND f.status = @status");
            parameters.Add(Text("@status", query.Status));
        }
        if (query.Collection is not null)
        {
            sql.Append(" AND f.collection = @collection");
            parameters.Add(Text("@collection", query.Collection));
        }
        for (int i = drivenByMetadata ? 1 : 0; i < query.Metadata.Count; i++)
        {
            sql.Append(" AND EXISTS (SELECT 1 FROM file_metadata m WHERE m.workspace_id = f.workspace_id AND m.key = @k")
               .Append(i).Append(" AND m.value = @v").Append(i).Append(" AND m.file_id = f.id)");
            parameters.Add(Text("@k" + i, query.Metadata[i].Key));
            parameters.Add(Text("@v" + i, query.Metadata[i].Value));
        }
        sql.Append(" AND (f.expires_at IS NULL OR f.expires_at > @now)");
        parameters.Add(new NpgsqlParameter("@now", NpgsqlTypes.NpgsqlDbType.Bigint) { Value = nowUnixSeconds });

        sql.Append(" ORDER BY ").Append(idColumn).Append(scanDescending ? " DESC" : " ASC").Append(" LIMIT @limit;");
        parameters.Add(new NpgsqlParameter("@limit", NpgsqlTypes.NpgsqlDbType.Integer) { Value = query.Limit + 1 });
        return sql.ToString();
    }

    private static NpgsqlParameter Text(string name, string? value) =>
        new(name, NpgsqlTypes.NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    /// <summary>
    /// Deletes the row first (which waits for a transaction that holds the file, e.g. recording a copy of it), then takes
    /// its bytes out of the usage and turns its provider copies into upstream deletions, due at once; each statement
    /// after the first sees what such a transaction committed.
    /// </summary>
    public Task<bool> DeleteAsync(string workspaceId, string fileId, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand("DELETE FROM files WHERE workspace_id = @ws AND id = @id RETURNING bytes;", connection, transaction);
            command.Parameters.AddText("@ws", workspaceId);
            command.Parameters.AddText("@id", fileId);
            command.Parameters.AddInt64("@now", time.GetUtcNow().ToUnixTimeSeconds());
            object? deleted = await command.ExecuteScalarAsync(cancellationToken);
            bool existed = deleted is long;
            if (deleted is long bytes)
            {
                command.CommandText = "UPDATE workspaces SET usage_bytes = usage_bytes - @bytes WHERE id = @ws;";
                command.Parameters.AddInt64("@bytes", bytes);
                await command.ExecuteNonQueryAsync(cancellationToken);
                command.CommandText = """
                    INSERT INTO upstream_deletions (provider, upstream_id, file_id, attempts, next_attempt_at)
                        SELECT provider, upstream_id, file_id, 0, @now FROM file_copies WHERE file_id = @id AND workspace_id = @ws
                    ON CONFLICT DO NOTHING;
                    """;
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            command.CommandText = """
                DELETE FROM file_copies WHERE file_id = @id AND workspace_id = @ws;
                DELETE FROM file_metadata WHERE file_id = @id AND workspace_id = @ws;
                DELETE FROM upload_parts WHERE file_id = @id AND workspace_id = @ws;
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            return existed;
        }, cancellationToken);

    public async Task<IReadOnlyList<FileRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            $"SELECT {Columns} FROM files f WHERE f.expires_at IS NOT NULL AND f.expires_at <= @now ORDER BY f.expires_at LIMIT @max;",
            p => { p.AddInt64("@now", nowUnixSeconds); p.AddInt32("@max", max); },
            Read,
            cancellationToken);

    public async Task<bool> SetSha256Async(string workspaceId, string fileId, string sha256, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            "UPDATE files SET sha256 = @sha WHERE workspace_id = @ws AND id = @id AND sha256 IS NULL;",
            p => { p.AddText("@ws", workspaceId); p.AddText("@id", fileId); p.AddText("@sha", sha256); },
            cancellationToken) > 0;

    public async Task<IReadOnlyList<FileRecord>> ListUnhashedAsync(string? afterId, int max, long nowUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            $"SELECT {Columns} FROM files f WHERE f.sha256 IS NULL AND f.id > @after AND f.hash_until <= @now ORDER BY f.id LIMIT @max;",
            p => { p.AddText("@after", afterId ?? ""); p.AddInt32("@max", max); p.AddInt64("@now", nowUnixMilliseconds); },
            Read,
            cancellationToken);

    /// <summary>
    /// One <c>UPDATE</c>: its condition is checked again on the row's latest version once PostgreSQL holds the row's
    /// lock, so two nodes claiming a file at once never both get it.
    /// </summary>
    public async Task<bool> ClaimHashingAsync(
        string workspaceId, string fileId, string owner, long nowUnixMilliseconds, long untilUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            """
            UPDATE files SET hash_owner = @owner, hash_until = @until
            WHERE workspace_id = @ws AND id = @id AND sha256 IS NULL AND (hash_until <= @now OR hash_owner = @owner);
            """,
            p =>
            {
                p.AddText("@ws", workspaceId);
                p.AddText("@id", fileId);
                p.AddText("@owner", owner);
                p.AddInt64("@now", nowUnixMilliseconds);
                p.AddInt64("@until", untilUnixMilliseconds);
            },
            cancellationToken) > 0;

    public Task ReleaseHashingAsync(string workspaceId, string fileId, string owner, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "UPDATE files SET hash_owner = NULL, hash_until = 0 WHERE workspace_id = @ws AND id = @id AND hash_owner = @owner;",
            p => { p.AddText("@ws", workspaceId); p.AddText("@id", fileId); p.AddText("@owner", owner); },
            cancellationToken);

    public Task<IReadOnlySet<string>> FindExistingAsync(IReadOnlyCollection<string> fileIds, CancellationToken cancellationToken) =>
        database.FindExistingIdsAsync("files", fileIds, cancellationToken);

    public Task CheckAsync(CancellationToken cancellationToken) =>
        database.QueryAsync("SELECT version FROM schema_version;", null, r => r.GetInt32(0), cancellationToken);

    private static FileRecord Read(NpgsqlDataReader row) => new()
    {
        WorkspaceId = row.GetString(0),
        Id = row.GetString(1),
        Bytes = row.GetInt64(2),
        CreatedAt = row.GetInt64(3),
        Filename = row.GetString(4),
        Purpose = row.GetString(5),
        Status = row.GetString(6),
        StatusDetails = row.NullableString(7),
        ExpiresAt = row.NullableInt64(8),
        Metadata = row.IsDBNull(9)
            ? FileRecord.EmptyMetadata
            : JsonSerializer.Deserialize(row.GetString(9), StorageJsonContext.Default.IReadOnlyDictionaryStringString) ?? FileRecord.EmptyMetadata,
        Collection = row.NullableString(10),
        Provider = row.GetString(11),
        Sha256 = row.NullableString(12),
        ContentType = row.NullableString(13),
        Segmented = row.GetBoolean(14),
    };
}
