using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>
/// What a request body may hold and how it may arrive: text that is not valid Unicode, a body that arrives too
/// slowly, an epilogue after the closing boundary and a form whose text fields are too large each get a clear
/// answer naming what happened, never a 500 or a message about something else.
/// </summary>
public sealed class RequestBodyTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private const string Boundary = "b0und";

    /// <summary>A JSON escape of an unpaired surrogate: valid JSON grammar, not valid text.</summary>
    private const string Surrogate = "\\ud800";

    private readonly HttpClient _client = fixture.Server.CreateClient();
    private readonly Admin _admin = new(fixture.Server);

    public void Dispose()
    {
        _client.Dispose();
        _admin.Dispose();
    }

    /// <summary>A text that is not valid: the JSON escape of an unpaired surrogate, or a raw byte that is not UTF-8.</summary>
    public enum BadText
    {
        SurrogateEscape,
        InvalidUtf8,
    }

    /// <summary>JSON text (as UTF-8 bytes) where <c>{BAD}</c> is replaced by the bad text.</summary>
    private static byte[] JsonWith(string template, BadText bad)
    {
        string[] halves = template.Split("{BAD}");
        Assert.Equal(2, halves.Length);
        byte[] middle = bad == BadText.SurrogateEscape ? Encoding.ASCII.GetBytes(Surrogate) : [(byte)'a', 0xFF, (byte)'b'];
        return [.. Encoding.UTF8.GetBytes(halves[0]), .. middle, .. Encoding.UTF8.GetBytes(halves[1])];
    }

    private static ByteArrayContent JsonContentOf(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    /// <summary>A multipart body of raw parts (headers and body as bytes), closed by the final boundary.</summary>
    private static byte[] Multipart(params (string Headers, byte[] Body)[] parts)
    {
        var body = new List<byte>();
        foreach (var (headers, content) in parts)
        {
            body.AddRange(Encoding.UTF8.GetBytes($"--{Boundary}\r\n{headers}\r\n\r\n"));
            body.AddRange(content);
            body.AddRange("\r\n"u8.ToArray());
        }
        body.AddRange(Encoding.ASCII.GetBytes($"--{Boundary}--\r\n"));
        return [.. body];
    }

    private static (string, byte[]) FilePart(byte[] content, string name = "file") =>
        ($"Content-Disposition: form-data; name=\"{name}\"; filename=\"f.txt\"\r\nContent-Type: text/plain", content);

    private static (string, byte[]) Field(string name, byte[] value) => ($"Content-Disposition: form-data; name=\"{name}\"", value);

    private static (string, byte[]) Field(string name, string value) => Field(name, Encoding.UTF8.GetBytes(value));

    private async Task<HttpResponseMessage> PostMultipartAsync(string path, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", $"multipart/form-data; boundary={Boundary}");
        return await _client.PostAsync(path, content);
    }

    private async Task<string> CreateUploadAsync(long bytes)
    {
        using var response = await _client.PostAsJsonAsync("/v1/uploads", new { filename = "u.bin", purpose = "batch", bytes, mime_type = "application/octet-stream" });
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json.Id();
    }

    // Defect 1: text that is not valid Unicode inside a JSON string was a 500 on every path that reads JSON.

    [Theory]
    [InlineData(BadText.SurrogateEscape)]
    [InlineData(BadText.InvalidUtf8)]
    public async Task Bad_text_in_the_metadata_field_is_400_naming_metadata(BadText bad)
    {
        string marker = Guid.NewGuid().ToString("N");
        byte[] body = Multipart(
            FilePart("hello"u8.ToArray()),
            Field("purpose", "assistants"),
            Field("collection", marker),
            Field("metadata", JsonWith("{\"k\":\"{BAD}\"}", bad)));
        using var response = await PostMultipartAsync("/v1/files", body);
        await Wire.AssertErrorAsync(response, 400, "metadata");
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/files?collection={marker}")).Ids());
    }

    [Theory]
    [InlineData(BadText.SurrogateEscape)]
    [InlineData(BadText.InvalidUtf8)]
    public async Task Bad_text_in_an_upload_create_is_400_naming_the_property(BadText bad)
    {
        byte[] body = JsonWith("{\"filename\":\"{BAD}\",\"purpose\":\"batch\",\"bytes\":1,\"mime_type\":\"text/plain\"}", bad);
        using var response = await _client.PostAsync("/v1/uploads", JsonContentOf(body));
        await Wire.AssertErrorAsync(response, 400, "filename", "invalid_json");
    }

    [Theory]
    [InlineData(BadText.SurrogateEscape)]
    [InlineData(BadText.InvalidUtf8)]
    public async Task Bad_text_in_an_upload_complete_is_400_naming_the_element(BadText bad)
    {
        string uploadId = await CreateUploadAsync(1);
        using var response = await _client.PostAsync($"/v1/uploads/{uploadId}/complete", JsonContentOf(JsonWith("{\"part_ids\":[\"{BAD}\"]}", bad)));
        await Wire.AssertErrorAsync(response, 400, "part_ids[0]", "invalid_json");
        var upload = await Wire.GetJsonAsync(_client, $"/v1/uploads/{uploadId}");
        Assert.Equal("pending", upload.GetProperty("status").GetString());
    }

    [Theory]
    [InlineData(BadText.SurrogateEscape)]
    [InlineData(BadText.InvalidUtf8)]
    public async Task Bad_text_in_a_workspace_create_is_400_naming_the_property(BadText bad)
    {
        using var response = await _admin.Client.PostAsync("/admin/workspaces", JsonContentOf(JsonWith("{\"name\":\"{BAD}\"}", bad)));
        await Wire.AssertErrorAsync(response, 400, "name", "invalid_json");
    }

    [Theory]
    [InlineData(BadText.SurrogateEscape)]
    [InlineData(BadText.InvalidUtf8)]
    public async Task Bad_text_in_a_workspace_patch_is_400_naming_the_property(BadText bad)
    {
        var workspace = await _admin.CreateWorkspaceAsync("patch-" + bad);
        string id = workspace.Id();
        using var response = await _admin.Client.PatchAsync($"/admin/workspaces/{id}", JsonContentOf(JsonWith("{\"name\":\"{BAD}\"}", bad)));
        await Wire.AssertErrorAsync(response, 400, "name", "invalid_json");
        Assert.Equal("patch-" + bad, (await _admin.GetWorkspaceAsync(id)).GetProperty("name").GetString());
    }

    [Theory]
    [InlineData(BadText.SurrogateEscape)]
    [InlineData(BadText.InvalidUtf8)]
    public async Task Bad_text_in_a_key_create_is_400_naming_the_element(BadText bad)
    {
        string id = (await _admin.CreateWorkspaceAsync("keys-" + bad)).Id();
        using var response = await _admin.Client.PostAsync($"/admin/workspaces/{id}/keys", JsonContentOf(JsonWith("{\"name\":\"k\",\"scopes\":[\"files:read\",\"{BAD}\"]}", bad)));
        await Wire.AssertErrorAsync(response, 400, "scopes[1]", "invalid_json");
        Assert.Empty((await Wire.GetJsonAsync(_admin.Client, $"/admin/workspaces/{id}/keys")).Ids());
    }

    [Fact]
    public async Task Bad_text_anywhere_in_a_JSON_body_is_refused_even_where_it_is_not_read()
    {
        // Checked once on read, property names too: no later field access can meet it.
        using var unknown = await _client.PostAsync("/v1/uploads", JsonContentOf(JsonWith(
            "{\"filename\":\"a\",\"purpose\":\"batch\",\"bytes\":1,\"mime_type\":\"text/plain\",\"extra\":{\"deep\":\"{BAD}\"}}", BadText.SurrogateEscape)));
        await Wire.AssertErrorAsync(unknown, 400, "extra[deep]", "invalid_json");
        using var name = await _client.PostAsync("/v1/uploads", JsonContentOf(JsonWith("{\"{BAD}\":1}", BadText.InvalidUtf8)));
        await Wire.AssertErrorAsync(name, 400, "body", "invalid_json");
    }

    // Defect 12: each failure to read a multipart body says what happened.

    [Fact]
    public async Task Invalid_UTF8_in_a_form_field_is_400_naming_the_field()
    {
        byte[] body = Multipart(FilePart("hello"u8.ToArray()), Field("purpose", "assistants"), Field("collection", [0x61, 0xC3, 0x28]));
        using var response = await PostMultipartAsync("/v1/files", body);
        var error = await Wire.AssertErrorAsync(response, 400, "collection", "invalid_utf8");
        Assert.Contains("UTF-8", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_body_that_arrives_too_slowly_is_408_on_multipart_and_JSON_endpoints_alike()
    {
        // Headers and the first bytes of a body, then silence: the server's minimum data rate ends the wait.
        var multipart = StallAsync("/v1/files", $"multipart/form-data; boundary={Boundary}",
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassis");
        var filePart = StallAsync("/v1/files", $"multipart/form-data; boundary={Boundary}",
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n\r\nsome bytes");
        var json = StallAsync("/v1/uploads", "application/json", "{\"filename\":");
        foreach (string answer in await Task.WhenAll(multipart, filePart, json))
        {
            Assert.StartsWith("HTTP/1.1 408", answer);
            Assert.Contains("\"code\":\"request_timeout\"", answer);
            Assert.Contains("\"status_code\":408", answer);
        }
        Assert.Empty(Directory.GetFiles(Path.Combine(fixture.Server.DataDir, "blobs", ".staging")));
    }

    /// <summary>Sends a request's headers and the start of its body, then waits (at most a minute) for the whole answer.</summary>
    private async Task<string> StallAsync(string path, string contentType, string start)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(fixture.Server.BaseAddress.Host, fixture.Server.BaseAddress.Port);
        var stream = tcp.GetStream();
        string head = $"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WharfServer.Key}\r\n" +
            $"Content-Type: {contentType}\r\nContent-Length: 100000\r\n\r\n{start}";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        using var reader = new StreamReader(stream);
        var answer = new StringBuilder();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            answer.Append(line).Append('\n');
            if (line.StartsWith('{'))
            {
                break;
            }
        }
        return answer.ToString();
    }

    [Fact]
    public async Task An_epilogue_after_the_closing_boundary_is_ignored_however_long()
    {
        byte[] content = RandomNumberGenerator.GetBytes(3000);
        foreach (int epilogue in new[] { 10, 100_000, 3_000_000 })
        {
            byte[] body = [.. Multipart(FilePart(content), Field("purpose", "assistants")), .. Enumerable.Repeat((byte)'e', epilogue)];
            using var response = await PostMultipartAsync("/v1/files", body);
            var file = await Wire.JsonAsync(response);
            Assert.True(response.IsSuccessStatusCode, $"epilogue of {epilogue} bytes: {file}");
            Assert.Equal(content, await _client.GetByteArrayAsync($"/v1/files/{file.Id()}/content"));
        }
    }

    [Fact]
    public async Task A_body_cut_before_the_closing_boundary_still_says_so()
    {
        byte[] body = Multipart(FilePart(new byte[5000]), Field("purpose", "assistants"));
        using var response = await PostMultipartAsync("/v1/files", body[..^40]);
        var error = await Wire.AssertErrorAsync(response, 400, code: "invalid_multipart");
        Assert.Contains("ended before the closing boundary", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Part_headers_stay_limited_to_16_KiB()
    {
        // The epilogue's bound must not widen what a part's headers may hold.
        string within = "X-Pad: " + new string('h', 15_000);
        using (var ok = await PostMultipartAsync("/v1/files", Multipart(FilePart("a"u8.ToArray()), ($"Content-Disposition: form-data; name=\"purpose\"\r\n{within}", "assistants"u8.ToArray()))))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        foreach (int pad in new[] { 17_000, 200_000 })
        {
            string over = "X-Pad: " + new string('h', pad);
            using var refused = await PostMultipartAsync("/v1/files", Multipart(FilePart("a"u8.ToArray()), ($"Content-Disposition: form-data; name=\"purpose\"\r\n{over}", "assistants"u8.ToArray())));
            var error = await Wire.AssertErrorAsync(refused, 400, code: "invalid_multipart");
            Assert.Contains("16384", error.GetProperty("message").GetString());
        }
    }

    // Defect 14: the text fields of one request are held to one budget, so a request cannot pin megabytes of them.

    [Fact]
    public async Task Text_fields_are_limited_to_64_KiB_in_all()
    {
        string marker = Guid.NewGuid().ToString("N");
        // One large field within the budget is accepted.
        using (var ok = await PostMultipartAsync("/v1/files", Multipart(FilePart("a"u8.ToArray()), Field("purpose", "assistants"), Field("note", new string('n', 60_000)))))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        // Many fields, each well under 64 KiB but over it together, are refused before the rest is read.
        var parts = new List<(string, byte[])> { Field("purpose", "assistants"), Field("collection", marker) };
        for (int i = 0; i < 40; i++)
        {
            parts.Add(Field($"pad{i}", new string('p', 20_000)));
        }
        parts.Add(FilePart("a"u8.ToArray()));
        using var refused = await PostMultipartAsync("/v1/files", Multipart([.. parts]));
        var error = await Wire.AssertErrorAsync(refused, 413, "pad3", "form_fields_too_large");
        Assert.Contains("65536", error.GetProperty("message").GetString());
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/files?collection={marker}")).Ids());

        // The same budget on upload parts.
        string uploadId = await CreateUploadAsync(1);
        using var part = await PostMultipartAsync($"/v1/uploads/{uploadId}/parts", Multipart(
            Field("a", new string('a', 40_000)), Field("b", new string('b', 40_000)), FilePart([1], "data")));
        await Wire.AssertErrorAsync(part, 413, "b", "form_fields_too_large");
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/uploads/{uploadId}")).GetProperty("parts").EnumerateArray());
    }

    [Fact]
    public async Task The_largest_legitimate_metadata_fits_in_the_budget_even_fully_escaped()
    {
        // 16 keys of 64 characters and values of 512, every character written as a \u escape.
        static string Escaped(char c, int count) => string.Concat(Enumerable.Repeat($"\\u{(int)c:x4}", count));
        var pairs = Enumerable.Range(0, 16).Select(i => $"\"{Escaped((char)('a' + i), 64)}\":\"{Escaped('\u00e9', 512)}\"");
        string metadata = "{" + string.Join(",", pairs) + "}";
        Assert.True(metadata.Length > 55_000);
        byte[] body = Multipart(FilePart("a"u8.ToArray()), Field("purpose", "assistants"), Field("collection", new string('c', 256)), Field("metadata", metadata));
        using var response = await PostMultipartAsync("/v1/files", body);
        var file = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, file.ToString());
        Assert.Equal(16, file.GetProperty("metadata").EnumerateObject().Count());
    }
}
