using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>
/// The Gemini simulator's Files API checks what Google's does, so that an adapter sending a wrong header, offset or
/// token fails against it: the resumable protocol's headers and offsets, chunked uploads, page tokens, expiry.
/// </summary>
public sealed class GeminiSimulatorFilesTests : IAsyncLifetime
{
    private GeminiSimulator _sim = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _sim = await GeminiSimulator.StartAsync();
        _http = new HttpClient { BaseAddress = _sim.BaseUrl };
        _http.DefaultRequestHeaders.Add("x-goog-api-key", _sim.ApiKey);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _sim.DisposeAsync();
    }

    private HttpRequestMessage Start(long length, string? protocol = "resumable", string? command = "start", string? type = "text/plain")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/upload/v1beta/files")
        {
            Content = new StringContent("""{"file":{"displayName":"a.txt"}}""", Encoding.UTF8, "application/json"),
        };
        if (protocol is not null)
        {
            request.Headers.Add("X-Goog-Upload-Protocol", protocol);
        }
        if (command is not null)
        {
            request.Headers.Add("X-Goog-Upload-Command", command);
        }
        request.Headers.Add("X-Goog-Upload-Header-Content-Length", length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (type is not null)
        {
            request.Headers.Add("X-Goog-Upload-Header-Content-Type", type);
        }
        return request;
    }

    private async Task<Uri> SessionAsync(long length)
    {
        using var started = await _http.SendAsync(Start(length));
        Assert.Equal(HttpStatusCode.OK, started.StatusCode);
        return new Uri(started.Headers.GetValues("x-goog-upload-url").Single());
    }

    private static HttpRequestMessage Chunk(Uri session, string command, long offset, string bytes)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, session) { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(bytes)) };
        request.Headers.Add("X-Goog-Upload-Command", command);
        request.Headers.Add("X-Goog-Upload-Offset", offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return request;
    }

    [Theory]
    [InlineData(null, "start", "text/plain")]
    [InlineData("multipart", "start", "text/plain")]
    [InlineData("resumable", "upload", "text/plain")]
    [InlineData("resumable", "start", null)]
    public async Task A_start_without_the_resumable_headers_is_refused(string? protocol, string? command, string? type)
    {
        using var answer = await _http.SendAsync(Start(3, protocol, command, type));

        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        Assert.False(answer.Headers.Contains("x-goog-upload-url"));
    }

    [Fact]
    public async Task Chunks_must_come_at_the_offset_received_so_far_and_add_up_to_the_announced_length()
    {
        var session = await SessionAsync(10);

        using (var wrongOffset = await _http.SendAsync(Chunk(session, "upload", 3, "abcd")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrongOffset.StatusCode);
        }
        using (var first = await _http.SendAsync(Chunk(session, "upload", 0, "abcd")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        using (var finished = await _http.SendAsync(Chunk(session, "upload, finalize", 4, "efghij")))
        {
            Assert.Equal(HttpStatusCode.OK, finished.StatusCode);
            using var file = JsonDocument.Parse(await finished.Content.ReadAsStringAsync());
            Assert.Equal("10", file.RootElement.GetProperty("file").GetProperty("sizeBytes").GetString());
        }
        Assert.Equal("abcdefghij", Encoding.UTF8.GetString(Assert.Single(_sim.Files.Values).Content));

        var shortSession = await SessionAsync(10);
        using var cut = await _http.SendAsync(Chunk(shortSession, "upload, finalize", 0, "abc"));
        Assert.Equal(HttpStatusCode.BadRequest, cut.StatusCode);
        Assert.Single(_sim.Files);
    }

    [Fact]
    public async Task A_page_token_it_did_not_issue_is_refused_and_expired_files_are_gone()
    {
        string name = _sim.AddFile("x.txt", "text/plain", "x"u8.ToArray());

        using (var bad = await _http.GetAsync("/v1beta/files?pageToken=made-up"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }
        using (var live = await _http.GetAsync("/v1beta/" + name))
        {
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }
        _sim.ClockOffset = TimeSpan.FromHours(48);
        using var gone = await _http.GetAsync("/v1beta/" + name);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        using var list = await _http.GetAsync("/v1beta/files");
        Assert.Equal(0, JsonDocument.Parse(await list.Content.ReadAsStringAsync()).RootElement.GetProperty("files").GetArrayLength());
    }

    [Fact]
    public async Task Files_requests_need_the_key()
    {
        using var anonymous = new HttpClient { BaseAddress = _sim.BaseUrl };
        using var answer = await anonymous.GetAsync("/v1beta/files");

        Assert.Equal(HttpStatusCode.Forbidden, answer.StatusCode);
    }
}
