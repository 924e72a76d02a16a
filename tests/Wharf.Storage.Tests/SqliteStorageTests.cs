using Microsoft.Data.Sqlite;
using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;
using Wharf.Storage.FileSystem;
using Wharf.Storage.Sqlite;

namespace Wharf.Storage.Tests;

/// <summary>The embedded back-end: SQLite catalog in a fresh database file, blobs on disk in a fresh directory.</summary>
internal sealed class EmbeddedBackend : IStorageBackend
{
    private readonly TempDirectory _dir = new();

    public EmbeddedBackend(TimeProvider time)
    {
        DatabasePath = Path.Combine(_dir.Path, "wharf.db");
        BlobRoot = Path.Combine(_dir.Path, "blobs");
        Database = new SqliteDatabase(DatabasePath);
        Files = new SqliteFileCatalog(Database, time);
        Keys = new SqliteKeyCatalog(Database);
        Workspaces = new SqliteWorkspaceCatalog(Database);
        Blobs = new DiskBlobStore(BlobRoot);
        Uploads = new SqliteUploadCatalog(Database);
        Copies = new SqliteFileCopyCatalog(Database);
        Batches = new SqliteBatchCatalog(Database);
        Leases = new SqliteLeaseCatalog(Database);
        DeferredBlobs = new SqliteDeferredBlobDeletions(Database);
    }

    public string DatabasePath { get; }

    public string BlobRoot { get; }

    public SqliteDatabase Database { get; }

    public IFileCatalog Files { get; }

    public IKeyCatalog Keys { get; }

    public IWorkspaceCatalog Workspaces { get; }

    public IBlobStore Blobs { get; }

    public IUploadCatalog Uploads { get; }

    public IFileCopyCatalog Copies { get; }

    public IBatchCatalog Batches { get; }

    public ILeaseCatalog Leases { get; }

    public IDeferredBlobDeletions DeferredBlobs { get; }

    public ValueTask DisposeAsync()
    {
        Database.Dispose();
        _dir.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>The shared conformance suite, run against SQLite + disk.</summary>
public sealed class EmbeddedStorageConformanceTests : StorageConformanceTests
{
    protected override Task<IStorageBackend> CreateBackendAsync(TimeProvider time) =>
        Task.FromResult<IStorageBackend>(new EmbeddedBackend(time));
}

/// <summary>What only the SQLite catalog promises: index use, restart, migration.</summary>
public sealed class SqliteCatalogTests : IAsyncLifetime
{
    private const string Ws = "ws_0000000000000000000000000000000a";
    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly IdGenerator _ids = new(TimeProvider.System);
    private EmbeddedBackend _backend = null!;

    public Task InitializeAsync()
    {
        _backend = new EmbeddedBackend(_clock);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    private string NewFileId() => WharfIds.File(_ids.Next());

    private Task<List<string>> PlanAsync(FileListQuery query, SqliteDatabase? database = null)
    {
        var parameters = new List<SqliteParameter>();
        string sql = "EXPLAIN QUERY PLAN " + SqliteFileCatalog.BuildListSql(query, parameters, 1_750_000_000);
        return Task.FromResult((database ?? _backend.Database).Query(sql, parameters, r => r.String(3), CancellationToken.None));
    }

    private static FileListQuery Query(string? after = null, string? before = null, bool descending = true, string? purpose = null,
        string? status = null, string? provider = null, string? collection = null, IReadOnlyList<KeyValuePair<string, string>>? metadata = null) =>
        StorageConformanceTests.Query(Ws, 10, descending, after, before, purpose, status, provider, collection, metadata);

    /// <summary>A range scan of an index or the primary key: no full scan of a table, no sort of the result.</summary>
    private static void AssertIndexedRangeScan(List<string> plan, string? expectedIndex = null)
    {
        string text = string.Join(" | ", plan);
        Assert.NotEmpty(plan);
        Assert.Contains(plan, line => line.StartsWith("SEARCH f USING", StringComparison.Ordinal) || line.StartsWith("SEARCH m0 USING", StringComparison.Ordinal));
        if (expectedIndex is not null)
        {
            Assert.True(plan.Exists(line => line.Contains("USING", StringComparison.Ordinal) && line.Contains(expectedIndex, StringComparison.Ordinal)),
                $"expected {expectedIndex} in: {text}");
        }
        Assert.DoesNotContain(plan, line => line.StartsWith("SCAN", StringComparison.Ordinal));
        Assert.DoesNotContain("TEMP B-TREE", text, StringComparison.Ordinal);
        Assert.Contains("workspace_id=?", text, StringComparison.Ordinal);
    }

    public static TheoryData<string, bool, bool> CursorCases => new()
    {
        { "none", true, false }, { "after", true, false }, { "before", true, false },
        { "none", false, false }, { "after", false, false }, { "before", false, false },
    };

    private FileListQuery WithCursor(FileListQuery query, string cursor, bool descending) => cursor switch
    {
        "after" => query with { After = NewFileId(), Descending = descending },
        "before" => query with { Before = NewFileId(), Descending = descending },
        _ => query with { Descending = descending },
    };

    [Theory]
    [MemberData(nameof(CursorCases))]
    public async Task UnfilteredListUsesThePrimaryKey(string cursor, bool descending, bool unused)
    {
        Assert.False(unused);
        var plan = await PlanAsync(WithCursor(Query(), cursor, descending));
        AssertIndexedRangeScan(plan, "PRIMARY KEY");
        Assert.Contains(plan, line => line.Contains("workspace_id=?", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(CursorCases))]
    public async Task PurposeFilterIsAnIndexedRangeScan(string cursor, bool descending, bool unused)
    {
        Assert.False(unused);
        var plan = await PlanAsync(WithCursor(Query(purpose: "batch"), cursor, descending));
        AssertIndexedRangeScan(plan);
    }

    private FileListQuery Filtered(string filter) => filter switch
    {
        "purpose" => Query(purpose: "batch", after: NewFileId()),
        "status" => Query(status: "processed", after: NewFileId()),
        "provider" => Query(provider: "openai", after: NewFileId()),
        "processing" => Query(status: "processing", after: NewFileId()),
        _ => Query(collection: "docs", after: NewFileId()),
    };

    [Theory]
    [InlineData("purpose")]
    [InlineData("status")]
    [InlineData("provider")]
    [InlineData("collection")]
    [InlineData("processing")]
    public async Task OtherFiltersAreIndexedRangeScans(string filter)
    {
        AssertIndexedRangeScan(await PlanAsync(Filtered(filter)));
    }

    /// <summary>
    /// Without statistics (the catalog never runs ANALYZE), SQLite would read a filtered page by the primary key
    /// (workspace_id, id) and test the filter row by row, so a page of a rare purpose would cost a walk over the
    /// workspace's files. The catalog names the per-filter index so the page is one range scan of matching rows.
    /// </summary>
    [Theory]
    [InlineData("purpose", "ix_files_purpose")]
    [InlineData("status", "ix_files_status")]
    [InlineData("collection", "ix_files_collection")]
    public async Task FiltersUseTheirOwnIndexOnAFreshDatabase(string filter, string index)
    {
        AssertIndexedRangeScan(await PlanAsync(Filtered(filter)), index);
    }

    [Theory]
    [MemberData(nameof(CursorCases))]
    public async Task MetadataFilterWithACursorScansTheMetadataKey(string cursor, bool descending, bool unused)
    {
        Assert.False(unused);
        var plan = await PlanAsync(WithCursor(Query(metadata: [new("team", "a")]), cursor, descending));
        AssertIndexedRangeScan(plan, "PRIMARY KEY");
        Assert.Contains(plan, line => line.StartsWith("SEARCH m0 USING PRIMARY KEY (workspace_id=? AND key=? AND value=?", StringComparison.Ordinal));
        Assert.Contains(plan, line => line.StartsWith("SEARCH f USING PRIMARY KEY (workspace_id=? AND id=?)", StringComparison.Ordinal));
    }

    /// <summary>The files with a copy on a provider are one range of file_copies' key, each joined to its row by key.</summary>
    [Theory]
    [MemberData(nameof(CursorCases))]
    public async Task ProviderFilterScansTheCopiesKey(string cursor, bool descending, bool unused)
    {
        Assert.False(unused);
        var plan = await PlanAsync(WithCursor(Query(provider: "openai"), cursor, descending));
        AssertIndexedRangeScan(plan, "PRIMARY KEY");
        Assert.True(plan.Exists(line => line.StartsWith("SEARCH c USING PRIMARY KEY (workspace_id=? AND provider=?", StringComparison.Ordinal)), string.Join(" | ", plan));
        // Each copy's file is one row found by its id: by the primary key or the unique id index.
        Assert.Contains(plan, line => line is "SEARCH f USING PRIMARY KEY (workspace_id=? AND id=?)" or "SEARCH f USING INDEX ix_files_id (id=? AND workspace_id=?)");
    }

    [Fact]
    public async Task The_process_that_takes_the_data_directory_forgets_the_leases_and_hashing_claims_a_dead_one_left()
    {
        var file = TestFiles.Make(Ws, NewFileId()) with { Sha256 = null };
        await _backend.Files.InsertAsync(file, CancellationToken.None);
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.True(await _backend.Files.ClaimHashingAsync(Ws, file.Id, "node_dead", now, now + 60_000, CancellationToken.None));
        Assert.True(await _backend.Leases.TryAcquireAsync("storage-sweep", "node_dead", now, now + 90_000, CancellationToken.None));
        Assert.Empty(await _backend.Files.ListUnhashedAsync(null, 10, now, CancellationToken.None));

        await _backend.Database.ForgetClaimsOfEarlierProcessesAsync(CancellationToken.None);

        // The file is to hash again and the sweep's lease is free at once, not a minute later.
        Assert.Equal([file.Id], (await _backend.Files.ListUnhashedAsync(null, 10, now, CancellationToken.None)).Select(f => f.Id));
        Assert.True(await _backend.Leases.TryAcquireAsync("storage-sweep", "node_new", now, now + 90_000, CancellationToken.None));
    }

    [Fact]
    public async Task AProviderFilterWithMetadataAndAPurposeStaysIndexed()
    {
        var plan = await PlanAsync(Query(after: NewFileId(), provider: "openai", purpose: "batch", metadata: [new("team", "a"), new("env", "prod")]));
        AssertIndexedRangeScan(plan, "PRIMARY KEY");
        Assert.Contains(plan, line => line.StartsWith("SEARCH c USING PRIMARY KEY (workspace_id=? AND provider=?", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TwoMetadataFiltersAndAPurposeStayIndexed()
    {
        var plan = await PlanAsync(Query(after: NewFileId(), purpose: "batch", metadata: [new("team", "a"), new("env", "prod")]));
        AssertIndexedRangeScan(plan, "PRIMARY KEY");
        Assert.Contains(plan, line => line.StartsWith("SEARCH m0 USING", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ThePlanHoldsWithDataAndStatistics()
    {
        for (int i = 0; i < 200; i++)
        {
            await _backend.Files.InsertAsync(TestFiles.Make(i % 2 == 0 ? Ws : "ws_0000000000000000000000000000000b", NewFileId(),
                purpose: i % 3 == 0 ? "batch" : "assistants",
                metadata: new Dictionary<string, string> { ["team"] = i % 2 == 0 ? "a" : "b" }), CancellationToken.None);
        }
        await using (var connection = new SqliteConnection($"Data Source={_backend.DatabasePath};Pooling=False"))
        await using (var analyze = connection.CreateCommand())
        {
            await connection.OpenAsync();
            analyze.CommandText = "ANALYZE;";
            await analyze.ExecuteNonQueryAsync();
        }
        AssertIndexedRangeScan(await PlanAsync(Query(after: NewFileId())), "PRIMARY KEY");
        AssertIndexedRangeScan(await PlanAsync(Query(after: NewFileId(), purpose: "batch")), "ix_files_purpose");
        AssertIndexedRangeScan(await PlanAsync(Query(before: NewFileId(), metadata: [new("team", "a")])), "PRIMARY KEY");
    }

    [Fact]
    public async Task ReopeningTheDatabaseKeepsTheData()
    {
        var file = TestFiles.Make(Ws, NewFileId(), metadata: new Dictionary<string, string> { ["k"] = "v" });
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "default", CreatedAt = 1, StorageQuotaBytes = 1000 }, CancellationToken.None);
        Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(file, CancellationToken.None));
        string secret = ApiKeys.NewSecret();
        await _backend.Keys.InsertKeyAsync(new ApiKeyRecord
        {
            Id = WharfIds.Hex(WharfIds.KeyPrefix, _ids.Next()),
            WorkspaceId = Ws,
            Name = "k",
            Hash = ApiKeys.Hash(secret),
            Prefix = ApiKeys.DisplayPrefix(secret),
            CreatedAt = 1,
        }, CancellationToken.None);
        _backend.Database.Dispose();

        // A second process start: a new database object over the same file, twice in a row.
        for (int start = 0; start < 2; start++)
        {
            using var reopened = new SqliteDatabase(_backend.DatabasePath);
            var files = new SqliteFileCatalog(reopened, _clock);
            var keys = new SqliteKeyCatalog(reopened);
            var workspaces = new SqliteWorkspaceCatalog(reopened);

            var read = await files.GetAsync(Ws, file.Id, CancellationToken.None);
            Assert.NotNull(read);
            Assert.Equal("v", read.Metadata["k"]);
            Assert.Single((await files.ListAsync(Query(metadata: [new("k", "v")]), CancellationToken.None)).Items);
            Assert.Equal(Ws, (await keys.FindKeyByHashAsync(ApiKeys.Hash(secret), CancellationToken.None))?.Key.WorkspaceId);
            var workspace = await workspaces.FindWorkspaceByNameAsync("default", CancellationToken.None);
            Assert.Equal(Ws, workspace?.Id);
            // The usage is stored with the workspace: it survives a restart.
            Assert.Equal(42 * (start + 1), workspace?.UsageBytes);
            Assert.Equal(1000, workspace?.StorageQuotaBytes);

            var more = TestFiles.Make(Ws, NewFileId());
            await files.InsertAsync(more, CancellationToken.None);
            Assert.Equal(start + 2, (await files.ListAsync(Query(), CancellationToken.None)).Items.Count);
        }
    }

    /// <summary>Takes a database back to before version 8 (uploads carrying their file's metadata, collection, provider).</summary>
    private const string DropVersion8 = """
        ALTER TABLE uploads DROP COLUMN metadata; ALTER TABLE uploads DROP COLUMN collection; ALTER TABLE uploads DROP COLUMN provider;

        """;

    /// <summary>Takes a database back to before version 7 (leases and claims on hashing files).</summary>
    private const string DropVersion7 = DropVersion8 + """
        DROP TABLE leases; DROP TABLE blob_deletions;
        ALTER TABLE files DROP COLUMN hash_owner; ALTER TABLE files DROP COLUMN hash_until;

        """;

    /// <summary>Takes a database back to before version 6 (batches and webhooks), for the tests of older versions.</summary>
    private const string DropVersion6 = DropVersion7 + """
        DROP TABLE batches; DROP TABLE batch_chunks; DROP TABLE batch_lines; DROP TABLE webhook_events;
        ALTER TABLE workspaces DROP COLUMN webhook_url; ALTER TABLE workspaces DROP COLUMN webhook_secret;

        """;

    [Fact]
    public async Task MigrationIsIdempotent()
    {
        async Task<(long Version, string Journal, List<string> Objects)> InspectAsync()
        {
            await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString());
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA user_version;";
            long version = (long)(await command.ExecuteScalarAsync())!;
            command.CommandText = "PRAGMA journal_mode;";
            string journal = (string)(await command.ExecuteScalarAsync())!;
            command.CommandText = "SELECT type || ':' || name FROM sqlite_master ORDER BY name;";
            var objects = new List<string>();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                objects.Add(reader.GetString(0));
            }
            return (version, journal, objects);
        }

        await _backend.Files.InsertAsync(TestFiles.Make(Ws, NewFileId()), CancellationToken.None);
        var first = await InspectAsync();
        Assert.Equal(8, first.Version);
        Assert.Equal("wal", first.Journal);
        Assert.Contains("table:files", first.Objects);
        Assert.Contains("table:file_metadata", first.Objects);
        Assert.Contains("table:api_keys", first.Objects);
        Assert.Contains("table:workspaces", first.Objects);
        Assert.Contains("index:ix_api_keys_hash", first.Objects);
        Assert.Contains("index:ix_files_unhashed", first.Objects);
        Assert.Contains("index:ix_uploads_workspace_pending", first.Objects);
        Assert.Contains("table:leases", first.Objects);
        Assert.Contains("index:ix_blob_deletions_due", first.Objects);

        for (int i = 0; i < 3; i++)
        {
            using var again = new SqliteDatabase(_backend.DatabasePath);
        }
        var after = await InspectAsync();
        Assert.Equal(first.Version, after.Version);
        Assert.Equal(first.Journal, after.Journal);
        Assert.Equal(first.Objects, after.Objects);
        Assert.Single((await _backend.Files.ListAsync(Query(), CancellationToken.None)).Items);
    }
    [Theory]
    [InlineData("none")]
    [InlineData("after")]
    [InlineData("purpose")]
    [InlineData("metadata")]
    [InlineData("collection")]
    public async Task AListStatementRunsAgainWithOtherValuesWithoutBeingPreparedAgain(string shape)
    {
        // A value SQLite reads while it plans (a bound LIMIT, for one) makes it prepare the statement again whenever
        // the value is bound again: the readers' kept statements would then save nothing.
        await _backend.Files.InsertAsync(TestFiles.Make(Ws, NewFileId(), purpose: "batch", collection: "c"), CancellationToken.None);
        FileListQuery Shape(string ws, string cursor) => shape switch
        {
            "after" => Query() with { WorkspaceId = ws, After = cursor },
            "purpose" => Query(purpose: "batch") with { WorkspaceId = ws },
            "metadata" => Query(metadata: [new("k", ws)]) with { WorkspaceId = ws },
            "collection" => Query(collection: "c") with { WorkspaceId = ws },
            _ => Query() with { WorkspaceId = ws },
        };
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString());
        await connection.OpenAsync();
        connection.Handle!.enable_sqlite3_next_stmt(true);
        await using var command = connection.CreateCommand();
        var first = new List<SqliteParameter>();
        command.CommandText = SqliteFileCatalog.BuildListSql(Shape(Ws, NewFileId()), first, 1_750_000_000);
        command.Prepare();
        long now = 1_750_000_000;
        foreach (string ws in new[] { Ws, "ws_0000000000000000000000000000000b", Ws })
        {
            var parameters = new List<SqliteParameter>();
            string sql = SqliteFileCatalog.BuildListSql(Shape(ws, NewFileId()), parameters, now++);
            Assert.Equal(command.CommandText, sql);
            command.Parameters.Clear();
            command.Parameters.AddRange(parameters);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
            }
        }

        const int StatusReprepare = 5, StatusRun = 6; // SQLITE_STMTSTATUS_REPREPARE, SQLITE_STMTSTATUS_RUN
        var statement = SQLitePCL.raw.sqlite3_next_stmt(connection.Handle, null);
        Assert.False(statement is null || statement.IsInvalid);
        Assert.Equal(3, SQLitePCL.raw.sqlite3_stmt_status(statement, StatusRun, 0));
        Assert.Equal(0, SQLitePCL.raw.sqlite3_stmt_status(statement, StatusReprepare, 0));
    }

    [Fact]
    public async Task ReadsInParallelOverMoreQueryShapesThanAReaderKeepsAllAnswerRight()
    {
        // 80 files, each with its own metadata key: 80 filters, 160 query texts with and without a cursor, more than a
        // reader keeps prepared; 320 reads at once, more than the readers kept idle.
        var files = Enumerable.Range(0, 80)
            .Select(i => TestFiles.Make(Ws, NewFileId(), metadata: new Dictionary<string, string> { ["k" + i] = "v" }))
            .ToList();
        foreach (var file in files)
        {
            Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(file, CancellationToken.None));
        }
        Assert.True(SqliteDatabase.MultiThreaded); // the mode the readers' unlocked column reads are made for
        // Task.Run: a read runs synchronously on its caller, so without it the reads would run one after the other.
        var reads = Enumerable.Range(0, 320).Select(n => Task.Run(async () =>
        {
            int i = n % 80;
            var query = Query(metadata: [new("k" + i, "v")]);
            var page = await _backend.Files.ListAsync(n % 160 < 80 ? query : query with { After = "file-zzzzzzzzzzzzzzzzzzzzzz" }, CancellationToken.None);
            Assert.Equal(files[i].Id, Assert.Single(page.Items).Id);
        }));
        await Task.WhenAll(reads);

        // A reader kept open sees what is committed after it was opened.
        var later = TestFiles.Make(Ws, NewFileId(), metadata: new Dictionary<string, string> { ["k0"] = "v" });
        Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(later, CancellationToken.None));
        Assert.Equal(2, (await _backend.Files.ListAsync(Query(metadata: [new("k0", "v")]), CancellationToken.None)).Items.Count);
    }

    [Fact]
    public void AQueryBindsEachKindOfParameterAndReadsEachKindOfValue()
    {
        var rows = _backend.Database.Query(
            "SELECT $text, $number, $bytes, $nothing, 'x' WHERE $number > 0;",
            [new("$text", "r\u00e9sum\u00e9 \U0001F600"), new("$number", long.MaxValue), new("$bytes", new byte[] { 0, 1, 255 }), new("$nothing", null)],
            r => (r.String(0), r.Int64(1), r.Blob(2), r.IsNull(3), r.NullableString(3), r.NullableInt64(3), r.Utf8(4).ToArray(), r.NullableInt64(1)),
            CancellationToken.None);
        var row = Assert.Single(rows);
        Assert.Equal("r\u00e9sum\u00e9 \U0001F600", row.Item1);
        Assert.Equal(long.MaxValue, row.Item2);
        Assert.Equal(new byte[] { 0, 1, 255 }, row.Item3);
        Assert.True(row.Item4);
        Assert.Null(row.Item5);
        Assert.Null(row.Item6);
        Assert.Equal("x"u8.ToArray(), row.Item7);
        Assert.Equal(long.MaxValue, row.Item8);
        Assert.Throws<InvalidOperationException>(() =>
            _backend.Database.Query("SELECT NULL;", [], r => r.String(0), CancellationToken.None));
        Assert.Throws<InvalidOperationException>(() =>
            _backend.Database.Query("SELECT NULL;", [], r => r.Int64(0), CancellationToken.None));
        Assert.Throws<InvalidOperationException>(() =>
            _backend.Database.Query("SELECT NULL;", [], r => r.Blob(0), CancellationToken.None));
        Assert.Equal((0L, Array.Empty<byte>(), 7L, true), Assert.Single(_backend.Database.Query(
            "SELECT 0, x'', $int, $dbnull IS NULL;", [new("$int", 7), new("$dbnull", DBNull.Value)],
            r => (r.Int64(0), r.Blob(1), r.Int64(2), r.Int64(3) == 1), CancellationToken.None)));
    }

    [Fact]
    public void TheseTestsReadEveryColumnWithTheTypeCheckOn()
    {
        // Switched on for this test assembly (its project file): every mapper of every catalog query run here is checked.
        Assert.True(SqliteColumnTypeCheck.Enabled);
    }

    [Fact]
    public async Task AColumnReadAsAnotherTypeThanItsDeclaredOneIsAnError()
    {
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "12", CreatedAt = 7 }, CancellationToken.None);
        var database = _backend.Database;
        T Read<T>(string sql, RowReader<T> read) => Assert.Single(database.Query(sql, [], read, CancellationToken.None));

        // As declared: fine; a NULL value is read by the nullable accessor of the declared type.
        Assert.Equal((7L, "12", (long?)null), Read("SELECT created_at, name, storage_quota_bytes FROM workspaces;",
            r => (r.Int64(0), r.String(1), r.NullableInt64(2))));
        Assert.Throws<InvalidOperationException>(() => Read("SELECT storage_quota_bytes FROM workspaces;", r => r.NullableString(0)));

        // Declared INTEGER, read as text; declared TEXT (holding digits SQLite would convert), read as an integer.
        var asText = Assert.Throws<InvalidOperationException>(() => Read("SELECT created_at FROM workspaces;", r => r.String(0)));
        Assert.Contains("declared INTEGER", asText.Message, StringComparison.Ordinal);
        Assert.Contains("created_at", asText.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => Read("SELECT created_at FROM workspaces;", r => r.Utf8(0).Length));
        Assert.Throws<InvalidOperationException>(() => Read("SELECT name FROM workspaces;", r => r.Int64(0)));
        Assert.Throws<InvalidOperationException>(() => Read("SELECT name FROM workspaces;", r => r.Blob(0)));

        // Expressions have no declared type: the value's own type is checked.
        Assert.Equal(1L, Read("SELECT count(*) FROM workspaces;", r => r.Int64(0)));
        var expression = Assert.Throws<InvalidOperationException>(() => Read("SELECT count(*) FROM workspaces;", r => r.String(0)));
        Assert.Contains("holds a value of type INTEGER", expression.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => Read("SELECT 'x';", r => r.Int64(0)));
        Assert.Throws<InvalidOperationException>(() => Read("SELECT x'00';", r => r.String(0)));
    }

    [Fact]
    public void AQueryRefusesAParameterLeftOutAndASecondStatement()
    {
        // SQLite would read the missing $b as NULL, and would run only the first of two statements.
        Assert.Throws<ArgumentException>(() =>
            _backend.Database.Query("SELECT $a, $b;", [new("$a", 1L)], r => r.Int64(0), CancellationToken.None));
        Assert.Throws<ArgumentException>(() =>
            _backend.Database.Query("SELECT 1; SELECT 2;", [], r => r.Int64(0), CancellationToken.None));
        Assert.Equal([1L], _backend.Database.Query("SELECT 1;  ", [], r => r.Int64(0), CancellationToken.None));
    }

    [Fact]
    public async Task ARateLimitOutsideTheIntegerRangeIsAnErrorNotAnotherLimit()
    {
        var workspace = new Workspace { Id = Ws, Name = "w", CreatedAt = 1, RateLimitRpm = 60 };
        await _backend.Workspaces.InsertWorkspaceAsync(workspace, CancellationToken.None);
        Assert.Equal(60, (await _backend.Workspaces.GetWorkspaceAsync(Ws, CancellationToken.None))!.RateLimitRpm);
        await using (var connection = new SqliteConnection($"Data Source={_backend.DatabasePath};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = $"UPDATE workspaces SET rate_limit_rpm = 4294967301 WHERE id = '{Ws}';"; // 2^32 + 5
            await command.ExecuteNonQueryAsync();
        }
        await Assert.ThrowsAsync<OverflowException>(() => _backend.Workspaces.GetWorkspaceAsync(Ws, CancellationToken.None));
    }

    [Fact]
    public void AQueryCancelledWhileItReadsStopsAndLeavesItsStatementReady()
    {
        using var cancel = new CancellationTokenSource();
        const string Sql = "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < $n) SELECT v FROM s;";
        Assert.Throws<OperationCanceledException>(() => _backend.Database.Query(Sql, [new("$n", 10_000L)], r =>
        {
            long value = r.Int64(0);
            if (value == 100)
            {
                cancel.Cancel();
            }
            return value;
        }, cancel.Token));
        Assert.Equal(3, _backend.Database.Query(Sql, [new("$n", 3L)], r => r.Int64(0), CancellationToken.None).Count);
    }

    [Fact]
    public void AFailedQueryLeavesItsReaderAndStatementReadyForTheNext()
    {
        const string Sql = "SELECT value FROM json_each($list) ORDER BY value;";
        List<long> Run(string list) => _backend.Database.Query(Sql, [new("$list", list)], r => r.Int64(0), CancellationToken.None);

        // SQLite fails while stepping (malformed JSON); a parameter of a kind that does not bind; a name the statement
        // does not have; the row mapper throwing half-way. After each, the same statement answers the next query.
        Assert.Equal(1, Assert.Throws<SqliteException>(() => Run("[1,")).SqliteErrorCode);
        Assert.Throws<ArgumentException>(() => _backend.Database.Query(Sql, [new("$list", 1.5)], r => r.Int64(0), CancellationToken.None));
        Assert.Throws<ArgumentException>(() => _backend.Database.Query(Sql, [new("$other", "[1]")], r => r.Int64(0), CancellationToken.None));
        Assert.Throws<FormatException>(() => _backend.Database.Query(Sql, [new("$list", "[1,2,3]")],
            r => r.Int64(0) == 2 ? throw new FormatException() : r.Int64(0), CancellationToken.None));
        Assert.Equal([4L, 5L], Run("[5,4]"));
        Assert.Throws<SqliteException>(() => _backend.Database.Query("SELECT * FROM no_such_table;", [], r => 0, CancellationToken.None));
        Assert.Equal([7L], Run("[7]"));
        Assert.Throws<OperationCanceledException>(() => _backend.Database.Query(Sql, [new("$list", "[1]")], r => r.Int64(0), new CancellationToken(true)));
    }

    [Fact]
    public async Task AVersion1DatabaseIsMigratedKeepingItsFilesAndIndexes()
    {
        _backend.Database.Dispose();
        File.Delete(_backend.DatabasePath);
        string connectionString = new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString();
        string fileId = NewFileId();
        await using (var connection = new SqliteConnection(connectionString))
        {
            // The files table as version 1 made it (sha256 NOT NULL), holding one file.
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = $"""
                CREATE TABLE files (
                    workspace_id TEXT NOT NULL, id TEXT NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL,
                    filename TEXT NOT NULL, purpose TEXT NOT NULL, status TEXT NOT NULL, status_details TEXT,
                    expires_at INTEGER, metadata TEXT, collection TEXT, provider TEXT NOT NULL, sha256 TEXT NOT NULL,
                    content_type TEXT, processing_status TEXT, segmented INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (workspace_id, id)) WITHOUT ROWID;
                CREATE INDEX ix_files_purpose ON files(workspace_id, purpose, id);
                INSERT INTO files VALUES ('{Ws}', '{fileId}', 7, 1750000000, 'a.txt', 'batch', 'processed', NULL,
                    NULL, NULL, 'c', 'local', '{new string('e', 64)}', 'text/plain', NULL, 1);
                PRAGMA user_version = 1;
                """;
            await command.ExecuteNonQueryAsync();
        }

        using var migrated = new SqliteDatabase(_backend.DatabasePath);
        var files = new SqliteFileCatalog(migrated, _clock);
        var kept = await files.GetAsync(Ws, fileId, CancellationToken.None);
        Assert.Equal(("a.txt", "batch", "c", new string('e', 64), "text/plain", true), (kept!.Filename, kept.Purpose, kept.Collection, kept.Sha256, kept.ContentType, kept.Segmented));
        var unhashed = TestFiles.Make(Ws, NewFileId()) with { Sha256 = null };
        Assert.Equal(FileInsertOutcome.Inserted, await files.InsertAsync(unhashed, CancellationToken.None));
        Assert.Equal(unhashed.Id, Assert.Single(await files.ListUnhashedAsync(null, 10, _clock.GetUtcNow().ToUnixTimeMilliseconds(), CancellationToken.None)).Id);
        Assert.Equal(2, (await files.ListAsync(Query(purpose: null), CancellationToken.None)).Items.Count);
        // The indexes were made again on the new table: filtered pages stay range scans.
        AssertIndexedRangeScan(await PlanAsync(Query(purpose: "batch"), migrated), "ix_files_purpose");
        AssertIndexedRangeScan(await PlanAsync(Query(collection: "c"), migrated), "ix_files_collection");
    }

    /// <summary>
    /// A version 7 database (uploads without their file's metadata, collection and provider) is migrated: a pending
    /// upload is kept and reads as one made without them (kept by Wharf only), and new uploads keep all three.
    /// </summary>
    [Fact]
    public async Task AVersion7DatabaseIsMigratedWithItsPendingUploadsKeptLocalAndNewOnesCarryingTheirFileFields()
    {
        var uploads = new SqliteUploadCatalog(_backend.Database);
        UploadRecord Upload() => new()
        {
            Id = WharfIds.Hex(WharfIds.UploadPrefix, _ids.Next()), WorkspaceId = Ws, Filename = "big.jsonl", Purpose = "batch",
            Bytes = 10, MimeType = "application/jsonl", CreatedAt = 1, ExpiresAt = 4_000_000_000, Status = UploadStatus.Pending,
        };
        var old = Upload();
        Assert.Equal(UploadInsertOutcome.Inserted, await uploads.InsertUploadAsync(old, 100, CancellationToken.None));
        _backend.Database.Dispose();
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = DropVersion8 + "PRAGMA user_version = 7;";
            await command.ExecuteNonQueryAsync();
        }

        using var migrated = new SqliteDatabase(_backend.DatabasePath);
        Assert.Equal(8L, migrated.Query("PRAGMA user_version;", [], r => r.Int64(0), CancellationToken.None).Single());
        var after = new SqliteUploadCatalog(migrated);
        var kept = await after.GetUploadAsync(Ws, old.Id, CancellationToken.None);
        Assert.Equal(old, kept);
        Assert.Equal(("local", null, 0), (kept!.Provider, kept.Collection, kept.Metadata.Count));
        var carrying = Upload() with { Metadata = new Dictionary<string, string> { ["k"] = "v" }, Collection = "c", Provider = "openai" };
        Assert.Equal(UploadInsertOutcome.Inserted, await after.InsertUploadAsync(carrying, 100, CancellationToken.None));
        var read = await after.GetUploadAsync(Ws, carrying.Id, CancellationToken.None);
        Assert.Equal(("openai", "c", "v"), (read!.Provider, read.Collection, read.Metadata["k"]));
    }

    [Fact]
    public async Task AVersion6DatabaseIsMigratedWithLeasesAndItsUnhashedFilesUnclaimed()
    {
        var unhashed = TestFiles.Make(Ws, NewFileId()) with { Sha256 = null };
        var hashed = TestFiles.Make(Ws, NewFileId());
        Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(unhashed, CancellationToken.None));
        Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(hashed, CancellationToken.None));
        _backend.Database.Dispose();
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = DropVersion7 + "PRAGMA user_version = 6;";
            await command.ExecuteNonQueryAsync();
        }

        using var migrated = new SqliteDatabase(_backend.DatabasePath);
        Assert.Equal(8L, migrated.Query("PRAGMA user_version;", [], r => r.Int64(0), CancellationToken.None).Single());
        var files = new SqliteFileCatalog(migrated, _clock);
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        // The file that waited for its SHA-256 still does, with no claim on it: the first node to ask takes it.
        Assert.Equal([unhashed.Id], (await files.ListUnhashedAsync(null, 10, now, CancellationToken.None)).Select(f => f.Id));
        Assert.True(await files.ClaimHashingAsync(Ws, unhashed.Id, "node_a", now, now + 60_000, CancellationToken.None));
        Assert.False(await files.ClaimHashingAsync(Ws, unhashed.Id, "node_b", now, now + 60_000, CancellationToken.None));
        Assert.Empty(await files.ListUnhashedAsync(null, 10, now, CancellationToken.None));
        Assert.Equal(hashed.Sha256, (await files.GetAsync(Ws, hashed.Id, CancellationToken.None))!.Sha256);
        var leases = new SqliteLeaseCatalog(migrated);
        Assert.True(await leases.TryAcquireAsync("storage-sweep", "node_a", now, now + 1000, CancellationToken.None));
        Assert.False(await leases.TryAcquireAsync("storage-sweep", "node_b", now, now + 1000, CancellationToken.None));
        var deferred = new SqliteDeferredBlobDeletions(migrated);
        await deferred.DeferAsync([hashed.Id], 5, CancellationToken.None);
        Assert.Equal([hashed.Id], await deferred.ListDueAsync(5, 10, CancellationToken.None));
    }

    [Fact]
    public async Task AVersion5DatabaseIsMigratedWithBatchTablesAndItsWorkspacesKept()
    {
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "kept", CreatedAt = 1, StorageQuotaBytes = 99 }, CancellationToken.None);
        _backend.Database.Dispose();
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = DropVersion6 + "PRAGMA user_version = 5;";
            await command.ExecuteNonQueryAsync();
        }

        using var migrated = new SqliteDatabase(_backend.DatabasePath);
        Assert.Equal(99, (await new SqliteWorkspaceCatalog(migrated).GetWorkspaceAsync(Ws, CancellationToken.None))?.StorageQuotaBytes);
        var batches = new SqliteBatchCatalog(migrated);
        var batch = new Wharf.Core.Batches.BatchRecord
        {
            Id = WharfIds.Hex(WharfIds.BatchPrefix, 1),
            WorkspaceId = Ws,
            Endpoint = "/v1/embeddings",
            InputFileId = NewFileId(),
            Execution = Wharf.Core.Batches.BatchExecution.Gateway,
            Status = Wharf.Core.Batches.BatchStatus.Validating,
            CreatedAt = 1,
            ExpiresAt = 86_401,
        };
        Assert.True(await batches.InsertAsync(batch, CancellationToken.None));
        Assert.Equal(batch.Id, (await batches.GetAsync(Ws, batch.Id, CancellationToken.None))?.Id);
        Assert.Equal(8L, migrated.Query("PRAGMA user_version;", [], r => r.Int64(0), CancellationToken.None).Single());
    }

    [Fact]
    public async Task AVersion4DatabaseIsMigratedWithEmptyCopyTablesAndItsFilesKept()
    {
        var file = TestFiles.Make(Ws, NewFileId(), provider: "openai");
        await _backend.Files.InsertAsync(file, CancellationToken.None);
        _backend.Database.Dispose();
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = DropVersion6 + """
                DROP TABLE file_copies; DROP TABLE upstream_deletions; DROP TABLE copy_intents;
                CREATE INDEX ix_files_provider ON files(workspace_id, provider, id);
                PRAGMA user_version = 4;
                """;
            await command.ExecuteNonQueryAsync();
        }

        using var migrated = new SqliteDatabase(_backend.DatabasePath);
        var files = new SqliteFileCatalog(migrated, _clock);
        var copies = new SqliteFileCopyCatalog(migrated);
        Assert.Equal("openai", (await files.GetAsync(Ws, file.Id, CancellationToken.None))!.Provider);
        // A file uploaded before had no copy: a provider filter does not list it, until one is recorded.
        Assert.Empty((await files.ListAsync(Query(provider: "openai"), CancellationToken.None)).Items);
        Assert.True(await copies.InsertCopyAsync(new FileCopy(Ws, file.Id, "openai", "up-1", 1), CancellationToken.None));
        Assert.Equal([file.Id], (await files.ListAsync(Query(provider: "openai"), CancellationToken.None)).Items.Select(f => f.Id));
        var indexes = migrated.Query("SELECT name FROM sqlite_schema WHERE type = 'index';", [], r => r.String(0), CancellationToken.None);
        Assert.DoesNotContain("ix_files_provider", indexes);
        Assert.Contains("ix_upstream_deletions_due", indexes);
        Assert.Equal(8L, migrated.Query("PRAGMA user_version;", [], r => r.Int64(0), CancellationToken.None).Single());
    }

    [Fact]
    public async Task AVersion3DatabaseIsMigratedWithAllowedProvidersAndKeysThatHeldEveryScopeHoldingEveryScope()
    {
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "team", CreatedAt = 1 }, CancellationToken.None);
        var keys = new SqliteKeyCatalog(_backend.Database);
        ApiKeyRecord Key(string name, IReadOnlyList<string> scopes) => new()
        {
            Id = WharfIds.Hex(WharfIds.KeyPrefix, _ids.Next()), WorkspaceId = Ws, Name = name, Hash = ApiKeys.Hash("secret-" + name),
            Prefix = "sk-wh-…", CreatedAt = 1, Scopes = scopes,
        };
        await keys.InsertKeyAsync(Key("all", [ApiScopes.FilesRead, ApiScopes.FilesWrite, ApiScopes.BatchesRead, ApiScopes.BatchesWrite]), CancellationToken.None);
        await keys.InsertKeyAsync(Key("some", [ApiScopes.FilesRead]), CancellationToken.None);
        _backend.Database.Dispose();
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = DropVersion6 + "ALTER TABLE workspaces DROP COLUMN allowed_providers; PRAGMA user_version = 3;";
            await command.ExecuteNonQueryAsync();
        }

        using var migrated = new SqliteDatabase(_backend.DatabasePath);
        var workspace = await new SqliteWorkspaceCatalog(migrated).GetWorkspaceAsync(Ws, CancellationToken.None);
        Assert.Null(workspace!.AllowedProviders);
        var migratedKeys = new SqliteKeyCatalog(migrated);
        var all = await migratedKeys.FindKeyByHashAsync(ApiKeys.Hash("secret-all"), CancellationToken.None);
        Assert.Equal([ApiScopes.Every], all!.Key.Scopes);
        Assert.True(ApiScopes.Allows(all.Key.Scopes, ApiScopes.ModelsInvoke));
        var some = await migratedKeys.FindKeyByHashAsync(ApiKeys.Hash("secret-some"), CancellationToken.None);
        Assert.Equal([ApiScopes.FilesRead], some!.Key.Scopes);
        Assert.False(ApiScopes.Allows(some.Key.Scopes, ApiScopes.ModelsInvoke));
    }

    [Fact]
    public async Task AVersion2DatabaseIsMigratedCountingItsPendingUploads()
    {
        // Made by this version, then turned back into version 2: no counted_bytes, usage = the files' bytes alone.
        await _backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = Ws, Name = "team", CreatedAt = 1, StorageQuotaBytes = 1000 }, CancellationToken.None);
        Assert.Equal(FileInsertOutcome.Inserted, await _backend.Files.InsertAsync(TestFiles.Make(Ws, NewFileId(), bytes: 100), CancellationToken.None));
        var uploads = _backend.Uploads;
        var small = NewUpload(bytes: 50);
        var grown = NewUpload(bytes: 20);
        var completed = NewUpload(bytes: 5);
        foreach (var upload in new[] { small, grown, completed })
        {
            Assert.Equal(Wharf.Core.Uploads.UploadInsertOutcome.Inserted, await uploads.InsertUploadAsync(upload, 100, CancellationToken.None));
        }
        await AddPartAsync(small, 10);
        await AddPartAsync(grown, 20);
        await AddPartAsync(grown, 15); // re-sent: holds 35 of 20
        var part = await AddPartAsync(completed, 5);
        Assert.Equal(Wharf.Core.Uploads.CompleteOutcome.Completed,
            (await uploads.CompleteAsync(completed.Id, TestFiles.Make(Ws, NewFileId(), bytes: 5) with { Segmented = true }, [part.Id], CancellationToken.None)).Outcome);
        Assert.Equal(100 + 50 + 35 + 5, (await _backend.Workspaces.GetWorkspaceAsync(Ws, CancellationToken.None))!.UsageBytes);
        _backend.Database.Dispose();
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _backend.DatabasePath, Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = DropVersion6 + """
                DROP INDEX ix_uploads_workspace_pending;
                ALTER TABLE uploads DROP COLUMN counted_bytes;
                ALTER TABLE workspaces DROP COLUMN allowed_providers;
                UPDATE workspaces SET usage_bytes = 105;
                PRAGMA user_version = 2;
                """;
            await command.ExecuteNonQueryAsync();
        }

        using var migrated = new SqliteDatabase(_backend.DatabasePath);
        var workspaces = new SqliteWorkspaceCatalog(migrated);
        Assert.Equal(190, (await workspaces.GetWorkspaceAsync(Ws, CancellationToken.None))!.UsageBytes);
        // What each pending upload was counted for is what its end gives back.
        var migratedUploads = new SqliteUploadCatalog(migrated);
        Assert.NotNull(await migratedUploads.EndAsync(Ws, grown.Id, Wharf.Core.Uploads.UploadStatus.Cancelled, CancellationToken.None));
        Assert.Equal(155, (await workspaces.GetWorkspaceAsync(Ws, CancellationToken.None))!.UsageBytes);
        Assert.NotNull(await migratedUploads.EndAsync(Ws, small.Id, Wharf.Core.Uploads.UploadStatus.Expired, CancellationToken.None));
        Assert.Equal(105, (await workspaces.GetWorkspaceAsync(Ws, CancellationToken.None))!.UsageBytes);

        Wharf.Core.Uploads.UploadRecord NewUpload(long bytes) => new()
        {
            Id = WharfIds.Hex(WharfIds.UploadPrefix, _ids.Next()),
            WorkspaceId = Ws,
            Filename = "f",
            Purpose = "batch",
            Bytes = bytes,
            CreatedAt = 1,
            ExpiresAt = long.MaxValue,
            Status = Wharf.Core.Uploads.UploadStatus.Pending,
        };

        async Task<Wharf.Core.Uploads.UploadPartRecord> AddPartAsync(Wharf.Core.Uploads.UploadRecord upload, long bytes)
        {
            var added = new Wharf.Core.Uploads.UploadPartRecord
            {
                Id = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next()),
                UploadId = upload.Id,
                WorkspaceId = Ws,
                Bytes = bytes,
                Sha256 = new string('0', 64),
                CreatedAt = 1,
            };
            Assert.Equal(Wharf.Core.Uploads.PartInsertOutcome.Inserted,
                await uploads.InsertPartAsync(added, 2, Wharf.Core.Uploads.UploadService.MaxHeldBytes(upload.Bytes), CancellationToken.None));
            return added;
        }
    }
}

/// <summary>What only the disk blob store promises: layout, path safety, staging directory hygiene.</summary>
public sealed class DiskBlobStoreTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly DiskBlobStore _store;
    private readonly IdGenerator _ids = new(TimeProvider.System);

    public DiskBlobStoreTests() => _store = new DiskBlobStore(Path.Combine(_dir.Path, "blobs"));

    public void Dispose() => _dir.Dispose();

    private string StagingDir => Path.Combine(_dir.Path, "blobs", ".staging");

    private async Task<StagedBlob> StageAsync(int length)
    {
        using var source = new MemoryStream(new byte[length]);
        var staged = await _store.StageAsync(source, long.MaxValue, CancellationToken.None);
        Assert.NotNull(staged);
        return staged;
    }

    [Fact]
    public async Task AStoreThatCannotWriteFailsAsTheStoreNotAsTheSender()
    {
        // The staging directory is gone and a file stands in its place: creating the staged file fails.
        Directory.Delete(StagingDir, recursive: true);
        await File.WriteAllTextAsync(StagingDir, "in the way");
        using var source = new MemoryStream(new byte[100]);
        var error = await Assert.ThrowsAsync<BlobStoreException>(() => _store.StageAsync(source, long.MaxValue, CancellationToken.None));
        Assert.IsAssignableFrom<IOException>(error.InnerException);
    }

    [Fact]
    public async Task AFailureReadingTheContentStaysTheSendersAndKeepsNothing()
    {
        await using var source = new FailingStream(afterBytes: 300_000);
        await Assert.ThrowsAsync<IOException>(() => _store.StageAsync(source, long.MaxValue, CancellationToken.None));
        Assert.Empty(Directory.GetFiles(StagingDir));
    }

    /// <summary>Yields zeros, then fails as a dropped connection does.</summary>
    private sealed class FailingStream(long afterBytes) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= afterBytes)
            {
                throw new IOException("The connection was reset.");
            }
            int n = (int)Math.Min(count, afterBytes - _position);
            Array.Clear(buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/b")]
    [InlineData("..\\x")]
    [InlineData("/etc/passwd")]
    [InlineData("..")]
    [InlineData("file-abc/../../x")]
    [InlineData("file.txt")]
    [InlineData("ab")]
    [InlineData("")]
    [InlineData("file-\u00e9\u00e9\u00e9")]
    public async Task IdsWithPathCharactersAreRejected(string id)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => _store.OpenReadAsync(id, CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => _store.DeleteAsync(id, CancellationToken.None));
        await using var staged = await StageAsync(3);
        await Assert.ThrowsAsync<ArgumentException>(() => staged.CommitAsync(id, CancellationToken.None));
        Assert.False(File.Exists(Path.Combine(_dir.Path, "x")));
    }

    [Fact]
    public async Task BlobIsNamedByIdUnderItsLastTwoCharacters()
    {
        string id = WharfIds.File(_ids.Next());
        await using (var staged = await StageAsync(10))
        {
            await staged.CommitAsync(id, CancellationToken.None);
        }
        string expected = Path.Combine(_dir.Path, "blobs", id[^2..], id);
        Assert.True(File.Exists(expected));
        Assert.Equal(10, new FileInfo(expected).Length);
        Assert.Empty(Directory.GetFiles(StagingDir));
    }

    [Fact]
    public async Task OverTheLimitAndDisposedBlobsLeaveTheStagingDirectoryEmpty()
    {
        using (var source = new MemoryStream(new byte[DiskBlobStore.StagingWriter.ChunkBytes * 3]))
        {
            Assert.Null(await _store.StageAsync(source, DiskBlobStore.StagingWriter.ChunkBytes + 1, CancellationToken.None));
        }
        Assert.Empty(Directory.GetFiles(StagingDir));

        var staged = await StageAsync(1000);
        Assert.Single(Directory.GetFiles(StagingDir));
        await staged.DisposeAsync();
        Assert.Empty(Directory.GetFiles(StagingDir));
    }

    [Fact]
    public async Task SweepRemovesOnlyStaleStagedFilesNoRequestHolds()
    {
        // A staged file left by an earlier process (a crash mid-upload), two days old.
        string leftover = Path.Combine(StagingDir, Guid.NewGuid().ToString("N") + ".tmp");
        await File.WriteAllBytesAsync(leftover, new byte[5]);
        File.SetLastWriteTimeUtc(leftover, DateTime.UtcNow.AddDays(-2));
        // A staged file a request holds, just as old: a slow client, or the rest of its form still on its way.
        await using var held = await StageAsync(3);
        string heldPath = Assert.Single(Directory.GetFiles(StagingDir), path => path != leftover);
        File.SetLastWriteTimeUtc(heldPath, DateTime.UtcNow.AddDays(-2));
        await using var fresh = await StageAsync(7);
        Assert.Equal(3, Directory.GetFiles(StagingDir).Length);

        Assert.Equal(1, await _store.SweepStagingAsync(DateTimeOffset.UtcNow.AddDays(-1), Ct));
        Assert.False(File.Exists(leftover));
        Assert.True(File.Exists(heldPath));
        Assert.Equal(0, await _store.SweepStagingAsync(DateTimeOffset.MaxValue, Ct));
        Assert.Equal(2, Directory.GetFiles(StagingDir).Length);

        foreach (var (staged, length) in new[] { (held, 3), (fresh, 7) })
        {
            string id = WharfIds.File(_ids.Next());
            await staged.CommitAsync(id, Ct);
            await using var read = await _store.OpenReadAsync(id, Ct);
            Assert.NotNull(read);
            Assert.Equal(length, read.Length);
        }
    }

    private static CancellationToken Ct => CancellationToken.None;

    [Fact]
    public async Task CommittingOverAnExistingBlobFails()
    {
        string id = WharfIds.File(_ids.Next());
        await using (var first = await StageAsync(1))
        {
            await first.CommitAsync(id, CancellationToken.None);
        }
        await using var second = await StageAsync(2);
        await Assert.ThrowsAsync<BlobStoreException>(() => second.CommitAsync(id, CancellationToken.None));
        await using var read = await _store.OpenReadAsync(id, CancellationToken.None);
        Assert.Equal(1, read!.Length);
    }

    [Fact]
    public async Task CheckFailsWhenTheDirectoryIsGone()
    {
        await _store.CheckAsync(CancellationToken.None);
        Directory.Delete(Path.Combine(_dir.Path, "blobs"), recursive: true);
        await Assert.ThrowsAsync<IOException>(() => _store.CheckAsync(CancellationToken.None));
    }
}
