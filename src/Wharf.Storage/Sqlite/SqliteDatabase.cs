using Microsoft.Data.Sqlite;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// The embedded catalog's database: WAL mode, full fsync on commit, one writer at a time (SQLite's own rule,
/// kept in-process so writers queue instead of spinning on SQLITE_BUSY), pooled connections for readers.
/// </summary>
internal sealed class SqliteDatabase : IDisposable
{
    private const int SchemaVersion = 1;
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeGate = new(1, 1);

    public SqliteDatabase(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        Migrate();
    }

    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;";
        await pragma.ExecuteNonQueryAsync(cancellationToken);
        return connection;
    }

    /// <summary>Runs <paramref name="work"/> inside a write transaction, one writer at a time.</summary>
    public async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
            T result = await work(connection, transaction);
            await transaction.CommitAsync(cancellationToken);
            return result;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Which of <paramref name="ids"/> are in <paramref name="table"/>'s <c>id</c> column (one query).</summary>
    public async Task<IReadOnlySet<string>> FindExistingIdsAsync(string table, IReadOnlyCollection<string> ids, CancellationToken cancellationToken)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        if (ids.Count == 0)
        {
            return found;
        }
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT id FROM {table} WHERE id IN (SELECT value FROM json_each($ids));";
        command.Parameters.AddWithValue("$ids", System.Text.Json.JsonSerializer.Serialize(ids, StorageJsonContext.Default.IReadOnlyCollectionString));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            found.Add(reader.GetString(0));
        }
        return found;
    }

    public void Dispose()
    {
        _writeGate.Dispose();
        SqliteConnection.ClearAllPools();
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
        command.CommandText = """
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

            CREATE TABLE IF NOT EXISTS files (
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
                sha256 TEXT NOT NULL,
                content_type TEXT,
                processing_status TEXT,
                segmented INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (workspace_id, id)
            ) WITHOUT ROWID;
            CREATE UNIQUE INDEX IF NOT EXISTS ix_files_id ON files(id);
            CREATE INDEX IF NOT EXISTS ix_files_purpose ON files(workspace_id, purpose, id);
            CREATE INDEX IF NOT EXISTS ix_files_status ON files(workspace_id, status, id);
            CREATE INDEX IF NOT EXISTS ix_files_provider ON files(workspace_id, provider, id);
            CREATE INDEX IF NOT EXISTS ix_files_collection ON files(workspace_id, collection, id);
            CREATE INDEX IF NOT EXISTS ix_files_processing ON files(workspace_id, processing_status, id) WHERE processing_status IS NOT NULL;
            CREATE INDEX IF NOT EXISTS ix_files_expires ON files(expires_at) WHERE expires_at IS NOT NULL;

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
        command.CommandText = $"PRAGMA user_version={SchemaVersion};";
        command.ExecuteNonQuery();
        transaction.Commit();
    }
}
