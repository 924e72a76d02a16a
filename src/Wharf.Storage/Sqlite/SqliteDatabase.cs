using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Wharf.Core.Ports;
using Wharf.Storage.FileSystem;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// The embedded catalog's database: WAL mode, full fsync on commit, kept-open reader connections that reuse their
/// prepared statements, and one writer.
/// Writes queue to a single writer loop that runs every write waiting at that moment in one transaction (each in
/// its own savepoint, so one failing write does not undo the others) and commits them with one fsync: group commit.
/// A write's task completes only after the commit that holds it is durable. When the disk is full (SQLITE_FULL) the
/// transaction's writes fail with <see cref="InsufficientStorageException"/>, except those that free space (deletes):
/// they run again, one per transaction, after the <see cref="SpaceReserve"/> is given up to make room for them.
/// </summary>
internal sealed class SqliteDatabase : IDisposable
{
    internal const int SchemaVersion = 8;
    private const int MaxWritesPerCommit = 256;
    private const int MaxIdleReaders = 16;
    private readonly string _connectionString;
    private readonly Channel<PendingWrite> _writes = Channel.CreateUnbounded<PendingWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private readonly ConcurrentQueue<Reader> _idleReaders = new();
    private int _idleReaderCount;
    private volatile bool _disposed;
    private readonly SpaceReserve? _reserve;

    static SqliteDatabase()
    {
        // Every connection here is used by one caller at a time (the writer's by its loop, a reader's by the query
        // that rented it), so SQLite's own lock around every call on a connection (serialized mode) is pure cost:
        // 4-6 % of a list request's CPU, taken and released on every call, once per column read (docs/benchmarks.md).
        // Multi-thread mode drops those locks. It can only be chosen before SQLite initializes; if something in
        // the process opened a database first, the call fails and SQLite stays serialized, which is also correct.
        SQLitePCL.Batteries_V2.Init();
        MultiThreaded = SQLitePCL.raw.sqlite3_config(SQLitePCL.raw.SQLITE_CONFIG_MULTITHREAD) == SQLitePCL.raw.SQLITE_OK;
        // SqliteRow reads values through its own declarations of SQLite's functions: they must reach the same library.
        if (SqliteColumns.sqlite3_libversion_number() != SQLitePCL.raw.sqlite3_libversion_number())
        {
            throw new InvalidOperationException("SQLitePCL loaded another SQLite library than e_sqlite3.");
        }
    }

    /// <summary>Whether multi-thread mode took effect (false when SQLite was initialized before this type).</summary>
    internal static bool MultiThreaded { get; }

    /// <param name="path">The database file.</param>
    /// <param name="reserve">Room on the database's file system that writes freeing space may use when it is full.</param>
    public SqliteDatabase(string path, SpaceReserve? reserve = null)
    {
        _reserve = reserve;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            // The writer keeps its connection and readers are kept by this class, with their statements, so the
            // framework's pool would only hand a closed reader's connection, with the busy handler it set, to another.
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
        Migrate();
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>
    /// Runs <paramref name="work"/> inside the writer's transaction and completes once it is committed durably.
    /// A write cancelled before it starts does not run; once started it runs to the end.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken) =>
        Enqueue(new PendingWrite<T>(work, freesSpace: false, cancellationToken));

    /// <summary>
    /// <see cref="WriteAsync{T}"/> for a write that frees space (a delete): on a full disk it runs again alone, on
    /// the room the <see cref="SpaceReserve"/> kept for it, so space can always be reclaimed. It must only delete, or
    /// change rows in place, and may run twice (the first run undone).
    /// </summary>
    public Task<T> WriteFreeingSpaceAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken) =>
        Enqueue(new PendingWrite<T>(work, freesSpace: true, cancellationToken));

    private Task<T> Enqueue<T>(PendingWrite<T> write)
    {
        ObjectDisposedException.ThrowIf(!_writes.Writer.TryWrite(write), this);
        return write.Task;
    }

    /// <summary>One statement in the writer's transaction; returns how many rows it changed.</summary>
    /// <summary>
    /// Forgets the named leases and hashing claims that earlier processes left. Called by the one process that holds the
    /// data directory (<see cref="DataDirectoryLock"/>), at its start: no other process can be holding them, so a claim
    /// of a process that crashed need not run out before its work is done again (after a restart a file's SHA-256
    /// would otherwise wait out the dead process's claim).
    /// </summary>
    public Task ForgetClaimsOfEarlierProcessesAsync(CancellationToken cancellationToken) => ExecuteAsync(
        "DELETE FROM leases; UPDATE files SET hash_owner = NULL, hash_until = 0 WHERE hash_owner IS NOT NULL;", _ => { }, cancellationToken);

    public Task<int> ExecuteAsync(string sql, Action<SqliteParameterCollection> bind, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            bind(command.Parameters);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);

    private async Task WriteLoopAsync()
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync();
        await using (var pragma = connection.CreateCommand())
        {
            pragma.CommandText = "PRAGMA synchronous=FULL;";
            await pragma.ExecuteNonQueryAsync();
        }
        var batch = new List<PendingWrite>(MaxWritesPerCommit);
        var done = new List<PendingWrite>(MaxWritesPerCommit);
        var again = new List<PendingWrite>(1);
        while (await _writes.Reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < MaxWritesPerCommit && _writes.Reader.TryRead(out var next))
            {
                batch.Add(next);
            }
            if (await CommitAsync(connection, batch, done) is not { } full)
            {
                continue;
            }
            // The disk is full and nothing of the transaction was kept. Writes that free space run again, alone, once
            // the reserve has made room; the others fail (507).
            var retry = batch.Where(write => write.FreesSpace && !write.IsFinished).ToList();
            foreach (var write in batch.Except(retry))
            {
                write.Fail(new InsufficientStorageException("The catalog's disk is full.", full));
            }
            if (retry.Count > 0)
            {
                _reserve?.Release();
            }
            foreach (var write in retry)
            {
                again.Clear();
                again.Add(write);
                if (await CommitAsync(connection, again, done) is { } stillFull)
                {
                    write.Fail(new InsufficientStorageException("The catalog's disk is full, even with the room kept for deletes.", stillFull));
                }
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="batch"/> in one transaction, each write in its own savepoint, commits, and completes or
    /// fails each write. On a full disk (SQLITE_FULL, from a write or the commit) nothing is kept and the failure is
    /// returned, leaving the writes that had not failed on their own unfinished, for the caller to fail or run again.
    /// </summary>
    private static async Task<SqliteException?> CommitAsync(SqliteConnection connection, List<PendingWrite> batch, List<PendingWrite> done)
    {
        done.Clear();
        try
        {
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
            foreach (var write in batch)
            {
                if (write.CancellationToken.IsCancellationRequested)
                {
                    write.Cancel();
                    continue;
                }
                transaction.Save("w");
                try
                {
                    await write.RunAsync(connection, transaction);
                    transaction.Release("w");
                    done.Add(write);
                }
                catch (Exception ex) when (!IsFull(ex))
                {
                    transaction.Rollback("w");
                    transaction.Release("w");
                    write.Fail(ex);
                }
            }
            await transaction.CommitAsync();
            done.ForEach(write => write.Complete());
            return null;
        }
        catch (SqliteException ex) when (IsFull(ex))
        {
            return ex;
        }
        catch (Exception ex)
        {
            // The commit (or the transaction itself) failed: none of the writes in it happened.
            foreach (var write in batch)
            {
                write.Fail(ex);
            }
            return null;
        }
    }

    /// <summary>SQLITE_FULL: the database or its write-ahead log could not grow.</summary>
    private static bool IsFull(Exception exception) =>
        exception is SqliteException { SqliteErrorCode: SQLitePCL.raw.SQLITE_FULL };

    private abstract class PendingWrite(bool freesSpace, CancellationToken cancellationToken)
    {
        public CancellationToken CancellationToken => cancellationToken;

        public bool FreesSpace => freesSpace;

        public abstract bool IsFinished { get; }

        public abstract Task RunAsync(SqliteConnection connection, SqliteTransaction transaction);

        public abstract void Complete();

        public abstract void Fail(Exception exception);

        public abstract void Cancel();
    }

    private sealed class PendingWrite<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, bool freesSpace, CancellationToken cancellationToken)
        : PendingWrite(freesSpace, cancellationToken)
    {
        private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _done.Task;

        public override bool IsFinished => _done.Task.IsCompleted;

        public override async Task RunAsync(SqliteConnection connection, SqliteTransaction transaction) =>
            _result = await work(connection, transaction);

        public override void Complete() => _done.TrySetResult(_result!);

        public override void Fail(Exception exception) => _done.TrySetException(exception);

        public override void Cancel() => _done.TrySetCanceled(CancellationToken);
    }

    /// <summary>
    /// Runs one read query on a kept-open reader connection and maps every row in place (<see cref="SqliteRow"/>).
    /// Preparing a statement (parse and plan) costs more than running a small one, so each reader keeps its
    /// statements by SQL text. They are stepped through SQLite's own API: Microsoft.Data.Sqlite's command, parameters
    /// and data reader cost more per value than the query itself on a list page (docs/benchmarks.md). Every parameter
    /// of the statement is given, once: a string, an integer, a byte array or null (or <see cref="DBNull"/>).
    /// </summary>
    public List<T> Query<T>(string sql, IReadOnlyList<SqliteParameter> parameters, RowReader<T> read, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var session = RentReader();
        try
        {
            var statement = session.Statement(sql);
            try
            {
                foreach (var parameter in parameters)
                {
                    session.Bind(statement, parameter);
                }
                if (parameters.Count != SQLitePCL.raw.sqlite3_bind_parameter_count(statement))
                {
                    // SQLite would read a parameter left unbound as NULL: a wrong answer rather than an error.
                    throw new ArgumentException("The query has parameters that were not given a value.", nameof(parameters));
                }
                var rows = new List<T>();
                var row = new SqliteRow(statement.DangerousGetHandle());
                int rc;
                while ((rc = SQLitePCL.raw.sqlite3_step(statement)) == SQLitePCL.raw.SQLITE_ROW)
                {
                    rows.Add(read(row));
                    if (rows.Count % 64 == 0)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                }
                return rc == SQLitePCL.raw.SQLITE_DONE ? rows : throw session.Error(rc);
            }
            finally
            {
                SQLitePCL.raw.sqlite3_reset(statement);
                SQLitePCL.raw.sqlite3_clear_bindings(statement);
            }
        }
        finally
        {
            ReturnReader(session);
        }
    }

    /// <summary><see cref="Query{T}"/> for a catalog method returning a list (the query runs on the caller).</summary>
    public Task<IReadOnlyList<T>> QueryListAsync<T>(
        string sql, IReadOnlyList<SqliteParameter> parameters, RowReader<T> read, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<T>>(Query(sql, parameters, read, cancellationToken));

    /// <summary><see cref="Query{T}"/> for a catalog method returning the first row, or null when there is none.</summary>
    public Task<T?> QueryFirstAsync<T>(
        string sql, IReadOnlyList<SqliteParameter> parameters, RowReader<T> read, CancellationToken cancellationToken) where T : class =>
        Task.FromResult(Query(sql, parameters, read, cancellationToken).FirstOrDefault());

    /// <summary>Which of <paramref name="ids"/> are in <paramref name="table"/>'s <c>id</c> column (one query).</summary>
    public Task<IReadOnlySet<string>> FindExistingIdsAsync(string table, IReadOnlyCollection<string> ids, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlySet<string>>(ids.Count == 0
            ? new HashSet<string>()
            : Query(
                $"SELECT id FROM {table} WHERE id IN (SELECT value FROM json_each($ids));",
                [new("$ids", System.Text.Json.JsonSerializer.Serialize(ids, StorageJsonContext.Default.IReadOnlyCollectionString))],
                r => r.String(0),
                cancellationToken).ToHashSet(StringComparer.Ordinal));

    /// <summary>
    /// A <c>LIMIT</c> clause with the number written into the text. SQLite plans with the value of a bound LIMIT, so
    /// binding one again makes it prepare the statement again on every run, which would undo the kept statements.
    /// </summary>
    public static string Limit(int rows) => "LIMIT " + rows.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private Reader RentReader()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_idleReaders.TryDequeue(out var reader))
        {
            Interlocked.Decrement(ref _idleReaderCount);
            return reader;
        }
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return new Reader(connection);
    }

    private void ReturnReader(Reader reader)
    {
        if (!_disposed && Interlocked.Increment(ref _idleReaderCount) <= MaxIdleReaders)
        {
            _idleReaders.Enqueue(reader);
            if (_disposed)
            {
                DisposeIdleReaders(); // disposed meanwhile: do not leave this one open
            }
            return;
        }
        Interlocked.Decrement(ref _idleReaderCount);
        reader.Dispose();
    }

    private void DisposeIdleReaders()
    {
        while (_idleReaders.TryDequeue(out var idle))
        {
            idle.Dispose();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        DisposeIdleReaders();
        _writes.Writer.TryComplete();
        _writer.GetAwaiter().GetResult();
    }

    private void Migrate()
    {
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL; PRAGMA user_version;";
        long version = 0;
        using (var reader = command.ExecuteReader())
        {
            reader.NextResult();
            if (reader.Read())
            {
                version = reader.GetInt64(0);
            }
        }
        if (version >= SchemaVersion)
        {
            return;
        }
        using var transaction = connection.BeginTransaction();
        command.Transaction = transaction;
        if (version == 1)
        {
            // Version 2 lets a file's sha256 be null while it is computed after an upload's completion. SQLite cannot
            // drop a NOT NULL in place: the table is copied into one of the new shape, and its indexes made again below.
            // A one-time copy, inside this transaction (a crash leaves version 1 whole): on a large catalog, that start
            // takes as long as copying the table.
            const string FileColumns = "workspace_id, id, bytes, created_at, filename, purpose, status, status_details, expires_at, " +
                "metadata, collection, provider, sha256, content_type, processing_status, segmented";
            command.CommandText = $"""
                {FilesTable("files_v2")}
                INSERT INTO files_v2 ({FileColumns}) SELECT {FileColumns} FROM files;
                DROP TABLE files;
                ALTER TABLE files_v2 RENAME TO files;
                """;
            command.ExecuteNonQuery();
        }
        command.CommandText = $$"""
            CREATE TABLE IF NOT EXISTS workspaces (
                id TEXT NOT NULL PRIMARY KEY,
                name TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                storage_quota_bytes INTEGER,
                rate_limit_rpm INTEGER,
                usage_bytes INTEGER NOT NULL DEFAULT 0,
                deleted_at INTEGER,
                purged INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_workspaces_name ON workspaces(name) WHERE deleted_at IS NULL;
            CREATE INDEX IF NOT EXISTS ix_workspaces_deleted ON workspaces(deleted_at) WHERE deleted_at IS NOT NULL AND purged = 0;

            CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT NOT NULL PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                name TEXT NOT NULL,
                hash BLOB NOT NULL,
                prefix TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                scopes TEXT NOT NULL,
                expires_at INTEGER,
                rate_limit_rpm INTEGER,
                last_used_at INTEGER
            ) WITHOUT ROWID;
            CREATE UNIQUE INDEX IF NOT EXISTS ix_api_keys_hash ON api_keys(hash);
            CREATE INDEX IF NOT EXISTS ix_api_keys_workspace ON api_keys(workspace_id, id);

            {{FilesTable("IF NOT EXISTS files")}}
            CREATE UNIQUE INDEX IF NOT EXISTS ix_files_id ON files(id);
            CREATE INDEX IF NOT EXISTS ix_files_purpose ON files(workspace_id, purpose, id);
            CREATE INDEX IF NOT EXISTS ix_files_status ON files(workspace_id, status, id);
            CREATE INDEX IF NOT EXISTS ix_files_collection ON files(workspace_id, collection, id);
            CREATE INDEX IF NOT EXISTS ix_files_processing ON files(workspace_id, processing_status, id) WHERE processing_status IS NOT NULL;
            CREATE INDEX IF NOT EXISTS ix_files_expires ON files(expires_at) WHERE expires_at IS NOT NULL;
            CREATE INDEX IF NOT EXISTS ix_files_unhashed ON files(id) WHERE sha256 IS NULL;

            CREATE TABLE IF NOT EXISTS file_metadata (
                workspace_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                file_id TEXT NOT NULL,
                PRIMARY KEY (workspace_id, key, value, file_id)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_file_metadata_file ON file_metadata(file_id);

            CREATE TABLE IF NOT EXISTS uploads (
                workspace_id TEXT NOT NULL,
                id TEXT NOT NULL,
                filename TEXT NOT NULL,
                purpose TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                mime_type TEXT,
                created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                status TEXT NOT NULL,
                file_id TEXT,
                file_expires_after INTEGER,
                PRIMARY KEY (workspace_id, id)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_uploads_pending ON uploads(expires_at) WHERE status = 'pending';

            -- A part belongs to a pending upload, or (file_id set) is segment 'seq' of a file made from one.
            CREATE TABLE IF NOT EXISTS upload_parts (
                id TEXT NOT NULL PRIMARY KEY,
                upload_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                file_id TEXT,
                seq INTEGER
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_upload_parts_upload ON upload_parts(upload_id, id);
            CREATE INDEX IF NOT EXISTS ix_upload_parts_file ON upload_parts(file_id, seq) WHERE file_id IS NOT NULL;
            """;
        command.ExecuteNonQuery();
        if (version < 3)
        {
            CountPendingUploads(command);
        }
        if (version < 4)
        {
            // Version 4: the providers a workspace may use (null: every configured one; '' none).
            // Keys that held every scope there was hold every scope from now on, those added later included (a key
            // created without explicit scopes stores '*' since this version).
            command.CommandText = """
                ALTER TABLE workspaces ADD COLUMN allowed_providers TEXT;
                UPDATE api_keys SET scopes = '*' WHERE scopes = 'files:read files:write batches:read batches:write';
                """;
            command.ExecuteNonQuery();
        }
        if (version < 5)
        {
            AddProviderCopies(command);
        }
        if (version < 6)
        {
            AddBatches(command);
        }
        if (version < 7)
        {
            AddSharedWork(command);
        }
        if (version < 8)
        {
            AddUploadFileFields(command);
        }
        command.CommandText = $"PRAGMA user_version={SchemaVersion};";
        command.ExecuteNonQuery();
        transaction.Commit();
    }

    /// <summary>
    /// Version 3: pending uploads count in their workspace's usage (<c>uploads.counted_bytes</c>, see
    /// <see cref="SqliteUploadCatalog"/>), and a workspace's pending uploads are counted through an index. Uploads
    /// already pending are counted here, in the same transaction, so usage stays the sum it claims to be.
    /// </summary>
    private static void CountPendingUploads(SqliteCommand command)
    {
        command.CommandText = """
            ALTER TABLE uploads ADD COLUMN counted_bytes INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX IF NOT EXISTS ix_uploads_workspace_pending ON uploads(workspace_id) WHERE status = 'pending';
            UPDATE uploads SET counted_bytes = max(bytes,
                (SELECT coalesce(sum(p.bytes), 0) FROM upload_parts p WHERE p.upload_id = uploads.id AND p.workspace_id = uploads.workspace_id AND p.file_id IS NULL))
            WHERE status = 'pending';
            UPDATE workspaces SET usage_bytes = usage_bytes
                + (SELECT coalesce(sum(u.counted_bytes), 0) FROM uploads u WHERE u.workspace_id = workspaces.id AND u.status = 'pending');
            """;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Version 5: files kept on providers. <c>file_copies</c> holds each provider's id of a file, keyed so that a
    /// workspace's files with a copy on one provider are one range of its primary key (the <c>provider</c> filter
    /// of the file list scans it, as the metadata filter scans <c>file_metadata</c>); <c>upstream_deletions</c>
    /// holds copies to delete upstream (an outbox: written with the file's delete, emptied by the sweeper);
    /// <c>copy_intents</c> holds copies being made. Files uploaded before were kept only by Wharf: they have no copy.
    /// The file list no longer filters on <c>files.provider</c> (the provider named at upload), so its index goes.
    /// </summary>
    private static void AddProviderCopies(SqliteCommand command)
    {
        command.CommandText = """
            CREATE TABLE IF NOT EXISTS file_copies (
                workspace_id TEXT NOT NULL,
                provider TEXT NOT NULL,
                file_id TEXT NOT NULL,
                upstream_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (workspace_id, provider, file_id)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_file_copies_file ON file_copies(file_id);
            CREATE INDEX IF NOT EXISTS ix_file_copies_upstream ON file_copies(provider, upstream_id);

            CREATE TABLE IF NOT EXISTS upstream_deletions (
                provider TEXT NOT NULL,
                upstream_id TEXT NOT NULL,
                file_id TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL,
                PRIMARY KEY (provider, upstream_id)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_upstream_deletions_due ON upstream_deletions(next_attempt_at);
            CREATE INDEX IF NOT EXISTS ix_upstream_deletions_file ON upstream_deletions(file_id);

            CREATE TABLE IF NOT EXISTS copy_intents (
                file_id TEXT NOT NULL,
                provider TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                filename TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                started_at INTEGER NOT NULL,
                PRIMARY KEY (file_id, provider)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_copy_intents_started ON copy_intents(started_at);

            DROP INDEX IF EXISTS ix_files_provider;
            """;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Version 6: batches. <c>batches</c> holds each batch with its lease (<c>lease_owner</c> until
    /// <c>lease_until</c>, unix milliseconds); <c>batch_chunks</c> the blobs of its result lines (each also a row of
    /// <c>upload_parts</c> with the batch's id as its upload, so that its result files are segmented files like an
    /// upload's); <c>batch_lines</c> its done lines. <c>webhook_events</c> is the outbox of events to deliver, and a
    /// workspace gets its webhook URL and the secret that signs them. An event stays until it is delivered
    /// (<c>delivered_at</c>) or given up (<c>given_up_at</c>, with the reason in <c>last_error</c>).
    /// </summary>
    private static void AddBatches(SqliteCommand command)
    {
        command.CommandText = """
            CREATE TABLE IF NOT EXISTS batches (
                workspace_id TEXT NOT NULL,
                id TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                input_file_id TEXT NOT NULL,
                completion_window TEXT NOT NULL,
                execution TEXT NOT NULL,
                provider TEXT,
                status TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                in_progress_at INTEGER,
                finalizing_at INTEGER,
                completed_at INTEGER,
                failed_at INTEGER,
                expired_at INTEGER,
                cancelling_at INTEGER,
                cancelled_at INTEGER,
                output_file_id TEXT,
                error_file_id TEXT,
                errors TEXT,
                metadata TEXT,
                output_expires_after INTEGER,
                total INTEGER NOT NULL DEFAULT 0,
                completed INTEGER NOT NULL DEFAULT 0,
                failed INTEGER NOT NULL DEFAULT 0,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                cached_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                reasoning_tokens INTEGER NOT NULL DEFAULT 0,
                total_tokens INTEGER NOT NULL DEFAULT 0,
                native_provider TEXT,
                native_batch_id TEXT,
                native_next_poll_at INTEGER,
                native_polls INTEGER NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_until INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (workspace_id, id)
            ) WITHOUT ROWID;
            CREATE UNIQUE INDEX IF NOT EXISTS ix_batches_id ON batches(id);
            CREATE INDEX IF NOT EXISTS ix_batches_active ON batches(lease_until, id)
                WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');

            CREATE TABLE IF NOT EXISTS batch_chunks (
                batch_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                seq INTEGER NOT NULL,
                part_id TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                PRIMARY KEY (batch_id, kind, seq)
            ) WITHOUT ROWID;

            CREATE TABLE IF NOT EXISTS batch_lines (
                batch_id TEXT NOT NULL,
                line INTEGER NOT NULL,
                PRIMARY KEY (batch_id, line)
            ) WITHOUT ROWID;

            CREATE TABLE IF NOT EXISTS webhook_events (
                id TEXT NOT NULL PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                type TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                payload TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL,
                last_error TEXT,
                delivered_at INTEGER,
                given_up_at INTEGER
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_webhook_events_due ON webhook_events(next_attempt_at)
                WHERE delivered_at IS NULL AND given_up_at IS NULL;

            ALTER TABLE workspaces ADD COLUMN webhook_url TEXT;
            ALTER TABLE workspaces ADD COLUMN webhook_secret TEXT;
            """;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Version 7: work shared by several nodes is claimed in the catalog. <c>leases</c> holds named leases (which node
    /// runs a sweep's rounds: <c>owner</c> until <c>lease_until</c>, unix milliseconds); a file still without its
    /// SHA-256 holds the claim of the node computing it (<c>hash_owner</c> until <c>hash_until</c>), so that a file is
    /// read by one node at a time and rests after a failed pass on every node. Files already there have no claim.
    /// <c>blob_deletions</c> holds the blobs of deleted files whose removal from a shared blob store waits until
    /// <c>remove_at</c> (unix seconds), so that downloads other nodes started can finish.
    /// </summary>
    private static void AddSharedWork(SqliteCommand command)
    {
        command.CommandText = """
            CREATE TABLE IF NOT EXISTS leases (
                name TEXT NOT NULL PRIMARY KEY,
                owner TEXT NOT NULL,
                lease_until INTEGER NOT NULL
            ) WITHOUT ROWID;

            ALTER TABLE files ADD COLUMN hash_owner TEXT;
            ALTER TABLE files ADD COLUMN hash_until INTEGER NOT NULL DEFAULT 0;

            CREATE TABLE IF NOT EXISTS blob_deletions (
                id TEXT NOT NULL PRIMARY KEY,
                remove_at INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS ix_blob_deletions_due ON blob_deletions(remove_at);
            """;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Version 8: an upload carries the <c>metadata</c>, <c>collection</c> and <c>provider</c> of the file it becomes
    /// (as <c>files</c> keeps them: metadata as a JSON object, null when empty). Uploads already there made files kept
    /// only by Wharf, with neither: <c>local</c>, and nulls. Adding columns rewrites nothing.
    /// </summary>
    private static void AddUploadFileFields(SqliteCommand command)
    {
        command.CommandText = """
            ALTER TABLE uploads ADD COLUMN metadata TEXT;
            ALTER TABLE uploads ADD COLUMN collection TEXT;
            ALTER TABLE uploads ADD COLUMN provider TEXT NOT NULL DEFAULT 'local';
            """;
        command.ExecuteNonQuery();
    }

    /// <summary>The files table's definition (version 2), under <paramref name="name"/>.</summary>
    private static string FilesTable(string name) => $"""
        CREATE TABLE {name} (
            workspace_id TEXT NOT NULL,
            id TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL,
            status TEXT NOT NULL,
            status_details TEXT,
            expires_at INTEGER,
            metadata TEXT,
            collection TEXT,
            provider TEXT NOT NULL,
            sha256 TEXT,
            content_type TEXT,
            processing_status TEXT,
            segmented INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (workspace_id, id)
        ) WITHOUT ROWID;
        """;

    /// <summary>A read connection with its statements (each prepared on first use), used by one query at a time.</summary>
    private sealed class Reader : IDisposable
    {
        private const int MaxStatements = 64;
        private const int BusyTimeoutMilliseconds = 30_000;
        private readonly SqliteConnection _connection;
        private readonly Dictionary<string, SQLitePCL.sqlite3_stmt> _statements = new(StringComparer.Ordinal);

        public Reader(SqliteConnection connection)
        {
            _connection = connection;
            // Raw statements do not go through Microsoft.Data.Sqlite's retry on SQLITE_BUSY (which a WAL reader meets
            // only while the WAL index is being rebuilt): SQLite's own busy handler waits for them instead.
            SQLitePCL.raw.sqlite3_busy_timeout(connection.Handle, BusyTimeoutMilliseconds);
        }

        public SQLitePCL.sqlite3_stmt Statement(string sql)
        {
            if (!_statements.TryGetValue(sql, out var statement))
            {
                if (_statements.Count >= MaxStatements)
                {
                    DisposeStatements();
                }
                int rc = SQLitePCL.raw.sqlite3_prepare_v3(_connection.Handle, sql, SQLitePCL.raw.SQLITE_PREPARE_PERSISTENT, out statement, out string tail);
                if (rc != SQLitePCL.raw.SQLITE_OK || !string.IsNullOrWhiteSpace(tail))
                {
                    statement?.Dispose(); // not left to a finalizer, which could run while the connection is in use
                    throw rc != SQLitePCL.raw.SQLITE_OK ? Error(rc) : new ArgumentException("A query is one statement.", nameof(sql));
                }
                _statements.Add(sql, statement);
            }
            return statement;
        }

        public void Bind(SQLitePCL.sqlite3_stmt statement, SqliteParameter parameter)
        {
            int index = SQLitePCL.raw.sqlite3_bind_parameter_index(statement, parameter.ParameterName);
            int rc = parameter.Value switch
            {
                _ when index == 0 => throw new ArgumentException($"The statement has no parameter {parameter.ParameterName}."),
                string text => SQLitePCL.raw.sqlite3_bind_text(statement, index, text),
                long number => SQLitePCL.raw.sqlite3_bind_int64(statement, index, number),
                int number => SQLitePCL.raw.sqlite3_bind_int64(statement, index, number),
                byte[] bytes => SQLitePCL.raw.sqlite3_bind_blob(statement, index, bytes),
                null or DBNull => SQLitePCL.raw.sqlite3_bind_null(statement, index),
                var other => throw new ArgumentException($"Parameter {parameter.ParameterName} is a {other.GetType().Name}: only strings, integers, byte arrays and null bind here."),
            };
            if (rc != SQLitePCL.raw.SQLITE_OK)
            {
                throw Error(rc);
            }
        }

        /// <summary>The connection's last error, as the exception Microsoft.Data.Sqlite throws.</summary>
        public SqliteException Error(int rc) =>
            new($"SQLite Error {rc}: '{SQLitePCL.raw.sqlite3_errmsg(_connection.Handle).utf8_to_string()}'.", rc);

        public void Dispose()
        {
            DisposeStatements();
            _connection.Dispose();
        }

        private void DisposeStatements()
        {
            foreach (var statement in _statements.Values)
            {
                statement.Dispose(); // finalizes it here, while no query runs on the connection
            }
            _statements.Clear();
        }
    }
}

/// <summary>Maps the current row, which is valid only during the call.</summary>
internal delegate T RowReader<T>(SqliteRow row);
