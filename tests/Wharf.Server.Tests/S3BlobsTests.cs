using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Amazon.S3;
using Amazon.S3.Model;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Tests.S3;

namespace Wharf.Server.Tests;

/// <summary>The real server keeping its blobs in S3 (<c>--Wharf:Storage:Blobs=s3</c>) on a throwaway s3rver.</summary>
public sealed class S3BlobsServerFixture : IAsyncLifetime
{
    public const string Bucket = "wharf-blobs";
    public const string Prefix = "node-tests/";

    public S3rverProcess S3 { get; private set; } = null!;

    public WharfServer Server { get; private set; } = null!;

    public string[] S3Args(string bucket = Bucket) =>
    [
        "--Wharf:Storage:Blobs=s3",
        "--Wharf:Storage:S3:ServiceUrl=" + S3.ServiceUrl,
        "--Wharf:Storage:S3:Bucket=" + bucket,
        "--Wharf:Storage:S3:AccessKey=" + S3rverProcess.AccessKey,
        "--Wharf:Storage:S3:SecretKey=" + S3rverProcess.SecretKey,
        "--Wharf:Storage:S3:ForcePathStyle=true",
        "--Wharf:Storage:S3:Prefix=" + Prefix,
    ];

    /// <summary>The bucket as the tests see it, around the server.</summary>
    public AmazonS3Client CreateS3Client() => new(
        new Amazon.Runtime.BasicAWSCredentials(S3rverProcess.AccessKey, S3rverProcess.SecretKey),
        new AmazonS3Config { ServiceURL = S3.ServiceUrl.ToString(), ForcePathStyle = true, AuthenticationRegion = "us-east-1" });

    public async Task InitializeAsync()
    {
        S3 = await S3rverProcess.StartAsync(Bucket);
        Server = await WharfServer.StartAsync(S3Args());
    }

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
        if (S3 is not null)
        {
            await S3.DisposeAsync();
        }
    }
}

public sealed class S3BlobsTests(S3BlobsServerFixture fixture) : IClassFixture<S3BlobsServerFixture>
{
    private readonly OpenAIFileClient _files = fixture.Server.CreateFileClient();

    private async Task<List<string>> BlobKeysAsync()
    {
        using var s3 = fixture.CreateS3Client();
        var listed = await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = S3BlobsServerFixture.Bucket, Prefix = S3BlobsServerFixture.Prefix });
        return (listed.S3Objects ?? []).Select(o => o.Key).ToList();
    }

    [Theory]
    [InlineData(300_000)]
    [InlineData(20 * 1024 * 1024 + 11)] // several parts of a multipart upload
    public async Task Files_round_trip_through_the_SDK_with_a_ranged_download(int length)
    {
        byte[] content = RandomNumberGenerator.GetBytes(length);
        OpenAIFile uploaded = await _files.UploadFileAsync(new MemoryStream(content), "data.bin", FileUploadPurpose.Assistants);
        Assert.Equal(length, uploaded.SizeInBytesLong);

        // The blob is in the bucket under the prefix, and nothing is left in staging.
        var keys = await BlobKeysAsync();
        Assert.Contains(S3BlobsServerFixture.Prefix + "blobs/" + uploaded.Id, keys);
        Assert.DoesNotContain(keys, k => k.StartsWith(S3BlobsServerFixture.Prefix + "staging/", StringComparison.Ordinal));

        OpenAIFileCollection listed = await _files.GetFilesAsync();
        Assert.Contains(listed, f => f.Id == uploaded.Id && f.SizeInBytesLong == length);

        BinaryData downloaded = await _files.DownloadFileAsync(uploaded.Id);
        Assert.Equal(content, downloaded.ToArray());

        using (var client = fixture.Server.CreateClient())
        {
            long from = length - 1000;
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{uploaded.Id}/content");
            request.Headers.Range = new RangeHeaderValue(from, from + 499);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal($"bytes {from}-{from + 499}/{length}", response.Content.Headers.ContentRange!.ToString());
            Assert.Equal(content.AsSpan((int)from, 500).ToArray(), await response.Content.ReadAsByteArrayAsync());
        }

        FileDeletionResult deleted = await _files.DeleteFileAsync(uploaded.Id);
        Assert.True(deleted.Deleted);
        var again = await Assert.ThrowsAsync<ClientResultException>(() => _files.DownloadFileAsync(uploaded.Id));
        Assert.Equal(404, again.Status);
        Assert.DoesNotContain(S3BlobsServerFixture.Prefix + "blobs/" + uploaded.Id, await BlobKeysAsync());
    }

    [Fact]
    public async Task An_upload_in_parts_is_served_across_its_parts()
    {
        using var client = fixture.Server.CreateClient();
        byte[][] parts = [RandomNumberGenerator.GetBytes(9 * 1024 * 1024), RandomNumberGenerator.GetBytes(300_000)];
        byte[] whole = [.. parts.SelectMany(p => p)];
        using var created = await client.PostAsJsonAsync("/v1/uploads", new { filename = "parts.bin", purpose = "assistants", bytes = whole.Length, mime_type = "application/octet-stream" });
        string uploadId = (await Wire.JsonAsync(created)).Id();
        var partIds = new List<string>();
        foreach (byte[] part in parts)
        {
            using var form = new MultipartFormDataContent { { new ByteArrayContent(part), "data", "blob" } };
            using var added = await client.PostAsync($"/v1/uploads/{uploadId}/parts", form);
            partIds.Add((await Wire.JsonAsync(added)).Id());
        }
        using var completed = await client.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = partIds });
        var upload = await Wire.JsonAsync(completed);
        Assert.Equal("completed", upload.GetProperty("status").GetString());
        string fileId = upload.GetProperty("file").Id();

        BinaryData downloaded = await _files.DownloadFileAsync(fileId);
        Assert.Equal(whole, downloaded.ToArray());
        long from = parts[0].Length - 100;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{fileId}/content");
        request.Headers.Range = new RangeHeaderValue(from, from + 199);
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(whole.AsSpan((int)from, 200).ToArray(), await response.Content.ReadAsByteArrayAsync());
        FileDeletionResult deleted = await _files.DeleteFileAsync(fileId);
        Assert.True(deleted.Deleted);
    }

    [Fact]
    public async Task An_outage_of_the_store_is_503_with_retry_after_and_the_server_recovers_by_itself()
    {
        using var client = fixture.Server.CreateClient();
        byte[] content = RandomNumberGenerator.GetBytes(100_000);
        OpenAIFile kept = await _files.UploadFileAsync(new MemoryStream(content), "kept.bin", FileUploadPurpose.Assistants);
        await fixture.S3.StopAsync();
        try
        {
            using var upload = await client.PostAsync("/v1/files", Wire.Form("assistants", RandomNumberGenerator.GetBytes(1000)));
            var error = await Wire.AssertErrorAsync(upload, 503, code: "storage_unavailable");
            Assert.Equal("server_error", error.GetProperty("type").GetString());
            Assert.NotNull(upload.Headers.RetryAfter);
            using var download = await client.GetAsync($"/v1/files/{kept.Id}/content");
            await Wire.AssertErrorAsync(download, 503, code: "storage_unavailable");
            using var ready = await client.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        }
        finally
        {
            await fixture.S3.StartAgainAsync();
        }
        // Nothing acknowledged was lost, and no restart is needed.
        Assert.Equal(content, (await _files.DownloadFileAsync(kept.Id)).Value.ToArray());
        OpenAIFile after = await _files.UploadFileAsync(new MemoryStream(content), "after.bin", FileUploadPurpose.Assistants);
        Assert.Equal(content, (await _files.DownloadFileAsync(after.Id)).Value.ToArray());
        using var readyAgain = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, readyAgain.StatusCode);
    }

    [Fact]
    public async Task Readiness_asks_the_bucket()
    {
        using var client = fixture.Server.CreateClient(key: null);
        using var response = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_bucket_that_cannot_be_reached_stops_the_start_naming_the_setting()
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            string output = await WharfServer.RunFailingStartAsync(dataDir, [], fixture.S3Args(bucket: "no-such-bucket"));
            Assert.Contains("'no-such-bucket' (Wharf:Storage:S3:Bucket)", output, StringComparison.Ordinal);
            Assert.Contains("NoSuchBucket", output, StringComparison.Ordinal);
            Assert.DoesNotContain("SecretKey=" + S3rverProcess.SecretKey, output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--Wharf:Storage:S3:Bucket=", "Wharf:Storage:S3:Bucket is required")]
    [InlineData("--Wharf:Storage:S3:ServiceUrl=not-a-url", "Wharf:Storage:S3:ServiceUrl must be an absolute http or https URL")]
    [InlineData("--Wharf:Storage:Blobs=tape", "Wharf:Storage:Blobs must be 'disk' or 's3', not 'tape'")]
    public async Task Bad_settings_stop_the_start_naming_the_setting(string arg, string expected)
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            string output = await WharfServer.RunFailingStartAsync(dataDir, [], [.. fixture.S3Args(), arg]);
            Assert.Contains(expected, output, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(dataDir))
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }
}
