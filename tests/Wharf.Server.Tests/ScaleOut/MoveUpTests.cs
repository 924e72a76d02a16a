using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Amazon.S3.Model;
using Microsoft.Data.Sqlite;
using OpenAI.Files;
using Wharf.Server.Tests.Batches;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Server.Tests.Webhooks;

namespace Wharf.Server.Tests.ScaleOut;

/// <summary>
/// <c>move-up</c>, the server binary's command, run as a process: an embedded server's workspaces, keys, files (plain,
/// with metadata, and made from an upload in parts), a finished batch and a webhook event still to deliver, moved into
/// PostgreSQL + S3 across a SIGKILL of the command, then served by a node on PostgreSQL + S3 as they were.
/// </summary>
public sealed partial class MoveUpTests
{
    private static readonly string[] NodeExtras =
    [
        "--Wharf:Providers:mock:Type=mock",
        "--Wharf:Batches:ChunkLines=3",
        "--Wharf:Batches:ChunkFlushMilliseconds=100",
        "--Wharf:Batches:PollIntervalMilliseconds=100",
        "--Wharf:Webhooks:FirstRetrySeconds=1",
        "--Wharf:Webhooks:PollIntervalMilliseconds=100",
        "--Wharf:Sweeper:IntervalSeconds=1", // a sweep queues the result files' hashing
    ];

    private static string[] MoveUp(string dataDir, ScaleOutStore store, params string[] extra) =>
        ["move-up", "--Wharf:DataDir=" + dataDir, .. store.NodeArgs, .. extra];

    [Fact]
    public async Task An_embedded_store_moved_up_is_served_by_a_node_on_PostgreSQL_and_S3_with_its_ids_bytes_keys_and_batches()
    {
        var store = await ScaleOutStore.CreateAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.DefaultStatus = 500; // the event stays in the outbox, to be delivered after the move
        await using var embedded = await WharfServer.StartAsync(NodeExtras);
        using var admin = new Admin(embedded);
        var files = embedded.CreateFileClient();

        // Tenancy: a second workspace with a webhook, a key for everything, a read-only key with its own rate limit, a
        // key revoked; a third workspace deleted.
        using var created = await admin.Client.PostAsJsonAsync("/admin/workspaces",
            new { name = "search-team", storage_quota_bytes = 1_000_000_000, rate_limit_rpm = 600, allowed_providers = new[] { "mock" }, webhook_url = receiver.Url() });
        var workspace = await Wire.JsonAsync(created);
        string workspaceId = workspace.Id();
        string webhookSecret = workspace.GetProperty("webhook_secret").GetString()!;
        var (_, teamKey) = await admin.CreateKeyAsync(workspaceId, "team");
        var (_, readerKey) = await admin.CreateKeyAsync(workspaceId, "reader", scopes: ["files:read"], rpm: 50);
        var (revokedId, revokedKey) = await admin.CreateKeyAsync(workspaceId, "revoked");
        var goneWorkspace = await admin.CreateWorkspaceAsync("gone-team");
        var (_, goneKey) = await admin.CreateKeyAsync(goneWorkspace.Id(), "gone");

        // Files: one through the SDK, one through the SDK's protocol method with metadata and a collection, one made
        // from an upload in three parts (a segmented file), one of the team's.
        byte[] plain = RandomNumberGenerator.GetBytes(4 * 1024 * 1024 + 3);
        OpenAIFile plainFile = await files.UploadFileAsync(new MemoryStream(plain), "plain.bin", FileUploadPurpose.Assistants);
        byte[] described = RandomNumberGenerator.GetBytes(2 * 1024 * 1024 + 5);
        string describedId = await UploadWithMetadataAsync(files, described);
        byte[][] parts = [RandomNumberGenerator.GetBytes(6 * 1024 * 1024), RandomNumberGenerator.GetBytes(6 * 1024 * 1024), RandomNumberGenerator.GetBytes(1024 * 1024 + 9)];
        string segmentedId;
        using (var client = embedded.CreateClient())
        {
            segmentedId = await UploadInPartsAsync(client, parts);
            await Wire.WaitForSha256Async(client, segmentedId); // may be computed after the completion, in the background
        }
        using var team = embedded.CreateClient(teamKey);
        string teamFileId = (await Wire.UploadAsync(team, "user_data", "the team's notes", "notes.txt")).Id();

        // A batch of the team on the mock provider, run to its end; its webhook event fails and waits for a retry.
        string inputId = (await Wire.UploadAsync(team, "batch", BatchKit.Lines(7, "mock/move-model"), "input.jsonl")).Id();
        string batchId = (await BatchKit.CreateAsync(team, inputId)).Id();
        var batch = await BatchKit.WaitForEndAsync(team, batchId);
        Assert.Equal("completed", batch.Status());
        Assert.Equal((7, 7, 0), batch.Counts());
        var output = await Wire.GetJsonAsync(team, $"/v1/files/{batch.GetProperty("output_file_id").GetString()}");
        string outputText = await team.GetStringAsync($"/v1/files/{output.Id()}/content");
        await Wire.WaitForSha256Async(team, output.Id()); // a result file is hashed in the background
        await WebhookKit.WaitForEventAboutAsync(receiver, batchId);

        using (var revoke = await admin.Client.DeleteAsync($"/admin/keys/{revokedId}"))
        {
            Assert.True(revoke.IsSuccessStatusCode);
        }
        using (var delete = await admin.Client.DeleteAsync($"/admin/workspaces/{goneWorkspace.Id()}"))
        {
            Assert.True(delete.IsSuccessStatusCode);
        }

        // What the embedded server shows, to be shown again by the node.
        using var defaultClient = embedded.CreateClient();
        string defaultFiles = await defaultClient.GetStringAsync("/v1/files?order=asc");
        string teamFiles = await team.GetStringAsync("/v1/files?order=asc");
        string batchJson = await team.GetStringAsync($"/v1/batches/{batchId}");
        string workspaces = await admin.Client.GetStringAsync("/admin/workspaces");
        string teamKeys = WithoutLastUse(await admin.Client.GetStringAsync($"/admin/workspaces/{workspaceId}/keys"));
        Assert.Contains(describedId, defaultFiles, StringComparison.Ordinal);

        // While the server runs, the data directory is its own.
        var refused = await WharfCommand.RunAsync(MoveUp(embedded.DataDir, store));
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("in use by another Wharf process", refused.Stderr, StringComparison.Ordinal);
        Assert.Contains("nothing was copied", refused.Stderr, StringComparison.Ordinal);

        embedded.Kill();
        int failedDeliveries = receiver.Requests.Count(r => WebhookKit.IsAbout(r, batchId));

        // Killed (SIGKILL) as soon as it reports its first blob, interrupted the same way, then run again to its end.
        using (var cut = WharfCommand.Start(MoveUp(embedded.DataDir, store, "--Wharf:MoveUp:BlobConcurrency=1")))
        {
            cut.KillAt(line => line.StartsWith("blobs ", StringComparison.Ordinal));
            Assert.NotEqual(0, await cut.WaitForExitAsync());
            Assert.Contains("rows    files: ", cut.Stdout, StringComparison.Ordinal);
            Assert.Contains("checked files: ", cut.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("Verified", cut.Stdout, StringComparison.Ordinal);
        }
        // Ctrl-C (SIGINT) stops it too, saying that a run again continues.
        using (var interrupted = WharfCommand.Start(MoveUp(embedded.DataDir, store, "--Wharf:MoveUp:BlobConcurrency=1")))
        {
            interrupted.InterruptAt(line => line.StartsWith("blobs ", StringComparison.Ordinal));
            Assert.Equal(130, await interrupted.WaitForExitAsync());
            Assert.Contains("move-up: interrupted. What was copied stays; run the same command again to continue.", interrupted.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("Verified", interrupted.Stdout, StringComparison.Ordinal);
        }
        var resumed = await WharfCommand.RunAsync(MoveUp(embedded.DataDir, store));
        Assert.True(resumed.ExitCode == 0, resumed.Stdout + "\n" + resumed.Stderr);
        var summary = Summary().Match(resumed.Stdout);
        Assert.True(summary.Success, resumed.Stdout);
        Assert.Equal("0", summary.Groups["rowsCopied"].Value); // the first run wrote every row before its first blob
        // What the cut runs sent stays (at least the blob they reported), the rest is sent now: every blob once. How many
        // the cut runs sent before the signal landed depends on the machine's speed, so only the sum is fixed.
        int blobsThere = int.Parse(summary.Groups["blobsThere"].Value);
        Assert.True(blobsThere >= 1, resumed.Stdout);
        Assert.Equal(BlobsOf(resumed.Stdout), int.Parse(summary.Groups["blobsCopied"].Value) + blobsThere);

        // A corrupted object in the bucket (same length, one byte changed) fails a run's verification, naming the blob;
        // once the object is removed, a run sends it again.
        using (var s3 = store.CreateS3Client())
        {
            byte[] corrupted = (byte[])plain.Clone();
            corrupted[1_000_000] ^= 0x40;
            await s3.PutObjectAsync(new PutObjectRequest
            {
                BucketName = ScaleOutStore.Bucket,
                Key = store.Prefix + "blobs/" + plainFile.Id,
                InputStream = new MemoryStream(corrupted),
                UseChunkEncoding = false,
            });
            var mismatch = await WharfCommand.RunAsync(MoveUp(embedded.DataDir, store));
            Assert.Equal(1, mismatch.ExitCode);
            Assert.Contains($"move-up: mismatch: blob {plainFile.Id}: the object in the bucket ({plain.Length} bytes, SHA-256 ", mismatch.Stderr, StringComparison.Ordinal);
            Assert.Contains("verification failed: 1 difference(s)", mismatch.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("Verified", mismatch.Stdout, StringComparison.Ordinal);

            await s3.DeleteObjectAsync(ScaleOutStore.Bucket, store.Prefix + "blobs/" + plainFile.Id);
        }
        var repaired = await WharfCommand.RunAsync(MoveUp(embedded.DataDir, store));
        Assert.True(repaired.ExitCode == 0, repaired.Stdout + "\n" + repaired.Stderr);
        Assert.Equal("1", Summary().Match(repaired.Stdout).Groups["blobsCopied"].Value);

        // A node on PostgreSQL + S3, with the same bootstrap and admin keys.
        receiver.DefaultStatus = 200;
        await using var node = await store.StartNodeAsync(NodeExtras);
        using var nodeAdmin = new Admin(node);
        Assert.Equal(workspaces, await nodeAdmin.Client.GetStringAsync("/admin/workspaces"));
        Assert.Equal(teamKeys, WithoutLastUse(await nodeAdmin.Client.GetStringAsync($"/admin/workspaces/{workspaceId}/keys")));
        using (var gone = await nodeAdmin.Client.GetAsync($"/admin/workspaces/{goneWorkspace.Id()}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        }

        using var nodeDefault = node.CreateClient();
        using var nodeTeam = node.CreateClient(teamKey);
        Assert.Equal(defaultFiles, await nodeDefault.GetStringAsync("/v1/files?order=asc"));
        Assert.Equal(teamFiles, await nodeTeam.GetStringAsync("/v1/files?order=asc"));
        var nodeFiles = node.CreateFileClient();
        Assert.Equal(plain, (await nodeFiles.DownloadFileAsync(plainFile.Id)).Value.ToArray());
        Assert.Equal(described, (await nodeFiles.DownloadFileAsync(describedId)).Value.ToArray());
        byte[] whole = [.. parts.SelectMany(p => p)];
        Assert.Equal(whole, (await nodeFiles.DownloadFileAsync(segmentedId)).Value.ToArray());
        foreach (long from in new long[] { parts[0].Length - 100, parts[0].Length + parts[1].Length - 1 })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{segmentedId}/content");
            request.Headers.Range = new RangeHeaderValue(from, from + 199);
            using var ranged = await nodeDefault.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, ranged.StatusCode);
            Assert.Equal(whole.AsSpan((int)from, 200).ToArray(), await ranged.Content.ReadAsByteArrayAsync());
        }
        Assert.Equal("the team's notes", await nodeTeam.GetStringAsync($"/v1/files/{teamFileId}/content"));
        Assert.Equal(batchJson, await nodeTeam.GetStringAsync($"/v1/batches/{batchId}"));
        Assert.Equal(outputText, await nodeTeam.GetStringAsync($"/v1/files/{output.Id()}/content"));

        // Keys: the revoked one and the deleted workspace's are refused; the others keep their scopes and limits.
        foreach (string refusedKey in new[] { revokedKey, goneKey })
        {
            using var client = node.CreateClient(refusedKey);
            using var response = await client.GetAsync("/v1/files");
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
        using (var reader = node.CreateClient(readerKey))
        {
            using var read = await reader.GetAsync($"/v1/files/{teamFileId}");
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("50", read.Headers.GetValues("x-ratelimit-limit-requests").Single());
            using var batches = await reader.GetAsync("/v1/batches");
            Assert.Equal(HttpStatusCode.Forbidden, batches.StatusCode);
        }

        // The webhook event left in the outbox is delivered by the node: same event id, signed with the same secret.
        var deliveries = await WebhookKit.WaitForEventAboutAsync(receiver, batchId, failedDeliveries + 1);
        var delivered = deliveries[^1];
        Assert.Equal(deliveries[0].WebhookId, delivered.WebhookId);
        Assert.True(WebhookReceiver.SignatureIsValid(delivered, webhookSecret), "the moved event is not signed with the workspace's secret");

        // New files get on with the same ids' order.
        OpenAIFile later = await nodeFiles.UploadFileAsync(BinaryData.FromString("after the move"), "later.txt", FileUploadPurpose.Assistants);
        Assert.True(string.CompareOrdinal(later.Id, plainFile.Id) > 0);
    }

    [Fact]
    public async Task Missing_or_bad_settings_stop_the_command_naming_them_and_an_unreachable_database_is_named_without_its_password()
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        try
        {
            var missing = await WharfCommand.RunAsync(["move-up", "--Wharf:DataDir=" + dataDir, "--Wharf:Storage:S3:ServiceUrl=not-a-url", "--Wharf:MoveUp:BlobConcurrency=0"]);
            Assert.Equal(2, missing.ExitCode);
            Assert.Contains("Wharf:Storage:Postgres:ConnectionString is required to move up into PostgreSQL", missing.Stderr, StringComparison.Ordinal);
            Assert.Contains("Wharf:Storage:S3:Bucket is required", missing.Stderr, StringComparison.Ordinal);
            Assert.Contains("Wharf:Storage:S3:ServiceUrl must be an absolute http or https URL", missing.Stderr, StringComparison.Ordinal);
            Assert.Contains("BlobConcurrency", missing.Stderr, StringComparison.Ordinal);
            Assert.Empty(missing.Stdout);

            var store = await ScaleOutStore.CreateAsync();
            var none = await WharfCommand.RunAsync(MoveUp(dataDir, store));
            Assert.Equal(1, none.ExitCode);
            Assert.Contains("no wharf.db", none.Stderr, StringComparison.Ordinal);

            // An empty embedded store (as a first start leaves it) and a database nothing listens for.
            using (var connection = new SqliteConnection("Data Source=" + Path.Combine(dataDir, "wharf.db") + ";Pooling=False"))
            {
                connection.Open();
            }
            int port = Wharf.Simulators.RefusedPort.Get();
            var unreachable = await WharfCommand.RunAsync(MoveUp(dataDir, store,
                $"--Wharf:Storage:Postgres:ConnectionString=Host=127.0.0.1;Port={port};Database=wharf;Username=wharf;Password=not-for-the-log;Timeout=3"));
            Assert.Equal(1, unreachable.ExitCode);
            Assert.Contains("Cannot open the PostgreSQL catalog of Wharf:Storage:Postgres:ConnectionString", unreachable.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("not-for-the-log", unreachable.Stdout + unreachable.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    /// <summary>How many blobs the run's plan counts (its line "N tables, N rows; N blobs, ...").</summary>
    private static int BlobsOf(string stdout) =>
        int.Parse(PlanBlobs().Match(stdout) is { Success: true } m ? m.Groups[1].Value.Replace(",", "") : "-1");

    [GeneratedRegex(@"^\s*[\d,]+ tables, [\d,]+ rows; ([\d,]+) blobs,", RegexOptions.Multiline)]
    private static partial Regex PlanBlobs();

    /// <summary>The verified summary's figures: rows copied by the run, blobs copied by it, and blobs found in the bucket.</summary>
    [GeneratedRegex(@"^Verified: .* rows \((?<rowsCopied>\d+) copied by this run\); .* \((?<blobsCopied>\d+) blobs, .* copied by this run, (?<blobsThere>\d+) already there\)", RegexOptions.Multiline)]
    private static partial Regex Summary();

    /// <summary>The key list without <c>last_used_at</c>, which a key's use may change on either server at any time.</summary>
    private static string WithoutLastUse(string keys)
    {
        var list = JsonNode.Parse(keys)!;
        foreach (var key in list["data"]!.AsArray())
        {
            key!.AsObject().Remove("last_used_at");
        }
        return list.ToJsonString();
    }

    /// <summary>A file with metadata and a collection, sent through the SDK's protocol method (the SDK has no parameter for them).</summary>
    private static async Task<string> UploadWithMetadataAsync(OpenAIFileClient files, byte[] content)
    {
        using var form = Wire.Form("assistants", content, "described.bin", ("metadata", """{"team":"search","stage":"ünïcode"}"""), ("collection", "nightly"));
        using var body = new MemoryStream();
        await form.CopyToAsync(body);
        body.Position = 0;
        ClientResult result = await files.UploadFileAsync(BinaryContent.Create(body), form.Headers.ContentType!.ToString(), new RequestOptions());
        using var json = JsonDocument.Parse(result.GetRawResponse().Content);
        Assert.Equal("search", json.RootElement.GetProperty("metadata").GetProperty("team").GetString());
        return json.RootElement.Id();
    }

    /// <summary>Uploads <paramref name="parts"/> through the Uploads API and completes it; returns the file's id.</summary>
    private static async Task<string> UploadInPartsAsync(HttpClient client, byte[][] parts)
    {
        using var created = await client.PostAsJsonAsync("/v1/uploads",
            new { filename = "parts.bin", purpose = "assistants", bytes = parts.Sum(p => p.Length), mime_type = "application/octet-stream" });
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
        return upload.GetProperty("file").Id();
    }
}
