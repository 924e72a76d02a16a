using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>The Uploads API against the real server: the OpenAI SDK's protocol methods and raw HTTP.</summary>
public sealed class UploadsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _client = fixture.Server.CreateClient();

    private async Task<JsonElement> CreateAsync(long bytes, string purpose = "batch", string filename = "big.jsonl", HttpClient? client = null)
    {
        using var response = await (client ?? _client).PostAsJsonAsync("/v1/uploads", new { filename, purpose, bytes, mime_type = "application/jsonl" });
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json;
    }

    private async Task<HttpResponseMessage> AddPartAsync(string uploadId, byte[] data, HttpClient? client = null)
    {
        var form = new MultipartFormDataContent { { new ByteArrayContent(data), "data", "blob" } };
        return await (client ?? _client).PostAsync($"/v1/uploads/{uploadId}/parts", form);
    }

    private async Task<string> AddPartIdAsync(string uploadId, byte[] data)
    {
        using var response = await AddPartAsync(uploadId, data);
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        Assert.Equal("upload.part", json.GetProperty("object").GetString());
        Assert.Equal(uploadId, json.GetProperty("upload_id").GetString());
        return json.Id();
    }

    private Task<HttpResponseMessage> CompleteAsync(string uploadId, IEnumerable<string> partIds, string? md5 = null) =>
        _client.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", md5 is null ? new { part_ids = partIds.ToArray() } : (object)new { part_ids = partIds.ToArray(), md5 });

    [Fact]
    public async Task The_sdk_protocol_methods_create_add_complete_and_the_file_is_normal_everywhere()
    {
        var files = fixture.Server.CreateFileClient();
        byte[][] parts = [RandomNumberGenerator.GetBytes(300_000), RandomNumberGenerator.GetBytes(200_000), RandomNumberGenerator.GetBytes(7)];
        byte[] whole = [.. parts.SelectMany(p => p)];

        ClientResult created = await files.CreateUploadAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            filename = "train.jsonl", purpose = "fine-tune", bytes = whole.Length, mime_type = "application/jsonl",
        })));
        using var upload = JsonDocument.Parse(created.GetRawResponse().Content);
        string uploadId = upload.RootElement.GetProperty("id").GetString()!;
        Assert.Matches("^upload_[0-9a-f]{32}$", uploadId);
        Assert.Equal("upload", upload.RootElement.GetProperty("object").GetString());
        Assert.Equal("pending", upload.RootElement.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, upload.RootElement.GetProperty("file").ValueKind);
        Assert.Equal(upload.RootElement.GetProperty("created_at").GetInt64() + 3600, upload.RootElement.GetProperty("expires_at").GetInt64());

        var partIds = new List<string>();
        foreach (byte[] part in parts)
        {
            using var form = new MultipartFormDataContent { { new ByteArrayContent(part), "data", "part" } };
            using var body = new MemoryStream();
            await form.CopyToAsync(body);
            ClientResult added = await files.AddUploadPartAsync(uploadId, BinaryContent.Create(BinaryData.FromBytes(body.ToArray())), form.Headers.ContentType!.ToString());
            using var partJson = JsonDocument.Parse(added.GetRawResponse().Content);
            partIds.Add(partJson.RootElement.GetProperty("id").GetString()!);
        }
        Assert.All(partIds, id => Assert.Matches("^part_[0-9a-f]{32}$", id));

        ClientResult completed = await files.CompleteUploadAsync(uploadId, BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            part_ids = partIds, md5 = Convert.ToHexStringLower(MD5.HashData(whole)),
        })));
        using var done = JsonDocument.Parse(completed.GetRawResponse().Content);
        Assert.Equal("completed", done.RootElement.GetProperty("status").GetString());
        var file = done.RootElement.GetProperty("file");
        string fileId = file.GetProperty("id").GetString()!;
        Assert.Equal(whole.Length, file.GetProperty("bytes").GetInt64());
        Assert.Equal("train.jsonl", file.GetProperty("filename").GetString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(whole)), file.GetProperty("sha256").GetString());

        // A normal file: the SDK's typed methods see it, list it, download it, delete it.
        OpenAIFile typed = await files.GetFileAsync(fileId);
        Assert.Equal(whole.Length, typed.SizeInBytesLong);
        OpenAIFileCollection all = await files.GetFilesAsync();
        Assert.Contains(all, f => f.Id == fileId);
        BinaryData downloaded = await files.DownloadFileAsync(fileId);
        Assert.Equal(whole, downloaded.ToArray());

        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{fileId}/content"))
        {
            request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(299_990, 300_009); // across a part boundary
            using var ranged = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, ranged.StatusCode);
            Assert.Equal(whole[299_990..300_010], await ranged.Content.ReadAsByteArrayAsync());
        }

        FileDeletionResult deleted = await files.DeleteFileAsync(fileId);
        Assert.True(deleted.Deleted);
        string blobs = Path.Combine(fixture.Server.DataDir, "blobs");
        Assert.All(partIds, id => Assert.False(File.Exists(Path.Combine(blobs, id[^2..], id)), "segment blob removed with its file"));
    }

    /// <summary>
    /// Wharf's extensions of an upload, sent through the SDK's protocol method: echoed on the upload, given to the file
    /// complete makes, which the metadata and collection filters then list as one uploaded with them.
    /// </summary>
    [Fact]
    public async Task Metadata_and_collection_sent_with_the_sdk_are_echoed_and_the_completed_file_is_listed_by_them()
    {
        var files = fixture.Server.CreateFileClient();
        string collection = "evals-" + Guid.NewGuid().ToString("N")[..8];
        byte[] content = RandomNumberGenerator.GetBytes(1000);
        ClientResult created = await files.CreateUploadAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            filename = "train.jsonl", purpose = "batch", bytes = content.Length, mime_type = "application/jsonl",
            metadata = new Dictionary<string, string> { ["team"] = "r\u00e9search", ["run"] = collection },
            collection,
        })));
        using var upload = JsonDocument.Parse(created.GetRawResponse().Content);
        var root = upload.RootElement;
        Assert.Equal("r\u00e9search", root.GetProperty("metadata").GetProperty("team").GetString());
        Assert.Equal(collection, root.GetProperty("collection").GetString());
        Assert.Equal("local", root.GetProperty("provider").GetString());
        string uploadId = root.GetProperty("id").GetString()!;
        var read = await Wire.GetJsonAsync(_client, $"/v1/uploads/{uploadId}");
        Assert.Equal(collection, read.GetProperty("metadata").GetProperty("run").GetString());

        string partId = await AddPartIdAsync(uploadId, content);
        using var response = await CompleteAsync(uploadId, [partId]);
        var done = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, done.ToString());
        var file = done.GetProperty("file");
        string fileId = file.Id();
        Assert.Equal(collection, file.GetProperty("collection").GetString());
        Assert.Equal("r\u00e9search", file.GetProperty("metadata").GetProperty("team").GetString());
        Assert.Equal(collection, done.GetProperty("collection").GetString());

        Assert.Equal([fileId], (await Wire.GetJsonAsync(_client, "/v1/files?collection=" + collection)).Ids());
        Assert.Equal([fileId], (await Wire.GetJsonAsync(_client, "/v1/files?metadata.run=" + collection + "&metadata.team=r%C3%A9search")).Ids());
        OpenAIFile typed = await files.GetFileAsync(fileId);
        Assert.Equal(content.Length, typed.SizeInBytesLong);
    }

    [Theory]
    [InlineData("{\"metadata\": \"{}\"}", "metadata", "invalid_metadata")]
    [InlineData("{\"metadata\": {\"k\": 1}}", "metadata", "invalid_metadata")]
    [InlineData("{\"metadata\": [\"k\"]}", "metadata", "invalid_metadata")]
    [InlineData("{\"collection\": \"\"}", "collection", "invalid_collection")]
    [InlineData("{\"collection\": 7}", "collection", "invalid_type")]
    [InlineData("{\"provider\": \"nowhere\"}", "provider", "unknown_provider")]
    public async Task A_bad_metadata_collection_or_provider_is_a_400_naming_it(string extension, string param, string code)
    {
        var body = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(extension)!;
        body["filename"] = JsonSerializer.SerializeToElement("a.jsonl");
        body["purpose"] = JsonSerializer.SerializeToElement("batch");
        body["bytes"] = JsonSerializer.SerializeToElement(10);
        body["mime_type"] = JsonSerializer.SerializeToElement("application/jsonl");
        using var response = await _client.PostAsJsonAsync("/v1/uploads", body);
        await Wire.AssertErrorAsync(response, 400, param, code);
    }

    [Fact]
    public async Task Seventeen_metadata_keys_are_refused_as_for_files()
    {
        var metadata = Enumerable.Range(0, 17).ToDictionary(i => "k" + i, i => "v");
        using var response = await _client.PostAsJsonAsync("/v1/uploads", new { filename = "a.jsonl", purpose = "batch", bytes = 1, mime_type = "text/plain", metadata });
        await Wire.AssertErrorAsync(response, 400, "metadata", "invalid_metadata");
        using var files = await _client.PostAsync("/v1/files", Wire.Form("batch", "{}"u8.ToArray(), "a.jsonl", ("metadata", JsonSerializer.Serialize(metadata))));
        await Wire.AssertErrorAsync(files, 400, "metadata", "invalid_metadata");
    }

    [Fact]
    public async Task Parts_sent_in_parallel_and_out_of_order_assemble_in_the_listed_order()
    {
        byte[][] chunks = [.. Enumerable.Range(0, 8).Select(_ => RandomNumberGenerator.GetBytes(150_000))];
        string uploadId = (await CreateAsync(chunks.Sum(c => c.Length))).Id();
        var ids = new string[chunks.Length];
        await Task.WhenAll(Enumerable.Range(0, chunks.Length).Reverse().Select(async i => ids[i] = await AddPartIdAsync(uploadId, chunks[i])));

        using var response = await CompleteAsync(uploadId, ids);
        var upload = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, upload.ToString());
        string fileId = upload.GetProperty("file").Id();
        Assert.Equal(chunks.SelectMany(c => c).ToArray(), await _client.GetByteArrayAsync($"/v1/files/{fileId}/content"));
        // Small enough (1.2 MB) to be hashed at completion when the parts were not hashed in order while they streamed.
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(chunks.SelectMany(c => c).ToArray())), upload.GetProperty("file").GetProperty("sha256").GetString());
        Assert.Equal(30 * 24 * 3600, upload.GetProperty("file").GetProperty("expires_at").GetInt64() - upload.GetProperty("file").GetProperty("created_at").GetInt64());
    }

    [Fact]
    public async Task A_wrong_size_or_md5_is_400_and_the_upload_stays_pending()
    {
        byte[] a = RandomNumberGenerator.GetBytes(1000), b = RandomNumberGenerator.GetBytes(500);
        string uploadId = (await CreateAsync(1500)).Id();
        string pa = await AddPartIdAsync(uploadId, a), pb = await AddPartIdAsync(uploadId, b);

        using (var shortBy = await CompleteAsync(uploadId, [pa]))
        {
            var error = await Wire.AssertErrorAsync(shortBy, 400, "part_ids", "size_mismatch");
            Assert.Contains("1000", error.GetProperty("message").GetString());
        }
        using (var badMd5 = await CompleteAsync(uploadId, [pa, pb], new string('0', 32)))
        {
            await Wire.AssertErrorAsync(badMd5, 400, "md5", "md5_mismatch");
        }
        using (var unknown = await CompleteAsync(uploadId, [pa, "part_00000000000000000000000000000000"]))
        {
            await Wire.AssertErrorAsync(unknown, 400, "part_ids", "unknown_part");
        }
        var view = await Wire.GetJsonAsync(_client, $"/v1/uploads/{uploadId}");
        Assert.Equal("pending", view.GetProperty("status").GetString());

        byte[] expected = [.. b, .. a];
        using var ok = await CompleteAsync(uploadId, [pb, pa], Convert.ToHexStringLower(MD5.HashData(expected)));
        var done = await Wire.JsonAsync(ok);
        Assert.True(ok.IsSuccessStatusCode, done.ToString());
        Assert.Equal(expected, await _client.GetByteArrayAsync($"/v1/files/{done.GetProperty("file").Id()}/content"));
    }

    [Fact]
    public async Task Nothing_is_accepted_after_complete_or_cancel()
    {
        string completedId = (await CreateAsync(3)).Id();
        string part = await AddPartIdAsync(completedId, [1, 2, 3]);
        Assert.True((await CompleteAsync(completedId, [part])).IsSuccessStatusCode);
        await Wire.AssertErrorAsync(await AddPartAsync(completedId, [4]), 400, code: "upload_already_completed");
        await Wire.AssertErrorAsync(await CompleteAsync(completedId, [part]), 400, code: "upload_already_completed");
        await Wire.AssertErrorAsync(await _client.PostAsync($"/v1/uploads/{completedId}/cancel", null), 400, code: "upload_already_completed");

        string cancelledId = (await CreateAsync(10)).Id();
        string cancelledPart = await AddPartIdAsync(cancelledId, [9, 9]);
        using (var cancel = await _client.PostAsync($"/v1/uploads/{cancelledId}/cancel", null))
        {
            var json = await Wire.JsonAsync(cancel);
            Assert.Equal("cancelled", json.GetProperty("status").GetString());
        }
        string blobs = Path.Combine(fixture.Server.DataDir, "blobs");
        Assert.False(File.Exists(Path.Combine(blobs, cancelledPart[^2..], cancelledPart)));
        await Wire.AssertErrorAsync(await AddPartAsync(cancelledId, [1]), 400, code: "upload_already_cancelled");
        await Wire.AssertErrorAsync(await CompleteAsync(cancelledId, [cancelledPart]), 400, code: "upload_already_cancelled");
    }

    [Fact]
    public async Task Get_lists_the_parts_received_so_far_so_a_client_can_resume()
    {
        string uploadId = (await CreateAsync(30)).Id();
        string first = await AddPartIdAsync(uploadId, new byte[10]);
        string second = await AddPartIdAsync(uploadId, new byte[10]);
        var view = await Wire.GetJsonAsync(_client, $"/v1/uploads/{uploadId}");
        var parts = view.GetProperty("parts").EnumerateArray().ToList();
        Assert.Equal([first, second], parts.Select(p => p.Id()));
        Assert.All(parts, p => Assert.Equal(10, p.GetProperty("bytes").GetInt64()));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(new byte[10])), parts[0].GetProperty("sha256").GetString());

        // Resume: only the missing part is sent.
        string third = await AddPartIdAsync(uploadId, new byte[10]);
        Assert.True((await CompleteAsync(uploadId, [first, second, third])).IsSuccessStatusCode);
    }

    [Theory]
    [InlineData("{\"purpose\":\"batch\",\"bytes\":1,\"mime_type\":\"text/plain\"}", "filename")]
    [InlineData("{\"filename\":\"a\",\"bytes\":1,\"mime_type\":\"text/plain\"}", "purpose")]
    [InlineData("{\"filename\":\"a\",\"purpose\":\"nope\",\"bytes\":1,\"mime_type\":\"text/plain\"}", "purpose")]
    [InlineData("{\"filename\":\"a\",\"purpose\":\"batch\",\"mime_type\":\"text/plain\"}", "bytes")]
    [InlineData("{\"filename\":\"a\",\"purpose\":\"batch\",\"bytes\":8589934593,\"mime_type\":\"text/plain\"}", "bytes")]
    [InlineData("{\"filename\":\"a\",\"purpose\":\"batch\",\"bytes\":-1,\"mime_type\":\"text/plain\"}", "bytes")]
    [InlineData("{\"filename\":\"a\",\"purpose\":\"batch\",\"bytes\":1}", "mime_type")]
    [InlineData("{\"filename\":\"a\",\"purpose\":\"batch\",\"bytes\":1,\"mime_type\":\"t\",\"expires_after\":{\"anchor\":\"created_at\",\"seconds\":5}}", "expires_after[seconds]")]
    [InlineData("not json", "body")]
    public async Task Bad_create_requests_are_400(string body, string param)
    {
        using var response = await _client.PostAsync("/v1/uploads", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        await Wire.AssertErrorAsync(response, 400, param);
    }

    [Fact]
    public async Task Unknown_and_other_workspaces_uploads_are_404()
    {
        using var admin = new Admin(fixture.Server);
        var (_, other) = await admin.NewTenantAsync("other-uploads");
        string theirs = (await CreateAsync(5, client: other)).Id();
        foreach (string id in new[] { theirs, "upload_00000000000000000000000000000000", "nope" })
        {
            var error = await Wire.AssertErrorAsync(await _client.GetAsync($"/v1/uploads/{id}"), 404, "id");
            Assert.Equal($"No such Upload object: {id}", error.GetProperty("message").GetString());
            await Wire.AssertErrorAsync(await AddPartAsync(id, [1]), 404, "id");
            await Wire.AssertErrorAsync(await CompleteAsync(id, []), 404, "id");
            await Wire.AssertErrorAsync(await _client.PostAsync($"/v1/uploads/{id}/cancel", null), 404, "id");
        }
        Assert.Equal("pending", (await Wire.GetJsonAsync(other, $"/v1/uploads/{theirs}")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_part_over_64_MiB_is_413_and_keeps_nothing()
    {
        string uploadId = (await CreateAsync(100L * 1024 * 1024)).Id();
        var form = new MultipartFormDataContent { { new StreamContent(new ZeroStream(64L * 1024 * 1024 + 1)), "data", "big" } };
        using var response = await _client.PostAsync($"/v1/uploads/{uploadId}/parts", form);
        await Wire.AssertErrorAsync(response, 413);
        Assert.Empty(Directory.GetFiles(Path.Combine(fixture.Server.DataDir, "blobs", ".staging")));
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/uploads/{uploadId}")).GetProperty("parts").EnumerateArray());
    }

    [Fact]
    public async Task A_part_whose_connection_drops_leaves_nothing_and_can_be_sent_again()
    {
        string uploadId = (await CreateAsync(200_000)).Id();
        using (var cts = new CancellationTokenSource())
        {
            var stalled = new MultipartFormDataContent { { new StreamContent(new ZeroStream(200_000, holdAt: 100_000)), "data", "cut" } };
            var send = _client.PostAsync($"/v1/uploads/{uploadId}/parts", stalled, cts.Token);
            await Task.Delay(300);
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => send);
        }
        string staging = Path.Combine(fixture.Server.DataDir, "blobs", ".staging");
        for (int i = 0; i < 50 && Directory.GetFiles(staging).Length > 0; i++)
        {
            await Task.Delay(100);
        }
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/uploads/{uploadId}")).GetProperty("parts").EnumerateArray());
        string part = await AddPartIdAsync(uploadId, new byte[200_000]);
        Assert.True((await CompleteAsync(uploadId, [part])).IsSuccessStatusCode);
    }
}

/// <summary>Uploads completed from out-of-order parts on a server that computes their SHA-256 after completion.</summary>
public sealed class DeferredHashTests(DeferredHashingServerFixture fixture) : IClassFixture<DeferredHashingServerFixture>
{
    private readonly HttpClient _client = fixture.Server.CreateClient();

    [Fact]
    public async Task Completing_out_of_order_parts_returns_at_once_and_the_sha256_follows()
    {
        byte[][] chunks = [.. Enumerable.Range(0, 6).Select(_ => RandomNumberGenerator.GetBytes(200_000))];
        byte[] whole = [.. chunks.SelectMany(c => c)];
        string expected = Convert.ToHexStringLower(SHA256.HashData(whole));
        using var create = await _client.PostAsJsonAsync("/v1/uploads", new { filename = "d.bin", purpose = "batch", bytes = whole.Length, mime_type = "application/octet-stream" });
        string uploadId = (await Wire.JsonAsync(create)).Id();
        var ids = new string[chunks.Length];
        // Sent last to first: the running hash cannot follow the listed order.
        for (int i = chunks.Length - 1; i >= 0; i--)
        {
            using var part = await _client.PostAsync($"/v1/uploads/{uploadId}/parts", new MultipartFormDataContent { { new ByteArrayContent(chunks[i]), "data", "p" } });
            ids[i] = (await Wire.JsonAsync(part)).Id();
        }

        using var complete = await _client.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = ids });
        var upload = await Wire.JsonAsync(complete);
        Assert.Equal(HttpStatusCode.OK, complete.StatusCode);
        var file = upload.GetProperty("file");
        string fileId = file.Id();
        Assert.Equal(JsonValueKind.Null, file.GetProperty("sha256").ValueKind);
        Assert.Equal("processed", file.GetProperty("status").GetString());
        // Served at once, whole, whether or not the SHA-256 is known yet.
        Assert.Equal(whole, await _client.GetByteArrayAsync($"/v1/files/{fileId}/content"));

        Assert.Equal(expected, await Wire.WaitForSha256Async(_client, fileId));
        using var content = await _client.GetAsync($"/v1/files/{fileId}/content");
        Assert.Equal($"\"{expected}\"", content.Headers.ETag?.Tag);
        Assert.Contains(fileId, (await Wire.GetJsonAsync(_client, "/v1/files?purpose=batch")).Ids());
        using var cached = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{fileId}/content");
        cached.Headers.IfNoneMatch.Add(new System.Net.Http.Headers.EntityTagHeaderValue($"\"{expected}\""));
        using var notModified = await _client.SendAsync(cached);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
    }

    [Fact]
    public async Task An_md5_is_still_checked_at_completion()
    {
        byte[] a = RandomNumberGenerator.GetBytes(1000), b = RandomNumberGenerator.GetBytes(2000);
        using var create = await _client.PostAsJsonAsync("/v1/uploads", new { filename = "m.bin", purpose = "batch", bytes = 3000, mime_type = "application/octet-stream" });
        string uploadId = (await Wire.JsonAsync(create)).Id();
        var ids = new List<string>();
        foreach (byte[] data in new[] { b, a })
        {
            using var part = await _client.PostAsync($"/v1/uploads/{uploadId}/parts", new MultipartFormDataContent { { new ByteArrayContent(data), "data", "p" } });
            ids.Add((await Wire.JsonAsync(part)).Id());
        }
        ids.Reverse();
#pragma warning disable CA5351 // the API's own checksum
        string md5 = Convert.ToHexStringLower(MD5.HashData([.. a, .. b]));
#pragma warning restore CA5351
        using var wrong = await _client.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = ids, md5 = new string('0', 32) });
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        Assert.Equal("md5_mismatch", (await Wire.JsonAsync(wrong)).GetProperty("error").GetProperty("code").GetString());

        using var complete = await _client.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = ids, md5 });
        var file = (await Wire.JsonAsync(complete)).GetProperty("file");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData([.. a, .. b])), file.GetProperty("sha256").GetString());
    }
}
