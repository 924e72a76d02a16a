using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Ports;
using Wharf.Storage.FileSystem;
using Wharf.Storage.MoveUp;
using Wharf.Storage.Postgres;
using Wharf.Storage.S3;
using Wharf.Storage.Sqlite;

namespace Wharf.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>
    /// The store <paramref name="configuration"/> chooses: <c>Wharf:Storage:Catalog</c> = <c>sqlite</c> (the default:
    /// the embedded store of <see cref="AddEmbeddedStorage"/>) or <c>postgres</c> (the shared catalog on
    /// <c>Wharf:Storage:Postgres:ConnectionString</c>, with the blobs on disk under <c>Wharf:DataDir</c>). Any other
    /// value stops the start with a message naming the key.
    /// </summary>
    public static IServiceCollection AddWharfStorage(this IServiceCollection services, IConfiguration configuration)
    {
        string dataDir = DataDirOf(configuration);
        string catalog = CatalogOf(configuration);
        if (string.Equals(catalog, StorageOptions.SqliteCatalog, StringComparison.OrdinalIgnoreCase))
        {
            return services.AddEmbeddedStorage(dataDir);
        }
        if (string.Equals(catalog, StorageOptions.PostgresCatalog, StringComparison.OrdinalIgnoreCase))
        {
            string root = Path.GetFullPath(dataDir);
            AddDataDirectory(services, root);
            services.AddPostgresCatalog();
            AddDiskBlobs(services, root);
            return services;
        }
        throw new InvalidOperationException(
            $"{StorageOptions.Section}:Catalog must be '{StorageOptions.SqliteCatalog}' or '{StorageOptions.PostgresCatalog}', not '{catalog}'.");
    }

    private static string CatalogOf(IConfiguration configuration) =>
        configuration[$"{StorageOptions.Section}:Catalog"] is { Length: > 0 } value ? value : StorageOptions.SqliteCatalog;

    private static bool IsEmbeddedCatalog(IConfiguration configuration) =>
        string.Equals(CatalogOf(configuration), StorageOptions.SqliteCatalog, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The embedded store: a SQLite catalog (<c>wharf.db</c>) and blobs on disk (<c>blobs/</c>), both under
    /// <paramref name="dataDir"/>, which one process owns (a lock file keeps a second one out), with room kept for deletes
    /// on a full disk (<c>space.reserve</c>).
    /// </summary>
    public static IServiceCollection AddEmbeddedStorage(this IServiceCollection services, string dataDir)
    {
        string root = Path.GetFullPath(dataDir);
        AddDataDirectory(services, root);
        services.AddSingleton(sp =>
        {
            sp.GetRequiredService<DataDirectoryLock>();
            var database = new SqliteDatabase(Path.Combine(root, "wharf.db"), sp.GetRequiredService<SpaceReserve>());
            // This process holds the data directory: every lease and claim in the catalog is a dead process's.
            database.ForgetClaimsOfEarlierProcessesAsync(CancellationToken.None).GetAwaiter().GetResult();
            if (!SqliteDatabase.MultiThreaded)
            {
                sp.GetRequiredService<ILoggerFactory>().CreateLogger<SqliteDatabase>().LogWarning(
                    "SQLite was initialized before Wharf's catalog, so it stays in serialized mode: correct, but reads are slower.");
            }
            return database;
        });
        services.AddSingleton<IFileCatalog, SqliteFileCatalog>();
        services.AddSingleton<IKeyCatalog, SqliteKeyCatalog>();
        services.AddSingleton<SqliteWorkspaceCatalog>();
        services.AddSingleton<IWorkspaceCatalog>(sp => sp.GetRequiredService<SqliteWorkspaceCatalog>());
        services.AddSingleton<IWorkspaceUsageReader>(sp => sp.GetRequiredService<SqliteWorkspaceCatalog>());
        services.AddSingleton<IUploadCatalog, SqliteUploadCatalog>();
        services.AddSingleton<IFileCopyCatalog, SqliteFileCopyCatalog>();
        services.AddSingleton<IBatchCatalog, SqliteBatchCatalog>();
        services.AddSingleton<IWebhookOutbox, SqliteWebhookOutbox>();
        services.AddSingleton<ILeaseCatalog, SqliteLeaseCatalog>();
        services.AddSingleton<IDeferredBlobDeletions, SqliteDeferredBlobDeletions>();
        AddDiskBlobs(services, root);
        return services;
    }

    /// <summary>
    /// Every catalog port on PostgreSQL, through one data source, and the listener that keeps this node's key cache in
    /// step with changes made through other nodes. The connection string is required; the database is
    /// opened, and its schema created or migrated, when a catalog is first needed (at start), and a string that is
    /// malformed or names a server that cannot be reached stops the start with a message naming the key.
    /// </summary>
    private static IServiceCollection AddPostgresCatalog(this IServiceCollection services)
    {
        AddPostgresOptions(services, $"when {StorageOptions.Section}:Catalog is '{StorageOptions.PostgresCatalog}'");
        services.AddSingleton(sp => PostgresDatabase.Open(sp.GetRequiredService<IOptions<PostgresCatalogOptions>>().Value.ConnectionString!));
        services.AddSingleton<IFileCatalog, PostgresFileCatalog>();
        services.AddSingleton<IKeyCatalog, PostgresKeyCatalog>();
        services.AddSingleton<PostgresWorkspaceCatalog>();
        services.AddSingleton<IWorkspaceCatalog>(sp => sp.GetRequiredService<PostgresWorkspaceCatalog>());
        services.AddSingleton<IWorkspaceUsageReader>(sp => sp.GetRequiredService<PostgresWorkspaceCatalog>());
        services.AddSingleton<IUploadCatalog, PostgresUploadCatalog>();
        services.AddSingleton<IFileCopyCatalog, PostgresFileCopyCatalog>();
        services.AddSingleton<IBatchCatalog, PostgresBatchCatalog>();
        services.AddSingleton<IWebhookOutbox, PostgresWebhookOutbox>();
        services.AddSingleton<ILeaseCatalog, PostgresLeaseCatalog>();
        services.AddSingleton<IDeferredBlobDeletions, PostgresDeferredBlobDeletions>();
        // Several nodes share this catalog: each clears its key cache when any of them revokes a key or changes or
        // deletes a workspace (the host registers the KeyCache).
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgresKeyChangeListener>());
        return services;
    }

    /// <summary><see cref="PostgresCatalogOptions"/>, validated: the connection string is required (<paramref name="when"/>).</summary>
    private static void AddPostgresOptions(IServiceCollection services, string when) =>
        services.AddOptions<PostgresCatalogOptions>().BindConfiguration(PostgresCatalogOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.ConnectionString), $"{PostgresDatabase.ConnectionStringKey} is required {when}.")
            .ValidateOnStart();

    /// <summary><see cref="S3StorageOptions"/>, validated as <see cref="S3StorageOptionsValidation"/> says.</summary>
    private static void AddS3Options(IServiceCollection services)
    {
        services.AddOptions<S3StorageOptions>().BindConfiguration(S3StorageOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<S3StorageOptions>, S3StorageOptionsValidation>());
    }

    /// <summary><c>Wharf:DataDir</c>, or its default.</summary>
    private static string DataDirOf(IConfiguration configuration) =>
        configuration[StorageOptions.DataDirKey] is { Length: > 0 } dir ? dir : StorageOptions.DefaultDataDir;

    /// <summary>
    /// The move-up command's <see cref="IEmbeddedStoreMover"/>: its source is the embedded store of <c>Wharf:DataDir</c>,
    /// its target the PostgreSQL catalog and the S3 bucket configured as for a scale-out node
    /// (<c>Wharf:Storage:Postgres:*</c>, <c>Wharf:Storage:S3:*</c>, validated as a node validates them; the
    /// <c>Catalog</c> and <c>Blobs</c> choices are not read). <see cref="MoveUpOptions"/> are bound and validated by
    /// the caller, with the data annotations it carries.
    /// </summary>
    public static IServiceCollection AddMoveUp(this IServiceCollection services, IConfiguration configuration)
    {
        string dataDir = DataDirOf(configuration);
        AddPostgresOptions(services, "to move up into PostgreSQL");
        AddS3Options(services);
        services.TryAddSingleton<IEmbeddedStoreMover>(sp => new EmbeddedStoreMover(
            dataDir,
            sp.GetRequiredService<IOptions<MoveUpOptions>>(),
            sp.GetRequiredService<IOptions<PostgresCatalogOptions>>(),
            sp.GetRequiredService<IOptions<S3StorageOptions>>(),
            sp.GetRequiredService<ILogger<S3BlobStore>>()));
        return services;
    }

    /// <summary>The data directory's owner lock and the room kept on its file system for deletes.</summary>
    private static void AddDataDirectory(IServiceCollection services, string root)
    {
        services.AddSingleton(_ => new DataDirectoryLock(root));
        services.AddSingleton(sp =>
        {
            sp.GetRequiredService<DataDirectoryLock>();
            return new SpaceReserve(Path.Combine(root, SpaceReserve.FileName), sp.GetRequiredService<ILogger<SpaceReserve>>());
        });
    }

    private static void AddDiskBlobs(IServiceCollection services, string root) =>
        services.AddSingleton<IBlobStore>(sp =>
        {
            sp.GetRequiredService<DataDirectoryLock>();
            return new DiskBlobStore(Path.Combine(root, "blobs"), sp.GetRequiredService<SpaceReserve>());
        });

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
        AddS3Options(services);
        services.Replace(ServiceDescriptor.Singleton<IBlobStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<S3StorageOptions>>().Value;
            return new S3BlobStore(S3ClientFactory.Create(options), options, sp.GetRequiredService<ILogger<S3BlobStore>>())
            {
                // Several nodes exist only around a shared catalog: the embedded one belongs to one process.
                SharedByNodes = sp.GetService<IConfiguration>() is not { } configuration || !IsEmbeddedCatalog(configuration),
            };
        }));
        return true;
    }
}

/// <summary>Where the catalog and the blobs live (<c>Wharf:Storage</c>).</summary>
public static class StorageOptions
{
    public const string Section = "Wharf:Storage";
    public const string DataDirKey = "Wharf:DataDir";
    public const string DefaultDataDir = "./data";
    public const string SqliteCatalog = "sqlite";
    public const string PostgresCatalog = "postgres";
}

/// <summary>The PostgreSQL catalog (<c>Wharf:Storage:Postgres</c>).</summary>
public sealed class PostgresCatalogOptions
{
    public const string Section = "Wharf:Storage:Postgres";

    /// <summary>An Npgsql connection string (<c>Host=...;Database=...;Username=...;Password=...</c>).</summary>
    public string? ConnectionString { get; set; }
}
