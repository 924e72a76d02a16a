using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Amazon.S3.Model;
using Npgsql;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.ScaleOut;

/// <summary>
/// Two real nodes on one PostgreSQL database and one bucket, both sweeping every second: each expired file is deleted
/// once (row, bytes, usage), by the node that holds the sweep's lease, and a killed holder's sweeps pass to the other.
/// </summary>
public sealed partial class TwoNodeSweepTests
{
    /// <summary>Sweeps every second; a deleted file's bytes are removed by the round that deletes its row (no grace).</summary>
    private static readonly string[] EagerSweeps =
        ["--Wharf:Sweeper:IntervalSeconds=1", "--Wharf:Sweeper:LeaseSeconds=2", "--Wharf:Files:DeletedContentGraceSeconds=0"];

    [Fact]
    public async Task Both_nodes_sweeping_every_second_delete_each_expired_file_once()
    {
        var store = await ScaleOutStore.CreateAsync();
        await using var a = await store.StartNodeAsync(EagerSweeps);
        await using var b = await store.StartNodeAsync(EagerSweeps);
        var tenant = await TenantAsync(a, b, "sweeps");

        var expiring = await tenant.UploadAsync(24);
        var kept = await tenant.UploadAsync(3);
        long total = expiring.Concat(kept).Sum(f => f.Bytes);
        Assert.Equal(total, await UsageAsync(a, tenant.WorkspaceId));

        // The API's shortest expiry is an hour: the files' expiry is moved into the past in the shared catalog.
        await ExpireAsync(store, expiring);
        await WaitUntilGoneAsync(store, expiring);

        await AssertDeletedEverywhereAsync(store, tenant, expiring, kept);
        Assert.Equal(total - expiring.Sum(f => f.Bytes), await UsageAsync(a, tenant.WorkspaceId));
        Assert.Equal(total - expiring.Sum(f => f.Bytes), await UsageAsync(b, tenant.WorkspaceId));
        // The nodes' logs together report each file removed once (a line follows its removal).
        await WaitUntilAsync(() => expiring.All(f => RemovalLines(a.Output + "\n" + b.Output, f.Id).Count > 0), "every removal is logged", 10);
        string logs = a.Output + "\n" + b.Output;
        Assert.All(expiring, f => Assert.Single(RemovalLines(logs, f.Id)));
        // One node took the sweep's lease; unless a node lost it meanwhile, that one did every removal.
        bool aTook = TookLease(a.Output), bTook = TookLease(b.Output);
        Assert.True(aTook || bTook, "no node took the sweep's lease:\n" + logs);
        if (aTook != bTook && !LostLease(logs))
        {
            var holder = aTook ? a : b;
            Assert.All(expiring, f => Assert.Single(RemovalLines(holder.Output, f.Id)));
        }
    }

    [Fact]
    public async Task A_node_killed_while_it_holds_the_sweeps_hands_them_to_the_other()
    {
        var store = await ScaleOutStore.CreateAsync();
        await using var a = await store.StartNodeAsync(EagerSweeps);
        await using var b = await store.StartNodeAsync(EagerSweeps);
        await WaitUntilAsync(() => TookLease(a.Output) || TookLease(b.Output), "a node takes the sweep's lease");
        var (holder, survivor) = TookLease(a.Output) ? (a, b) : (b, a);
        var tenant = await TenantAsync(survivor, survivor, "takeover");

        var expiring = await tenant.UploadAsync(10);
        var kept = await tenant.UploadAsync(2);
        holder.Kill(); // SIGKILL: its lease is not given up, it runs out
        await ExpireAsync(store, expiring);
        await WaitUntilGoneAsync(store, expiring);

        Assert.True(TookLease(survivor.Output), survivor.Output);
        await WaitUntilAsync(() => expiring.All(f => RemovalLines(survivor.Output, f.Id).Count > 0), "every removal is logged", 10);
        Assert.All(expiring, f => Assert.Single(RemovalLines(survivor.Output, f.Id)));
        Assert.All(expiring, f => Assert.Empty(RemovalLines(holder.Output, f.Id)));
        await AssertDeletedEverywhereAsync(store, tenant, expiring, kept);
        Assert.Equal(kept.Sum(f => f.Bytes), await UsageAsync(survivor, tenant.WorkspaceId));
    }

    internal sealed record Uploaded(string Id, long Bytes, byte[] Content);

    /// <summary>A workspace's key, with a client on each node.</summary>
    internal sealed class Tenant(string workspaceId, HttpClient[] clients) : IDisposable
    {
        public string WorkspaceId => workspaceId;

        public IReadOnlyList<HttpClient> Clients => clients;

        /// <summary>Files of different sizes, uploaded through the nodes in turn, each to expire in an hour.</summary>
        public async Task<List<Uploaded>> UploadAsync(int count)
        {
            var files = new List<Uploaded>();
            for (int i = 0; i < count; i++)
            {
                byte[] content = RandomNumberGenerator.GetBytes(1000 + 37 * i);
                using var form = Wire.Form("assistants", content, $"f{i}.bin", ("expires_after[anchor]", "created_at"), ("expires_after[seconds]", "3600"));
                using var response = await clients[i % clients.Length].PostAsync("/v1/files", form);
                var json = await Wire.JsonAsync(response);
                Assert.True(response.IsSuccessStatusCode, json.ToString());
                files.Add(new Uploaded(json.Id(), content.Length, content));
            }
            return files;
        }

        public void Dispose()
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>A workspace and key made through the first node's admin API; the key is used on every node given.</summary>
    internal static async Task<Tenant> TenantAsync(WharfServer first, WharfServer second, string name)
    {
        using var admin = new Admin(first);
        string workspaceId = (await admin.CreateWorkspaceAsync(name)).Id();
        var (_, secret) = await admin.CreateKeyAsync(workspaceId);
        return new Tenant(workspaceId, [first.CreateClient(secret), second.CreateClient(secret)]);
    }

    internal static async Task<long> UsageAsync(WharfServer node, string workspaceId)
    {
        using var admin = new Admin(node);
        return (await admin.GetWorkspaceAsync(workspaceId)).GetProperty("storage_usage_bytes").GetInt64();
    }

    private static async Task ExpireAsync(ScaleOutStore store, List<Uploaded> files)
    {
        await using var connection = new NpgsqlConnection(store.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "UPDATE files SET expires_at = extract(epoch FROM now())::bigint - 1 WHERE id = ANY(@ids);", connection);
        command.Parameters.AddWithValue("@ids", files.Select(f => f.Id).ToArray());
        Assert.Equal(files.Count, await command.ExecuteNonQueryAsync());
    }

    private static async Task<long> CountRowsAsync(ScaleOutStore store, List<Uploaded> files)
    {
        await using var connection = new NpgsqlConnection(store.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM files WHERE id = ANY(@ids);", connection);
        command.Parameters.AddWithValue("@ids", files.Select(f => f.Id).ToArray());
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task WaitUntilGoneAsync(ScaleOutStore store, List<Uploaded> files)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await CountRowsAsync(store, files) > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the expired files were not swept in time");
            await Task.Delay(100);
        }
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting until " + what);
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Expired files answer 404 on every node, their bytes are gone from the bucket (once the sweep that removed the
    /// rows has removed them, which follows within moments), and the kept files are whole on every node.
    /// </summary>
    private static async Task AssertDeletedEverywhereAsync(ScaleOutStore store, Tenant tenant, List<Uploaded> expired, List<Uploaded> kept)
    {
        foreach (var client in tenant.Clients)
        {
            foreach (var file in expired)
            {
                using var metadata = await client.GetAsync($"/v1/files/{file.Id}");
                Assert.Equal(HttpStatusCode.NotFound, metadata.StatusCode);
                using var content = await client.GetAsync($"/v1/files/{file.Id}/content");
                Assert.Equal(HttpStatusCode.NotFound, content.StatusCode);
            }
            foreach (var file in kept)
            {
                Assert.Equal(file.Content, await client.GetByteArrayAsync($"/v1/files/{file.Id}/content"));
            }
        }
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var keys = await store.ObjectKeysAsync();
            var left = expired.Where(f => keys.Contains(store.Prefix + "blobs/" + f.Id)).Select(f => f.Id).ToList();
            if (left.Count == 0)
            {
                Assert.All(kept, f => Assert.Contains(store.Prefix + "blobs/" + f.Id, keys));
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, "blobs of expired files still in the bucket: " + string.Join(", ", left));
            await Task.Delay(200);
        }
    }

    private static List<string> RemovalLines(string logs, string fileId) =>
        [.. logs.Split('\n').Where(line => line.Contains($"Expired file {fileId} of workspace", StringComparison.Ordinal))];

    private static bool TookLease(string logs) => TookSweepLease().IsMatch(logs);

    private static bool LostLease(string logs) => LostSweepLease().IsMatch(logs);

    [GeneratedRegex(@"took the lease of sweep 'storage-sweep'")]
    private static partial Regex TookSweepLease();

    [GeneratedRegex(@"lost the lease of sweep 'storage-sweep'")]
    private static partial Regex LostSweepLease();
}
