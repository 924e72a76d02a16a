using BenchmarkDotNet.Attributes;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Storage.Sqlite;

namespace Wharf.Benchmarks;

/// <summary>
/// One page of <c>GET /v1/files?limit=20</c> read from the embedded catalog (SQLite), without HTTP: the plain page,
/// a <c>purpose</c> filter (an index range, then each file by its key) and a <c>metadata.k=v</c> filter. The
/// workspace holds 100,000 files seeded as bench/run seeds them: half purpose=batch, metadata k=v on every tenth.
/// </summary>
[MemoryDiagnoser]
public class CatalogListBenchmarks
{
    private const string Workspace = "ws_0000000000000000000000000000000b";
    private string _directory = "";
    private SqliteDatabase _database = null!;
    private SqliteFileCatalog _catalog = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _directory = Directory.CreateTempSubdirectory("wharf-bench-").FullName;
        _database = new SqliteDatabase(Path.Combine(_directory, "wharf.db"));
        _catalog = new SqliteFileCatalog(_database, TimeProvider.System);
        var ids = new IdGenerator(TimeProvider.System);
        for (int chunk = 0; chunk < 100; chunk++)
        {
            await Task.WhenAll(Enumerable.Range(chunk * 1000 + 1, 1000).Select(n => _catalog.InsertAsync(new FileRecord
            {
                Id = WharfIds.File(ids.Next()),
                WorkspaceId = Workspace,
                Bytes = 1024,
                CreatedAt = 1_700_000_000,
                Filename = "seed.jsonl",
                Purpose = n % 2 == 0 ? "batch" : "assistants",
                Status = FileStatus.Processed,
                Metadata = n % 10 == 0 ? new Dictionary<string, string> { ["k"] = "v" } : FileRecord.EmptyMetadata,
                Provider = "local",
                Sha256 = new string('a', 64),
            }, CancellationToken.None)));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _database.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public Task<Page<FileRecord>> Plain() => List(new FileListQuery { WorkspaceId = Workspace, Limit = 20 });

    [Benchmark]
    public Task<Page<FileRecord>> Purpose() => List(new FileListQuery { WorkspaceId = Workspace, Limit = 20, Purpose = "batch" });

    [Benchmark]
    public Task<Page<FileRecord>> Metadata() =>
        List(new FileListQuery { WorkspaceId = Workspace, Limit = 20, Metadata = [KeyValuePair.Create("k", "v")] });

    private Task<Page<FileRecord>> List(FileListQuery query) => _catalog.ListAsync(query, CancellationToken.None);
}
