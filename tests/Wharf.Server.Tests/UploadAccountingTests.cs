using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>A server that allows three pending uploads per workspace and hashes no upload at completion.</summary>
public sealed class FewPendingUploadsServerFixture : ServerFixture
{
    public const int MaxPending = 3;

    protected override string[] Args =>
        ["--Wharf:Files:MaxPendingUploadsPerWorkspace=" + MaxPending, DeferredHashingServerFixture.Arg];
}

/// <summary>
/// What pending uploads may hold: their parts count against the workspace's quota, a workspace has a bounded number
/// of them, no tenant's requests can switch off another's streaming hashes, and an upload whose workspace is deleted
/// while it runs answers as any request of a deleted workspace.
/// </summary>
public sealed class UploadAccountingTests(FewPendingUploadsServerFixture fixture) : IClassFixture<FewPendingUploadsServerFixture>, IDisposable
{
    private readonly Admin _admin = new(fixture.Server);

    public void Dispose() => _admin.Dispose();

    internal static async Task<string> CreateUploadAsync(HttpClient client, long bytes)
    {
        using var response = await client.PostAsJsonAsync("/v1/uploads", new { filename = "big.jsonl", purpose = "batch", bytes, mime_type = "application/jsonl" });
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json.Id();
    }

    internal static Task<HttpResponseMessage> AddPartAsync(HttpClient client, string uploadId, byte[] data) =>
        client.PostAsync($"/v1/uploads/{uploadId}/parts", new MultipartFormDataContent { { new ByteArrayContent(data), "data", "blob" } });

    private long PartBytesOnDisk(IEnumerable<string> partIds) =>
        partIds.Select(id => new FileInfo(Path.Combine(fixture.Server.DataDir, "blobs", id[^2..], id)))
            .Where(f => f.Exists)
            .Sum(f => f.Length);

    [Fact]
    public async Task Pending_uploads_cannot_hold_more_than_the_quota_on_disk()
    {
        const long Quota = 1_000_000;
        var (ws, client) = await _admin.NewTenantAsync("pending-quota", quota: Quota);
        var kept = new List<string>();
        var refused = new List<HttpStatusCode>();
        // Each upload announces what fits, then its parts go past it (re-sent parts), while more uploads are opened.
        for (int u = 0; u < 3; u++)
        {
            using var create = await client.PostAsJsonAsync("/v1/uploads", new { filename = "f", purpose = "batch", bytes = Quota, mime_type = "text/plain" });
            if (!create.IsSuccessStatusCode)
            {
                await Wire.AssertErrorAsync(create, 403, "bytes", "storage_quota_exceeded");
                refused.Add(create.StatusCode);
                continue;
            }
            string uploadId = (await Wire.JsonAsync(create)).Id();
            for (int p = 0; p < 4; p++)
            {
                using var part = await AddPartAsync(client, uploadId, RandomNumberGenerator.GetBytes(400_000));
                if (part.IsSuccessStatusCode)
                {
                    kept.Add((await Wire.JsonAsync(part)).Id());
                }
                else
                {
                    await Wire.AssertErrorAsync(part, 403, "data", "storage_quota_exceeded");
                    refused.Add(part.StatusCode);
                }
            }
        }

        long onDisk = PartBytesOnDisk(kept);
        Assert.True(onDisk <= Quota, $"pending parts hold {onDisk} bytes on disk, over the quota of {Quota}");
        Assert.Equal(2, kept.Count); // 800,000 bytes: a third part would pass the quota
        Assert.NotEmpty(refused);
        // Usage shows what the pending upload holds: its whole announced size is reserved.
        long usage = (await _admin.GetWorkspaceAsync(ws)).GetProperty("storage_usage_bytes").GetInt64();
        Assert.Equal(Quota, usage);
        Assert.True(usage >= onDisk);
    }

    [Fact]
    public async Task A_zero_quota_workspace_keeps_no_part()
    {
        var (ws, client) = await _admin.NewTenantAsync("zero-quota", quota: 0);
        string uploadId = await CreateUploadAsync(client, 0);
        using (var part = await AddPartAsync(client, uploadId, new byte[300_000]))
        {
            await Wire.AssertErrorAsync(part, 403, "data", "storage_quota_exceeded");
        }
        Assert.Empty((await Wire.GetJsonAsync(client, $"/v1/uploads/{uploadId}")).GetProperty("parts").EnumerateArray());
        Assert.Equal(0, (await _admin.GetWorkspaceAsync(ws)).GetProperty("storage_usage_bytes").GetInt64());
        using var create = await client.PostAsJsonAsync("/v1/uploads", new { filename = "f", purpose = "batch", bytes = 1, mime_type = "text/plain" });
        await Wire.AssertErrorAsync(create, 403, "bytes", "storage_quota_exceeded");
    }

    [Fact]
    public async Task Usage_counts_a_pending_upload_until_it_ends_and_then_its_file()
    {
        var (ws, client) = await _admin.NewTenantAsync("usage-pending", quota: 10_000);
        async Task<long> Usage() => (await _admin.GetWorkspaceAsync(ws)).GetProperty("storage_usage_bytes").GetInt64();

        string cancelled = await CreateUploadAsync(client, 6000);
        Assert.Equal(6000, await Usage());
        // While 6,000 bytes are reserved, a plain upload of 5,000 does not fit.
        using (var plain = await client.PostAsync("/v1/files", Wire.Form("assistants", new byte[5000])))
        {
            await Wire.AssertErrorAsync(plain, 403, "file", "storage_quota_exceeded");
        }
        using (var part = await AddPartAsync(client, cancelled, new byte[3000]))
        {
            Assert.Equal(HttpStatusCode.OK, part.StatusCode);
        }
        Assert.Equal(6000, await Usage());
        Assert.True((await client.PostAsync($"/v1/uploads/{cancelled}/cancel", null)).IsSuccessStatusCode);
        Assert.Equal(0, await Usage());

        string completed = await CreateUploadAsync(client, 7000);
        var parts = new List<string>();
        foreach (int size in new[] { 4000, 3000, 3000 }) // the last one re-sent: 10,000 held, all within the quota
        {
            using var part = await AddPartAsync(client, completed, new byte[size]);
            var json = await Wire.JsonAsync(part);
            Assert.True(part.IsSuccessStatusCode, json.ToString());
            parts.Add(json.Id());
        }
        Assert.Equal(10_000, await Usage());
        using (var complete = await client.PostAsJsonAsync($"/v1/uploads/{completed}/complete", new { part_ids = parts.Take(2) }))
        {
            Assert.True(complete.IsSuccessStatusCode, (await Wire.JsonAsync(complete)).ToString());
        }
        Assert.Equal(7000, await Usage());
    }

    [Fact]
    public async Task A_workspace_has_a_bounded_number_of_pending_uploads()
    {
        var (_, client) = await _admin.NewTenantAsync("many-pending");
        var (_, other) = await _admin.NewTenantAsync("other-pending");
        var open = new List<string>();
        for (int i = 0; i < FewPendingUploadsServerFixture.MaxPending; i++)
        {
            open.Add(await CreateUploadAsync(client, 10));
        }
        using (var over = await client.PostAsJsonAsync("/v1/uploads", new { filename = "f", purpose = "batch", bytes = 10, mime_type = "text/plain" }))
        {
            var error = await Wire.AssertErrorAsync(over, 403, code: "too_many_pending_uploads");
            Assert.Contains(FewPendingUploadsServerFixture.MaxPending.ToString(System.Globalization.CultureInfo.InvariantCulture), error.GetProperty("message").GetString());
        }
        // Another workspace is not affected.
        await CreateUploadAsync(other, 10);

        // Ending one (cancelled or completed) makes room for one more.
        Assert.True((await client.PostAsync($"/v1/uploads/{open[0]}/cancel", null)).IsSuccessStatusCode);
        open.Add(await CreateUploadAsync(client, 10));
        using (var part = await AddPartAsync(client, open[1], new byte[10]))
        {
            string partId = (await Wire.JsonAsync(part)).Id();
            Assert.True((await client.PostAsJsonAsync($"/v1/uploads/{open[1]}/complete", new { part_ids = new[] { partId } })).IsSuccessStatusCode);
        }
        await CreateUploadAsync(client, 10);
        using var again = await client.PostAsJsonAsync("/v1/uploads", new { filename = "f", purpose = "batch", bytes = 10, mime_type = "text/plain" });
        await Wire.AssertErrorAsync(again, 403, code: "too_many_pending_uploads");
    }

    [Fact]
    public async Task A_file_upload_in_flight_when_its_workspace_is_deleted_is_refused_as_unauthenticated()
    {
        var (ws, client) = await _admin.NewTenantAsync("deleted-mid-upload");
        using var gate = new ZeroStream(200_000, holdAt: 100_000);
        var form = new MultipartFormDataContent
        {
            { new StreamContent(gate), "file", "slow.bin" },
            { new StringContent("assistants"), "purpose" },
        };
        var send = client.PostAsync("/v1/files", form);
        await gate.Held.WaitAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(200); // the server is reading the file part

        using (var delete = await _admin.Client.DeleteAsync($"/admin/workspaces/{ws}"))
        {
            Assert.Equal(HttpStatusCode.OK, delete.StatusCode);
        }
        gate.Release();
        using var response = await send;
        Assert.NotEqual(HttpStatusCode.Forbidden, response.StatusCode);
        await Wire.AssertErrorAsync(response, 401);
    }

    [Fact]
    public async Task A_part_in_flight_when_its_workspace_is_deleted_is_refused_as_unauthenticated()
    {
        var (ws, client) = await _admin.NewTenantAsync("deleted-mid-part");
        string uploadId = await CreateUploadAsync(client, 200_000);
        using var gate = new ZeroStream(200_000, holdAt: 100_000);
        var send = client.PostAsync($"/v1/uploads/{uploadId}/parts", new MultipartFormDataContent { { new StreamContent(gate), "data", "slow.bin" } });
        await gate.Held.WaitAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(200);

        using (var delete = await _admin.Client.DeleteAsync($"/admin/workspaces/{ws}"))
        {
            Assert.Equal(HttpStatusCode.OK, delete.StatusCode);
        }
        gate.Release();
        using var response = await send;
        await Wire.AssertErrorAsync(response, 401);
    }
}

/// <summary>The running hash of uploads is fair between workspaces, on a server that hashes no upload at completion.</summary>
public sealed class UploadHashFairnessTests(DeferredHashingServerFixture fixture) : IClassFixture<DeferredHashingServerFixture>, IDisposable
{
    private readonly Admin _admin = new(fixture.Server);

    public void Dispose() => _admin.Dispose();

    [Fact]
    public async Task Parts_sent_to_a_cancelled_upload_do_not_switch_off_another_workspaces_streaming_hash()
    {
        var (_, noisy) = await _admin.NewTenantAsync("noisy");
        var (_, quiet) = await _admin.NewTenantAsync("quiet");
        // A part request to each of more cancelled uploads than the node ever tracked at once (10,000), a few at a time.
        int sent = 0;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
        {
            while (Interlocked.Increment(ref sent) <= 10_100)
            {
                string cancelled = await UploadAccountingTests.CreateUploadAsync(noisy, 10);
                using (var cancel = await noisy.PostAsync($"/v1/uploads/{cancelled}/cancel", null))
                {
                    Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
                }
                using var response = await noisy.PostAsync($"/v1/uploads/{cancelled}/parts", content: null);
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            }
        }));

        // Another workspace's parts, sent in file order, are hashed while they stream: this server hashes nothing
        // at completion, so the SHA-256 is in the answer only if the running hash tracked the upload.
        byte[][] chunks = [RandomNumberGenerator.GetBytes(100_000), RandomNumberGenerator.GetBytes(50_000)];
        string uploadId = await UploadAccountingTests.CreateUploadAsync(quiet, chunks.Sum(c => c.Length));
        var partIds = new List<string>();
        foreach (byte[] chunk in chunks)
        {
            using var part = await UploadAccountingTests.AddPartAsync(quiet, uploadId, chunk);
            partIds.Add((await Wire.JsonAsync(part)).Id());
        }
        using var complete = await quiet.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = partIds });
        var done = await Wire.JsonAsync(complete);
        Assert.True(complete.IsSuccessStatusCode, done.ToString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(chunks.SelectMany(c => c).ToArray())), done.GetProperty("file").GetProperty("sha256").GetString());
    }
}
