using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wharf.Core.Batches;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// Batches in SQLite. The engine's writes check the lease in the same transaction as what they write
/// (<c>lease_owner = $owner</c>), so a node that lost its lease writes nothing. A chunk is a row of
/// <c>upload_parts</c> (its blob is named by the part id, as an upload's parts are) and of <c>batch_chunks</c>; a result
/// file is made by making the batch's chunks of its kind the file's segments, in the order they were recorded.
/// </summary>
internal sealed class SqliteBatchCatalog(SqliteDatabase database) : IBatchCatalog
{
    private const string Columns =
        "workspace_id, id, endpoint, input_file_id, completion_window, execution, provider, status, created_at, expires_at, " +
        "in_progress_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at, " +
        "output_file_id, error_file_id, errors, metadata, output_expires_after, total, completed, failed, " +
        "input_tokens, cached_tokens, output_tokens, reasoning_tokens, total_tokens, " +
        "native_provider, native_batch_id, native_next_poll_at, native_polls";

    private const string ActiveStatuses = "('validating', 'in_progress', 'finalizing', 'cancelling')";

    public Task<bool> InsertAsync(BatchRecord batch, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$ws", batch.WorkspaceId);
            command.CommandText = "SELECT deleted_at IS NOT NULL FROM workspaces WHERE id = $ws;";
            if (await command.ExecuteScalarAsync(cancellationToken) is long deleted && deleted != 0)
            {
                return false;
            }
            command.CommandText = $"""
                INSERT INTO batches ({Columns})
                VALUES ($ws, $id, $endpoint, $input, $window, $execution, $provider, $status, $created, $expires,
                    $inProgress, $finalizing, $completed, $failed, $expired, $cancelling, $cancelled,
                    $output, $error, $errors, $metadata, $outputExpires, $total, 0, 0, 0, 0, 0, 0, 0,
                    $nativeProvider, $nativeId, $nativePoll, $nativePolls);
                """;
            Bind(command.Parameters, batch);
            command.Parameters.AddWithValue("$endpoint", batch.Endpoint);
            command.Parameters.AddWithValue("$input", batch.InputFileId);
            command.Parameters.AddWithValue("$window", batch.CompletionWindow);
            command.Parameters.AddWithValue("$execution", batch.Execution);
            command.Parameters.AddWithValue("$provider", (object?)batch.Provider ?? DBNull.Value);
            command.Parameters.AddWithValue("$created", batch.CreatedAt);
            command.Parameters.AddWithValue("$metadata", batch.Metadata is null
                ? DBNull.Value
                : JsonSerializer.Serialize(batch.Metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString));
            command.Parameters.AddWithValue("$outputExpires", (object?)batch.OutputExpiresAfterSeconds ?? DBNull.Value);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public Task<BatchRecord?> GetAsync(string workspaceId, string batchId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {Columns} FROM batches WHERE workspace_id = $ws AND id = $id;",
            [new("$ws", workspaceId), new("$id", batchId)],
            Read,
            cancellationToken);

    public Task<Page<BatchRecord>> ListAsync(string workspaceId, int limit, string? after, CancellationToken cancellationToken)
    {
        // Ids are time-ordered: descending id order is newest first. '~' sorts after every id character.
        var items = database.Query(
            $"SELECT {Columns} FROM batches WHERE workspace_id = $ws AND id < $after ORDER BY id DESC {SqliteDatabase.Limit(limit + 1)};",
            [new("$ws", workspaceId), new("$after", after ?? "~")],
            Read,
            cancellationToken);
        bool hasMore = items.Count > limit;
        if (hasMore)
        {
            items.RemoveAt(items.Count - 1);
        }
        return Task.FromResult(new Page<BatchRecord>(items, hasMore));
    }

    public async Task<BatchRecord?> RequestCancelAsync(string workspaceId, string batchId, long nowUnixSeconds, CancellationToken cancellationToken) =>
        await ReadCommittedAsync(await database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"""
                UPDATE batches SET status = 'cancelling', cancelling_at = $now,
                    native_next_poll_at = CASE WHEN native_next_poll_at IS NULL THEN NULL ELSE 0 END
                WHERE workspace_id = $ws AND id = $id AND status IN ('validating', 'in_progress');
                SELECT id FROM batches WHERE workspace_id = $ws AND id = $id;
                """;
            command.Parameters.AddWithValue("$ws", workspaceId);
            command.Parameters.AddWithValue("$id", batchId);
            command.Parameters.AddWithValue("$now", nowUnixSeconds);
            return await WrittenIdAsync(command, cancellationToken);
        }, cancellationToken), cancellationToken);

    public async Task<BatchRecord?> ClaimAsync(
        string owner, long nowUnixMilliseconds, long leaseUntilUnixMilliseconds, IReadOnlyCollection<string> skip, CancellationToken cancellationToken) =>
        await ReadCommittedAsync(await database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"""
                UPDATE batches SET lease_owner = $owner, lease_until = $until
                WHERE id = (SELECT id FROM batches
                    WHERE status IN {ActiveStatuses} AND lease_until <= $now
                        AND (native_next_poll_at IS NULL OR native_next_poll_at * 1000 <= $now)
                        AND id NOT IN (SELECT value FROM json_each($skip))
                    ORDER BY lease_until, id LIMIT 1)
                RETURNING id;
                """;
            command.Parameters.AddWithValue("$owner", owner);
            command.Parameters.AddWithValue("$until", leaseUntilUnixMilliseconds);
            command.Parameters.AddWithValue("$now", nowUnixMilliseconds);
            command.Parameters.AddWithValue("$skip", JsonSerializer.Serialize(skip, StorageJsonContext.Default.IReadOnlyCollectionString));
            return await WrittenIdAsync(command, cancellationToken);
        }, cancellationToken), cancellationToken);

    public async Task<bool> RenewLeaseAsync(string batchId, string owner, long leaseUntilUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            "UPDATE batches SET lease_until = $until WHERE id = $id AND lease_owner = $owner;",
            p =>
            {
                p.AddWithValue("$id", batchId);
                p.AddWithValue("$owner", owner);
                p.AddWithValue("$until", leaseUntilUnixMilliseconds);
            },
            cancellationToken) > 0;

    public Task ReleaseLeaseAsync(string batchId, string owner, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "UPDATE batches SET lease_owner = NULL, lease_until = 0 WHERE id = $id AND lease_owner = $owner;",
            p =>
            {
                p.AddWithValue("$id", batchId);
                p.AddWithValue("$owner", owner);
            },
            cancellationToken);

    public async Task<BatchRecord?> UpdateAsync(BatchRecord batch, string owner, CancellationToken cancellationToken) =>
        await ReadCommittedAsync(await database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            // A cancel asked meanwhile is kept (with its cancelling_at) unless the batch ends now.
            command.CommandText = $"""
                UPDATE batches SET
                    status = CASE WHEN status = 'cancelling' AND $status NOT IN ('completed', 'failed', 'expired', 'cancelled') THEN status ELSE $status END,
                    in_progress_at = $inProgress, finalizing_at = $finalizing, completed_at = $completed, failed_at = $failed,
                    expired_at = $expired, cancelling_at = coalesce(cancelling_at, $cancelling), cancelled_at = $cancelled,
                    output_file_id = $output, error_file_id = $error, errors = $errors, total = $total, expires_at = $expires,
                    native_provider = $nativeProvider, native_batch_id = $nativeId, native_next_poll_at = $nativePoll, native_polls = $nativePolls
                WHERE workspace_id = $ws AND id = $id AND lease_owner = $owner;
                SELECT id FROM batches WHERE workspace_id = $ws AND id = $id AND changes() > 0;
                """;
            Bind(command.Parameters, batch);
            command.Parameters.AddWithValue("$owner", owner);
            return await WrittenIdAsync(command, cancellationToken);
        }, cancellationToken), cancellationToken);

    public async Task<bool> MirrorProgressAsync(string batchId, string owner, BatchRequestCounts counts, BatchUsage usage, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            """
            UPDATE batches SET total = $total, completed = $completed, failed = $failed,
                input_tokens = $input, cached_tokens = $cached, output_tokens = $outputTokens, reasoning_tokens = $reasoning, total_tokens = $tokens
            WHERE id = $id AND lease_owner = $owner;
            """,
            p =>
            {
                p.AddWithValue("$id", batchId);
                p.AddWithValue("$owner", owner);
                p.AddWithValue("$total", counts.Total);
                p.AddWithValue("$completed", counts.Completed);
                p.AddWithValue("$failed", counts.Failed);
                BindUsage(p, usage);
            },
            cancellationToken) > 0;

    public Task<bool> RecordChunkAsync(BatchChunk chunk, string owner, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$batch", chunk.BatchId);
            command.Parameters.AddWithValue("$ws", chunk.WorkspaceId);
            command.Parameters.AddWithValue("$owner", owner);
            command.Parameters.AddWithValue("$kind", KindName(chunk.Kind));
            command.Parameters.AddWithValue("$part", chunk.PartId);
            command.Parameters.AddWithValue("$bytes", chunk.Bytes);
            command.Parameters.AddWithValue("$sha", chunk.Sha256);
            command.Parameters.AddWithValue("$created", chunk.CreatedAt);
            command.Parameters.AddWithValue("$lines", JsonSerializer.Serialize(chunk.Lines, StorageJsonContext.Default.IReadOnlyListInt32));
            command.Parameters.AddWithValue("$completed", chunk.Completed);
            command.Parameters.AddWithValue("$failed", chunk.Failed);
            BindUsage(command.Parameters, chunk.Usage);
            command.CommandText = """
                UPDATE batches SET completed = completed + $completed, failed = failed + $failed,
                    input_tokens = input_tokens + $input, cached_tokens = cached_tokens + $cached,
                    output_tokens = output_tokens + $outputTokens, reasoning_tokens = reasoning_tokens + $reasoning,
                    total_tokens = total_tokens + $tokens
                WHERE workspace_id = $ws AND id = $batch AND lease_owner = $owner;
                """;
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return false;
            }
            // A line already done fails the primary key: the whole transaction, chunk and counts included, is undone.
            command.CommandText = """
                INSERT INTO batch_lines (batch_id, line) SELECT $batch, value FROM json_each($lines);
                INSERT INTO upload_parts (id, upload_id, workspace_id, bytes, sha256, created_at) VALUES ($part, $batch, $ws, $bytes, $sha, $created);
                INSERT INTO batch_chunks (batch_id, kind, seq, part_id, bytes)
                    VALUES ($batch, $kind, (SELECT coalesce(max(seq), 0) + 1 FROM batch_chunks WHERE batch_id = $batch AND kind = $kind), $part, $bytes);
                UPDATE workspaces SET usage_bytes = usage_bytes + $bytes WHERE id = $ws;
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public async Task<int> CountChunksAsync(string batchId, BatchFileKind kind, CancellationToken cancellationToken) =>
        (await database.QueryListAsync(
            "SELECT count(*) FROM batch_chunks WHERE batch_id = $batch AND kind = $kind;",
            [new("$batch", batchId), new("$kind", KindName(kind))],
            r => (int)r.Int64(0),
            cancellationToken))[0];

    public Task<IReadOnlyList<int>> ListDoneLinesAsync(string batchId, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            "SELECT line FROM batch_lines WHERE batch_id = $batch ORDER BY line;",
            [new("$batch", batchId)],
            r => (int)r.Int64(0),
            cancellationToken);

    public async Task<BatchRecord?> FinalizeAsync(BatchFinal final, string owner, CancellationToken cancellationToken) =>
        await ReadCommittedAsync(await database.WriteAsync<string?>(async (connection, transaction) =>
        {
            var batch = final.Batch;
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.Parameters.AddWithValue("$ws", batch.WorkspaceId);
            command.Parameters.AddWithValue("$id", batch.Id);
            command.Parameters.AddWithValue("$owner", owner);
            command.CommandText = "SELECT output_expires_after FROM batches WHERE workspace_id = $ws AND id = $id AND lease_owner = $owner;";
            long? outputExpiresAfter;
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                if (!await reader.ReadAsync(cancellationToken))
                {
                    return null;
                }
                outputExpiresAfter = reader.IsDBNull(0) ? null : reader.GetInt64(0);
            }
            long? expiresAt = outputExpiresAfter is { } seconds ? final.FilesCreatedAt + seconds : null;
            string? outputId = await MakeFileAsync(connection, transaction, batch, BatchFileKind.Output, final.OutputFileId, final.FilesCreatedAt, expiresAt, cancellationToken);
            string? errorId = await MakeFileAsync(connection, transaction, batch, BatchFileKind.Error, final.ErrorFileId, final.FilesCreatedAt, expiresAt, cancellationToken);

            command.CommandText = $"""
                UPDATE batches SET status = $status,
                    in_progress_at = $inProgress, finalizing_at = $finalizing, completed_at = $completed, failed_at = $failed,
                    expired_at = $expired, cancelling_at = coalesce(cancelling_at, $cancelling), cancelled_at = $cancelled,
                    output_file_id = $output, error_file_id = $error, errors = $errors, total = $total, expires_at = $expires,
                    native_provider = $nativeProvider, native_batch_id = $nativeId, native_next_poll_at = $nativePoll, native_polls = $nativePolls,
                    lease_owner = NULL, lease_until = 0
                WHERE workspace_id = $ws AND id = $id;
                """;
            Bind(command.Parameters, batch with { OutputFileId = outputId, ErrorFileId = errorId });
            await command.ExecuteNonQueryAsync(cancellationToken);

            // The run's bookkeeping goes with it: the result files now hold what the chunks and done lines recorded.
            command.CommandText = "DELETE FROM batch_lines WHERE batch_id = $id; DELETE FROM batch_chunks WHERE batch_id = $id;";
            await command.ExecuteNonQueryAsync(cancellationToken);

            if (final.Event is { } evt)
            {
                await using var queue = connection.CreateCommand();
                queue.Transaction = transaction;
                queue.CommandText = """
                    INSERT INTO webhook_events (id, workspace_id, type, created_at, payload, next_attempt_at)
                    SELECT $evt, $ws, $type, $created, $payload, $created
                    WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = $ws AND deleted_at IS NULL AND webhook_url IS NOT NULL);
                    """;
                queue.Parameters.AddWithValue("$evt", evt.Id);
                queue.Parameters.AddWithValue("$ws", evt.WorkspaceId);
                queue.Parameters.AddWithValue("$type", evt.Type);
                queue.Parameters.AddWithValue("$created", evt.CreatedAt);
                queue.Parameters.AddWithValue("$payload", evt.Payload);
                await queue.ExecuteNonQueryAsync(cancellationToken);
            }
            return batch.Id;
        }, cancellationToken), cancellationToken);

    /// <summary>
    /// Makes the batch's chunks of <paramref name="kind"/> the segments of a new file, in order; its bytes are
    /// already in the workspace's usage (counted as each chunk was recorded). Returns its id, or null when the batch
    /// has no chunk of that kind.
    /// </summary>
    private static async Task<string?> MakeFileAsync(
        SqliteConnection connection, SqliteTransaction transaction, BatchRecord batch, BatchFileKind kind, string fileId,
        long createdAt, long? expiresAt, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.Parameters.AddWithValue("$batch", batch.Id);
        command.Parameters.AddWithValue("$kind", KindName(kind));
        command.CommandText = "SELECT coalesce(sum(bytes), 0), count(*) FROM batch_chunks WHERE batch_id = $batch AND kind = $kind;";
        long bytes, chunks;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            (bytes, chunks) = (reader.GetInt64(0), reader.GetInt64(1));
        }
        if (chunks == 0)
        {
            return null;
        }
        var file = BatchResultFile.Record(batch, kind, fileId, bytes, createdAt, expiresAt);
        // The bytes were counted chunk by chunk: the file takes their place in the usage, past any quota.
        var inserted = await SqliteFileCatalog.InsertAsync(connection, transaction, file, bytes, cancellationToken);
        if (inserted != FileInsertOutcome.Inserted)
        {
            // The workspace was deleted: the chunks belong to no file. Their rows go; the orphan sweep removes their blobs.
            command.CommandText = """
                DELETE FROM upload_parts WHERE upload_id = $batch AND file_id IS NULL
                    AND id IN (SELECT part_id FROM batch_chunks WHERE batch_id = $batch AND kind = $kind);
                DELETE FROM batch_chunks WHERE batch_id = $batch AND kind = $kind;
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            return null;
        }
        command.Parameters.AddWithValue("$file", fileId);
        command.CommandText = """
            UPDATE upload_parts SET file_id = $file,
                seq = (SELECT c.seq FROM batch_chunks c WHERE c.batch_id = $batch AND c.kind = $kind AND c.part_id = upload_parts.id)
            WHERE upload_id = $batch AND id IN (SELECT part_id FROM batch_chunks WHERE batch_id = $batch AND kind = $kind);
            """;
        await command.ExecuteNonQueryAsync(cancellationToken);
        return fileId;
    }

    private static string KindName(BatchFileKind kind) => kind == BatchFileKind.Output ? "output" : "error";

    /// <summary>Binds what an update writes: status, timestamps, files, errors, total, expiry and native state.</summary>
    private static void Bind(SqliteParameterCollection p, BatchRecord batch)
    {
        Set(p, "$ws", batch.WorkspaceId);
        Set(p, "$id", batch.Id);
        p.AddWithValue("$status", batch.Status);
        p.AddWithValue("$expires", batch.ExpiresAt);
        p.AddWithValue("$inProgress", (object?)batch.InProgressAt ?? DBNull.Value);
        p.AddWithValue("$finalizing", (object?)batch.FinalizingAt ?? DBNull.Value);
        p.AddWithValue("$completed", (object?)batch.CompletedAt ?? DBNull.Value);
        p.AddWithValue("$failed", (object?)batch.FailedAt ?? DBNull.Value);
        p.AddWithValue("$expired", (object?)batch.ExpiredAt ?? DBNull.Value);
        p.AddWithValue("$cancelling", (object?)batch.CancellingAt ?? DBNull.Value);
        p.AddWithValue("$cancelled", (object?)batch.CancelledAt ?? DBNull.Value);
        p.AddWithValue("$output", (object?)batch.OutputFileId ?? DBNull.Value);
        p.AddWithValue("$error", (object?)batch.ErrorFileId ?? DBNull.Value);
        p.AddWithValue("$errors", batch.Errors.Count == 0
            ? DBNull.Value
            : JsonSerializer.Serialize(batch.Errors, StorageJsonContext.Default.IReadOnlyListBatchError));
        p.AddWithValue("$total", batch.RequestCounts.Total);
        p.AddWithValue("$nativeProvider", (object?)batch.Native?.Provider ?? DBNull.Value);
        p.AddWithValue("$nativeId", (object?)batch.Native?.UpstreamBatchId ?? DBNull.Value);
        p.AddWithValue("$nativePoll", (object?)batch.Native?.NextPollAt ?? DBNull.Value);
        p.AddWithValue("$nativePolls", batch.Native?.Polls ?? 0);
    }

    private static void Set(SqliteParameterCollection p, string name, object value)
    {
        if (p.Contains(name))
        {
            p[name].Value = value;
        }
        else
        {
            p.AddWithValue(name, value);
        }
    }

    private static void BindUsage(SqliteParameterCollection p, BatchUsage usage)
    {
        p.AddWithValue("$input", usage.InputTokens);
        p.AddWithValue("$cached", usage.CachedTokens);
        p.AddWithValue("$outputTokens", usage.OutputTokens);
        p.AddWithValue("$reasoning", usage.ReasoningTokens);
        p.AddWithValue("$tokens", usage.TotalTokens);
    }

    /// <summary>Runs a write whose last statement returns the batch's id (when it did its work); null otherwise.</summary>
    private static async Task<string?> WrittenIdAsync(SqliteCommand command, CancellationToken cancellationToken)
    {
        string? id = null;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        do
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                id = reader.GetString(0);
            }
        }
        while (await reader.NextResultAsync(cancellationToken));
        return id;
    }

    /// <summary>The batch as committed, after a write that returned its id.</summary>
    private Task<BatchRecord?> ReadCommittedAsync(string? batchId, CancellationToken cancellationToken) =>
        batchId is null
            ? Task.FromResult<BatchRecord?>(null)
            : database.QueryFirstAsync($"SELECT {Columns} FROM batches WHERE id = $id;", [new("$id", batchId)], Read, cancellationToken);

    private static BatchRecord Read(SqliteRow r)
    {
        string? errors = r.NullableString(19);
        string? metadata = r.NullableString(20);
        string? nativeProvider = r.NullableString(30);
        return new BatchRecord
        {
            WorkspaceId = r.String(0),
            Id = r.String(1),
            Endpoint = r.String(2),
            InputFileId = r.String(3),
            CompletionWindow = r.String(4),
            Execution = r.String(5),
            Provider = r.NullableString(6),
            Status = r.String(7),
            CreatedAt = r.Int64(8),
            ExpiresAt = r.Int64(9),
            InProgressAt = r.NullableInt64(10),
            FinalizingAt = r.NullableInt64(11),
            CompletedAt = r.NullableInt64(12),
            FailedAt = r.NullableInt64(13),
            ExpiredAt = r.NullableInt64(14),
            CancellingAt = r.NullableInt64(15),
            CancelledAt = r.NullableInt64(16),
            OutputFileId = r.NullableString(17),
            ErrorFileId = r.NullableString(18),
            Errors = errors is null ? [] : JsonSerializer.Deserialize(errors, StorageJsonContext.Default.IReadOnlyListBatchError) ?? [],
            Metadata = metadata is null ? null : JsonSerializer.Deserialize(metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString),
            OutputExpiresAfterSeconds = r.NullableInt64(21),
            RequestCounts = new BatchRequestCounts((int)r.Int64(22), (int)r.Int64(23), (int)r.Int64(24)),
            Usage = new BatchUsage(r.Int64(25), r.Int64(26), r.Int64(27), r.Int64(28), r.Int64(29)),
            Native = nativeProvider is null ? null : new NativeBatchState(nativeProvider, r.NullableString(31), r.NullableInt64(32) ?? 0, (int)r.Int64(33)),
        };
    }
}
