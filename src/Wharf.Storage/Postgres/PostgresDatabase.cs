using System.Data;
using Npgsql;
using NpgsqlTypes;
using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>
/// The shared catalog's database: one <see cref="NpgsqlDataSource"/> (its connection pool) for every catalog of the
/// process. Several nodes write at once, so there is no single writer here: a write that reads before it writes runs
/// in a transaction (read committed) that locks the rows it depends on (<c>SELECT ... FOR UPDATE</c>, or an
/// <c>UPDATE</c> whose condition is checked again on the row's latest version once its lock is held), and claims skip
/// rows another node holds (<c>FOR UPDATE SKIP LOCKED</c>). Rows are always locked in one order — upload or batch,
/// then file, then workspace — so transactions wait for each other but do not deadlock; a deadlock or serialization
/// failure all the same runs the transaction again.
/// A failure to reach the server becomes a <see cref="CatalogUnavailableException"/> (503 to the client), a full
/// disk an <see cref="InsufficientStorageException"/> (507), as the embedded catalog answers.
/// </summary>
internal sealed class PostgresDatabase : IAsyncDisposable, IDisposable
{
    /// <summary>The configuration key of the connection string, named in every start-up failure about it.</summary>
    public const string ConnectionStringKey = "Wharf:Storage:Postgres:ConnectionString";

    internal const int SchemaVersion = 3;

    /// <summary>The advisory lock (one 64-bit key for the whole database) held while the schema is created or migrated.</summary>
    internal const long MigrationLockKey = 0x57_68_61_72_66_5F_6D_67; // "Wharf_mg"

    private const int MaxAttempts = 4;

    /// <summary>Statements each connection keeps prepared unless the connection string says otherwise.</summary>
    internal const int DefaultMaxAutoPrepare = 50;

    /// <summary>
    /// The main pool's most connections unless the connection string sets <c>Maximum Pool Size</c> (Npgsql's own
    /// default, 100 per pool, lets one busy node take PostgreSQL's default 100 connections by itself).
    /// </summary>
    internal const int DefaultMaxPoolSize = 20;

    /// <summary>The list pool's most connections: half the main pool's, at least one.</summary>
    internal static int IndexOrderPoolSize(int mainPoolSize) => Math.Max(1, mainPoolSize / 2);

    /// <summary>
    /// The session settings of <see cref="IndexOrderDataSource"/>'s connections: the planner avoids sorts, bitmap scans,
    /// merge and hash joins (a page is read in its order from one index range, each row joined by a key lookup) and
    /// parallel workers (pointless for a page, and a generic plan would otherwise pick them), and an auto-prepared page
    /// keeps one generic plan rather than being planned again at every execution: right for a page of one range, whose
    /// plan does not depend on the values (a page of several filters is planned with its values elsewhere). Given at
    /// connection start (the startup <c>options</c>), so they are the session's defaults and survive the reset of a
    /// pooled connection.
    /// </summary>
    internal const string IndexOrderOptions =
        "-c enable_sort=off -c enable_bitmapscan=off -c enable_mergejoin=off -c enable_hashjoin=off -c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_generic_plan";

    /// <summary>The planner's limits for a page of several filters, planned with its values (see <see cref="QueryInIndexOrderAsync{T}"/>).</summary>
    private const string IndexOrderSettings = "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; SET LOCAL max_parallel_workers_per_gather = 0;";

    private PostgresDatabase(NpgsqlDataSource dataSource, NpgsqlDataSource indexOrderDataSource)
    {
        DataSource = dataSource;
        IndexOrderDataSource = indexOrderDataSource;
    }

    public NpgsqlDataSource DataSource { get; }

    /// <summary>A second pool on the same database whose sessions read list pages in index order (see <see cref="QueryInIndexOrderAsync{T}"/>).</summary>
    public NpgsqlDataSource IndexOrderDataSource { get; }

    /// <summary>
    /// Opens the data source on <paramref name="connectionString"/> and creates or migrates the schema. Throws an
    /// <see cref="InvalidOperationException"/> naming <see cref="ConnectionStringKey"/> when the string is malformed or
    /// the server cannot be reached, so that a bad configuration stops the start with a message that says where to look.
    /// </summary>
    public static async Task<PostgresDatabase> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        NpgsqlDataSource dataSource, indexOrderDataSource;
        try
        {
            var settings = new NpgsqlConnectionStringBuilder(connectionString);
            if (!HasSetting(connectionString, "Max Auto Prepare", "MaxAutoPrepare"))
            {
                // The catalog sends the same few statements again and again: prepared, they are not parsed and planned
                // on every call.
                settings.MaxAutoPrepare = DefaultMaxAutoPrepare;
            }
            if (!HasSetting(connectionString, "Maximum Pool Size", "Max Pool Size", "MaxPoolSize"))
            {
                settings.MaxPoolSize = Math.Max(DefaultMaxPoolSize, settings.MinPoolSize); // a minimum above it raises it
            }
            dataSource = new NpgsqlDataSourceBuilder(settings.ConnectionString).Build();
            settings.Options = string.IsNullOrWhiteSpace(settings.Options) ? IndexOrderOptions : settings.Options + " " + IndexOrderOptions;
            settings.MaxPoolSize = IndexOrderPoolSize(settings.MaxPoolSize);
            settings.MinPoolSize = Math.Min(settings.MinPoolSize, settings.MaxPoolSize);
            // A list page is one SELECT that leaves no state behind (no transaction, lock, setting, LISTEN or
            // temporary table), so its commands are multiplexed: written to whichever connection of the pool is free,
            // pipelined when none is, with no connection held while a page is read and no reset between pages.
            if (!HasSetting(connectionString, "Multiplexing"))
            {
                settings.Multiplexing = true;
            }
            settings.NoResetOnClose = true;
            indexOrderDataSource = new NpgsqlDataSourceBuilder(settings.ConnectionString).Build();
        }
        catch (ArgumentException ex)
        {
            // The message of a malformed string may quote a part of it: only the key is named, never its value.
            throw new InvalidOperationException($"{ConnectionStringKey} is not a valid PostgreSQL connection string.", ex);
        }
        var database = new PostgresDatabase(dataSource, indexOrderDataSource);
        try
        {
            await database.MigrateAsync(cancellationToken);
            return database;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            await database.DisposeAsync();
            throw new InvalidOperationException(
                $"Cannot open the PostgreSQL catalog of {ConnectionStringKey}: {ex.Message}", ex);
        }
    }

    public static PostgresDatabase Open(string connectionString) =>
        OpenAsync(connectionString, CancellationToken.None).GetAwaiter().GetResult();

    public void Dispose()
    {
        DataSource.Dispose();
        IndexOrderDataSource.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await IndexOrderDataSource.DisposeAsync();
    }

    /// <summary>Whether the connection string sets <paramref name="names"/> (any spelling Npgsql accepts).</summary>
    private static bool HasSetting(string connectionString, params string[] names)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        return names.Any(given.ContainsKey);
    }

    /// <summary>
    /// Runs <paramref name="work"/> in a transaction on a connection of the pool and commits it; runs it again (from a
    /// fresh transaction) when PostgreSQL broke it off to resolve a deadlock or a serialization failure.
    /// </summary>
    public async Task<T> InTransactionAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await DataSource.OpenConnectionAsync(cancellationToken);
                await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
                var result = await work(connection, transaction);
                await transaction.CommitAsync(cancellationToken);
                return result;
            }
            catch (PostgresException ex) when (attempt < MaxAttempts && ex.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(10 * attempt), cancellationToken);
            }
            catch (Exception ex) when (Translate(ex) is { } translated)
            {
                throw translated;
            }
        }
    }

    /// <summary>One statement, in a transaction of its own; returns how many rows it changed.</summary>
    public async Task<int> ExecuteAsync(string sql, Action<NpgsqlParameterCollection> bind, CancellationToken cancellationToken)
    {
        try
        {
            await using var command = DataSource.CreateCommand(sql);
            bind(command.Parameters);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (Exception ex) when (Translate(ex) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>One query; maps every row.</summary>
    public async Task<List<T>> QueryAsync<T>(
        string sql, Action<NpgsqlParameterCollection>? bind, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        try
        {
            await using var command = DataSource.CreateCommand(sql);
            bind?.Invoke(command.Parameters);
            return await ReadAllAsync(command, read, cancellationToken);
        }
        catch (Exception ex) when (Translate(ex) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>
    /// A list page's query, read in the page's order from the index that starts with the workspace and stopped at the
    /// page's end, rather than collecting every matching row to sort them (which the planner's estimates can prefer
    /// when they think few rows match). A page of one range (<paramref name="oneRange"/>: no filter, or one, which has
    /// an index of its own) runs on <see cref="IndexOrderDataSource"/>: one round trip, no transaction, one generic
    /// plan per session, whatever the values. A page of several filters must be planned with its values (which
    /// filter's range to read depends on how many rows each matches), so it runs on the main pool in a transaction
    /// whose <c>SET LOCAL</c>s give the planner the same limits but leave it its joins.
    /// </summary>
    public async Task<List<T>> QueryInIndexOrderAsync<T>(
        string sql, Action<NpgsqlParameterCollection> bind, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken, bool oneRange = true)
    {
        if (!oneRange)
        {
            return await InTransactionAsync(async (connection, transaction) =>
            {
                await using (var settings = new NpgsqlCommand(IndexOrderSettings, connection, transaction))
                {
                    await settings.ExecuteNonQueryAsync(cancellationToken);
                }
                await using var command = new NpgsqlCommand(sql, connection, transaction);
                bind(command.Parameters);
                return await ReadAllAsync(command, read, cancellationToken);
            }, cancellationToken);
        }
        try
        {
            await using var command = IndexOrderDataSource.CreateCommand(sql);
            bind(command.Parameters);
            return await ReadAllAsync(command, read, cancellationToken);
        }
        catch (Exception ex) when (Translate(ex) is { } translated)
        {
            throw translated;
        }
    }

    /// <summary>Runs <paramref name="command"/> and reads every row with <paramref name="read"/>.</summary>
    private static async Task<List<T>> ReadAllAsync<T>(NpgsqlCommand command, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        var rows = new List<T>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(read(reader));
        }
        return rows;
    }

    public async Task<T?> QueryFirstAsync<T>(
        string sql, Action<NpgsqlParameterCollection>? bind, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken) where T : class =>
        (await QueryAsync(sql, bind, read, cancellationToken)).FirstOrDefault();

    /// <summary>Which of <paramref name="ids"/> are in <paramref name="table"/>'s <c>id</c> column (one query).</summary>
    public async Task<IReadOnlySet<string>> FindExistingIdsAsync(string table, IReadOnlyCollection<string> ids, CancellationToken cancellationToken) =>
        ids.Count == 0
            ? new HashSet<string>()
            : (await QueryAsync($"SELECT id FROM {table} WHERE id = ANY(@ids);", p => p.AddTextArray("@ids", ids), r => r.GetString(0), cancellationToken))
                .ToHashSet(StringComparer.Ordinal);

    /// <summary>Runs <paramref name="command"/> and collects its first column (text) from every row.</summary>
    public static Task<List<string>> ReadStringsAsync(NpgsqlCommand command, CancellationToken cancellationToken) =>
        ReadAllAsync(command, reader => reader.GetString(0), cancellationToken);

    /// <summary>
    /// What a failure of the database means to the caller: the service being out of reach (connection refused or
    /// lost, timeouts, the server shutting down or out of connections) is a <see cref="CatalogUnavailableException"/>,
    /// a full disk an <see cref="InsufficientStorageException"/>; anything else (a constraint, a bug) stays as it is.
    /// </summary>
    internal static Exception? Translate(Exception exception) => exception switch
    {
        PostgresException { SqlState: PostgresErrorCodes.DiskFull } => new InsufficientStorageException("The catalog database's disk is full.", exception),
        PostgresException pg when IsUnavailable(pg.SqlState) => new CatalogUnavailableException("The PostgreSQL catalog is unavailable.", exception),
        PostgresException => null,
        NpgsqlException or TimeoutException or System.Net.Sockets.SocketException => new CatalogUnavailableException("The PostgreSQL catalog cannot be reached.", exception),
        _ => null,
    };

    /// <summary>Connection exceptions (class 08), the server shutting down or starting (57P0x), out of resources (53xxx).</summary>
    private static bool IsUnavailable(string sqlState) =>
        sqlState.StartsWith("08", StringComparison.Ordinal)
        || sqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
        || sqlState.StartsWith("53", StringComparison.Ordinal);

    /// <summary>
    /// Creates or migrates the schema in one transaction under an advisory lock, so that nodes starting together
    /// take turns: the first creates it, the others then find it at the current version and change nothing.
    /// </summary>
    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT pg_advisory_xact_lock(@key);";
        command.Parameters.AddWithValue("@key", MigrationLockKey);
        await command.ExecuteNonQueryAsync(cancellationToken);
        command.Parameters.Clear();
        command.CommandText = "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL);";
        await command.ExecuteNonQueryAsync(cancellationToken);
        command.CommandText = "SELECT coalesce(max(version), 0) FROM schema_version;";
        int version = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        if (version < 1)
        {
            command.CommandText = Version1;
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        if (version < 2)
        {
            command.CommandText = Version2;
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        if (version < 3)
        {
            command.CommandText = Version3;
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        // A newer node may have migrated further: migrations only add, so this version's statements still hold.
        if (version < SchemaVersion)
        {
            command.CommandText = "DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES (@version);";
            command.Parameters.AddWithValue("@version", SchemaVersion);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Version 1: every table of the embedded catalog's version 6, in PostgreSQL's types. Every text column compares
    /// bytewise (<c>COLLATE "C"</c>), as SQLite's do: ids sort as they are generated, whatever the database's locale,
    /// so that a keyset page is a range of an index.
    /// </summary>
    private const string Version1 = """
        CREATE TABLE workspaces (
            id text COLLATE "C" NOT NULL PRIMARY KEY,
            name text COLLATE "C" NOT NULL,
            created_at bigint NOT NULL,
            storage_quota_bytes bigint,
            rate_limit_rpm bigint,
            usage_bytes bigint NOT NULL DEFAULT 0,
            deleted_at bigint,
            purged boolean NOT NULL DEFAULT false,
            allowed_providers text COLLATE "C",
            webhook_url text COLLATE "C",
            webhook_secret text COLLATE "C"
        );
        CREATE INDEX ix_workspaces_name ON workspaces (name) WHERE deleted_at IS NULL;
        CREATE INDEX ix_workspaces_deleted ON workspaces (deleted_at) WHERE deleted_at IS NOT NULL AND NOT purged;

        CREATE TABLE api_keys (
            id text COLLATE "C" NOT NULL PRIMARY KEY,
            workspace_id text COLLATE "C" NOT NULL,
            name text COLLATE "C" NOT NULL,
            hash bytea NOT NULL,
            prefix text COLLATE "C" NOT NULL,
            created_at bigint NOT NULL,
            scopes text COLLATE "C" NOT NULL,
            expires_at bigint,
            rate_limit_rpm bigint,
            last_used_at bigint
        );
        CREATE UNIQUE INDEX ix_api_keys_hash ON api_keys (hash);
        CREATE INDEX ix_api_keys_workspace ON api_keys (workspace_id, id);

        CREATE TABLE files (
            workspace_id text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            bytes bigint NOT NULL,
            created_at bigint NOT NULL,
            filename text COLLATE "C" NOT NULL,
            purpose text COLLATE "C" NOT NULL,
            status text COLLATE "C" NOT NULL,
            status_details text COLLATE "C",
            expires_at bigint,
            metadata text COLLATE "C",
            collection text COLLATE "C",
            provider text COLLATE "C" NOT NULL,
            sha256 text COLLATE "C",
            content_type text COLLATE "C",
            processing_status text COLLATE "C",
            segmented boolean NOT NULL DEFAULT false,
            PRIMARY KEY (workspace_id, id)
        );
        -- Ids are unique across workspaces through a hash index, which finds an id but gives no order: a page can
        -- only be read in id order from an index that starts with the workspace, so it never walks other workspaces'
        -- files. The 'processing' filter reads ix_files_status's range of 'uploaded' files.
        ALTER TABLE files ADD CONSTRAINT ix_files_id EXCLUDE USING hash (id WITH =);
        CREATE INDEX ix_files_purpose ON files (workspace_id, purpose, id);
        CREATE INDEX ix_files_status ON files (workspace_id, status, id);
        CREATE INDEX ix_files_collection ON files (workspace_id, collection, id);
        CREATE INDEX ix_files_expires ON files (expires_at) WHERE expires_at IS NOT NULL;
        CREATE INDEX ix_files_unhashed ON files (id) WHERE sha256 IS NULL;

        CREATE TABLE file_metadata (
            workspace_id text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            file_id text COLLATE "C" NOT NULL,
            PRIMARY KEY (workspace_id, key, value, file_id)
        );
        CREATE INDEX ix_file_metadata_file ON file_metadata USING hash (file_id);

        CREATE TABLE uploads (
            workspace_id text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            filename text COLLATE "C" NOT NULL,
            purpose text COLLATE "C" NOT NULL,
            bytes bigint NOT NULL,
            mime_type text COLLATE "C",
            created_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            status text COLLATE "C" NOT NULL,
            file_id text COLLATE "C",
            file_expires_after bigint,
            counted_bytes bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (workspace_id, id)
        );
        CREATE INDEX ix_uploads_pending ON uploads (expires_at) WHERE status = 'pending';
        CREATE INDEX ix_uploads_workspace_pending ON uploads (workspace_id) WHERE status = 'pending';

        CREATE TABLE upload_parts (
            id text COLLATE "C" NOT NULL PRIMARY KEY,
            upload_id text COLLATE "C" NOT NULL,
            workspace_id text COLLATE "C" NOT NULL,
            bytes bigint NOT NULL,
            sha256 text COLLATE "C" NOT NULL,
            created_at bigint NOT NULL,
            file_id text COLLATE "C",
            seq bigint
        );
        CREATE INDEX ix_upload_parts_upload ON upload_parts (upload_id, id);
        CREATE INDEX ix_upload_parts_file ON upload_parts (file_id, seq) WHERE file_id IS NOT NULL;

        CREATE TABLE file_copies (
            workspace_id text COLLATE "C" NOT NULL,
            provider text COLLATE "C" NOT NULL,
            file_id text COLLATE "C" NOT NULL,
            upstream_id text COLLATE "C" NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (workspace_id, provider, file_id)
        );
        CREATE INDEX ix_file_copies_file ON file_copies USING hash (file_id);
        CREATE INDEX ix_file_copies_upstream ON file_copies (provider, upstream_id);

        CREATE TABLE upstream_deletions (
            provider text COLLATE "C" NOT NULL,
            upstream_id text COLLATE "C" NOT NULL,
            file_id text COLLATE "C" NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at bigint NOT NULL,
            PRIMARY KEY (provider, upstream_id)
        );
        CREATE INDEX ix_upstream_deletions_due ON upstream_deletions (next_attempt_at);
        CREATE INDEX ix_upstream_deletions_file ON upstream_deletions (file_id);

        CREATE TABLE copy_intents (
            file_id text COLLATE "C" NOT NULL,
            provider text COLLATE "C" NOT NULL,
            workspace_id text COLLATE "C" NOT NULL,
            filename text COLLATE "C" NOT NULL,
            bytes bigint NOT NULL,
            started_at bigint NOT NULL,
            PRIMARY KEY (file_id, provider)
        );
        CREATE INDEX ix_copy_intents_started ON copy_intents (started_at);

        CREATE TABLE batches (
            workspace_id text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            endpoint text COLLATE "C" NOT NULL,
            input_file_id text COLLATE "C" NOT NULL,
            completion_window text COLLATE "C" NOT NULL,
            execution text COLLATE "C" NOT NULL,
            provider text COLLATE "C",
            status text COLLATE "C" NOT NULL,
            created_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            in_progress_at bigint,
            finalizing_at bigint,
            completed_at bigint,
            failed_at bigint,
            expired_at bigint,
            cancelling_at bigint,
            cancelled_at bigint,
            output_file_id text COLLATE "C",
            error_file_id text COLLATE "C",
            errors text COLLATE "C",
            metadata text COLLATE "C",
            output_expires_after bigint,
            total integer NOT NULL DEFAULT 0,
            completed integer NOT NULL DEFAULT 0,
            failed integer NOT NULL DEFAULT 0,
            input_tokens bigint NOT NULL DEFAULT 0,
            cached_tokens bigint NOT NULL DEFAULT 0,
            output_tokens bigint NOT NULL DEFAULT 0,
            reasoning_tokens bigint NOT NULL DEFAULT 0,
            total_tokens bigint NOT NULL DEFAULT 0,
            native_provider text COLLATE "C",
            native_batch_id text COLLATE "C",
            native_next_poll_at bigint,
            native_polls integer NOT NULL DEFAULT 0,
            lease_owner text COLLATE "C",
            lease_until bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (workspace_id, id)
        );
        CREATE UNIQUE INDEX ix_batches_id ON batches (id);
        CREATE INDEX ix_batches_active ON batches (lease_until, id)
            WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');

        CREATE TABLE batch_chunks (
            batch_id text COLLATE "C" NOT NULL,
            kind text COLLATE "C" NOT NULL,
            seq integer NOT NULL,
            part_id text COLLATE "C" NOT NULL,
            bytes bigint NOT NULL,
            PRIMARY KEY (batch_id, kind, seq)
        );

        CREATE TABLE batch_lines (
            batch_id text COLLATE "C" NOT NULL,
            line integer NOT NULL,
            PRIMARY KEY (batch_id, line)
        );

        CREATE TABLE webhook_events (
            id text COLLATE "C" NOT NULL PRIMARY KEY,
            workspace_id text COLLATE "C" NOT NULL,
            type text COLLATE "C" NOT NULL,
            created_at bigint NOT NULL,
            payload text COLLATE "C" NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at bigint NOT NULL,
            last_error text COLLATE "C",
            delivered_at bigint,
            given_up_at bigint
        );
        CREATE INDEX ix_webhook_events_due ON webhook_events (next_attempt_at)
            WHERE delivered_at IS NULL AND given_up_at IS NULL;
        """;

    /// <summary>
    /// Version 2 (the embedded catalog's version 7): work that several nodes share is claimed here. <c>leases</c> holds
    /// named leases (which node runs a sweep's rounds: <c>owner</c> until <c>lease_until</c>, unix milliseconds); a
    /// file still without its SHA-256 holds the claim of the node computing it (<c>hash_owner</c> until
    /// <c>hash_until</c>). Adding a column with a constant default rewrites nothing: the files table is not copied.
    /// <c>blob_deletions</c> holds the blobs of deleted files whose removal from the shared blob store waits until
    /// <c>remove_at</c> (unix seconds), so that downloads other nodes started can finish.
    /// </summary>
    private const string Version2 = """
        CREATE TABLE leases (
            name text COLLATE "C" NOT NULL PRIMARY KEY,
            owner text COLLATE "C" NOT NULL,
            lease_until bigint NOT NULL
        );

        ALTER TABLE files ADD COLUMN hash_owner text COLLATE "C", ADD COLUMN hash_until bigint NOT NULL DEFAULT 0;

        CREATE TABLE blob_deletions (
            id text COLLATE "C" NOT NULL PRIMARY KEY,
            remove_at bigint NOT NULL
        );
        CREATE INDEX ix_blob_deletions_due ON blob_deletions (remove_at);
        """;

    /// <summary>
    /// Version 3 (the embedded catalog's version 8): an upload carries the <c>metadata</c>, <c>collection</c> and
    /// <c>provider</c> of the file it becomes. Uploads already there made files kept only by Wharf: <c>local</c>, and
    /// nulls. Adding columns with a constant default rewrites nothing.
    /// </summary>
    private const string Version3 = """
        ALTER TABLE uploads ADD COLUMN metadata text COLLATE "C", ADD COLUMN collection text COLLATE "C",
            ADD COLUMN provider text COLLATE "C" NOT NULL DEFAULT 'local';
        """;
}

/// <summary>Typed parameters: a null is sent as SQL NULL of the column's type, so PostgreSQL never has to guess it.</summary>
internal static class PostgresParameters
{
    public static void AddText(this NpgsqlParameterCollection parameters, string name, string? value) =>
        parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value });

    public static void AddInt64(this NpgsqlParameterCollection parameters, string name, long? value) =>
        parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Bigint) { Value = (object?)value ?? DBNull.Value });

    public static void AddInt32(this NpgsqlParameterCollection parameters, string name, int value) =>
        parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Integer) { Value = value });

    public static void AddBoolean(this NpgsqlParameterCollection parameters, string name, bool value) =>
        parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Boolean) { Value = value });

    public static void AddBytes(this NpgsqlParameterCollection parameters, string name, byte[] value) =>
        parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Bytea) { Value = value });

    public static void AddTextArray(this NpgsqlParameterCollection parameters, string name, IEnumerable<string> values) =>
        parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = values as string[] ?? values.ToArray() });

    public static void AddInt32Array(this NpgsqlParameterCollection parameters, string name, IEnumerable<int> values) =>
        parameters.Add(new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = values as int[] ?? values.ToArray() });

    /// <summary>Sets the value of a parameter already added, or adds it as text.</summary>
    public static void SetText(this NpgsqlParameterCollection parameters, string name, string? value)
    {
        if (parameters.Contains(name))
        {
            parameters[name].Value = (object?)value ?? DBNull.Value;
        }
        else
        {
            parameters.AddText(name, value);
        }
    }

    public static string? NullableString(this NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    public static long? NullableInt64(this NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetInt64(ordinal);
}
