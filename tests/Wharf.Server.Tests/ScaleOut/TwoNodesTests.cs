using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.ScaleOut;

/// <summary>
/// Two server processes on one PostgreSQL database and one bucket prefix: a file written through node A is the same
/// file through node B, and a key revoked or a workspace deleted through A is refused by B within a second, although
/// B caches keys for a minute.
/// </summary>
public sealed class TwoNodesTests(TwoNodesFixture nodes, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<TwoNodesFixture>
{
    [Fact]
    public async Task A_file_uploaded_with_the_SDK_on_node_A_is_listed_served_and_deleted_through_node_B()
    {
        var before = await nodes.Store.ObjectKeysAsync();
        byte[] content = RandomNumberGenerator.GetBytes(9 * 1024 * 1024 + 17); // staged on S3 in two parts
        OpenAIFile uploaded = await nodes.A.CreateFileClient().UploadFileAsync(new MemoryStream(content), "through-a.bin", FileUploadPurpose.Assistants);

        await AssertServedAndDeletedThroughBAsync(uploaded.Id, content, before);
    }

    [Fact]
    public async Task A_file_uploaded_in_parts_on_node_A_is_listed_served_and_deleted_through_node_B()
    {
        var before = await nodes.Store.ObjectKeysAsync();
        using var onA = nodes.A.CreateClient();
        byte[][] parts = [RandomNumberGenerator.GetBytes(1024 * 1024), RandomNumberGenerator.GetBytes(700_000), RandomNumberGenerator.GetBytes(13)];
        byte[] whole = [.. parts.SelectMany(p => p)];
        using var created = await onA.PostAsJsonAsync("/v1/uploads", new { filename = "parts.bin", purpose = "assistants", bytes = whole.Length, mime_type = "application/octet-stream" });
        string uploadId = (await Wire.JsonAsync(created)).Id();
        var partIds = new List<string>();
        foreach (byte[] part in parts)
        {
            using var form = new MultipartFormDataContent { { new ByteArrayContent(part), "data", "blob" } };
            using var added = await onA.PostAsync($"/v1/uploads/{uploadId}/parts", form);
            var json = await Wire.JsonAsync(added);
            Assert.True(added.IsSuccessStatusCode, json.ToString());
            partIds.Add(json.Id());
        }
        using var completed = await onA.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = partIds });
        var upload = await Wire.JsonAsync(completed);
        Assert.True(completed.IsSuccessStatusCode, upload.ToString());
        Assert.Equal("completed", upload.GetProperty("status").GetString());

        await AssertServedAndDeletedThroughBAsync(upload.GetProperty("file").Id(), whole, before);
    }

    private async Task AssertServedAndDeletedThroughBAsync(string fileId, byte[] content, HashSet<string> objectsBefore)
    {
        var filesOnB = nodes.B.CreateFileClient();
        OpenAIFileCollection listed = await filesOnB.GetFilesAsync();
        Assert.Contains(listed, f => f.Id == fileId && f.SizeInBytesLong == content.Length);
        Assert.Equal(content.Length, (await filesOnB.GetFileAsync(fileId)).Value.SizeInBytesLong);
        Assert.Equal(content, (await filesOnB.DownloadFileAsync(fileId)).Value.ToArray());

        using var onB = nodes.B.CreateClient();
        // A range that crosses the first megabyte (the first part's end for the upload in parts).
        long from = 1024 * 1024 - 1000, to = 1024 * 1024 + 999;
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{fileId}/content"))
        {
            request.Headers.Range = new RangeHeaderValue(from, to);
            using var ranged = await onB.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, ranged.StatusCode);
            Assert.Equal($"bytes {from}-{to}/{content.Length}", ranged.Content.Headers.ContentRange!.ToString());
            Assert.Equal(content.AsSpan((int)from, (int)(to - from + 1)).ToArray(), await ranged.Content.ReadAsByteArrayAsync());
        }
        Assert.NotEmpty((await nodes.Store.ObjectKeysAsync()).Except(objectsBefore));

        Assert.True((await filesOnB.DeleteFileAsync(fileId)).Value.Deleted);

        using var onA = nodes.A.CreateClient();
        foreach (var client in new[] { onA, onB })
        {
            using var file = await client.GetAsync($"/v1/files/{fileId}");
            await Wire.AssertErrorAsync(file, 404, "id");
            using var bytes = await client.GetAsync($"/v1/files/{fileId}/content");
            Assert.Equal(HttpStatusCode.NotFound, bytes.StatusCode);
            using var again = await client.DeleteAsync($"/v1/files/{fileId}");
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }
        var gone = await Assert.ThrowsAsync<ClientResultException>(() => nodes.A.CreateFileClient().GetFileAsync(fileId));
        Assert.Equal(404, gone.Status);
        // Its blob (or the blobs of its parts) leaves the bucket with the next sweep, and nothing was left in staging.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        HashSet<string> now;
        while (!(now = await nodes.Store.ObjectKeysAsync()).SetEquals(objectsBefore) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250);
        }
        Assert.Equal(objectsBefore.Order(), now.Order());
    }

    [Fact]
    public async Task A_key_revoked_through_node_A_is_refused_by_node_B_within_a_second()
    {
        using var admin = new Admin(nodes.A);
        string workspaceId = (await admin.CreateWorkspaceAsync("revoked-key")).Id();
        var (keyId, secret) = await admin.CreateKeyAsync(workspaceId);
        using var onB = nodes.B.CreateClient(secret);
        // B's cache is in use (its listener listens), so B hears the revocation rather than never caching at all.
        Assert.Contains("Listening for key changes on the PostgreSQL catalog", nodes.B.Output, StringComparison.Ordinal);

        var elapsed = await TwoNodes.TimeToRefusalAsync(onB, async () =>
        {
            using var revoked = await admin.Client.DeleteAsync($"/admin/keys/{keyId}");
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        });

        output.WriteLine($"revocation to refusal on node B: {elapsed.TotalMilliseconds:F0} ms");
        Assert.True(elapsed < TwoNodes.RevocationBound, $"node B refused the revoked key {elapsed.TotalMilliseconds:F0} ms after the revocation's answer");
        await AssertOtherKeysStillWorkOnBAsync();
    }

    [Fact]
    public async Task A_workspace_deleted_through_node_A_is_refused_by_node_B_within_a_second()
    {
        using var admin = new Admin(nodes.A);
        string workspaceId = (await admin.CreateWorkspaceAsync("deleted-workspace")).Id();
        var (_, secret) = await admin.CreateKeyAsync(workspaceId);
        using var onB = nodes.B.CreateClient(secret);
        Assert.Contains("Listening for key changes on the PostgreSQL catalog", nodes.B.Output, StringComparison.Ordinal);

        var elapsed = await TwoNodes.TimeToRefusalAsync(onB, async () =>
        {
            using var deleted = await admin.Client.DeleteAsync($"/admin/workspaces/{workspaceId}");
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        });

        output.WriteLine($"workspace deletion to refusal on node B: {elapsed.TotalMilliseconds:F0} ms");
        Assert.True(elapsed < TwoNodes.RevocationBound, $"node B refused the deleted workspace's key {elapsed.TotalMilliseconds:F0} ms after the deletion's answer");
        await AssertOtherKeysStillWorkOnBAsync();
    }

    private async Task AssertOtherKeysStillWorkOnBAsync()
    {
        using var other = nodes.B.CreateClient();
        using var response = await other.GetAsync("/v1/files?limit=1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
