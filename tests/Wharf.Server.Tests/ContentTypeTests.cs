using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Data.Sqlite;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>
/// A file's content type is sent back as a response header, so only a type that can be sent is stored; a type stored
/// before that check is served as <c>application/octet-stream</c>, never as a 500.
/// </summary>
public sealed class ContentTypeTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Boundary = "b0und";

    private readonly HttpClient _client = fixture.Server.CreateClient();

    /// <summary>A POST /v1/files whose file part carries <paramref name="contentType"/> as raw header bytes (UTF-8).</summary>
    private async Task<HttpResponseMessage> UploadWithPartTypeAsync(string contentType, string marker)
    {
        string body = $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.txt\"\r\nContent-Type: {contentType}\r\n\r\nhello\r\n" +
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n" +
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"collection\"\r\n\r\n{marker}\r\n--{Boundary}--\r\n";
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.TryAddWithoutValidation("Content-Type", $"multipart/form-data; boundary={Boundary}");
        return await _client.PostAsync("/v1/files", content);
    }

    [Theory]
    [InlineData("text/plain; charset=\u00e9")]
    [InlineData("text/\u65e5\u672c")]
    [InlineData("text/plain\u0001")]
    [InlineData("text/plain; x=\u007f")]
    public async Task A_file_part_whose_type_cannot_be_sent_back_is_400_and_keeps_nothing(string contentType)
    {
        string marker = Guid.NewGuid().ToString("N");
        using var response = await UploadWithPartTypeAsync(contentType, marker);
        await Wire.AssertErrorAsync(response, 400, "file", "invalid_content_type");
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/files?collection={marker}")).Ids());
        Assert.Empty(Directory.GetFiles(Path.Combine(fixture.Server.DataDir, "blobs", ".staging")));
    }

    [Fact]
    public async Task A_file_part_with_a_sendable_type_keeps_it()
    {
        using var response = await UploadWithPartTypeAsync("text/plain; charset=utf-8", Guid.NewGuid().ToString("N"));
        var file = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, file.ToString());
        using var content = await _client.GetAsync($"/v1/files/{file.Id()}/content");
        Assert.Equal("text/plain; charset=utf-8", content.Content.Headers.ContentType!.ToString());
    }

    [Theory]
    [InlineData("text/plain; charset=\u00e9")]
    [InlineData("application/\u00fcber")]
    [InlineData("text/plain\t\u0001")]
    public async Task An_upload_whose_mime_type_cannot_be_sent_back_is_400(string mimeType)
    {
        using var response = await _client.PostAsJsonAsync("/v1/uploads", new { filename = "u.txt", purpose = "batch", bytes = 5, mime_type = mimeType });
        await Wire.AssertErrorAsync(response, 400, "mime_type", "invalid_mime_type");
    }

    [Fact]
    public async Task A_type_stored_before_the_check_is_served_as_octet_stream()
    {
        // Rows as an earlier Wharf wrote them: the server is stopped and the catalog edited, as a catalog of that
        // version would hold them. Both ways a file gets its type are covered: a plain file's row, and an upload
        // (still pending) whose mime type passes to the file it is completed into.
        await using var server = await WharfServer.StartAsync();
        using (var client = server.CreateClient())
        {
            string plainId = (await Wire.UploadAsync(client, text: "0123456789")).Id();
            using var created = await client.PostAsJsonAsync("/v1/uploads", new { filename = "u.txt", purpose = "batch", bytes = 5, mime_type = "text/plain" });
            string uploadId = (await Wire.JsonAsync(created)).Id();
            server.Kill();

            using (var catalog = new SqliteConnection($"Data Source={Path.Combine(server.DataDir, "wharf.db")};Pooling=False"))
            {
                catalog.Open();
                using var update = catalog.CreateCommand();
                update.CommandText = "UPDATE files SET content_type = $bad WHERE id = $file; UPDATE uploads SET mime_type = $control WHERE id = $upload;";
                update.Parameters.AddWithValue("$bad", "text/plain; charset=\u00e9");
                update.Parameters.AddWithValue("$file", plainId);
                update.Parameters.AddWithValue("$control", "text/plain\r\nX-Injected: 1");
                update.Parameters.AddWithValue("$upload", uploadId);
                Assert.Equal(2, update.ExecuteNonQuery());
            }
            await server.RestartAsync();

            using var after = server.CreateClient();
            using (var whole = await after.GetAsync($"/v1/files/{plainId}/content"))
            {
                Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
                Assert.Equal("application/octet-stream", whole.Content.Headers.ContentType!.ToString());
                Assert.Equal("0123456789", await whole.Content.ReadAsStringAsync());
            }
            using (var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{plainId}/content"))
            {
                request.Headers.Range = new RangeHeaderValue(2, 4);
                using var part = await after.SendAsync(request);
                Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
                Assert.Equal("application/octet-stream", part.Content.Headers.ContentType!.ToString());
                Assert.Equal("234", await part.Content.ReadAsStringAsync());
            }

            var form = new MultipartFormDataContent { { new ByteArrayContent("hello"u8.ToArray()), "data", "p" } };
            using var added = await after.PostAsync($"/v1/uploads/{uploadId}/parts", form);
            string partId = (await Wire.JsonAsync(added)).Id();
            using var completed = await after.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = new[] { partId } });
            var upload = await Wire.JsonAsync(completed);
            Assert.True(completed.IsSuccessStatusCode, upload.ToString());
            string fileId = upload.GetProperty("file").Id();
            using var segmented = await after.GetAsync($"/v1/files/{fileId}/content");
            Assert.Equal(HttpStatusCode.OK, segmented.StatusCode);
            Assert.Equal("application/octet-stream", segmented.Content.Headers.ContentType!.ToString());
            Assert.False(segmented.Headers.Contains("X-Injected"));
            Assert.Equal("hello", await segmented.Content.ReadAsStringAsync());
        }
    }
}
