using Amazon.S3;
using Wharf.Storage.S3;
using Wharf.Tests.S3;

namespace Wharf.Storage.Tests.S3;

/// <summary>
/// One s3rver for the whole test run, started by the first test that needs it and stopped when the test process
/// ends. Each back-end instance works under a fresh prefix of its one bucket, so tests never see each other's blobs.
/// </summary>
internal static class SharedS3rver
{
    public const string Bucket = "wharf-tests";

    private static readonly Lazy<Task<S3rverProcess>> Server = new(StartAsync);

    public static Task<S3rverProcess> GetAsync() => Server.Value;

    /// <summary>Options for a store under a prefix of its own in the shared bucket.</summary>
    public static async Task<S3StorageOptions> NewOptionsAsync(string? bucket = Bucket)
    {
        var server = await GetAsync();
        return new S3StorageOptions
        {
            ServiceUrl = server.ServiceUrl.ToString(),
            Bucket = bucket,
            AccessKey = S3rverProcess.AccessKey,
            SecretKey = S3rverProcess.SecretKey,
            ForcePathStyle = true,
            Prefix = "test-" + Guid.NewGuid().ToString("N"),
        };
    }

    /// <summary>A store under a prefix of its own, with its client (whose request events the tests watch).</summary>
    public static async Task<(S3BlobStore Store, AmazonS3Client Client, S3StorageOptions Options)> NewStoreAsync(
        Microsoft.Extensions.Logging.ILogger<S3BlobStore>? logger = null)
    {
        var options = await NewOptionsAsync();
        var client = S3ClientFactory.Create(options);
        return (new S3BlobStore(client, options, logger), client, options);
    }

    private static async Task<S3rverProcess> StartAsync()
    {
        var server = await S3rverProcess.StartAsync(Bucket);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return server;
    }
}
