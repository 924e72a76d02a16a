using Npgsql;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;
using Wharf.Storage.FileSystem;
using Wharf.Storage.Postgres;
using Wharf.Testing;

namespace Wharf.Storage.Tests;

/// <summary>
/// The shared back-end: the PostgreSQL catalog in a fresh database of the test cluster (<see cref="PostgresCluster"/>),
/// blobs on disk in a fresh directory (or in the store given).
/// </summary>
internal sealed class PostgresBackend : IStorageBackend
{
    private readonly TempDirectory _dir = new();

    private readonly bool _ownsDatabase;

    private PostgresBackend(PostgresDatabase database, string connectionString, TimeProvider time, bool ownsDatabase, IBlobStore? blobs = null)
    {
        _ownsDatabase = ownsDatabase;
        Database = database;
        ConnectionString = connectionString;
        Files = new PostgresFileCatalog(database, time);
        Keys = new PostgresKeyCatalog(database);
        Workspaces = new PostgresWorkspaceCatalog(database);
        Blobs = blobs ?? new DiskBlobStore(Path.Combine(_dir.Path, "blobs"));
        Uploads = new PostgresUploadCatalog(database);
        Copies = new PostgresFileCopyCatalog(database);
        Batches = new PostgresBatchCatalog(database);
        Outbox = new PostgresWebhookOutbox(database);
        Leases = new PostgresLeaseCatalog(database);
        DeferredBlobs = new PostgresDeferredBlobDeletions(database);
    }

    /// <summary>A backend on a new, empty database.</summary>
    public static async Task<PostgresBackend> CreateAsync(TimeProvider time, IBlobStore? blobs = null)
    {
        var cluster = await PostgresCluster.Shared;
        string connectionString = await cluster.CreateDatabaseAsync();
        return new PostgresBackend(await PostgresDatabase.OpenAsync(connectionString, CancellationToken.None), connectionString, time, ownsDatabase: true, blobs);
    }

    /// <summary>Another node on the same database: a data source (and so a connection pool) of its own.</summary>
    public async Task<PostgresBackend> OpenSecondNodeAsync(TimeProvider time) =>
        new(await PostgresDatabase.OpenAsync(ConnectionString, CancellationToken.None), ConnectionString, time, ownsDatabase: false);

    public PostgresDatabase Database { get; }

    public string ConnectionString { get; }

    public IFileCatalog Files { get; }

    public IKeyCatalog Keys { get; }

    public IWorkspaceCatalog Workspaces { get; }

    public IBlobStore Blobs { get; }

    public IUploadCatalog Uploads { get; }

    public IFileCopyCatalog Copies { get; }

    public IBatchCatalog Batches { get; }

    public IWebhookOutbox Outbox { get; }

    public ILeaseCatalog Leases { get; }

    public IDeferredBlobDeletions DeferredBlobs { get; }

    public async ValueTask DisposeAsync()
    {
        await Database.DisposeAsync();
        (Blobs as IDisposable)?.Dispose();
        if (_ownsDatabase)
        {
            await (await PostgresCluster.Shared).DropDatabaseAsync(ConnectionString);
        }
        _dir.Dispose();
    }
}

/// <summary>The shared conformance suite, run against PostgreSQL + disk.</summary>
public sealed class PostgresStorageConformanceTests : StorageConformanceTests
{
    protected override async Task<IStorageBackend> CreateBackendAsync(TimeProvider time) => await PostgresBackend.CreateAsync(time);
}

/// <summary>
/// What only the PostgreSQL catalog promises: a schema created once however many nodes start together, list pages that
/// are one index range scan, and exact usage, single claims and fenced writes when several nodes write at once.
/// </summary>
public sealed class PostgresCatalogTests : IAsyncLifetime
{
    private const string Ws = "ws_0000000000000000000000000000000a";
    private const string WsB = "ws_0000000000000000000000000000000b";
    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly IdGenerator _ids = new(TimeProvider.System);
    private PostgresBackend _backend = null!;

    private static CancellationToken Ct => CancellationToken.None;

    public async Task InitializeAsync() => _backend = await PostgresBackend.CreateAsync(_clock);

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    private string NewFileId() => WharfIds.File(_ids.Next());

    // ---------------------------------------------------------------- schema

    [Fact]
    public async Task OpeningAgainChangesNothingAndKeepsTheData()
    {
        var file = TestFiles.Make(Ws, NewFileId(), metadata: new Dictionary<string, string> { ["k"] = "v" });
        await _backend.Files.InsertAsync(file, Ct);
        await using (var again = await _backend.OpenSecondNodeAsync(_clock))
        {
            Assert.Equal(file.Id, (await again.Files.GetAsync(Ws, file.Id, Ct))?.Id);
        }
        Assert.Equal([PostgresDatabase.SchemaVersion], await IntsAsync("SELECT version FROM schema_version;"));
        Assert.Equal(file.Id, (await _backend.Files.GetAsync(Ws, file.Id, Ct))?.Id);
    }

    /// <summary>
    /// A database of schema version 2 (uploads without their file's metadata, collection and provider) is migrated
    /// when a node opens it: a pending upload is kept and reads as one made without them, and new ones keep all three.
    /// </summary>
    [Fact]
    public async Task AVersion2DatabaseIsMigratedWithItsPendingUploadsKeptLocalAndNewOnesCarryingTheirFileFields()
    {
        UploadRecord Upload() => new()
        {
            Id = WharfIds.Hex(WharfIds.UploadPrefix, _ids.Next()), WorkspaceId = Ws, Filename = "big.jsonl", Purpose = "batch",
            Bytes = 10, MimeType = "application/jsonl", CreatedAt = 1, ExpiresAt = 4_000_000_000, Status = UploadStatus.Pending,
        };
        var old = Upload();
        Assert.Equal(UploadInsertOutcome.Inserted, await _backend.Uploads.InsertUploadAsync(old, 100, Ct));
        await _backend.Database.ExecuteAsync(
            """
            ALTER TABLE uploads DROP COLUMN metadata, DROP COLUMN collection, DROP COLUMN provider;
            UPDATE schema_version SET version = 2;
            """,
            _ => { }, Ct);

        await using var migrated = await _backend.OpenSecondNodeAsync(_clock);
        Assert.Equal([PostgresDatabase.SchemaVersion], await IntsAsync("SELECT version FROM schema_version;"));
        Assert.Equal(3, PostgresDatabase.SchemaVersion);
        var kept = await migrated.Uploads.GetUploadAsync(Ws, old.Id, Ct);
        Assert.Equal(old, kept);
        Assert.Equal(("local", null, 0), (kept!.Provider, kept.Collection, kept.Metadata.Count));
        var carrying = Upload() with { Metadata = new Dictionary<string, string> { ["k"] = "v" }, Collection = "c", Provider = "openai" };
        Assert.Equal(UploadInsertOutcome.Inserted, await migrated.Uploads.InsertUploadAsync(carrying, 100, Ct));
        var read = await migrated.Uploads.GetUploadAsync(Ws, carrying.Id, Ct);
        Assert.Equal(("openai", "c", "v"), (read!.Provider, read.Collection, read.Metadata["k"]));
    }

    /// <summary>
    /// A database of schema version 1 (before leases) is migrated when a node opens it: its files are kept, one still
    /// waiting for its SHA-256 is listed with no claim on it, and leases work.
    /// </summary>
    [Fact]
    public async Task AVersion1DatabaseIsMigratedWithLeasesAndItsUnhashedFilesUnclaimed()
    {
        var unhashed = TestFiles.Make(Ws, NewFileId()) with { Sha256 = null };
        var hashed = TestFiles.Make(Ws, NewFileId());
        await _backend.Files.InsertAsync(unhashed, Ct);
        await _backend.Files.InsertAsync(hashed, Ct);
        await _backend.Database.ExecuteAsync(
            """
            DROP TABLE leases; DROP TABLE blob_deletions;
            ALTER TABLE files DROP COLUMN hash_owner, DROP COLUMN hash_until;
            ALTER TABLE uploads DROP COLUMN metadata, DROP COLUMN collection, DROP COLUMN provider;
            UPDATE schema_version SET version = 1;
            """,
            _ => { }, Ct);

        await using var migrated = await _backend.OpenSecondNodeAsync(_clock);
        Assert.Equal([PostgresDatabase.SchemaVersion], await IntsAsync("SELECT version FROM schema_version;"));
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.Equal([unhashed.Id], (await migrated.Files.ListUnhashedAsync(null, 10, now, Ct)).Select(f => f.Id));
        Assert.True(await migrated.Files.ClaimHashingAsync(Ws, unhashed.Id, "node_a", now, now + 60_000, Ct));
        Assert.False(await migrated.Files.ClaimHashingAsync(Ws, unhashed.Id, "node_b", now, now + 60_000, Ct));
        Assert.Equal(hashed.Sha256, (await migrated.Files.GetAsync(Ws, hashed.Id, Ct))!.Sha256);
        Assert.True(await migrated.Leases.TryAcquireAsync("storage-sweep", "node_a", now, now + 1000, Ct));
        Assert.False(await migrated.Leases.TryAcquireAsync("storage-sweep", "node_b", now, now + 1000, Ct));
        await migrated.DeferredBlobs.DeferAsync([hashed.Id], 5, Ct);
        Assert.Equal([hashed.Id], await migrated.DeferredBlobs.ListDueAsync(5, 10, Ct));
    }

    [Fact]
    public async Task NodesStartingTogetherOnAnEmptyDatabaseAllOpenItAndTheSchemaIsMadeOnce()
    {
        var cluster = await PostgresCluster.Shared;
        string connectionString = await cluster.CreateDatabaseAsync();
        var opened = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => PostgresDatabase.OpenAsync(connectionString, Ct))));
        foreach (var database in opened)
        {
            await database.DisposeAsync();
        }
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM schema_version;", connection);
        Assert.Equal(1L, await command.ExecuteScalarAsync());
    }

    /// <summary>
    /// A busy node holds at most its pools' bounds of PostgreSQL's connections: by default 20 for the main pool and 10
    /// for the list pool (Npgsql's own default of 100 per pool lets one node take a server's default 100 connections
    /// by itself), and the connection string's <c>Maximum Pool Size</c> for the main pool, half of it for the list pool.
    /// Three times as many queries at once all complete: the main pool's on exactly its bound of sessions, the list
    /// pool's (multiplexed: queued commands are written together to a free or the least busy session) on at most its.
    /// </summary>
    [Theory]
    [InlineData("", 20, 10)]
    [InlineData(";Maximum Pool Size=6", 6, 3)]
    [InlineData(";Minimum Pool Size=25", 25, 12)]
    public async Task EachPoolHoldsAtMostItsBoundOfConnectionsUnderABurst(string extra, int main, int lists)
    {
        var cluster = await PostgresCluster.Shared;
        string connectionString = await cluster.CreateDatabaseAsync() + extra;
        await using var database = await PostgresDatabase.OpenAsync(connectionString, Ct);
        const string Sessions = "SELECT pg_backend_pid() FROM pg_sleep(0.1);";
        var onMain = Enumerable.Range(0, 3 * main).Select(_ => database.QueryAsync(Sessions, null, r => r.GetInt32(0), Ct));
        var onLists = Enumerable.Range(0, 3 * lists).Select(_ => database.QueryInIndexOrderAsync(Sessions, _ => { }, r => r.GetInt32(0), Ct));
        var mainPids = (await Task.WhenAll(onMain)).SelectMany(rows => rows).ToHashSet();
        var listPids = (await Task.WhenAll(onLists)).SelectMany(rows => rows).ToHashSet();
        Assert.Equal(main, mainPids.Count);
        Assert.InRange(listPids.Count, 1, lists);
        Assert.Empty(mainPids.Intersect(listPids));
    }

    /// <summary>Migration waits for the advisory lock: while another session holds it, a start does not touch the schema.</summary>
    [Fact]
    public async Task MigrationWaitsForTheAdvisoryLock()
    {
        var cluster = await PostgresCluster.Shared;
        string connectionString = await cluster.CreateDatabaseAsync();
        await using var holder = new NpgsqlConnection(connectionString);
        await holder.OpenAsync();
        await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock(@key);", holder))
        {
            take.Parameters.AddWithValue("@key", PostgresDatabase.MigrationLockKey);
            await take.ExecuteNonQueryAsync();
        }
        var opening = Task.Run(() => PostgresDatabase.OpenAsync(connectionString, Ct));
        await Task.Delay(700);
        Assert.False(opening.IsCompleted);
        await using (var tables = new NpgsqlCommand("SELECT count(*) FROM pg_tables WHERE tablename = 'files';", holder))
        {
            Assert.Equal(0L, await tables.ExecuteScalarAsync());
        }
        await using (var release = new NpgsqlCommand("SELECT pg_advisory_unlock(@key);", holder))
        {
            release.Parameters.AddWithValue("@key", PostgresDatabase.MigrationLockKey);
            await release.ExecuteNonQueryAsync();
        }
        await using var database = await opening.WaitAsync(TimeSpan.FromSeconds(30));
        await new PostgresFileCatalog(database, _clock).CheckAsync(Ct);
    }

    [Fact]
    public async Task AnUnreachableServerIsAnErrorNamingTheSetting()
    {
        string unreachable = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = FreePort(), Username = "wharf", Timeout = 3 }.ConnectionString;
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => PostgresDatabase.OpenAsync(unreachable, Ct));
        Assert.Contains(PostgresDatabase.ConnectionStringKey, error.Message, StringComparison.Ordinal);
        var malformed = await Assert.ThrowsAsync<InvalidOperationException>(() => PostgresDatabase.OpenAsync("Host=127.0.0.1;NoSuchKeyword=1", Ct));
        Assert.Contains(PostgresDatabase.ConnectionStringKey, malformed.Message, StringComparison.Ordinal);
    }

    /// <summary>Ids sort bytewise although the database's own collation (ICU en-US) would put 'a' before 'B'.</summary>
    [Fact]
    public async Task IdsCompareBytewiseWhateverTheDatabaseCollation()
    {
        Assert.Equal(["true"], await TextsAsync("SELECT ('file-B' < 'file-a' COLLATE \"C\")::text;")); // bytewise: 'B' first...
        Assert.Equal(["false"], await TextsAsync("SELECT ('file-B' < 'file-a')::text;")); // ...the database's own collation: 'a' first
        string upper = "file-" + new string('B', 22);
        string lower = "file-" + new string('a', 22);
        await _backend.Files.InsertAsync(TestFiles.Make(Ws, lower), Ct);
        await _backend.Files.InsertAsync(TestFiles.Make(Ws, upper), Ct);
        var ascending = await _backend.Files.ListAsync(StorageConformanceTests.Query(Ws, descending: false), Ct);
        Assert.Equal([upper, lower], ascending.Items.Select(f => f.Id));
        var after = await _backend.Files.ListAsync(StorageConformanceTests.Query(Ws, descending: false, after: upper), Ct);
        Assert.Equal([lower], after.Items.Select(f => f.Id));
    }

    // ---------------------------------------------------------------- plans

    public static TheoryData<string, bool> CursorCases => new()
    {
        { "none", true }, { "after", true }, { "before", true },
        { "none", false }, { "after", false }, { "before", false },
    };

    private FileListQuery WithCursor(FileListQuery query, string cursor, bool descending) => cursor switch
    {
        "after" => query with { After = NewFileId(), Descending = descending },
        "before" => query with { Before = NewFileId(), Descending = descending },
        _ => query with { Descending = descending },
    };

    private static FileListQuery Query(string? purpose = null, string? status = null, string? provider = null, string? collection = null,
        IReadOnlyList<KeyValuePair<string, string>>? metadata = null) =>
        StorageConformanceTests.Query(Ws, 10, true, null, null, purpose, status, provider, collection, metadata);

    public static TheoryData<string> Shapes => new() { "plain", "purpose", "status", "processing", "collection", "provider", "metadata", "metadata2", "provider+metadata" };

    private static FileListQuery Shape(string shape) => shape switch
    {
        "purpose" => Query(purpose: "batch"),
        "status" => Query(status: "processed"),
        "processing" => Query(status: "processing"),
        "collection" => Query(collection: "docs"),
        "provider" => Query(provider: "openai"),
        "metadata" => Query(metadata: [new("team", "a")]),
        "metadata2" => Query(purpose: "batch", metadata: [new("team", "a"), new("env", "prod")]),
        "provider+metadata" => Query(provider: "openai", purpose: "batch", metadata: [new("team", "a")]),
        _ => Query(),
    };

    /// <summary>The index whose range a shape's page is: the filter's own, or the key of the table that drives the scan.</summary>
    private static string IndexOf(string shape) => shape switch
    {
        "purpose" => "ix_files_purpose",
        "status" or "processing" => "ix_files_status",
        "collection" => "ix_files_collection",
        "provider" or "provider+metadata" => "file_copies_pkey",
        "metadata" or "metadata2" => "file_metadata_pkey",
        _ => "files_pkey",
    };

    /// <summary>
    /// The plan a list session keeps for a page of one range is generic (made once, whatever the values), so it is
    /// checked as such: prepared and explained with the list sessions' settings, on a catalog with data and statistics,
    /// it is still one index range in the page's order.
    /// </summary>
    [Theory]
    [InlineData("plain")]
    [InlineData("purpose")]
    [InlineData("status")]
    [InlineData("processing")]
    [InlineData("collection")]
    [InlineData("provider")]
    [InlineData("metadata")]
    public async Task TheGenericPlanOfEveryPageOfOneRangeIsOneIndexRangeScan(string shape)
    {
        await FillAsync(3000);
        var connection = new NpgsqlConnectionStringBuilder(_backend.ConnectionString) { Options = PostgresDatabase.IndexOrderOptions, Pooling = false };
        await using var session = new NpgsqlConnection(connection.ConnectionString);
        await session.OpenAsync(Ct);
        foreach (string cursor in new[] { "none", "after", "before" })
        {
            var query = WithCursor(Shape(shape), cursor, descending: true);
            Assert.True(PostgresFileCatalog.IsOneRange(query));
            var parameters = new List<NpgsqlParameter>();
            string sql = PostgresFileCatalog.BuildListSql(query, parameters, 1_750_000_000).TrimEnd(';');
            for (int i = 0; i < parameters.Count; i++)
            {
                sql = System.Text.RegularExpressions.Regex.Replace(sql, System.Text.RegularExpressions.Regex.Escape(parameters[i].ParameterName) + @"\b", "$" + (i + 1));
            }
            string types = string.Join(", ", parameters.Select(p => p.NpgsqlDbType switch
            {
                NpgsqlTypes.NpgsqlDbType.Bigint => "bigint",
                NpgsqlTypes.NpgsqlDbType.Integer => "integer",
                _ => "text",
            }));
            string values = string.Join(", ", parameters.Select(p => p.Value is string text
                ? "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'"
                : Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture)));
            await using (var prepare = new NpgsqlCommand($"DEALLOCATE ALL; PREPARE page ({types}) AS {sql};", session))
            {
                await prepare.ExecuteNonQueryAsync(Ct);
            }
            await using var explain = new NpgsqlCommand($"EXPLAIN EXECUTE page ({values});", session);
            string plan = string.Join("\n", await PostgresDatabase.ReadStringsAsync(explain, Ct));
            Assert.Contains("$1", plan, StringComparison.Ordinal); // generic: the values are parameters
            AssertIndexedRangeScan(plan, IndexOf(shape));
            foreach (string forbidden in new[] { "Gather", "Merge Join", "Materialize" })
            {
                Assert.False(plan.Contains(forbidden, StringComparison.Ordinal), plan); // each row joined by a key lookup
            }
        }
    }

    private const string SessionSettings =
        "SELECT concat_ws(',', current_setting('enable_sort'), current_setting('enable_bitmapscan'), current_setting('enable_mergejoin'), "
        + "current_setting('enable_hashjoin'), current_setting('max_parallel_workers_per_gather'), current_setting('plan_cache_mode'));";

    [Fact]
    public async Task ListPagesRunInSessionsSetToIndexOrderEveryTimeAndNothingElseDoes()
    {
        // Many times over, so that pooled connections are handed back (and reset) and used again.
        for (int i = 0; i < 20; i++)
        {
            var settings = await _backend.Database.QueryInIndexOrderAsync(SessionSettings, _ => { }, r => r.GetString(0), Ct);
            Assert.Equal("off,off,off,off,0,force_generic_plan", Assert.Single(settings));
            var elsewhere = await _backend.Database.QueryAsync(SessionSettings, null, r => r.GetString(0), Ct);
            Assert.Equal("on,on,on,on,2,auto", Assert.Single(elsewhere));
        }
    }

    private async Task<string> PlanAsync(FileListQuery query)
    {
        var parameters = new List<NpgsqlParameter>();
        string sql = "EXPLAIN " + PostgresFileCatalog.BuildListSql(query, parameters, 1_750_000_000);
        var lines = await _backend.Database.QueryInIndexOrderAsync(sql, p => p.AddRange(parameters.ToArray()), r => r.GetString(0), Ct, PostgresFileCatalog.IsOneRange(query));
        return string.Join("\n", lines);
    }

    /// <summary>
    /// One index range scan: the expected index scanned with the workspace (and the cursor) as its condition, the rows
    /// in the page's order straight from it (no sort), and no table read whole.
    /// </summary>
    private static void AssertIndexedRangeScan(string plan, string index)
    {
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(plan, $@"Index (Only )?Scan( Backward)? using {index} on"), plan);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(plan, @"Index Cond: \(+workspace_id = "), plan);
        foreach (string forbidden in new[] { "Sort", "Seq Scan", "Bitmap", "Hash" })
        {
            Assert.False(plan.Contains(forbidden, StringComparison.Ordinal), plan);
        }
    }

    [Theory]
    [MemberData(nameof(CursorCases))]
    public async Task AnUnfilteredPageIsARangeOfThePrimaryKeyOnAnEmptyCatalog(string cursor, bool descending)
    {
        AssertIndexedRangeScan(await PlanAsync(WithCursor(Query(), cursor, descending)), "files_pkey");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task EveryFilteredPageIsOneIndexRangeScanOnAnEmptyCatalog(string shape)
    {
        foreach (string cursor in new[] { "none", "after", "before" })
        {
            string plan = await PlanAsync(WithCursor(Shape(shape), cursor, descending: true));
            AssertIndexedRangeScan(plan, IndexOf(shape));
        }
    }

    /// <summary>
    /// With statistics, a filter that most of the workspace's files match may be read from the primary key's range of
    /// the workspace, testing the filter on each row (the planner's choice, by cost): still one range scan in order.
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task EveryPageStaysOneIndexRangeScanWithDataAndStatistics(string shape)
    {
        await FillAsync(3000);
        foreach (string cursor in new[] { "none", "after", "before" })
        {
            foreach (bool descending in new[] { true, false })
            {
                string plan = await PlanAsync(WithCursor(Shape(shape), cursor, descending));
                string index = IndexOf(shape);
                AssertIndexedRangeScan(plan, index.StartsWith("ix_files_", StringComparison.Ordinal) && plan.Contains("using files_pkey", StringComparison.Ordinal)
                    ? "files_pkey"
                    : index);
            }
        }
    }

    /// <summary>A rare value of a filter is read from the filter's own index: the page costs the rows it holds.</summary>
    [Theory]
    [InlineData("purpose", "ix_files_purpose")]
    [InlineData("status", "ix_files_status")]
    [InlineData("collection", "ix_files_collection")]
    public async Task ARareFilterValueIsReadFromItsOwnIndex(string filter, string index)
    {
        await FillAsync(3000);
        var query = filter switch
        {
            "purpose" => Query(purpose: "fine-tune"),
            "status" => Query(status: "error"),
            _ => Query(collection: "rare"),
        };
        AssertIndexedRangeScan(await PlanAsync(query with { After = NewFileId() }), index);
    }

    /// <summary>Two workspaces' files with every filter's values spread among them, then ANALYZE.</summary>
    private async Task FillAsync(int files)
    {
        await using var connection = await _backend.Database.DataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("""
            INSERT INTO files (workspace_id, id, bytes, created_at, filename, purpose, status, provider, collection, metadata)
            SELECT CASE WHEN i % 2 = 0 THEN @ws ELSE @other END, 'file-' || lpad(i::text, 22, '0'), 1, 1750000000, 'f.txt',
                CASE WHEN i % 3 = 0 THEN 'batch' ELSE 'assistants' END, CASE WHEN i % 5 = 0 THEN 'uploaded' ELSE 'processed' END,
                'local', CASE WHEN i % 4 = 0 THEN 'docs' END, '{"team":"a"}'
            FROM generate_series(1, @n) AS i;
            INSERT INTO file_metadata (workspace_id, key, value, file_id) SELECT workspace_id, 'team', CASE WHEN right(id, 1) IN ('1', '2') THEN 'a' ELSE 'b' END, id FROM files;
            INSERT INTO file_metadata (workspace_id, key, value, file_id) SELECT workspace_id, 'env', 'prod', id FROM files WHERE right(id, 1) = '1';
            INSERT INTO file_copies (workspace_id, provider, file_id, upstream_id, created_at) SELECT workspace_id, 'openai', id, 'up-' || id, 1 FROM files WHERE right(id, 1) IN ('3', '4', '5');
            ANALYZE;
            """, connection);
        command.Parameters.AddWithValue("@ws", Ws);
        command.Parameters.AddWithValue("@other", WsB);
        command.Parameters.AddWithValue("@n", files);
        await command.ExecuteNonQueryAsync();
    }

    // ---------------------------------------------------------------- several nodes

    /// <summary>
    /// Files uploaded at once through two nodes (two data sources) into a workspace with a quota: exactly as many as fit
    /// are kept, and the usage is their sum.
    /// </summary>
    [Fact]
    public async Task ConcurrentUploadsOnTwoNodesKeepUsageExactUnderTheQuota()
    {
        await using var nodeB = await _backend.OpenSecondNodeAsync(_clock);
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "quota", CreatedAt = 1, StorageQuotaBytes = 2_000 }, Ct);
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 60).Select(i => Task.Run(() =>
            (i % 2 == 0 ? _backend.Files : nodeB.Files).InsertAsync(TestFiles.Make(Ws, NewFileId(), bytes: 100), Ct))));
        Assert.Equal(20, outcomes.Count(o => o == FileInsertOutcome.Inserted));
        Assert.Equal(40, outcomes.Count(o => o == FileInsertOutcome.QuotaExceeded));
        var workspace = await nodeB.Workspaces.GetWorkspaceAsync(Ws, Ct);
        Assert.Equal(2_000, workspace?.UsageBytes);
        var listed = await _backend.Files.ListAsync(StorageConformanceTests.Query(Ws), Ct);
        Assert.Equal(2_000, listed.Items.Sum(f => f.Bytes));
    }

    /// <summary>
    /// Parts of one upload, new uploads, files and deletes, all at once on two nodes: the usage is always what the rows
    /// say it is (files' bytes plus what pending uploads count), and never past the quota.
    /// </summary>
    [Fact]
    public async Task MixedConcurrentWritesOnTwoNodesKeepUsageEqualToTheRows()
    {
        await using var nodeB = await _backend.OpenSecondNodeAsync(_clock);
        const long Quota = 50_000;
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "mixed", CreatedAt = 1, StorageQuotaBytes = Quota }, Ct);
        long now = _clock.GetUtcNow().ToUnixTimeSeconds();
        var upload = new UploadRecord
        {
            Id = WharfIds.Hex(WharfIds.UploadPrefix, _ids.Next()), WorkspaceId = Ws, Filename = "big.bin", Purpose = "assistants",
            Bytes = 1_000, CreatedAt = now, ExpiresAt = now + 3600, Status = UploadStatus.Pending,
        };
        Assert.Equal(UploadInsertOutcome.Inserted, await _backend.Uploads.InsertUploadAsync(upload, 100, Ct));
        var kept = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
        {
            var node = i % 2 == 0 ? _backend : nodeB;
            switch (i % 4)
            {
                case 0:
                case 1:
                    var part = new UploadPartRecord
                    {
                        Id = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next()), UploadId = upload.Id, WorkspaceId = Ws, Bytes = 700,
                        Sha256 = new string('0', 64), CreatedAt = now,
                    };
                    return await node.Uploads.InsertPartAsync(part, now, long.MaxValue, Ct) == PartInsertOutcome.Inserted ? 700 : 0;
                case 2:
                    string id = NewFileId();
                    if (await node.Files.InsertAsync(TestFiles.Make(Ws, id, bytes: 3_000), Ct) != FileInsertOutcome.Inserted)
                    {
                        return 0;
                    }
                    return await node.Files.DeleteAsync(Ws, id, Ct) ? 0 : 3_000;
                default:
                    return await node.Files.InsertAsync(TestFiles.Make(Ws, NewFileId(), bytes: 1_500), Ct) == FileInsertOutcome.Inserted ? 1_500 : 0;
            }
        })));
        var workspace = await _backend.Workspaces.GetWorkspaceAsync(Ws, Ct);
        long files = (await _backend.Files.ListAsync(StorageConformanceTests.Query(Ws), Ct)).Items.Sum(f => f.Bytes);
        long parts = (await _backend.Uploads.ListPartsAsync(Ws, upload.Id, Ct)).Sum(p => p.Bytes);
        Assert.Equal(kept.Where((_, i) => i % 4 is 0 or 1).Sum(), parts);
        Assert.Equal(files + Math.Max(upload.Bytes, parts), workspace?.UsageBytes);
        Assert.True(workspace?.UsageBytes <= Quota);
    }

    /// <summary>Two nodes claiming at once: each batch goes to one of them only.</summary>
    [Fact]
    public async Task TwoNodesClaimingTheSameBatchOneWins()
    {
        await using var nodeB = await _backend.OpenSecondNodeAsync(_clock);
        for (int round = 0; round < 20; round++)
        {
            var batch = new BatchRecord
            {
                Id = WharfIds.Hex(WharfIds.BatchPrefix, _ids.Next()), WorkspaceId = Ws, Endpoint = "/v1/chat/completions",
                InputFileId = NewFileId(), Execution = BatchExecution.Gateway, Status = BatchStatus.Validating,
                CreatedAt = 1_750_000_000, ExpiresAt = 1_750_086_400,
            };
            Assert.True(await _backend.Batches.InsertAsync(batch, Ct));
            long now = 1_000 + round;
            var claims = await Task.WhenAll(
                Task.Run(() => _backend.Batches.ClaimAsync("node_a", now, now + 30_000, [], Ct)),
                Task.Run(() => nodeB.Batches.ClaimAsync("node_b", now, now + 30_000, [], Ct)));
            var winner = Assert.Single(claims, c => c is not null);
            Assert.Equal(batch.Id, winner!.Id);
            string loser = claims[0] is null ? "node_a" : "node_b";
            // The loser's writes are fenced off; the winner's hold. The batch ends so the next round claims its own.
            Assert.Null(await (loser == "node_a" ? _backend : nodeB).Batches.UpdateAsync(winner with { Status = BatchStatus.InProgress }, loser, Ct));
            string owner = loser == "node_a" ? "node_b" : "node_a";
            Assert.NotNull(await _backend.Batches.UpdateAsync(winner with { Status = BatchStatus.Failed, FailedAt = 1 }, owner, Ct));
        }
    }

    /// <summary>
    /// The expiry sweeps of two nodes (two data sources) reach the same expired files at once, each deleting what it
    /// listed in its own order: every file is removed by one of them, its bytes leave the usage once, its copy is queued
    /// for deletion upstream once, and the parts of a file made from an upload go with it.
    /// </summary>
    [Fact]
    public async Task TwoNodesSweepingTheSameExpiredFilesRemoveEachOnceAndCountItOnce()
    {
        await using var nodeB = await _backend.OpenSecondNodeAsync(_clock);
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "expiry", CreatedAt = 1, StorageQuotaBytes = 1_000_000 }, Ct);
        long now = _clock.GetUtcNow().ToUnixTimeSeconds();
        var kept = TestFiles.Make(Ws, NewFileId(), bytes: 5, expiresAt: now + 3600);
        Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(kept, Ct));
        var expired = new List<FileRecord>();
        for (int i = 0; i < 30; i++)
        {
            var file = TestFiles.Make(Ws, NewFileId(), bytes: 100 + i, expiresAt: now - 1, metadata: new Dictionary<string, string> { ["k"] = "v" });
            Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(file, Ct));
            Assert.True(await _backend.Copies.InsertCopyAsync(new FileCopy(Ws, file.Id, "openai", "up-" + file.Id, 1), Ct));
            expired.Add(file);
        }
        // One more made from an upload: its parts are its segments.
        var upload = new UploadRecord
        {
            Id = WharfIds.Hex(WharfIds.UploadPrefix, _ids.Next()), WorkspaceId = Ws, Filename = "big.bin", Purpose = "assistants",
            Bytes = 300, CreatedAt = now, ExpiresAt = now + 3600, Status = UploadStatus.Pending,
        };
        Assert.Equal(UploadInsertOutcome.Inserted, await _backend.Uploads.InsertUploadAsync(upload, 100, Ct));
        var parts = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            var part = new UploadPartRecord
            {
                Id = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next()), UploadId = upload.Id, WorkspaceId = Ws, Bytes = 100,
                Sha256 = new string('0', 64), CreatedAt = now,
            };
            Assert.Equal(PartInsertOutcome.Inserted, await _backend.Uploads.InsertPartAsync(part, now, long.MaxValue, Ct));
            parts.Add(part.Id);
        }
        var segmented = TestFiles.Make(Ws, NewFileId(), bytes: 300, expiresAt: now - 1) with { Segmented = true };
        Assert.Equal(CompleteOutcome.Completed, (await _backend.Uploads.CompleteAsync(upload.Id, segmented, parts, Ct)).Outcome);
        expired.Add(segmented);
        long before = (await _backend.Workspaces.GetWorkspaceAsync(Ws, Ct))!.UsageBytes;
        Assert.Equal(5 + expired.Sum(f => f.Bytes), before);

        var removedBy = await Task.WhenAll(Enumerable.Range(0, 4).Select(sweep => Task.Run(async () =>
        {
            var node = sweep % 2 == 0 ? _backend : nodeB;
            var listed = await node.Files.ListExpiredAsync(now, 500, Ct);
            var removed = new List<string>();
            foreach (var file in sweep < 2 ? listed : listed.Reverse())
            {
                if (await node.Files.DeleteAsync(file.WorkspaceId, file.Id, Ct))
                {
                    removed.Add(file.Id);
                }
            }
            return removed;
        })));

        var removedIds = removedBy.SelectMany(r => r).ToList();
        Assert.Equal(expired.Select(f => f.Id).Order(StringComparer.Ordinal), removedIds.Order(StringComparer.Ordinal));
        Assert.Equal(5, (await nodeB.Workspaces.GetWorkspaceAsync(Ws, Ct))!.UsageBytes);
        Assert.Empty(await nodeB.Uploads.GetSegmentsAsync(segmented.Id, Ct));
        Assert.Empty(await nodeB.Uploads.FindExistingPartsAsync(parts, Ct));
        var queued = await nodeB.Copies.ListDueDeletionsAsync(long.MaxValue, 100, Ct);
        Assert.Equal(expired.Where(f => !f.Segmented).Select(f => "up-" + f.Id).Order(StringComparer.Ordinal),
            queued.Select(d => d.UpstreamId).Order(StringComparer.Ordinal));
        Assert.NotNull(await nodeB.Files.GetAsync(Ws, kept.Id, Ct));
    }

    /// <summary>Two nodes asking for a sweep's lease and for files to hash, at once: each goes to one node only.</summary>
    [Fact]
    public async Task TwoNodesTakingLeasesAndHashingClaimsAtOnceGetEachOnce()
    {
        await using var nodeB = await _backend.OpenSecondNodeAsync(_clock);
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var files = new List<FileRecord>();
        for (int i = 0; i < 20; i++)
        {
            var file = TestFiles.Make(Ws, NewFileId()) with { Sha256 = null };
            Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(file, Ct));
            files.Add(file);
        }
        for (int round = 0; round < 10; round++)
        {
            string name = "sweep-" + round;
            var taken = await Task.WhenAll(
                Task.Run(() => _backend.Leases.TryAcquireAsync(name, "node_a", now, now + 30_000, Ct)),
                Task.Run(() => nodeB.Leases.TryAcquireAsync(name, "node_b", now, now + 30_000, Ct)));
            Assert.Single(taken, t => t);
        }
        // Both nodes queue every unhashed file and claim them one by one, in opposite orders: each file is claimed once.
        var claimedBy = await Task.WhenAll(new[] { (_backend, "node_a"), (nodeB, "node_b") }.Select(n => Task.Run(async () =>
        {
            var (node, owner) = n;
            var listed = await node.Files.ListUnhashedAsync(null, 100, now, Ct);
            var claimed = new List<string>();
            foreach (var file in owner == "node_a" ? listed : listed.Reverse())
            {
                if (await node.Files.ClaimHashingAsync(file.WorkspaceId, file.Id, owner, now, now + 60_000, Ct))
                {
                    claimed.Add(file.Id);
                }
            }
            return claimed;
        })));
        Assert.Equal(files.Select(f => f.Id).Order(StringComparer.Ordinal), claimedBy.SelectMany(c => c).Order(StringComparer.Ordinal));
        Assert.Empty(await nodeB.Files.ListUnhashedAsync(null, 100, now, Ct));
    }

    /// <summary>Due webhook events claimed by two nodes at once: each event goes to one node.</summary>
    [Fact]
    public async Task TwoNodesClaimingDueWebhookEventsEachTakeOthers()
    {
        await using var nodeB = await _backend.OpenSecondNodeAsync(_clock);
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "hooks", CreatedAt = 1, WebhookUrl = "http://127.0.0.1:9/hook" }, Ct, "whsec_x");
        await using (var connection = await _backend.Database.DataSource.OpenConnectionAsync())
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO webhook_events (id, workspace_id, type, created_at, payload, next_attempt_at)
            SELECT 'evt_' || lpad(i::text, 32, '0'), @ws, 'batch.completed', 100, '{}', 100 FROM generate_series(1, 40) AS i;
            """, connection))
        {
            insert.Parameters.AddWithValue("@ws", Ws);
            await insert.ExecuteNonQueryAsync();
        }
        // Rounds of four claims at once, two per node, until every event is taken: none is taken twice.
        var taken = new List<WebhookDelivery>();
        for (int round = 0; round < 50 && taken.Count < 40; round++)
        {
            var claims = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Run(() =>
                (i % 2 == 0 ? _backend.Outbox : nodeB.Outbox).ClaimDueAsync(200, 260, 10, 100, [], Ct))));
            taken.AddRange(claims.SelectMany(c => c));
        }
        Assert.Equal(40, taken.Count);
        Assert.Equal(40, taken.Select(d => d.EventId).Distinct().Count());
        Assert.All(taken, d => Assert.Equal("whsec_x", d.Secret));
    }

    // ---------------------------------------------------------------- outages

    /// <summary>
    /// A server that goes away while the catalog runs makes its calls fail as unavailable (503 to clients), and the
    /// catalog works again by itself once the server is back.
    /// </summary>
    [Fact]
    public async Task AServerThatGoesAwayIsUnavailableThenRecovers()
    {
        await using var cluster = await PostgresCluster.StartAsync();
        string connectionString = await cluster.CreateDatabaseAsync();
        await using var database = await PostgresDatabase.OpenAsync(connectionString, Ct);
        var files = new PostgresFileCatalog(database, _clock);
        var file = TestFiles.Make(Ws, NewFileId());
        Assert.Equal(FileInsertOutcome.Inserted, await files.InsertAsync(file, Ct));

        await cluster.StopAsync();
        await Assert.ThrowsAsync<CatalogUnavailableException>(() => files.GetAsync(Ws, file.Id, Ct));
        await Assert.ThrowsAsync<CatalogUnavailableException>(() => files.InsertAsync(TestFiles.Make(Ws, NewFileId()), Ct));
        await Assert.ThrowsAsync<CatalogUnavailableException>(() => files.CheckAsync(Ct));

        await cluster.StartAgainAsync();
        FileRecord? read = null;
        for (int attempt = 0; attempt < 50 && read is null; attempt++)
        {
            try
            {
                read = await files.GetAsync(Ws, file.Id, Ct);
            }
            catch (CatalogUnavailableException)
            {
                await Task.Delay(100); // a pooled connection from before the restart is found broken and dropped
            }
        }
        Assert.Equal(file.Id, read?.Id);
    }

    private async Task<List<string>> TextsAsync(string sql) =>
        await _backend.Database.QueryAsync(sql, null, r => r.GetString(0), Ct);

    private async Task<List<int>> IntsAsync(string sql) =>
        await _backend.Database.QueryAsync(sql, null, r => r.GetInt32(0), Ct);

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
