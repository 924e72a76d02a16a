using Amazon.S3;
using Wharf.Testing;
using Wharf.Tests.S3;

namespace Wharf.Server.Tests.Infrastructure;

/// <summary>
/// The shared back ends of a scale-out deployment for the tests: a fresh database on this test process's throwaway
/// PostgreSQL cluster and a fresh key prefix in a bucket of its throwaway s3rver. Every node started with
/// <see cref="NodeArgs"/> uses both, as nodes behind a load balancer would; each keeps its own data directory.
/// </summary>
public sealed class ScaleOutStore
{
    public const string Bucket = "wharf-scale-out";
    private static readonly Lazy<Task<S3rverProcess>> SharedS3 = new(() => S3rverProcess.StartAsync(Bucket));

    private ScaleOutStore(string connectionString, S3rverProcess s3, string prefix)
    {
        ConnectionString = connectionString;
        S3 = s3;
        Prefix = prefix;
    }

    public string ConnectionString { get; }

    public S3rverProcess S3 { get; }

    /// <summary>The key prefix of this store's objects in <see cref="Bucket"/>.</summary>
    public string Prefix { get; }

    public static async Task<ScaleOutStore> CreateAsync() => await CreateAsync(await PostgresCluster.Shared);

    /// <summary>A store whose database is on <paramref name="cluster"/> (a cluster of the test's own, which it may stop).</summary>
    public static async Task<ScaleOutStore> CreateAsync(PostgresCluster cluster)
    {
        string connectionString = await cluster.CreateDatabaseAsync();
        var s3 = await SharedS3.Value;
        return new ScaleOutStore(connectionString, s3, "t" + Guid.NewGuid().ToString("N")[..12] + "/");
    }

    /// <summary>The configuration of a node on this store (PostgreSQL catalog, S3 blobs).</summary>
    public string[] NodeArgs =>
    [
        "--Wharf:Storage:Catalog=postgres",
        "--Wharf:Storage:Postgres:ConnectionString=" + ConnectionString,
        "--Wharf:Storage:Blobs=s3",
        "--Wharf:Storage:S3:ServiceUrl=" + S3.ServiceUrl,
        "--Wharf:Storage:S3:Bucket=" + Bucket,
        "--Wharf:Storage:S3:AccessKey=" + S3rverProcess.AccessKey,
        "--Wharf:Storage:S3:SecretKey=" + S3rverProcess.SecretKey,
        "--Wharf:Storage:S3:ForcePathStyle=true",
        "--Wharf:Storage:S3:Prefix=" + Prefix,
    ];

    /// <summary>The bucket as the tests see it, around the nodes.</summary>
    public AmazonS3Client CreateS3Client() => new(
        new Amazon.Runtime.BasicAWSCredentials(S3rverProcess.AccessKey, S3rverProcess.SecretKey),
        new AmazonS3Config { ServiceURL = S3.ServiceUrl.ToString(), ForcePathStyle = true, AuthenticationRegion = "us-east-1" });

    /// <summary>Every object key under this store's prefix.</summary>
    public async Task<HashSet<string>> ObjectKeysAsync()
    {
        using var s3 = CreateS3Client();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var request = new Amazon.S3.Model.ListObjectsV2Request { BucketName = Bucket, Prefix = Prefix };
        while (true)
        {
            var page = await s3.ListObjectsV2Async(request);
            keys.UnionWith((page.S3Objects ?? []).Select(o => o.Key));
            if (page.IsTruncated != true)
            {
                return keys;
            }
            request.ContinuationToken = page.NextContinuationToken;
        }
    }

    /// <summary>Starts a node on this store with its own data directory and <paramref name="extraArgs"/>.</summary>
    public Task<WharfServer> StartNodeAsync(params string[] extraArgs) => WharfServer.StartAsync([.. NodeArgs, .. extraArgs]);
}

/// <summary>One real server on PostgreSQL + S3 per test class.</summary>
public sealed class ScaleOutServerFixture : ServerFixture
{
    public ScaleOutStore Store { get; private set; } = null!;

    protected override async Task<string[]> ArgsAsync()
    {
        Store = await ScaleOutStore.CreateAsync();
        return Store.NodeArgs;
    }
}
