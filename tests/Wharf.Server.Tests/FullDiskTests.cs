using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>
/// A real full disk: the server's data directory is a tmpfs of its own (<see cref="WharfServer.StartOnSmallDiskAsync"/>)
/// that the test fills to the last page. Deletes still work, uploads are 507 and leave nothing behind, /readyz says so.
/// </summary>
public sealed class FullDiskTests : IAsyncLifetime
{
    private const long DiskBytes = 24L * 1024 * 1024;
    private const int Page = 4096;
    private WharfServer _server = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _server = await WharfServer.StartOnSmallDiskAsync(DiskBytes);
        _client = _server.CreateClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private string FillerPath => Path.Combine(_server.DataPath, "filler");

    private long FreeBytes => new DriveInfo(_server.DataPath).AvailableFreeSpace;

    /// <summary>Writes the filler file until the file system has not one page left.</summary>
    private void FillDisk()
    {
        using var filler = new FileStream(FillerPath, FileMode.Append, FileAccess.Write, FileShare.None, bufferSize: 0);
        byte[] chunk = new byte[Page];
        Random.Shared.NextBytes(chunk);
        try
        {
            while (true)
            {
                filler.Write(chunk);
            }
        }
        catch (IOException)
        {
            // No space left on device.
        }
        Assert.Equal(0, FreeBytes);
    }

    /// <summary>Gives back exactly <paramref name="pages"/> pages of the filler.</summary>
    private void Free(int pages)
    {
        using (var filler = new FileStream(FillerPath, FileMode.Open, FileAccess.Write))
        {
            filler.SetLength(filler.Length / Page * Page - (long)pages * Page);
        }
        Assert.Equal((long)pages * Page, FreeBytes);
    }

    private async Task<(string Id, byte[] Content)> UploadAsync(int bytes)
    {
        byte[] content = RandomNumberGenerator.GetBytes(bytes);
        using var response = await _client.PostAsync("/v1/files", Wire.Form("assistants", content, "f.bin"));
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return (json.Id(), content);
    }

    private string[] BlobFiles() =>
        [.. Directory.GetDirectories(Path.Combine(_server.DataPath, "blobs"))
            .Where(d => !d.EndsWith(".staging", StringComparison.Ordinal))
            .SelectMany(Directory.GetFiles)
            .Select(f => Path.GetFileName(f)!)];

    private async Task AssertContentAsync(string fileId, byte[] content)
    {
        using var response = await _client.GetAsync($"/v1/files/{fileId}/content");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(content, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task On_a_full_disk_deletes_work_uploads_are_507_and_leave_nothing_and_readyz_is_503()
    {
        var a = await UploadAsync(1024 * 1024);
        var b = await UploadAsync(1024 * 1024);
        using (var ready = await _client.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        FillDisk();
        using (var ready = await _client.GetAsync("/readyz"))
        {
            await Wire.AssertErrorAsync(ready, 503, code: "insufficient_storage");
        }
        using (var refused = await _client.PostAsync("/v1/files", Wire.Form("assistants", new byte[100_000], "f.bin")))
        {
            await Wire.AssertErrorAsync(refused, 507, code: "insufficient_storage");
        }

        // The delete's catalog write needs room the disk does not have: it is made with the room kept for deletes.
        using (var deleted = await _client.DeleteAsync($"/v1/files/{a.Id}"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }
        Assert.Contains("bytes kept for deletes are given up so a delete can be written", _server.Output);
        using (var gone = await _client.GetAsync($"/v1/files/{a.Id}"))
        {
            await Wire.AssertErrorAsync(gone, 404, "id");
        }
        Assert.DoesNotContain(a.Id, BlobFiles());
        await AssertContentAsync(b.Id, b.Content);

        // The deleted file's room lets a small upload in again.
        var c = await UploadAsync(50_000);
        await AssertContentAsync(c.Id, c.Content);

        // Room for the bytes but not for the catalog row: 507, and the committed bytes are removed at once.
        const int Bytes = 64 * Page;
        string[] before = BlobFiles();
        FillDisk();
        Free(Bytes / Page);
        using (var refused = await _client.PostAsync("/v1/files", Wire.Form("assistants", RandomNumberGenerator.GetBytes(Bytes), "f.bin")))
        {
            await Wire.AssertErrorAsync(refused, 507, code: "insufficient_storage");
        }
        Assert.Equal(before.Order(), BlobFiles().Order());
        Assert.Equal(Bytes, FreeBytes);

        // The same for a part of the Uploads API.
        using var created = await _client.PostAsJsonAsync("/v1/uploads", new { filename = "p.bin", purpose = "assistants", bytes = Bytes, mime_type = "application/octet-stream" });
        string uploadId = (await Wire.JsonAsync(created)).Id();
        FillDisk();
        Free(Bytes / Page);
        var form = new MultipartFormDataContent { { new ByteArrayContent(RandomNumberGenerator.GetBytes(Bytes)), "data", "part" } };
        using (var refused = await _client.PostAsync($"/v1/uploads/{uploadId}/parts", form))
        {
            await Wire.AssertErrorAsync(refused, 507, code: "insufficient_storage");
        }
        Assert.Equal(before.Order(), BlobFiles().Order());
        Assert.Equal(Bytes, FreeBytes);

        // Room again: ready, and uploads work.
        File.Delete(FillerPath);
        using (var ready = await _client.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }
        var d = await UploadAsync(1024 * 1024);
        await AssertContentAsync(d.Id, d.Content);
        await AssertContentAsync(b.Id, b.Content);
    }
}
