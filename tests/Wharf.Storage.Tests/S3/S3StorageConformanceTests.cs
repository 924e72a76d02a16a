using Wharf.Core.Ports;
using Wharf.Storage.S3;

namespace Wharf.Storage.Tests.S3;

/// <summary>A SQLite catalog in a fresh database file, and blobs in the shared s3rver bucket under a fresh prefix.</summary>
internal sealed class SqliteS3Backend(EmbeddedBackend catalogs, S3BlobStore blobs) : IStorageBackend
{
    public static async Task<SqliteS3Backend> CreateAsync(TimeProvider time)
    {
        var (store, _, _) = await SharedS3rver.NewStoreAsync();
        return new SqliteS3Backend(new EmbeddedBackend(time), store);
    }

    public IFileCatalog Files => catalogs.Files;

    public IKeyCatalog Keys => catalogs.Keys;

    public IWorkspaceCatalog Workspaces => catalogs.Workspaces;

    public IBlobStore Blobs => blobs;

    public IUploadCatalog Uploads => catalogs.Uploads;

    public IFileCopyCatalog Copies => catalogs.Copies;

    public IBatchCatalog Batches => catalogs.Batches;

    public ILeaseCatalog Leases => catalogs.Leases;

    public IDeferredBlobDeletions DeferredBlobs => catalogs.DeferredBlobs;

    public async ValueTask DisposeAsync()
    {
        blobs.Dispose();
        await catalogs.DisposeAsync();
    }
}

/// <summary>The shared conformance suite, run against SQLite + S3 (s3rver).</summary>
public sealed class SqliteS3StorageConformanceTests : StorageConformanceTests
{
    protected override async Task<IStorageBackend> CreateBackendAsync(TimeProvider time) => await SqliteS3Backend.CreateAsync(time);
}

/// <summary>The shared conformance suite, run against PostgreSQL + S3: the scale-out configuration.</summary>
public sealed class PostgresS3StorageConformanceTests : StorageConformanceTests
{
    protected override async Task<IStorageBackend> CreateBackendAsync(TimeProvider time)
    {
        var (store, _, _) = await SharedS3rver.NewStoreAsync();
        return await PostgresBackend.CreateAsync(time, store);
    }
}
