using System.Diagnostics;
using System.Net;
using Amazon.S3.Model;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.ScaleOut;

/// <summary>
/// Two real Wharf nodes, A and B, on one <see cref="ScaleOutStore"/> (one PostgreSQL database, one bucket prefix), as
/// two nodes behind a load balancer. Their key caches keep a key for a minute: a node that did not hear another
/// node's revocation would go on accepting the key that long.
/// </summary>
public sealed class TwoNodesFixture : IAsyncLifetime
{
    /// <summary>The longest a key is cached: without cross-node clearing, a revoked key would work this long on another node.</summary>
    public const string LongKeyCache = "--Wharf:Auth:KeyCacheSeconds=60";

    /// <summary>
    /// A deleted file's bytes are removed by the next sweep (every second) rather than kept for downloads another node
    /// may have started: the tests see them go.
    /// </summary>
    public static readonly string[] QuickRemoval = ["--Wharf:Files:DeletedContentGraceSeconds=0", "--Wharf:Sweeper:IntervalSeconds=1"];

    public ScaleOutStore Store { get; private set; } = null!;

    public WharfServer A { get; private set; } = null!;

    public WharfServer B { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Store = await ScaleOutStore.CreateAsync();
        A = await Store.StartNodeAsync([LongKeyCache, .. QuickRemoval]);
        B = await Store.StartNodeAsync([LongKeyCache, .. QuickRemoval]);
    }

    public async Task DisposeAsync()
    {
        if (B is not null)
        {
            await B.DisposeAsync();
        }
        if (A is not null)
        {
            await A.DisposeAsync();
        }
    }
}

/// <summary>What the scale-out tests check on two nodes.</summary>
internal static class TwoNodes
{
    /// <summary>How soon a key revoked through one node must be refused by every other.</summary>
    public static readonly TimeSpan RevocationBound = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Makes <paramref name="node"/> cache <paramref name="client"/>'s key (two authenticated requests), then runs
    /// <paramref name="revoke"/> and measures from its answer to the node's first 401 for the key.
    /// </summary>
    public static async Task<TimeSpan> TimeToRefusalAsync(HttpClient client, Func<Task> revoke)
    {
        for (int i = 0; i < 2; i++)
        {
            using var accepted = await client.GetAsync("/v1/files?limit=1");
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        }
        await revoke();
        var clock = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            using var response = await client.GetAsync("/v1/files?limit=1");
            status = response.StatusCode;
        }
        while (status != HttpStatusCode.Unauthorized && clock.Elapsed < TimeSpan.FromSeconds(15));
        var elapsed = clock.Elapsed;
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        return elapsed;
    }
}
