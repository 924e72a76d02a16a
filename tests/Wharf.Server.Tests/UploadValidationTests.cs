using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>Bad uploads get a clear 4xx envelope, keep nothing, and leave the server healthy.</summary>
public sealed class UploadValidationTests(SmallLimitsServerFixture fixture) : IClassFixture<SmallLimitsServerFixture>
{
    private readonly HttpClient _client = fixture.Server.CreateClient();

    private string StagingDir => Path.Combine(fixture.Server.DataDir, "blobs", ".staging");

    private async Task AssertNothingKeptAsync(string marker)
    {
        var page = await Wire.GetJsonAsync(_client, $"/v1/files?collection={marker}");
        Assert.Empty(page.Ids());
        Assert.Empty(Directory.GetFiles(StagingDir));
        using var health = await _client.GetAsync("/readyz");
        Assert.True(health.IsSuccessStatusCode);
    }

    private static string RawMultipart(string boundary, params (string Headers, string Body)[] parts)
    {
        var sb = new StringBuilder();
        foreach (var (headers, body) in parts)
        {
            sb.Append("--").Append(boundary).Append("\r\n").Append(headers).Append("\r\n\r\n").Append(body).Append("\r\n");
        }
        return sb.Append("--").Append(boundary).Append("--\r\n").ToString();
    }

    private async Task<HttpResponseMessage> PostRawAsync(string body, string contentType)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        return await _client.PostAsync("/v1/files", content);
    }

    [Theory]
    [InlineData("", "purpose", "missing_required_parameter")]
    [InlineData("nonsense", "purpose", "invalid_purpose")]
    [InlineData("batch_output", "purpose", "invalid_purpose")]
    public async Task Bad_purpose_is_400(string purpose, string param, string code)
    {
        string marker = Guid.NewGuid().ToString("N");
        using var form = Wire.Form(purpose, "x"u8.ToArray(), "x.txt", ("collection", marker));
        using var response = await _client.PostAsync("/v1/files", form);
        var error = await Wire.AssertErrorAsync(response, 400, param, code);
        if (code == "invalid_purpose")
        {
            foreach (string valid in new[] { "assistants", "batch", "fine-tune", "vision", "user_data", "evals" })
            {
                Assert.Contains(valid, error.GetProperty("message").GetString());
            }
        }
        await AssertNothingKeptAsync(marker);
    }

    [Theory]
    [InlineData("not json", "invalid_metadata")]
    [InlineData("[1,2]", "invalid_metadata")]
    [InlineData("{\"a\":1}", "invalid_metadata")]
    [InlineData("{\"a\":{\"b\":\"c\"}}", "invalid_metadata")]
    [InlineData("{\"k0\":\"v\",\"k1\":\"v\",\"k2\":\"v\",\"k3\":\"v\",\"k4\":\"v\",\"k5\":\"v\",\"k6\":\"v\",\"k7\":\"v\",\"k8\":\"v\",\"k9\":\"v\",\"k10\":\"v\",\"k11\":\"v\",\"k12\":\"v\",\"k13\":\"v\",\"k14\":\"v\",\"k15\":\"v\",\"k16\":\"v\"}", "invalid_metadata")]
    public async Task Bad_metadata_is_400(string metadata, string code)
    {
        string marker = Guid.NewGuid().ToString("N");
        using var form = Wire.Form("assistants", "x"u8.ToArray(), "x.txt", ("metadata", metadata), ("collection", marker));
        using var response = await _client.PostAsync("/v1/files", form);
        await Wire.AssertErrorAsync(response, 400, "metadata", code);
        await AssertNothingKeptAsync(marker);
    }

    [Theory]
    [InlineData("created_at", "60", "expires_after[seconds]")]
    [InlineData("created_at", "2592001", "expires_after[seconds]")]
    [InlineData("created_at", "soon", "expires_after[seconds]")]
    [InlineData("last_active_at", "3600", "expires_after[anchor]")]
    public async Task Bad_expiry_is_400(string anchor, string seconds, string param)
    {
        using var form = Wire.Form("assistants", "x"u8.ToArray(), "x.txt", ("expires_after[anchor]", anchor), ("expires_after[seconds]", seconds));
        using var response = await _client.PostAsync("/v1/files", form);
        await Wire.AssertErrorAsync(response, 400, param);
    }

    [Fact]
    public async Task Unknown_provider_is_400_naming_provider()
    {
        using var form = Wire.Form("assistants", "x"u8.ToArray(), "x.txt", ("provider", "nowhere"));
        using var response = await _client.PostAsync("/v1/files", form);
        await Wire.AssertErrorAsync(response, 400, "provider", "unknown_provider");
    }

    [Fact]
    public async Task Missing_file_is_400()
    {
        using var form = new MultipartFormDataContent { { new StringContent("assistants"), "purpose" } };
        using var response = await _client.PostAsync("/v1/files", form);
        await Wire.AssertErrorAsync(response, 400, "file");
    }

    [Fact]
    public async Task Not_multipart_is_415()
    {
        using var json = await PostRawAsync("{\"purpose\":\"assistants\"}", "application/json");
        await Wire.AssertErrorAsync(json, 415);
        using var none = await _client.PostAsync("/v1/files", new ByteArrayContent([1, 2, 3]));
        await Wire.AssertErrorAsync(none, 415);
    }

    [Fact]
    public async Task Multipart_without_boundary_is_400()
    {
        using var response = await PostRawAsync("--x\r\n\r\n", "multipart/form-data");
        await Wire.AssertErrorAsync(response, 400, code: "invalid_multipart");
    }

    [Fact]
    public async Task Truncated_multipart_is_400_and_keeps_nothing()
    {
        string body = RawMultipart("b0und",
            ("Content-Disposition: form-data; name=\"purpose\"", "assistants"),
            ("Content-Disposition: form-data; name=\"file\"; filename=\"t.txt\"", new string('z', 50_000)));
        string truncated = body[..^40]; // cut inside the file part, before the closing boundary
        using var response = await PostRawAsync(truncated, "multipart/form-data; boundary=b0und");
        await Wire.AssertErrorAsync(response, 400, code: "invalid_multipart");
        await AssertNothingKeptAsync("none");
    }

    [Fact]
    public async Task Part_without_content_disposition_is_400()
    {
        string body = RawMultipart("b0und", ("Content-Type: text/plain", "hello"));
        using var response = await PostRawAsync(body, "multipart/form-data; boundary=b0und");
        await Wire.AssertErrorAsync(response, 400, code: "invalid_multipart");
    }

    [Fact]
    public async Task Two_files_are_400()
    {
        string body = RawMultipart("b0und",
            ("Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"", "a"),
            ("Content-Disposition: form-data; name=\"file\"; filename=\"b.txt\"", "b"),
            ("Content-Disposition: form-data; name=\"purpose\"", "assistants"));
        using var response = await PostRawAsync(body, "multipart/form-data; boundary=b0und");
        await Wire.AssertErrorAsync(response, 400, "file");
        Assert.Empty(Directory.GetFiles(StagingDir));
    }

    [Fact]
    public async Task File_without_filename_is_400()
    {
        string body = RawMultipart("b0und",
            ("Content-Disposition: form-data; name=\"file\"", "a"),
            ("Content-Disposition: form-data; name=\"purpose\"", "assistants"));
        using var response = await PostRawAsync(body, "multipart/form-data; boundary=b0und");
        await Wire.AssertErrorAsync(response, 400, "file");
    }

    [Fact]
    public async Task Purpose_before_file_and_quoted_boundary_are_accepted()
    {
        string body = RawMultipart("a:b=c",
            ("Content-Disposition: form-data; name=\"purpose\"", "evals"),
            ("Content-Disposition: form-data; name=\"file\"; filename=\"e.jsonl\"\r\nContent-Type: application/jsonl", "{}"));
        using var response = await PostRawAsync(body, "multipart/form-data; boundary=\"a:b=c\"");
        var file = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, file.ToString());
        Assert.Equal("evals", file.GetProperty("purpose").GetString());
        using var content = await _client.GetAsync($"/v1/files/{file.Id()}/content");
        Assert.Equal("application/jsonl", content.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task Oversize_file_is_413_and_keeps_nothing()
    {
        string marker = Guid.NewGuid().ToString("N");
        using var form = Wire.Form("assistants", new byte[SmallLimitsServerFixture.MaxUploadBytes + 1], "big.bin", ("collection", marker));
        using var response = await _client.PostAsync("/v1/files", form);
        await Wire.AssertErrorAsync(response, 413);
        await AssertNothingKeptAsync(marker);

        using var exact = Wire.Form("assistants", new byte[SmallLimitsServerFixture.MaxUploadBytes], "exact.bin");
        using var ok = await _client.PostAsync("/v1/files", exact);
        Assert.True(ok.IsSuccessStatusCode);
    }

    [Fact]
    public async Task Body_far_over_the_limit_is_refused_by_length()
    {
        // A declared body much larger than the route's limit is refused (413) before its bytes are read.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(fixture.Server.BaseAddress.Host, fixture.Server.BaseAddress.Port);
        var stream = tcp.GetStream();
        string head = "POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + WharfServer.Key +
            "\r\nContent-Type: multipart/form-data; boundary=b0und\r\nContent-Length: 8000000000\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        using var reader = new StreamReader(stream);
        string? status = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith("HTTP/1.1 413", status);
        string rest = "";
        while (await reader.ReadLineAsync() is { } line)
        {
            rest += line + "\n";
            if (line.StartsWith('{'))
            {
                break;
            }
        }
        Assert.Contains("\"status_code\":413", rest);
        Assert.Contains("x-request-id:", rest);
    }

    [Fact]
    public async Task A_store_that_cannot_write_is_a_503_envelope_with_retry_after_and_the_server_recovers()
    {
        // Make the blob store fail: a file stands where the staging directory must be.
        Directory.Delete(StagingDir, recursive: true);
        await File.WriteAllTextAsync(StagingDir, "in the way");
        try
        {
            using var response = await _client.PostAsync("/v1/files", Wire.Form("assistants", "x"u8.ToArray()));
            var error = await Wire.AssertErrorAsync(response, 503, code: "storage_unavailable");
            Assert.Equal("server_error", error.GetProperty("type").GetString());
            Assert.NotNull(response.Headers.RetryAfter);
            using var ready = await _client.GetAsync("/readyz");
            await Wire.AssertErrorAsync(ready, 503, code: "not_ready");
        }
        finally
        {
            File.Delete(StagingDir);
            Directory.CreateDirectory(StagingDir);
        }
        using var again = await _client.PostAsync("/v1/files", Wire.Form("assistants", "x"u8.ToArray()));
        Assert.True(again.IsSuccessStatusCode);
        Assert.True((await _client.GetAsync("/readyz")).IsSuccessStatusCode);
    }

    [Fact]
    public async Task List_limits_come_from_the_options()
    {
        for (int i = 0; i < 9; i++)
        {
            await Wire.UploadAsync(_client);
        }
        var page = await Wire.GetJsonAsync(_client, "/v1/files");
        Assert.Equal(7, page.Ids().Count);
        Assert.True(page.GetProperty("has_more").GetBoolean());
        using var tooMany = await _client.GetAsync("/v1/files?limit=51");
        await Wire.AssertErrorAsync(tooMany, 400, "limit");
        int total = 0;
        string? after = null;
        while (true)
        {
            var all = await Wire.GetJsonAsync(_client, "/v1/files?limit=50" + (after is null ? "" : "&after=" + after));
            Assert.True(all.Ids().Count <= 50);
            total += all.Ids().Count;
            if (!all.GetProperty("has_more").GetBoolean())
            {
                break;
            }
            after = all.GetProperty("last_id").GetString();
        }
        Assert.True(total >= 9);
        Assert.Equal(Math.Min(50, total), (await Wire.GetJsonAsync(_client, "/v1/files?limit=50")).Ids().Count);
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_upload_leaves_nothing_and_the_server_healthy()
    {
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(fixture.Server.BaseAddress.Host, fixture.Server.BaseAddress.Port);
            var stream = tcp.GetStream();
            string head = "POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + WharfServer.Key +
                "\r\nContent-Type: multipart/form-data; boundary=b0und\r\nContent-Length: 500000\r\n\r\n" +
                "--b0und\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            await stream.WriteAsync(new byte[100_000]);
            await stream.FlushAsync();
            await Task.Delay(300);
        }
        for (int i = 0; i < 50 && Directory.GetFiles(StagingDir).Length > 0; i++)
        {
            await Task.Delay(100);
        }
        Assert.Empty(Directory.GetFiles(StagingDir));
        using var health = await _client.GetAsync("/readyz");
        Assert.True(health.IsSuccessStatusCode);
    }
}
