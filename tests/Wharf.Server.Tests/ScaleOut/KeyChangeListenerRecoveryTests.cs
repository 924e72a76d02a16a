using System.Diagnostics;
using System.Net;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Testing;

namespace Wharf.Server.Tests.ScaleOut;

/// <summary>
/// Two nodes whose PostgreSQL server is stopped and started again: each node's key-change listener loses its
/// connection, listens again by itself, and a key revoked through A afterwards is still refused by B within a second.
/// The cluster is this test's own, so stopping it touches no other test.
/// </summary>
public sealed class KeyChangeListenerRecoveryTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string ListeningAgain = "Listening for key changes on the PostgreSQL catalog again";
    private const string NotListening = "Not listening for key changes on the PostgreSQL catalog";

    [Fact]
    public async Task After_PostgreSQL_restarts_a_key_revoked_through_node_A_is_still_refused_by_node_B_within_a_second()
    {
        await using var cluster = await PostgresCluster.StartAsync();
        var store = await ScaleOutStore.CreateAsync(cluster);
        await using var a = await store.StartNodeAsync(TwoNodesFixture.LongKeyCache);
        await using var b = await store.StartNodeAsync(TwoNodesFixture.LongKeyCache);
        using var admin = new Admin(a);
        string workspaceId = (await admin.CreateWorkspaceAsync("outage")).Id();
        var (keyId, secret) = await admin.CreateKeyAsync(workspaceId);
        using var onB = b.CreateClient(secret);
        using (var cached = await onB.GetAsync("/v1/files?limit=1"))
        {
            Assert.Equal(HttpStatusCode.OK, cached.StatusCode);
        }

        await cluster.StopAsync();
        await WaitForAsync(() => b.Output.Contains(NotListening, StringComparison.Ordinal), "node B logs that it lost its listener", b);
        await cluster.StartAgainAsync();
        await WaitForAsync(() => b.Output.Contains(ListeningAgain, StringComparison.Ordinal), "node B listens again", b);

        // Both nodes answer again (a pooled connection that the restart broke is a 503 once), and B caches the key anew.
        await WaitForOkAsync(onB, "/v1/files?limit=1");
        await WaitForOkAsync(admin.Client, "/admin/workspaces?limit=1");

        var elapsed = await TwoNodes.TimeToRefusalAsync(onB, async () =>
        {
            HttpStatusCode status = HttpStatusCode.ServiceUnavailable;
            for (int attempt = 0; attempt < 20 && status == HttpStatusCode.ServiceUnavailable; attempt++)
            {
                using var revoked = await admin.Client.DeleteAsync($"/admin/keys/{keyId}");
                status = revoked.StatusCode;
            }
            Assert.Equal(HttpStatusCode.OK, status);
        });

        output.WriteLine($"revocation to refusal on node B after the restart: {elapsed.TotalMilliseconds:F0} ms");
        Assert.True(elapsed < TwoNodes.RevocationBound, $"node B refused the revoked key {elapsed.TotalMilliseconds:F0} ms after the revocation's answer");
    }

    private static async Task WaitForAsync(Func<bool> condition, string what, WharfServer node)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(50);
        }
        Assert.True(condition(), $"{what} within 60 s; its output:\n{node.Output}");
    }

    private static async Task WaitForOkAsync(HttpClient client, string url)
    {
        HttpStatusCode status = HttpStatusCode.ServiceUnavailable;
        for (int attempt = 0; attempt < 100 && status != HttpStatusCode.OK; attempt++)
        {
            using var response = await client.GetAsync(url);
            status = response.StatusCode;
            if (status != HttpStatusCode.OK)
            {
                await Task.Delay(100);
            }
        }
        Assert.Equal(HttpStatusCode.OK, status);
    }
}
