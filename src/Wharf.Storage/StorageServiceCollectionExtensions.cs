using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wharf.Core.Ports;
using Wharf.Storage.FileSystem;
using Wharf.Storage.Sqlite;

namespace Wharf.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>
    /// The embedded store: a SQLite catalog (<c>wharf.db</c>) and blobs on disk (<c>blobs/</c>), both under
    /// <paramref name="dataDir"/>, which one process owns (a lock file keeps a second one out), with room kept for deletes
    /// on a full disk (<c>space.reserve</c>).
    /// </summary>
    public static IServiceCollection AddEmbeddedStorage(this IServiceCollection services, string dataDir)
    {
        string root = Path.GetFullPath(dataDir);
        services.AddSingleton(_ => new DataDirectoryLock(root));
        services.AddSingleton(sp =>
        {
            sp.GetRequiredService<DataDirectoryLock>();
            return new SpaceReserve(Path.Combine(root, SpaceReserve.FileName), sp.GetRequiredService<ILogger<SpaceReserve>>());
        });
        services.AddSingleton(sp =>
        {
            sp.GetRequiredService<DataDirectoryLock>();
            var database = new SqliteDatabase(Path.Combine(root, "wharf.db"), sp.GetRequiredService<SpaceReserve>());
            if (!SqliteDatabase.MultiThreaded)
            {
                sp.GetRequiredService<ILoggerFactory>().CreateLogger<SqliteDatabase>().LogWarning(
                    "SQLite was initialized before Wharf's catalog, so it stays in serialized mode: correct, but reads are slower.");
            }
            return database;
        });
        services.AddSingleton<IFileCatalog, SqliteFileCatalog>();
        services.AddSingleton<IKeyCatalog, SqliteKeyCatalog>();
        services.AddSingleton<IWorkspaceCatalog, SqliteWorkspaceCatalog>();
        services.AddSingleton<IUploadCatalog, SqliteUploadCatalog>();
        services.AddSingleton<IFileCopyCatalog, SqliteFileCopyCatalog>();
        services.AddSingleton<IBatchCatalog, SqliteBatchCatalog>();
        services.AddSingleton<IWebhookOutbox, SqliteWebhookOutbox>();
        services.AddSingleton<IBlobStore>(sp =>
        {
            sp.GetRequiredService<DataDirectoryLock>();
            return new DiskBlobStore(Path.Combine(root, "blobs"), sp.GetRequiredService<SpaceReserve>());
        });
        return services;
    }
}
