using System.Text.Json;
using Npgsql;
using Wharf.Core.Batches;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>
/// Batches in PostgreSQL, shaped as <see cref="Sqlite.SqliteBatchCatalog"/>'s. Nodes claim batches with
/// <c>FOR UPDATE SKIP LOCKED</c>: two nodes claiming at once each get another batch (or none), never the same one.
/// Every write of the engine names the lease's owner in its <c>WHERE</c> clause, which PostgreSQL checks on the row's
/// latest version once it holds the row's lock, so a node that lost its lease writes nothing; a chunk's lines, blob,
/// counts and usage are written in one transaction that holds the batch's row from its first statement on.
/// </summary>
internal sealed class PostgresBatchCatalog(PostgresDatabase database) : IBatchCatalog
{
    private const string Columns =
        "workspace_id, id, endpoint, input_file_id, completion_window, execution, provider, status, created_at, expires_at, " +
        "in_progress_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at, " +
        "output_file_id, error_file_id, errors, metadata, output_expires_after, total, completed, failed, " +
        "input_tokens, cached_tokens, output_tokens, reasoning_tokens, total_tokens, " +
        "native_provider, native_batch_id, native_next_poll_at, native_polls";

    private const string ActiveStatuses = "('validating', 'in_progress', 'finalizing', 'cancelling')";

    /// <summary>What an update by the lease's owner writes: status, timestamps, files, errors, total, expiry, native state.</summary>
    private const string UpdatedColumns = """
        in_progress_at = @inProgress, finalizing_at = @finalizing, completed_at = @completed, failed_at = @failed,
        expired_at = @expired, cancelling_at = coalesce(cancelling_at, @cancelling), cancelled_at = @cancelled,
        output_file_id = @output, error_file_id = @error, errors = @errors, total = @total, expires_at = @expires,
        native_provider = @nativeProvider, native_batch_id = @nativeId, native_next_poll_at = @nativePoll, native_polls = @nativePolls
        """;

    public Task<bool> InsertAsync(BatchRecord batch, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            // Shared lock: a delete of the workspace waits for this insert, or this insert sees the workspace deleted.
            await using var command = new NpgsqlCommand("SELECT deleted_at IS NOT NULL FROM workspaces WHERE id = @ws FOR SHARE;", connection, transaction);
            command.Parameters.AddText("@ws", batch.WorkspaceId);
            if (await command.ExecuteScalarAsync(cancellationToken) is true)
            {
                return false;
            }
            command.CommandText = $"""
                INSERT INTO batches ({Columns})
                VALUES (@ws, @id, @endpoint, @input, @window, @execution, @provider, @status, @created, @expires,
                    @inProgress, @finalizing, @completed, @failed, @expired, @cancelling, @cancelled,
                    @output, @error, @errors, @metadata, @outputExpires, @total, 0, 0, 0, 0, 0, 0, 0,
                    @nativeProvider, @nativeId, @nativePoll, @nativePolls);
                """;
            Bind(command.Parameters, batch);
            command.Parameters.AddText("@endpoint", batch.Endpoint);
            command.Parameters.AddText("@input", batch.InputFileId);
            command.Parameters.AddText("@window", batch.CompletionWindow);
            command.Parameters.AddText("@execution", batch.Execution);
            command.Parameters.AddText("@provider", batch.Provider);
            command.Parameters.AddInt64("@created", batch.CreatedAt);
            command.Parameters.AddText("@metadata", batch.Metadata is null
                ? null
                : JsonSerializer.Serialize(batch.Metadata, StorageJsonContext.Default.IReadOnlyDictionaryStringString));
            command.Parameters.AddInt64("@outputExpires", batch.OutputExpiresAfterSeconds);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public Task<BatchRecord?> GetAsync(string workspaceId, string batchId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"SELECT {Columns} FROM batches WHERE workspace_id = @ws AND id = @id;",
            p => { p.AddText("@ws", workspaceId); p.AddText("@id", batchId); },
            Read,
            cancellationToken);

    public async Task<Page<BatchRecord>> ListAsync(string workspaceId, int limit, string? after, CancellationToken cancellationToken)
    {
        // Ids are time-ordered: descending id order is newest first.
        var items = await database.QueryAsync(
            $"SELECT {Columns} FROM batches WHERE workspace_id = @ws {(after is null ? "" : "AND id < @after ")}ORDER BY id DESC LIMIT @limit;",
            p => { p.AddText("@ws", workspaceId); p.AddText("@after", after); p.AddInt32("@limit", limit + 1); },
            Read,
            cancellationToken);
        bool hasMore = items.Count > limit;
        if (hasMore)
        {
            items.RemoveAt(items.Count - 1);
        }
        return new Page<BatchRecord>(items, hasMore);
    }

    public async Task<BatchRecord?> RequestCancelAsync(string workspaceId, string batchId, long nowUnixSeconds, CancellationToken cancellationToken)
    {
        await database.ExecuteAsync(
            "UPDATE batches SET status = 'cancelling', cancelling_at = @now, " +
            "native_next_poll_at = CASE WHEN native_next_poll_at IS NULL THEN NULL ELSE 0 END " +
            "WHERE workspace_id = @ws AND id = @id AND status IN ('validating', 'in_progress');",
            p => { p.AddText("@ws", workspaceId); p.AddText("@id", batchId); p.AddInt64("@now", nowUnixSeconds); },
            cancellationToken);
        return await GetAsync(workspaceId, batchId, cancellationToken);
    }

    public Task<BatchRecord?> ClaimAsync(
        string owner, long nowUnixMilliseconds, long leaseUntilUnixMilliseconds, IReadOnlyCollection<string> skip, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"""
            UPDATE batches SET lease_owner = @owner, lease_until = @until
            WHERE id = (SELECT id FROM batches
                WHERE status IN {ActiveStatuses} AND lease_until <= @now AND NOT (id = ANY(@skip))
                    AND (native_next_poll_at IS NULL OR native_next_poll_at * 1000 <= @now)
                ORDER BY lease_until, id LIMIT 1
                FOR UPDATE SKIP LOCKED)
            RETURNING {Columns};
            """,
            p =>
            {
                p.AddText("@owner", owner);
                p.AddInt64("@until", leaseUntilUnixMilliseconds);
                p.AddInt64("@now", nowUnixMilliseconds);
                p.AddTextArray("@skip", skip);
            },
            Read,
            cancellationToken);

    public async Task<bool> RenewLeaseAsync(string batchId, string owner, long leaseUntilUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            "UPDATE batches SET lease_until = @until WHERE id = @id AND lease_owner = @owner;",
            p => { p.AddText("@id", batchId); p.AddText("@owner", owner); p.AddInt64("@until", leaseUntilUnixMilliseconds); },
            cancellationToken) > 0;

    public Task ReleaseLeaseAsync(string batchId, string owner, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "UPDATE batches SET lease_owner = NULL, lease_until = 0 WHERE id = @id AND lease_owner = @owner;",
            p => { p.AddText("@id", batchId); p.AddText("@owner", owner); },
            cancellationToken);

    public Task<BatchRecord?> UpdateAsync(BatchRecord batch, string owner, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            // A cancel asked meanwhile is kept (with its cancelling_at) unless the batch ends now.
            $"""
            UPDATE batches SET
                status = CASE WHEN status = 'cancelling' AND @status NOT IN ('completed', 'failed', 'expired', 'cancelled') THEN status ELSE @status END,
                {UpdatedColumns}
            WHERE workspace_id = @ws AND id = @id AND lease_owner = @owner
            RETURNING {Columns};
            """,
            p => { Bind(p, batch); p.AddText("@owner", owner); },
            Read,
            cancellationToken);

    public async Task<bool> MirrorProgressAsync(string batchId, string owner, BatchRequestCounts counts, BatchUsage usage, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            """
            UPDATE batches SET total = @total, completed = @completed, failed = @failed,
                input_tokens = @input, cached_tokens = @cached, output_tokens = @outputTokens, reasoning_tokens = @reasoning, total_tokens = @tokens
            WHERE id = @id AND lease_owner = @owner;
            """,
            p =>
            {
                p.AddText("@id", batchId);
                p.AddText("@owner", owner);
                p.AddInt32("@total", counts.Total);
                p.AddInt32("@completed", counts.Completed);
                p.AddInt32("@failed", counts.Failed);
                BindUsage(p, usage);
            },
            cancellationToken) > 0;

    public Task<bool> RecordChunkAsync(BatchChunk chunk, string owner, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(null, connection, transaction);
            var p = command.Parameters;
            p.AddText("@batch", chunk.BatchId);
            p.AddText("@ws", chunk.WorkspaceId);
            p.AddText("@owner", owner);
            p.AddText("@kind", KindName(chunk.Kind));
            p.AddText("@part", chunk.PartId);
            p.AddInt64("@bytes", chunk.Bytes);
            p.AddText("@sha", chunk.Sha256);
            p.AddInt64("@created", chunk.CreatedAt);
            p.AddInt32Array("@lines", chunk.Lines);
            p.AddInt32("@completed", chunk.Completed);
            p.AddInt32("@failed", chunk.Failed);
            BindUsage(p, chunk.Usage);
            // First: the batch's row, locked to the commit when the lease is still the owner's.
            command.CommandText = """
                UPDATE batches SET completed = completed + @completed, failed = failed + @failed,
                    input_tokens = input_tokens + @input, cached_tokens = cached_tokens + @cached,
                    output_tokens = output_tokens + @outputTokens, reasoning_tokens = reasoning_tokens + @reasoning,
                    total_tokens = total_tokens + @tokens
                WHERE workspace_id = @ws AND id = @batch AND lease_owner = @owner;
                """;
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return false;
            }
            // A line already done fails the primary key: the whole transaction, chunk and counts included, is undone.
            command.CommandText = """
                INSERT INTO batch_lines (batch_id, line) SELECT @batch, unnest(@lines);
                INSERT INTO upload_parts (id, upload_id, workspace_id, bytes, sha256, created_at) VALUES (@part, @batch, @ws, @bytes, @sha, @created);
                INSERT INTO batch_chunks (batch_id, kind, seq, part_id, bytes)
                    VALUES (@batch, @kind, (SELECT coalesce(max(seq), 0) + 1 FROM batch_chunks WHERE batch_id = @batch AND kind = @kind), @part, @bytes);
                UPDATE workspaces SET usage_bytes = usage_bytes + @bytes WHERE id = @ws;
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public async Task<int> CountChunksAsync(string batchId, BatchFileKind kind, CancellationToken cancellationToken) =>
        (await database.QueryAsync(
            "SELECT count(*) FROM batch_chunks WHERE batch_id = @batch AND kind = @kind;",
            p => { p.AddText("@batch", batchId); p.AddText("@kind", KindName(kind)); },
            r => (int)r.GetInt64(0),
            cancellationToken))[0];

    public async Task<IReadOnlyList<int>> ListDoneLinesAsync(string batchId, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            "SELECT line FROM batch_lines WHERE batch_id = @batch ORDER BY line;",
            p => p.AddText("@batch", batchId),
            r => r.GetInt32(0),
            cancellationToken);

    public async Task<BatchRecord?> FinalizeAsync(BatchFinal final, string owner, CancellationToken cancellationToken)
    {
        var batch = final.Batch;
        bool ended = await database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(
                "SELECT output_expires_after FROM batches WHERE workspace_id = @ws AND id = @id AND lease_owner = @owner FOR UPDATE;",
                connection, transaction);
            command.Parameters.AddText("@ws", batch.WorkspaceId);
            command.Parameters.AddText("@id", batch.Id);
            command.Parameters.AddText("@owner", owner);
            long? outputExpiresAfter;
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                if (!await reader.ReadAsync(cancellationToken))
                {
                    return false;
                }
                outputExpiresAfter = reader.NullableInt64(0);
            }
            long? expiresAt = outputExpiresAfter is { } seconds ? final.FilesCreatedAt + seconds : null;
            string? outputId = await MakeFileAsync(connection, transaction, batch, BatchFileKind.Output, final.OutputFileId, final.FilesCreatedAt, expiresAt, cancellationToken);
            string? errorId = await MakeFileAsync(connection, transaction, batch, BatchFileKind.Error, final.ErrorFileId, final.FilesCreatedAt, expiresAt, cancellationToken);

            command.CommandText = $"""
                UPDATE batches SET status = @status, {UpdatedColumns}, lease_owner = NULL, lease_until = 0
                WHERE workspace_id = @ws AND id = @id;
                """;
            Bind(command.Parameters, batch with { OutputFileId = outputId, ErrorFileId = errorId });
            await command.ExecuteNonQueryAsync(cancellationToken);

            // The run's bookkeeping goes with it: the result files now hold what the chunks and done lines recorded.
            await using (var cleanup = new NpgsqlCommand(
                "DELETE FROM batch_lines WHERE batch_id = @id; DELETE FROM batch_chunks WHERE batch_id = @id;", connection, transaction))
            {
                cleanup.Parameters.AddText("@id", batch.Id);
                await cleanup.ExecuteNonQueryAsync(cancellationToken);
            }

            if (final.Event is { } evt)
            {
                await using var queue = new NpgsqlCommand("""
                    INSERT INTO webhook_events (id, workspace_id, type, created_at, payload, next_attempt_at)
                    SELECT @evt, @ws, @type, @created, @payload, @created
                    WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = @ws AND deleted_at IS NULL AND webhook_url IS NOT NULL);
                    """, connection, transaction);
                queue.Parameters.AddText("@evt", evt.Id);
                queue.Parameters.AddText("@ws", evt.WorkspaceId);
                queue.Parameters.AddText("@type", evt.Type);
                queue.Parameters.AddInt64("@created", evt.CreatedAt);
                queue.Parameters.AddText("@payload", evt.Payload);
                await queue.ExecuteNonQueryAsync(cancellationToken);
            }
            return true;
        }, cancellationToken);
        return ended ? await database.QueryFirstAsync($"SELECT {Columns} FROM batches WHERE id = @id;", p => p.AddText("@id", batch.Id), Read, cancellationToken) : null;
    }

    /// <summary>
    /// Makes the batch's chunks of <paramref name="kind"/> the segments of a new file, in order; its bytes are
    /// already in the workspace's usage (counted as each chunk was recorded). Returns its id, or null when the batch
    /// has no chunk of that kind.
    /// </summary>
    private static async Task<string?> MakeFileAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, BatchRecord batch, BatchFileKind kind, string fileId,
        long createdAt, long? expiresAt, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT coalesce(sum(bytes), 0)::bigint, count(*) FROM batch_chunks WHERE batch_id = @batch AND kind = @kind;", connection, transaction);
        command.Parameters.AddText("@batch", batch.Id);
        command.Parameters.AddText("@kind", KindName(kind));
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
        var inserted = await PostgresFileCatalog.InsertAsync(connection, transaction, file, bytes, cancellationToken);
        if (inserted != FileInsertOutcome.Inserted)
        {
            // The workspace was deleted: the chunks belong to no file. Their rows go; the orphan sweep removes their blobs.
            command.CommandText = """
                DELETE FROM upload_parts WHERE upload_id = @batch AND file_id IS NULL
                    AND id IN (SELECT part_id FROM batch_chunks WHERE batch_id = @batch AND kind = @kind);
                DELETE FROM batch_chunks WHERE batch_id = @batch AND kind = @kind;
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            return null;
        }
        command.Parameters.AddText("@file", fileId);
        command.CommandText = """
            UPDATE upload_parts p SET file_id = @file, seq = c.seq
            FROM batch_chunks c
            WHERE c.batch_id = @batch AND c.kind = @kind AND c.part_id = p.id AND p.upload_id = @batch;
            """;
        await command.ExecuteNonQueryAsync(cancellationToken);
        return fileId;
    }

    private static string KindName(BatchFileKind kind) => kind == BatchFileKind.Output ? "output" : "error";

    /// <summary>Binds what an update writes: status, timestamps, files, errors, total, expiry and native state.</summary>
    private static void Bind(NpgsqlParameterCollection p, BatchRecord batch)
    {
        p.SetText("@ws", batch.WorkspaceId);
        p.SetText("@id", batch.Id);
        p.SetText("@status", batch.Status);
        SetInt64(p, "@expires", batch.ExpiresAt);
        SetInt64(p, "@inProgress", batch.InProgressAt);
        SetInt64(p, "@finalizing", batch.FinalizingAt);
        SetInt64(p, "@completed", batch.CompletedAt);
        SetInt64(p, "@failed", batch.FailedAt);
        SetInt64(p, "@expired", batch.ExpiredAt);
        SetInt64(p, "@cancelling", batch.CancellingAt);
        SetInt64(p, "@cancelled", batch.CancelledAt);
        p.SetText("@output", batch.OutputFileId);
        p.SetText("@error", batch.ErrorFileId);
        p.SetText("@errors", batch.Errors.Count == 0
            ? null
            : JsonSerializer.Serialize(batch.Errors, StorageJsonContext.Default.IReadOnlyListBatchError));
        SetInt64(p, "@total", batch.RequestCounts.Total);
        p.SetText("@nativeProvider", batch.Native?.Provider);
        p.SetText("@nativeId", batch.Native?.UpstreamBatchId);
        SetInt64(p, "@nativePoll", batch.Native?.NextPollAt);
        SetInt64(p, "@nativePolls", batch.Native?.Polls ?? 0);
    }

    private static void SetInt64(NpgsqlParameterCollection p, string name, long? value)
    {
        if (p.Contains(name))
        {
            p[name].Value = (object?)value ?? DBNull.Value;
        }
        else
        {
            p.AddInt64(name, value);
        }
    }

    private static void BindUsage(NpgsqlParameterCollection p, BatchUsage usage)
    {
        p.AddInt64("@input", usage.InputTokens);
        p.AddInt64("@cached", usage.CachedTokens);
        p.AddInt64("@outputTokens", usage.OutputTokens);
        p.AddInt64("@reasoning", usage.ReasoningTokens);
        p.AddInt64("@tokens", usage.TotalTokens);
    }

    private static BatchRecord Read(NpgsqlDataReader r)
    {
        string? errors = r.NullableString(19);
        string? metadata = r.NullableString(20);
        string? nativeProvider = r.NullableString(30);
        return new BatchRecord
        {
            WorkspaceId = r.GetString(0),
            Id = r.GetString(1),
            Endpoint = r.GetString(2),
            InputFileId = r.GetString(3),
            CompletionWindow = r.GetString(4),
            Execution = r.GetString(5),
            Provider = r.NullableString(6),
            Status = r.GetString(7),
            CreatedAt = r.GetInt64(8),
            ExpiresAt = r.GetInt64(9),
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
            RequestCounts = new BatchRequestCounts(r.GetInt32(22), r.GetInt32(23), r.GetInt32(24)),
            Usage = new BatchUsage(r.GetInt64(25), r.GetInt64(26), r.GetInt64(27), r.GetInt64(28), r.GetInt64(29)),
            Native = nativeProvider is null ? null : new NativeBatchState(nativeProvider, r.NullableString(31), r.NullableInt64(32) ?? 0, r.GetInt32(33)),
        };
    }
}
