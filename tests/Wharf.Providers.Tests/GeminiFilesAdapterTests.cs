using System.Text;
using System.Text.Json;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>
/// The <c>gemini</c> adapter's Files API against the simulator: the resumable upload (its headers and offsets checked
/// by the simulator), the listing by page token, the delete, the check of an old copy, and a file part of a chat
/// request sent as <c>fileData</c> with the URI and media type the upload answered.
/// </summary>
public sealed class GeminiFilesAdapterTests : IAsyncLifetime
{
    private GeminiSimulator _sim = null!;
    private ProviderHarness _harness = null!;

    private IProvider Provider => _harness["gem"];

    public async Task InitializeAsync()
    {
        _sim = await GeminiSimulator.StartAsync();
        _harness = ProviderHarness.Start(
            ("gem:Type", "gemini"), ("gem:ApiKey", _sim.ApiKey), ("gem:BaseUrl", _sim.BaseUrl.ToString()), ("gem:TimeoutSeconds", "30"));
        // The adapter's clock reads the simulator's time (the harness starts it in the past otherwise).
        _harness.Time.SetUtcNow(DateTimeOffset.UtcNow);
    }

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _sim.DisposeAsync();
    }

    private async Task<UpstreamFile> UploadAsync(string filename, string content, string? contentType = "text/plain")
    {
        byte[] bytes = Encoding.UTF8.GetBytes(content);
        var outcome = await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(bytes), bytes.Length, filename, "user_data", contentType), CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.IsOk ? "" : outcome.Failure.ToString());
        return outcome.Value;
    }

    [Fact]
    public async Task An_upload_is_started_then_sent_whole_at_offset_zero_and_finalized()
    {
        var file = await UploadAsync("notes.txt", "some notes for Gemini");

        Assert.StartsWith("files/", file.Id, StringComparison.Ordinal);
        Assert.Equal(21, file.Bytes);
        Assert.Equal("notes.txt", file.Filename);
        Assert.Equal("processed", file.Status);
        Assert.NotNull(file.ExpiresAt);
        Assert.InRange(file.ExpiresAt!.Value - file.CreatedAt, 48 * 3600 - 1, 48 * 3600 + 1);

        var uploads = _sim.Requests.Where(r => r.Path == "/upload/v1beta/files").ToList();
        Assert.Equal(2, uploads.Count);
        var start = uploads[0];
        Assert.Equal("resumable", start.Headers["X-Goog-Upload-Protocol"]);
        Assert.Equal("start", start.Headers["X-Goog-Upload-Command"]);
        Assert.Equal("21", start.Headers["X-Goog-Upload-Header-Content-Length"]);
        Assert.Equal("text/plain", start.Headers["X-Goog-Upload-Header-Content-Type"]);
        Assert.Equal(_sim.ApiKey, start.Headers["x-goog-api-key"]);
        using (var metadata = JsonDocument.Parse(start.Body))
        {
            Assert.Equal("notes.txt", metadata.RootElement.GetProperty("file").GetProperty("displayName").GetString());
        }
        var finish = uploads[1];
        Assert.Contains("upload_id=", finish.Query, StringComparison.Ordinal);
        Assert.Equal("upload, finalize", finish.Headers["X-Goog-Upload-Command"]);
        Assert.Equal("0", finish.Headers["X-Goog-Upload-Offset"]);
        Assert.Equal("some notes for Gemini", Encoding.UTF8.GetString(finish.Body));
        Assert.Equal("some notes for Gemini", Encoding.UTF8.GetString(_sim.Files[file.Id].Content));
    }

    [Fact]
    public async Task A_file_without_a_media_type_is_sent_with_the_one_its_name_implies()
    {
        var pdf = await UploadAsync("paper.pdf", "%PDF-1.7", contentType: null);
        var unknown = await UploadAsync("blob.bin", "xx", contentType: "application/octet-stream");

        Assert.Equal("application/pdf", _sim.Files[pdf.Id].MimeType);
        Assert.Equal("application/octet-stream", _sim.Files[unknown.Id].MimeType);
    }

    [Fact]
    public async Task A_refused_upload_start_is_the_upstreams_failure_and_nothing_is_sent()
    {
        _sim.EnqueueFileFault(GeminiSimulator.RateLimited("3s"));

        byte[] bytes = "abc"u8.ToArray();
        var outcome = await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(bytes), 3, "a.txt", "user_data", "text/plain"), CancellationToken.None);

        Assert.False(outcome.IsOk);
        Assert.Equal(429, outcome.Failure.Status);
        Assert.True(outcome.Failure.Retryable);
        Assert.Equal(TimeSpan.FromSeconds(3), outcome.Failure.RetryAfter);
        Assert.Single(_sim.Requests, r => r.Path == "/upload/v1beta/files");
        Assert.Empty(_sim.Files);
    }

    [Fact]
    public async Task A_file_shorter_than_announced_fails_its_upload()
    {
        byte[] bytes = "short"u8.ToArray();
        var outcome = await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(bytes), 50, "a.txt", "user_data", "text/plain"), CancellationToken.None);

        Assert.False(outcome.IsOk);
        Assert.Empty(_sim.Files);
    }

    [Fact]
    public async Task The_list_pages_with_gemini_s_page_token_as_the_cursor()
    {
        var uploaded = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < 5; i++)
        {
            uploaded.Add((await UploadAsync($"f{i}.txt", $"file {i}")).Id);
        }

        var seen = new List<string>();
        string? after = null;
        int pages = 0;
        while (true)
        {
            var page = await Provider.ListFilesAsync(new UpstreamFileQuery(2, after, null, null), CancellationToken.None);
            Assert.True(page.IsOk);
            pages++;
            seen.AddRange(page.Value.Data.Select(f => f.Id));
            Assert.All(page.Value.Data, f => Assert.Equal("user_data", f.Purpose));
            if (!page.Value.HasMore)
            {
                Assert.Null(page.Value.Cursor);
                break;
            }
            Assert.NotNull(page.Value.Cursor);
            Assert.DoesNotContain(page.Value.Cursor, uploaded); // a token of Gemini's, not a file's name
            after = page.Value.Cursor;
        }

        Assert.Equal(3, pages);
        Assert.Equal(uploaded.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        var listed = _sim.Requests.Where(r => r.Path == "/v1beta/files").Select(r => r.Query).ToList();
        Assert.Equal("?pageSize=2", listed[0]);
        Assert.StartsWith("?pageSize=2&pageToken=", listed[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_list_filter_gemini_lacks_is_refused_naming_it()
    {
        var ascending = await Provider.ListFilesAsync(new UpstreamFileQuery(null, null, "asc", null), CancellationToken.None);
        var purpose = await Provider.ListFilesAsync(new UpstreamFileQuery(null, null, null, "batch"), CancellationToken.None);

        Assert.False(ascending.IsOk);
        Assert.False(purpose.IsOk);
        Assert.Equal("order", ascending.Failure.Error?.Param);
        Assert.Equal("purpose", purpose.Failure.Error?.Param);
        Assert.Equal(UpstreamFailureKind.NotAttempted, purpose.Failure.Kind);
        Assert.DoesNotContain(_sim.Requests, r => r.Path == "/v1beta/files");
    }

    [Fact]
    public async Task A_delete_removes_the_file_and_a_file_gemini_does_not_know_counts_as_deleted()
    {
        var file = await UploadAsync("gone.txt", "bye");

        var first = await Provider.DeleteFileAsync(file.Id, CancellationToken.None);
        var second = await Provider.DeleteFileAsync(file.Id, CancellationToken.None);

        Assert.True(first.IsOk && first.Value);
        Assert.True(second.IsOk && second.Value);
        Assert.False(_sim.Files.ContainsKey(file.Id));
        Assert.Equal(2, _sim.Requests.Count(r => r.Method == "DELETE" && r.Path == "/v1beta/" + file.Id));
    }

    [Fact]
    public async Task A_copy_is_usable_until_it_is_about_to_expire_or_gone()
    {
        var file = await UploadAsync("old.txt", "old");

        Assert.True(Provider.DropsCopies);
        Assert.True((await Provider.IsCopyUsableAsync(file.Id, CancellationToken.None)).Value);

        // 47.5 hours on: Gemini still has it, but not for long enough to name it.
        _harness.Time.Advance(TimeSpan.FromHours(47.5));
        Assert.False((await Provider.IsCopyUsableAsync(file.Id, CancellationToken.None)).Value);

        // 49 hours on (the simulator's clock too): Gemini has dropped it.
        _sim.ClockOffset = TimeSpan.FromHours(49);
        Assert.False((await Provider.IsCopyUsableAsync(file.Id, CancellationToken.None)).Value);
        Assert.False((await Provider.IsCopyUsableAsync("not a gemini name", CancellationToken.None)).Value);
    }

    [Fact]
    public async Task A_file_part_becomes_file_data_with_the_uri_and_media_type_of_the_upload()
    {
        var file = await UploadAsync("doc.txt", "The answer is 42.");
        string body = $$$"""{"model":"gemini-2.0-flash","messages":[{"role":"user","content":[{"type":"text","text":"What is the answer?"},{"type":"file","file":{"file_id":"{{{file.Id}}}"}}]}]}""";

        var outcome = await Provider.SendModelRequestAsync(new ModelCall(ProviderCapability.ChatCompletions, "gemini-2.0-flash", Encoding.UTF8.GetBytes(body), false), CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.IsOk ? "" : outcome.Failure.ToString());
        await outcome.Value.DisposeAsync();
        var call = Assert.Single(_sim.CallsFor("gemini-2.0-flash"));
        using var sent = JsonDocument.Parse(call.Body);
        var fileData = sent.RootElement.GetProperty("contents")[0].GetProperty("parts")[1].GetProperty("fileData");
        Assert.Equal(_sim.Files[file.Id].Uri, fileData.GetProperty("fileUri").GetString());
        Assert.Equal("text/plain", fileData.GetProperty("mimeType").GetString());
        // What the upload answered is kept: no look-up before the request.
        Assert.DoesNotContain(_sim.Requests, r => r.Method == "GET" && r.Path == "/v1beta/" + file.Id);
    }

    [Fact]
    public async Task A_file_part_naming_a_file_gemini_does_not_have_is_the_users_400()
    {
        string body = """{"model":"gemini-2.0-flash","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"files/nosuchfile"}}]}]}""";

        var outcome = await Provider.SendModelRequestAsync(new ModelCall(ProviderCapability.ChatCompletions, "gemini-2.0-flash", Encoding.UTF8.GetBytes(body), false), CancellationToken.None);

        Assert.False(outcome.IsOk);
        Assert.Equal(400, outcome.Failure.Status);
        Assert.Equal("messages[0].content[0].file.file_id", outcome.Failure.Error?.Param);
        Assert.Equal("file_not_found", outcome.Failure.Error?.Code);
        Assert.Equal(UpstreamFailureKind.NotAttempted, outcome.Failure.Kind);
        Assert.Empty(_sim.CallsFor("gemini-2.0-flash"));
    }
}
