using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>Kills the real server process (SIGKILL) and checks what survived the restart.</summary>
public sealed class CrashTests
{
    [Fact]
    public async Task Killed_mid_upload_no_partial_file_is_listed_and_acknowledged_files_are_intact()
    {
        await using var server = await WharfServer.StartAsync();
        using var client = server.CreateClient();
        var acknowledged = new Dictionary<string, string>();
        for (int i = 0; i < 5; i++)
        {
            byte[] bytes = RandomNumberGenerator.GetBytes(100_000 + i);
            using var form = Wire.Form("batch", bytes, $"ack-{i}.bin");
            using var response = await client.PostAsync("/v1/files", form);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            acknowledged[(await Wire.JsonAsync(response)).Id()] = Convert.ToHexStringLower(SHA256.HashData(bytes));
        }

        // An upload that sends 8 MiB and then stalls: the server is killed while it is staging.
        using var stalled = new StalledContent(8);
        var form2 = new MultipartFormDataContent { { stalled, "file", "partial.bin" }, { new StringContent("batch"), "purpose" } };
        using var uploadClient = server.CreateClient();
        var upload = uploadClient.PostAsync("/v1/files", form2);
        await stalled.Sent.Task.WaitAsync(TimeSpan.FromSeconds(30));
        string staging = Path.Combine(server.DataDir, "blobs", ".staging");
        for (int i = 0; i < 100 && !Directory.EnumerateFiles(staging).Any(f => new FileInfo(f).Length > 0); i++)
        {
            await Task.Delay(50);
        }
        Assert.NotEmpty(Directory.GetFiles(staging));

        await server.RestartAsync();
        stalled.Stop();
        await Assert.ThrowsAnyAsync<Exception>(() => upload.WaitAsync(TimeSpan.FromSeconds(30)));

        using var after = server.CreateClient();
        var listed = await Wire.GetJsonAsync(after, "/v1/files");
        Assert.Equal(acknowledged.Keys.Order(), listed.Ids().Order());
        await AssertIntactAsync(after, listed, acknowledged);
        Assert.Empty(Directory.GetFiles(staging));
    }

    [Fact]
    public async Task Killed_during_concurrent_uploads_every_acknowledged_file_survives_whole()
    {
        await using var server = await WharfServer.StartAsync();
        var acknowledged = new ConcurrentDictionary<string, string>();
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            using var client = server.CreateClient();
            for (int i = 0; !stop.IsCancellationRequested && i < 10_000; i++)
            {
                byte[] bytes = RandomNumberGenerator.GetBytes(Random.Shared.Next(1, 512 * 1024));
                try
                {
                    using var form = Wire.Form("user_data", bytes, $"w{w}-{i}.bin");
                    using var response = await client.PostAsync("/v1/files", form, stop.Token);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        acknowledged[(await Wire.JsonAsync(response)).Id()] = Convert.ToHexStringLower(SHA256.HashData(bytes));
                    }
                }
                catch (Exception) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (HttpRequestException)
                {
                    return; // the server was killed under this request
                }
            }
        })).ToArray();

        for (int i = 0; i < 200 && acknowledged.Count < 20; i++)
        {
            await Task.Delay(50);
        }
        server.Kill();
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        Assert.True(acknowledged.Count >= 20, $"only {acknowledged.Count} uploads were acknowledged before the kill");

        await server.RestartAsync();
        using var after = server.CreateClient();
        var listed = await Wire.GetJsonAsync(after, "/v1/files");
        var listedIds = listed.Ids().ToHashSet();
        Assert.All(acknowledged.Keys, id => Assert.Contains(id, listedIds));
        // A request cut by the kill may have committed without its answer arriving: such a file must be whole too.
        await AssertIntactAsync(after, listed, acknowledged);
    }

    [Fact]
    public async Task Killed_between_parts_and_after_complete_nothing_acknowledged_is_lost()
    {
        // Every out-of-order upload gets its SHA-256 after completion: a kill can fall before that pass.
        await using var server = await WharfServer.StartAsync(DeferredHashingServerFixture.Arg);
        using var client = server.CreateClient();
        byte[][] parts = [RandomNumberGenerator.GetBytes(70_000), RandomNumberGenerator.GetBytes(50_000), RandomNumberGenerator.GetBytes(30_000)];
        using var create = await client.PostAsync("/v1/uploads", JsonContent.Create(new { filename = "resume.bin", purpose = "batch", bytes = 150_000, mime_type = "application/octet-stream" }));
        string uploadId = (await Wire.JsonAsync(create)).Id();
        var partIds = new List<string>();
        async Task AddAsync(HttpClient c, byte[] data)
        {
            using var response = await c.PostAsync($"/v1/uploads/{uploadId}/parts", new MultipartFormDataContent { { new ByteArrayContent(data), "data", "p" } });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            partIds.Add((await Wire.JsonAsync(response)).Id());
        }
        await AddAsync(client, parts[0]);
        await AddAsync(client, parts[1]);

        await server.RestartAsync();
        using var afterFirst = server.CreateClient();
        var view = await Wire.GetJsonAsync(afterFirst, $"/v1/uploads/{uploadId}");
        Assert.Equal("pending", view.GetProperty("status").GetString());
        Assert.Equal(partIds, view.GetProperty("parts").EnumerateArray().Select(p => p.Id()));
        Assert.Empty((await Wire.GetJsonAsync(afterFirst, "/v1/files")).Ids()); // nothing half-assembled is listed

        await AddAsync(afterFirst, parts[2]);
        partIds.Reverse();
        using var complete = await afterFirst.PostAsync($"/v1/uploads/{uploadId}/complete", JsonContent.Create(new { part_ids = partIds }));
        Assert.Equal(HttpStatusCode.OK, complete.StatusCode);
        string fileId = (await Wire.JsonAsync(complete)).GetProperty("file").Id();

        await server.RestartAsync();
        using var afterSecond = server.CreateClient();
        Assert.Equal([fileId], (await Wire.GetJsonAsync(afterSecond, "/v1/files")).Ids());
        byte[] whole = [.. parts[2], .. parts[1], .. parts[0]];
        Assert.Equal(whole, await afterSecond.GetByteArrayAsync($"/v1/files/{fileId}/content"));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(whole)), await Wire.WaitForSha256Async(afterSecond, fileId));
        Assert.Equal("completed", (await Wire.GetJsonAsync(afterSecond, $"/v1/uploads/{uploadId}")).GetProperty("status").GetString());
    }

    private static async Task AssertIntactAsync(HttpClient client, JsonElement list, IReadOnlyDictionary<string, string> acknowledged)
    {
        foreach (var file in list.GetProperty("data").EnumerateArray())
        {
            string id = file.Id();
            byte[] content = await client.GetByteArrayAsync($"/v1/files/{id}/content");
            string sha = Convert.ToHexStringLower(SHA256.HashData(content));
            Assert.Equal(file.GetProperty("sha256").GetString(), sha);
            Assert.Equal(file.GetProperty("bytes").GetInt64(), content.Length);
            if (acknowledged.TryGetValue(id, out string? expected))
            {
                Assert.Equal(expected, sha);
            }
        }
    }

    /// <summary>Sends <c>megabytes</c> MiB, signals, then never finishes.</summary>
    private sealed class StalledContent(int megabytes) : HttpContent
    {
        private readonly CancellationTokenSource _stop = new();

        public TaskCompletionSource Sent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Ends the stall: the body fails, so the client gives up on the request.</summary>
        public void Stop() => _stop.Cancel();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _stop.Dispose();
            }
            base.Dispose(disposing);
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            byte[] chunk = RandomNumberGenerator.GetBytes(1024 * 1024);
            for (int i = 0; i < megabytes; i++)
            {
                await stream.WriteAsync(chunk);
            }
            await stream.FlushAsync();
            Sent.TrySetResult();
            await Task.Delay(Timeout.Infinite, _stop.Token);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
