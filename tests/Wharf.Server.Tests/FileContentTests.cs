using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>The file object, content streaming (ranges, ETag, Content-Disposition), get and delete, over raw HTTP.</summary>
public sealed class FileContentTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _client = fixture.Server.CreateClient();

    [Fact]
    public async Task The_file_object_has_every_key()
    {
        byte[] content = Encoding.UTF8.GetBytes("{\"a\":1}\n");
        var file = await Wire.UploadAsync(_client, "batch", "{\"a\":1}\n", "in.jsonl", ("metadata", """{"team":"search","ü":"ñ"}"""), ("collection", "nightly"));

        string[] keys = ["id", "object", "bytes", "created_at", "filename", "purpose", "status", "status_details", "expires_at", "metadata", "collection", "provider", "sha256"];
        Assert.Equal(keys.Order(), file.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal("file", file.GetProperty("object").GetString());
        Assert.Equal(content.Length, file.GetProperty("bytes").GetInt64());
        Assert.Equal("in.jsonl", file.GetProperty("filename").GetString());
        Assert.Equal("processed", file.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, file.GetProperty("status_details").ValueKind);
        Assert.Equal("search", file.GetProperty("metadata").GetProperty("team").GetString());
        Assert.Equal("ñ", file.GetProperty("metadata").GetProperty("ü").GetString());
        Assert.Equal("nightly", file.GetProperty("collection").GetString());
        Assert.Equal("local", file.GetProperty("provider").GetString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), file.GetProperty("sha256").GetString());
        long createdAt = file.GetProperty("created_at").GetInt64();
        Assert.InRange(createdAt, DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds());
        Assert.Equal(createdAt + 30 * 24 * 3600, file.GetProperty("expires_at").GetInt64()); // batch: 30 days by default

        var fetched = await Wire.GetJsonAsync(_client, $"/v1/files/{file.Id()}");
        Assert.Equal(file.ToString(), fetched.ToString());

        var plain = await Wire.UploadAsync(_client, "assistants");
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("expires_at").ValueKind);
        Assert.Empty(plain.GetProperty("metadata").EnumerateObject());
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("collection").ValueKind);
    }

    [Fact]
    public async Task Expires_after_sets_expires_at()
    {
        var file = await Wire.UploadAsync(_client, "user_data", "x", "x.txt", ("expires_after[anchor]", "created_at"), ("expires_after[seconds]", "3600"));
        Assert.Equal(file.GetProperty("created_at").GetInt64() + 3600, file.GetProperty("expires_at").GetInt64());
    }

    [Fact]
    public async Task Content_streams_with_length_type_etag_and_disposition()
    {
        byte[] content = RandomNumberGenerator.GetBytes(1_000_003);
        using var form = Wire.Form("vision", content, "photo.bin");
        using var upload = await _client.PostAsync("/v1/files", form);
        var file = await Wire.JsonAsync(upload);

        using var response = await _client.GetAsync($"/v1/files/{file.Id()}/content");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(content.Length, response.Content.Headers.ContentLength);
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal($"\"{file.GetProperty("sha256").GetString()}\"", response.Headers.ETag!.Tag);
        Assert.Contains("bytes", response.Headers.AcceptRanges);
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition!.DispositionType);
        Assert.Equal("photo.bin", response.Content.Headers.ContentDisposition.FileNameStar);
    }

    [Fact]
    public async Task A_plain_get_sends_what_the_framework_sends_for_a_whole_file()
    {
        // A plain GET is served by Wharf's own whole-content path; a GET with an If-None-Match that does not match
        // is served whole by the framework. Both answers must be the same but for the per-response headers.
        byte[] content = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 5); // more than one 1 MiB read
        using var form = Wire.Form("batch", content, "whole.jsonl");
        using var upload = await _client.PostAsync("/v1/files", form);
        string id = (await Wire.JsonAsync(upload)).Id();

        using var plain = await _client.GetAsync($"/v1/files/{id}/content");
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{id}/content");
        request.Headers.IfNoneMatch.Add(new EntityTagHeaderValue("\"not-this-one\""));
        using var framework = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.Equal(HttpStatusCode.OK, framework.StatusCode);
        Assert.Equal(content, await plain.Content.ReadAsByteArrayAsync());
        Assert.Equal(content, await framework.Content.ReadAsByteArrayAsync());
        Assert.Equal(Headers(framework), Headers(plain));
        Assert.NotNull(plain.Content.Headers.LastModified);
        Assert.NotNull(plain.Headers.ETag);

        static string[] Headers(HttpResponseMessage response) =>
        [
            .. response.Headers.Concat(response.Content.Headers)
                .Select(h => $"{h.Key.ToLowerInvariant()}: {string.Join(",", h.Value)}")
                .Where(h => !h.StartsWith("date:", StringComparison.Ordinal) && !h.StartsWith("x-request-id:", StringComparison.Ordinal))
                .Order(),
        ];
    }

    [Fact]
    public async Task A_client_that_leaves_mid_download_leaves_the_server_serving()
    {
        byte[] content = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
        using var form = Wire.Form("batch", content, "big.bin");
        using var upload = await _client.PostAsync("/v1/files", form);
        string id = (await Wire.JsonAsync(upload)).Id();

        for (int i = 0; i < 4; i++)
        {
            using var leaving = fixture.Server.CreateClient();
            using var response = await leaving.GetAsync($"/v1/files/{id}/content", HttpCompletionOption.ResponseHeadersRead);
            await using var body = await response.Content.ReadAsStreamAsync();
            byte[] some = new byte[64 * 1024];
            await body.ReadExactlyAsync(some);
            Assert.Equal(content.AsSpan(0, some.Length).ToArray(), some);
        }

        using var whole = await _client.GetAsync($"/v1/files/{id}/content");
        Assert.Equal(content, await whole.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Range_gives_206_and_if_none_match_gives_304()
    {
        byte[] content = Encoding.ASCII.GetBytes("0123456789abcdefghij");
        using var form = Wire.Form("assistants", content);
        using var upload = await _client.PostAsync("/v1/files", form);
        string id = (await Wire.JsonAsync(upload)).Id();

        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{id}/content"))
        {
            request.Headers.Range = new RangeHeaderValue(5, 9);
            using var response = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal("56789", await response.Content.ReadAsStringAsync());
            Assert.Equal("bytes 5-9/20", response.Content.Headers.ContentRange!.ToString());
        }
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{id}/content"))
        {
            request.Headers.Range = new RangeHeaderValue(null, 3);
            using var response = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal("hij", await response.Content.ReadAsStringAsync());
        }
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{id}/content"))
        {
            request.Headers.Range = new RangeHeaderValue(100, 200);
            using var response = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
        }
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{id}/content"))
        {
            using var first = await _client.GetAsync($"/v1/files/{id}/content");
            request.Headers.IfNoneMatch.Add(first.Headers.ETag!);
            using var response = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
            Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        }
    }

    [Theory]
    [InlineData("evil\"; filename=\"x.exe")]
    [InlineData("line\r\nSet-Cookie: a=b.txt")]
    [InlineData("back\\slash\u0000nul.txt")]
    [InlineData("../../etc/passwd")]
    [InlineData("%2e%2e%2fpercent.txt")]
    public async Task Hostile_filenames_are_data_and_never_break_a_header(string filename)
    {
        // Send the name RFC 5987-encoded so that any byte (CR, LF, NUL, quotes) reaches the server.
        using var form = new MultipartFormDataContent();
        var part = new ByteArrayContent("payload"u8.ToArray());
        part.Headers.ContentDisposition = new ContentDispositionHeaderValue("form-data") { Name = "\"file\"", FileNameStar = filename };
        form.Add(part);
        form.Add(new StringContent("assistants"), "purpose");
        using var upload = await _client.PostAsync("/v1/files", form);
        var file = await Wire.JsonAsync(upload);
        Assert.True(upload.IsSuccessStatusCode, file.ToString());

        string stored = file.GetProperty("filename").GetString()!;
        Assert.DoesNotContain(stored, char.IsControl);
        Assert.Equal(new string([.. filename.Where(c => !char.IsControl(c))]), stored);

        using var response = await _client.GetAsync($"/v1/files/{file.Id()}/content");
        Assert.Equal("payload", await response.Content.ReadAsStringAsync());
        var disposition = response.Content.Headers.ContentDisposition!;
        Assert.Equal(stored, disposition.FileNameStar);
        string raw = string.Join(",", response.Content.Headers.GetValues("Content-Disposition"));
        Assert.DoesNotContain('\r', raw);
        Assert.DoesNotContain('\n', raw);
        Assert.Equal(2, raw.Count(c => c == '"')); // only the quotes around the ASCII fallback
        Assert.False(response.Headers.Contains("Set-Cookie"));

        // Nothing was written outside the blob store.
        Assert.False(File.Exists(Path.Combine(fixture.Server.DataDir, "..", "etc", "passwd")));
    }

    [Fact]
    public async Task Unknown_and_malformed_ids_are_404_on_every_route()
    {
        foreach (string id in new[] { "file-0000000000000000000000", "file-nope", "abc", "..%2F..%2Fwharf.db" })
        {
            using var get = await _client.GetAsync($"/v1/files/{id}");
            var error = await Wire.AssertErrorAsync(get, 404, "id");
            Assert.StartsWith("No such File object: ", error.GetProperty("message").GetString());
            Assert.Equal(JsonValueKind.Null, error.GetProperty("code").ValueKind);
            using var content = await _client.GetAsync($"/v1/files/{id}/content");
            await Wire.AssertErrorAsync(content, 404, "id");
            using var delete = await _client.DeleteAsync($"/v1/files/{id}");
            await Wire.AssertErrorAsync(delete, 404, "id");
        }
        using var exact = await _client.GetAsync("/v1/files/file-0000000000000000000000");
        var body = await Wire.JsonAsync(exact);
        Assert.Equal("No such File object: file-0000000000000000000000", body.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", body.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Delete_answers_the_deletion_object_then_404()
    {
        var file = await Wire.UploadAsync(_client);
        using var first = await _client.DeleteAsync($"/v1/files/{file.Id()}");
        var deleted = await Wire.JsonAsync(first);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(file.Id(), deleted.GetProperty("id").GetString());
        Assert.Equal("file", deleted.GetProperty("object").GetString());
        Assert.True(deleted.GetProperty("deleted").GetBoolean());

        using var second = await _client.DeleteAsync($"/v1/files/{file.Id()}");
        await Wire.AssertErrorAsync(second, 404, "id");
        using var content = await _client.GetAsync($"/v1/files/{file.Id()}/content");
        await Wire.AssertErrorAsync(content, 404, "id");
        Assert.DoesNotContain(file.Id(), (await Wire.GetJsonAsync(_client, "/v1/files")).Ids());
    }

    [Theory]
    [InlineData("/openai/v1")]
    [InlineData("/openai")]
    public async Task Every_route_is_served_under_the_aliases(string prefix)
    {
        using var form = Wire.Form("assistants", "alias"u8.ToArray());
        using var upload = await _client.PostAsync($"{prefix}/files", form);
        string id = (await Wire.JsonAsync(upload)).Id();
        Assert.Equal(id, (await Wire.GetJsonAsync(_client, $"{prefix}/files/{id}")).Id());
        Assert.Contains(id, (await Wire.GetJsonAsync(_client, $"{prefix}/files?limit=5")).Ids());
        Assert.Equal("alias", await _client.GetStringAsync($"{prefix}/files/{id}/content"));
        using var delete = await _client.DeleteAsync($"{prefix}/files/{id}");
        Assert.True(delete.IsSuccessStatusCode);
        using var unknown = await _client.GetAsync($"{prefix}/files/{id}");
        await Wire.AssertErrorAsync(unknown, 404, "id");
    }

    [Fact]
    public async Task Every_response_carries_a_request_id_and_unknown_urls_get_the_envelope()
    {
        using var ok = await _client.GetAsync("/v1/files?limit=1");
        string first = ok.Headers.GetValues("x-request-id").Single();
        Assert.Matches("^req_[0-9a-f]{32}$", first);
        using var health = await _client.GetAsync("/healthz");
        string second = health.Headers.GetValues("x-request-id").Single();
        Assert.Matches("^req_[0-9a-f]{32}$", second);
        Assert.NotEqual(first, second);
        using var unknown = await _client.GetAsync("/v1/nothing-here");
        await Wire.AssertErrorAsync(unknown, 404);
        using var method = await _client.PutAsync("/v1/files", new StringContent("x"));
        await Wire.AssertErrorAsync(method, 405);
    }
}
