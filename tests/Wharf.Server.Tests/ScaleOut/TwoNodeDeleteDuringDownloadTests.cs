using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.ScaleOut;

/// <summary>
/// A file made of upload parts, deleted through node A while node B streams it: B's download is whole (the parts it
/// has not reached yet are still in the bucket), and the parts go from the bucket once the grace is over. The sweeps
/// run every second with no orphan grace, so nothing but the record of the deferred removal keeps the parts meanwhile.
/// </summary>
public sealed class TwoNodeDeleteDuringDownloadTests
{
    private const int PartBytes = 16 * 1024 * 1024;
    private const int Parts = 3;

    private static readonly string[] Args =
    [
        "--Wharf:Sweeper:IntervalSeconds=1",
        "--Wharf:Sweeper:LeaseSeconds=2",
        "--Wharf:Sweeper:OrphanGraceSeconds=0",
        "--Wharf:Files:DeletedContentGraceSeconds=8",
    ];

    [Fact]
    public async Task A_file_deleted_through_one_node_while_the_other_streams_it_downloads_whole()
    {
        var store = await ScaleOutStore.CreateAsync();
        await using var a = await store.StartNodeAsync(Args);
        await using var b = await store.StartNodeAsync(Args);
        using var tenant = await TwoNodeSweepTests.TenantAsync(a, b, "downloads");
        var (clientA, clientB) = (tenant.Clients[0], tenant.Clients[1]);

        byte[] content = RandomNumberGenerator.GetBytes(PartBytes * Parts);
        var (fileId, partIds) = await UploadInPartsAsync(clientA, content);
        var keys = await store.ObjectKeysAsync();
        Assert.All(partIds, id => Assert.Contains(store.Prefix + "blobs/" + id, keys));

        using var response = await clientB.GetAsync($"/v1/files/{fileId}/content", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var body = await response.Content.ReadAsStreamAsync();
        byte[] received = new byte[content.Length];
        await body.ReadExactlyAsync(received.AsMemory(0, 256 * 1024)); // node B is in the first part

        using (var deleted = await clientA.DeleteAsync($"/v1/files/{fileId}"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await clientB.GetAsync($"/v1/files/{fileId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await clientA.GetAsync($"/v1/files/{fileId}/content")).StatusCode);
        await Task.Delay(TimeSpan.FromSeconds(3)); // sweeps run meanwhile, with no orphan grace

        await body.ReadExactlyAsync(received.AsMemory(256 * 1024));
        Assert.Equal(0, await body.ReadAsync(new byte[1]));
        Assert.True(received.AsSpan().SequenceEqual(content), "node B's download is whole and byte-exact");

        // After the grace, a sweep removes the parts from the bucket.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            keys = await store.ObjectKeysAsync();
            if (!partIds.Any(id => keys.Contains(store.Prefix + "blobs/" + id)))
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "the deleted file's parts are still in the bucket");
            await Task.Delay(250);
        }
        // The sweep that removed them says so (its line follows the removal).
        await TwoNodeSweepTests.WaitUntilAsync(
            () => Regex.IsMatch(a.Output + "\n" + b.Output, $@"and {Parts} blob\(s\) of deleted files whose grace ended"), "the sweep logs the removal", 10);
    }

    /// <summary>An upload in parts through the Uploads API, completed in order: its file is made of the parts.</summary>
    private static async Task<(string FileId, List<string> PartIds)> UploadInPartsAsync(HttpClient client, byte[] content)
    {
        using var created = await client.PostAsJsonAsync("/v1/uploads",
            new { filename = "parts.bin", purpose = "assistants", bytes = content.Length, mime_type = "application/octet-stream" });
        var upload = await Wire.JsonAsync(created);
        Assert.True(created.IsSuccessStatusCode, upload.ToString());
        string uploadId = upload.Id();
        var partIds = new List<string>();
        for (int i = 0; i < Parts; i++)
        {
            using var form = new MultipartFormDataContent();
            var data = new ByteArrayContent(content, i * PartBytes, PartBytes);
            data.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(data, "data", "part.bin");
            using var sent = await client.PostAsync($"/v1/uploads/{uploadId}/parts", form);
            var part = await Wire.JsonAsync(sent);
            Assert.True(sent.IsSuccessStatusCode, part.ToString());
            partIds.Add(part.Id());
        }
        using var completed = await client.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = partIds });
        var done = await Wire.JsonAsync(completed);
        Assert.True(completed.IsSuccessStatusCode, done.ToString());
        return (done.GetProperty("file").Id(), partIds);
    }
}
