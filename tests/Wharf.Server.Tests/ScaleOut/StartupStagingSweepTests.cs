using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Amazon.S3.Model;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.ScaleOut;

/// <summary>
/// A node starting on a shared bucket sweeps the staging area, where other nodes' uploads are staged: it leaves what
/// may be one in flight (younger than the orphan grace) and removes what is older.
/// </summary>
public sealed class StartupStagingSweepTests
{
    private const string SweptLine = "partial upload(s) staged before";

    private static async Task<List<string>> StagedKeysAsync(ScaleOutStore store)
    {
        using var s3 = store.CreateS3Client();
        var listed = await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = ScaleOutStore.Bucket, Prefix = store.Prefix + "staging/" });
        return (listed.S3Objects ?? []).Select(o => o.Key).ToList();
    }

    [Fact]
    public async Task A_node_starting_while_another_streams_an_upload_leaves_it_and_the_upload_completes_intact()
    {
        var store = await ScaleOutStore.CreateAsync();
        await using var a = await store.StartNodeAsync();
        byte[] content = RandomNumberGenerator.GetBytes(9 * 1024 * 1024 + 5);
        // The file's bytes go first and are staged in the bucket; the form's last field waits until released, so
        // node A holds the staged object, not yet committed, while node B starts.
        var purpose = new HeldContent("assistants");
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "file", "slow.bin");
        form.Add(purpose, "purpose");
        using var onA = a.CreateClient();
        var upload = onA.PostAsync("/v1/files", form);

        var clock = Stopwatch.StartNew();
        List<string> staged = [];
        while (staged.Count == 0 && clock.Elapsed < TimeSpan.FromSeconds(60) && !upload.IsCompleted)
        {
            staged = await StagedKeysAsync(store);
            await Task.Delay(50);
        }
        string stagedKey = Assert.Single(staged);
        await Task.Delay(1100); // written a whole second before node B starts

        await using var b = await store.StartNodeAsync();
        Assert.Equal([stagedKey], await StagedKeysAsync(store));
        Assert.DoesNotContain(SweptLine, b.Output, StringComparison.Ordinal);

        purpose.Release();
        using var response = await upload.WaitAsync(TimeSpan.FromSeconds(60));
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        string fileId = json.Id();
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), json.GetProperty("sha256").GetString());
        Assert.Empty(await StagedKeysAsync(store));
        foreach (var node in new[] { a, b })
        {
            using var client = node.CreateClient();
            using var downloaded = await client.GetAsync($"/v1/files/{fileId}/content");
            Assert.Equal(HttpStatusCode.OK, downloaded.StatusCode);
            Assert.Equal(content, await downloaded.Content.ReadAsByteArrayAsync());
        }
    }

    [Fact]
    public async Task A_node_starting_on_a_shared_bucket_removes_staged_objects_older_than_the_orphan_grace()
    {
        var store = await ScaleOutStore.CreateAsync();
        string abandoned = store.Prefix + "staging/" + Guid.NewGuid().ToString("N");
        using (var s3 = store.CreateS3Client())
        {
            await s3.PutObjectAsync(new PutObjectRequest { BucketName = ScaleOutStore.Bucket, Key = abandoned, ContentBody = "left by a crash" });
        }
        await Task.Delay(2500);

        await using var node = await store.StartNodeAsync("--Wharf:Sweeper:OrphanGraceSeconds=1");
        Assert.DoesNotContain(abandoned, await StagedKeysAsync(store));
        // The start-up sweep removed it (not the periodic one, which logs otherwise).
        Assert.Contains("Removed 1 " + SweptLine, node.Output, StringComparison.Ordinal);
    }

    /// <summary>A form field whose value is sent only once released.</summary>
    private sealed class HeldContent(string value) : HttpContent
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly byte[] _bytes = Encoding.UTF8.GetBytes(value);

        public void Release() => _released.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.FlushAsync();
            await _released.Task;
            await stream.WriteAsync(_bytes);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _bytes.Length;
            return true;
        }
    }
}
