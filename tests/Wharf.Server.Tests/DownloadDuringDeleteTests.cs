using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>
/// A file made from upload parts is read one part at a time. Deleting it while a download is under way must not cut
/// that download: it completes byte-exact, and the parts are removed once it ends. A part that is really lost resets
/// the connection instead of ending a short body cleanly.
/// </summary>
public sealed class DownloadDuringDeleteTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const int PartBytes = 4 * 1024 * 1024;
    private const int Parts = 6;
    private readonly HttpClient _client = fixture.Server.CreateClient();

    /// <summary>Uploads <see cref="Parts"/> random parts and completes them into one file; returns its id, bytes and parts.</summary>
    private async Task<(string FileId, byte[] Content, List<string> PartIds)> CreatePartBuiltFileAsync()
    {
        byte[] content = RandomNumberGenerator.GetBytes(PartBytes * Parts - 12345);
        using var created = await _client.PostAsJsonAsync("/v1/uploads", new { filename = "big.bin", purpose = "assistants", bytes = content.Length, mime_type = "application/octet-stream" });
        string uploadId = (await Wire.JsonAsync(created)).Id();
        var partIds = new List<string>();
        for (int offset = 0; offset < content.Length; offset += PartBytes)
        {
            var form = new MultipartFormDataContent { { new ByteArrayContent(content, offset, Math.Min(PartBytes, content.Length - offset)), "data", "part" } };
            using var part = await _client.PostAsync($"/v1/uploads/{uploadId}/parts", form);
            var json = await Wire.JsonAsync(part);
            Assert.True(part.IsSuccessStatusCode, json.ToString());
            partIds.Add(json.Id());
        }
        using var completed = await _client.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = partIds });
        var upload = await Wire.JsonAsync(completed);
        Assert.True(completed.IsSuccessStatusCode, upload.ToString());
        return (upload.GetProperty("file").Id(), content, partIds);
    }

    /// <summary>A client with a small receive window, so the server cannot send far ahead of what the test reads.</summary>
    private HttpClient SlowReader()
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = 32 * 1024 };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        var client = new HttpClient(handler) { BaseAddress = fixture.Server.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", WharfServer.Key);
        return client;
    }

    private string BlobPath(string blobId) => Path.Combine(fixture.Server.DataPath, "blobs", blobId[^2..], blobId);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_download_under_way_completes_byte_exact_when_the_file_is_deleted(bool range)
    {
        var (fileId, content, partIds) = await CreatePartBuiltFileAsync();
        int from = range ? 1000 : 0;
        using var reader = SlowReader();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{fileId}/content");
        if (range)
        {
            request.Headers.Range = new RangeHeaderValue(from, null);
        }
        using var response = await reader.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(range ? HttpStatusCode.PartialContent : HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.Length - from, response.Content.Headers.ContentLength);
        await using var body = await response.Content.ReadAsStreamAsync();
        byte[] received = new byte[content.Length - from];
        await body.ReadExactlyAsync(received.AsMemory(0, 64 * 1024));

        using (var deleted = await _client.DeleteAsync($"/v1/files/{fileId}"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        using (var gone = await _client.GetAsync($"/v1/files/{fileId}/content"))
        {
            await Wire.AssertErrorAsync(gone, 404, "id");
        }

        await body.ReadExactlyAsync(received.AsMemory(64 * 1024));
        Assert.Equal(0, await body.ReadAsync(new byte[1]));
        Assert.True(received.AsSpan().SequenceEqual(content.AsSpan(from)), "the download is byte-exact");

        // The parts the delete left to the download are removed once it ends.
        await AssertRemovedAsync(partIds, "the deleted file's parts are removed after the download ends");
    }

    /// <summary>Waits (10 s at most) until none of the blobs is on disk any more.</summary>
    private async Task AssertRemovedAsync(IReadOnlyList<string> blobIds, string because)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (blobIds.Any(id => File.Exists(BlobPath(id))))
        {
            Assert.True(DateTime.UtcNow < deadline, because);
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task A_conditional_answer_without_a_body_holds_nothing_back_from_a_delete()
    {
        var (fileId, _, partIds) = await CreatePartBuiltFileAsync();
        using (var first = await _client.GetAsync($"/v1/files/{fileId}/content", HttpCompletionOption.ResponseHeadersRead))
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files/{fileId}/content");
            request.Headers.IfNoneMatch.Add(first.Headers.ETag!);
            using var notModified = await _client.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        }
        using (var deleted = await _client.DeleteAsync($"/v1/files/{fileId}"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        await AssertRemovedAsync(partIds, "no ended read keeps the deleted file's parts");
    }

    [Fact]
    public async Task A_lost_part_ends_the_download_with_an_error_never_a_body_that_looks_complete()
    {
        var (fileId, content, partIds) = await CreatePartBuiltFileAsync();
        File.Delete(BlobPath(partIds[2]));

        using var response = await _client.GetAsync($"/v1/files/{fileId}/content", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content.Length, response.Content.Headers.ContentLength);
        await using var body = await response.Content.ReadAsStreamAsync();
        long received = 0;
        byte[] buffer = new byte[256 * 1024];
        // The server resets the connection (HTTP/1.1: it closes it before the announced length), which the client
        // reports as an error rather than the end of the body.
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            int read;
            while ((read = await body.ReadAsync(buffer)) > 0)
            {
                received += read;
            }
        });
        Assert.InRange(received, 0, 2L * PartBytes); // at most the parts before the lost one
    }
}
