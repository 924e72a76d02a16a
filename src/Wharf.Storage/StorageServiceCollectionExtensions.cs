using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Ports;
using Wharf.Storage.FileSystem;
using Wharf.Storage.S3;
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

    /// <summary>The setting that chooses where blobs live: <c>disk</c> (the default) or <c>s3</c>.</summary>
    public const string BlobsSetting = "Wharf:Storage:Blobs";

    /// <summary>
    /// Keeps blobs where <paramref name="blobs"/> (the value of <see cref="BlobsSetting"/>) says: on disk, as
    /// <see cref="AddEmbeddedStorage"/> did (null, empty or <c>disk</c>), or in an S3-compatible bucket (<c>s3</c>, see
    /// <see cref="S3StorageOptions"/>). Returns whether blobs are in S3; another value stops the start.
    /// </summary>
    public static bool AddBlobStore(this IServiceCollection services, string? blobs)
    {
        if (string.IsNullOrWhiteSpace(blobs) || blobs.Equals("disk", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        if (!blobs.Equals("s3", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"{BlobsSetting} must be 'disk' or 's3', not '{blobs}'.");
        }
        services.AddOptions<S3StorageOptions>().BindConfiguration(S3StorageOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<S3StorageOptions>, S3StorageOptionsValidation>();
        services.Replace(ServiceDescriptor.Singleton<IBlobStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<S3StorageOptions>>().Value;
            return new S3BlobStore(S3ClientFactory.Create(options), options, sp.GetRequiredService<ILogger<S3BlobStore>>());
        }));
        return true;
    }
}
