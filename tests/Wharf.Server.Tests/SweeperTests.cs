using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>A sweep every second that removes orphans at once: the most eager sweeper the options allow.</summary>
public sealed class EagerSweeperServerFixture : ServerFixture
{
    protected override string[] Args => ["--Wharf:Sweeper:IntervalSeconds=1", "--Wharf:Sweeper:OrphanGraceSeconds=0"];
}

/// <summary>
/// The sweeper never touches what a request in flight holds, whatever its options: bytes being staged by a slow
/// client, staged bytes waiting for the rest of the form, and blobs between their commit and their catalog row.
/// </summary>
public sealed class SweeperTests(EagerSweeperServerFixture fixture) : IClassFixture<EagerSweeperServerFixture>
{
    private const string Boundary = "wharf-sweeper-test-boundary";
    private static readonly TimeSpan Pause = TimeSpan.FromSeconds(2.5);
    private readonly HttpClient _client = fixture.Server.CreateClient();

    /// <summary>A multipart body sent as a slow client would: three pieces with a pause of 2.5 s before each of the last two.</summary>
    private static PausedContent SlowForm(string binaryPart, byte[] content, params (string Name, string Value)[] fields)
    {
        int half = content.Length / 2;
        byte[] head = Encoding.ASCII.GetBytes(
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{binaryPart}\"; filename=\"slow.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n");
        var tail = new StringBuilder("\r\n");
        foreach (var (name, value) in fields)
        {
            tail.Append($"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
        }
        tail.Append($"--{Boundary}--\r\n");
        // Paused in the middle of the bytes (a staged file being written), then after them (staged, waiting for the form's end).
        return new PausedContent([[.. head, .. content.AsSpan(0, half)], content[half..], Encoding.ASCII.GetBytes(tail.ToString())]);
    }

    private async Task<string> SlowFileUploadAsync(byte[] content)
    {
        using var response = await _client.PostAsync("/v1/files", SlowForm("file", content, ("purpose", "assistants")));
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json.Id();
    }

    private async Task<string> SlowPartsUploadAsync(byte[] content)
    {
        using var created = await _client.PostAsJsonAsync("/v1/uploads", new { filename = "slow.bin", purpose = "assistants", bytes = content.Length, mime_type = "application/octet-stream" });
        string uploadId = (await Wire.JsonAsync(created)).Id();
        int half = content.Length / 2;
        var parts = await Task.WhenAll(new[] { content[..half], content[half..] }.Select(async part =>
        {
            using var response = await _client.PostAsync($"/v1/uploads/{uploadId}/parts", SlowForm("data", part));
            var json = await Wire.JsonAsync(response);
            Assert.True(response.IsSuccessStatusCode, json.ToString());
            return json.Id();
        }));
        using var completed = await _client.PostAsJsonAsync($"/v1/uploads/{uploadId}/complete", new { part_ids = parts });
        var upload = await Wire.JsonAsync(completed);
        Assert.True(completed.IsSuccessStatusCode, upload.ToString());
        return upload.GetProperty("file").Id();
    }

    [Fact]
    public async Task Slow_uploads_during_sweeps_every_second_with_no_grace_are_all_kept_byte_exact()
    {
        var contents = Enumerable.Range(0, 6).Select(i => RandomNumberGenerator.GetBytes(300_000 + i * 1000)).ToArray();
        var uploads = contents.Select((content, i) => i % 2 == 0 ? SlowFileUploadAsync(content) : SlowPartsUploadAsync(content)).ToArray();
        string[] fileIds = await Task.WhenAll(uploads);

        // Sweeps after the uploads were acknowledged find their blobs recorded.
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        for (int i = 0; i < fileIds.Length; i++)
        {
            using var response = await _client.GetAsync($"/v1/files/{fileIds[i]}/content");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True((await response.Content.ReadAsByteArrayAsync()).AsSpan().SequenceEqual(contents[i]), $"upload {i} is byte-exact");
        }
    }

    /// <summary>A body written piece by piece with a pause before every piece but the first.</summary>
    private sealed class PausedContent : HttpContent
    {
        private readonly byte[][] _pieces;

        public PausedContent(byte[][] pieces)
        {
            _pieces = pieces;
            Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={Boundary}");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            for (int i = 0; i < _pieces.Length; i++)
            {
                if (i > 0)
                {
                    await Task.Delay(Pause);
                }
                await stream.WriteAsync(_pieces[i]);
                await stream.FlushAsync();
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _pieces.Sum(p => (long)p.Length);
            return true;
        }
    }
}
