using System.Text.Json;
using Wharf.Cli.Tests.Infrastructure;

namespace Wharf.Cli.Tests;

/// <summary>
/// <c>wharf files upload</c> above 64 MiB: the Uploads API in parallel parts (with the file's metadata and collection),
/// and resumed after a kill.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class FileUploadTests(CliServerFixture fixture)
{
    private const long MiB = 1024 * 1024;

    /// <summary>The most resident memory the CLI may reach while it moves 150 MB.</summary>
    private const long MemoryCeiling = 96 * MiB;

    [Fact]
    public async Task A_150_MB_file_goes_up_in_three_parts_and_downloads_with_the_same_sha256_in_bounded_memory()
    {
        var (path, sha256) = TestFiles.Random("big-150.bin", 150 * MiB, seed: 150);
        using var cli = fixture.Cli();
        fixture.Proxy.Clear();

        var upload = await cli.RunAsync("files", "upload", path, "--purpose", "user_data", "--json");

        Assert.True(upload.ExitCode == 0, upload.ToString());
        // Streamed from the disk: a part held in memory (64 MiB) would take the CLI well past this (it idles near 50 MiB).
        Assert.InRange(upload.PeakMemoryBytes, 1, MemoryCeiling);
        var file = JsonDocument.Parse(upload.Stdout).RootElement;
        Assert.Equal("file", file.GetProperty("object").GetString());
        Assert.Equal(150 * MiB, file.GetProperty("bytes").GetInt64());
        Assert.Equal("big-150.bin", file.GetProperty("filename").GetString());
        var seen = fixture.Proxy.Seen;
        Assert.Equal(3, seen.Count(r => r.IsPart && r.Status == 200));
        Assert.DoesNotContain(seen, r => r.Method == "POST" && r.PathAndQuery == "/v1/files");
        Assert.Single(seen, r => r.Method == "POST" && r.PathAndQuery.EndsWith("/complete", StringComparison.Ordinal));
        // No terminal: progress as plain lines on stderr; the state of the finished upload is gone.
        Assert.Contains("150.0 MiB", upload.Stderr);
        Assert.Contains("uploaded as " + file.GetProperty("id").GetString(), upload.Stderr);
        Assert.Empty(Directory.Exists(cli.UploadStateDir) ? Directory.GetFiles(cli.UploadStateDir) : []);

        string target = Path.Combine(TestFiles.Directory, "big-150.downloaded");
        var download = await cli.RunAsync("files", "download", file.GetProperty("id").GetString()!, "-o", target, "--json");

        Assert.True(download.ExitCode == 0, download.ToString());
        Assert.InRange(download.PeakMemoryBytes, 1, MemoryCeiling);
        Assert.Equal(sha256, TestFiles.Sha256Of(target));
        File.Delete(target);
        File.Delete(path);
    }

    [Fact]
    public async Task An_upload_killed_after_a_part_was_accepted_resumes_and_sends_only_the_missing_parts()
    {
        var (path, sha256) = TestFiles.Random("resume-150.bin", 150 * MiB, seed: 1500);
        using var cli = fixture.Cli();
        fixture.Proxy.Clear();
        // One part reaches the server; its answer never reaches the CLI, and the other parts are held.
        fixture.Proxy.PartsToLetThrough = 1;
        fixture.Proxy.WithholdPartAnswers = true;
        string uploadId;
        string acceptedPart;
        using (var first = cli.Start("files", "upload", path, "--json"))
        {
            uploadId = await PollAsync(() => Task.FromResult(UploadIdIn(cli.UploadStateDir)));
            acceptedPart = await PollAsync(async () =>
            {
                var parts = (await fixture.GetAsync($"/v1/uploads/{uploadId}")).GetProperty("parts");
                return parts.GetArrayLength() > 0 ? parts[0].GetProperty("id").GetString() : null;
            });
            first.Kill();
            Assert.True(first.HasExited);
        }
        fixture.Proxy.ReleaseHeld();
        var held = (await fixture.GetAsync($"/v1/uploads/{uploadId}")).GetProperty("parts");
        Assert.Equal(1, held.GetArrayLength());
        Assert.Equal(acceptedPart, held[0].GetProperty("id").GetString());
        Assert.Equal("pending", (await fixture.GetAsync($"/v1/uploads/{uploadId}")).GetProperty("status").GetString());
        fixture.Proxy.Clear();

        var second = await cli.RunAsync("files", "upload", path, "--json");

        Assert.True(second.ExitCode == 0, second.ToString());
        var seen = fixture.Proxy.Seen;
        // Only the two parts the server did not have were sent, to the same upload, which was completed.
        Assert.Equal(2, seen.Count(r => r.IsPart));
        Assert.All(seen.Where(r => r.IsPart), r => Assert.Equal($"/v1/uploads/{uploadId}/parts", r.PathAndQuery));
        Assert.DoesNotContain(seen, r => r.Method == "POST" && r.PathAndQuery == "/v1/uploads");
        Assert.Contains($"resuming {uploadId}, 1 of 3 parts already on the server; sending 2", second.Stderr);
        var upload = await fixture.GetAsync($"/v1/uploads/{uploadId}");
        Assert.Equal("completed", upload.GetProperty("status").GetString());
        var file = JsonDocument.Parse(second.Stdout).RootElement;
        Assert.Equal(upload.GetProperty("file").GetProperty("id").GetString(), file.GetProperty("id").GetString());
        Assert.Equal(150 * MiB, file.GetProperty("bytes").GetInt64());

        string target = Path.Combine(TestFiles.Directory, "resume-150.downloaded");
        var download = await cli.RunAsync("files", "download", file.GetProperty("id").GetString()!, "-o", target);
        Assert.True(download.ExitCode == 0, download.ToString());
        Assert.Equal(sha256, TestFiles.Sha256Of(target));
        File.Delete(target);
        File.Delete(path);
    }

    /// <summary>
    /// Metadata and a collection on a file above 64 MiB go with the Uploads API's create, so the file it becomes is
    /// listed by those filters like a small one; the create carries them, not the parts.
    /// </summary>
    [Fact]
    public async Task A_file_above_64_MiB_uploaded_with_metadata_and_a_collection_is_listed_by_them()
    {
        var (path, _) = TestFiles.Random("big-65-tagged.bin", 65 * MiB, seed: 65);
        string collection = "nightly-" + Guid.NewGuid().ToString("N")[..8];
        using var cli = fixture.Cli();
        fixture.Proxy.Clear();

        var upload = await cli.RunAsync("files", "upload", path, "--metadata", "team=search", "--metadata", "run=7", "--collection", collection, "--json");

        Assert.True(upload.ExitCode == 0, upload.ToString());
        var file = JsonDocument.Parse(upload.Stdout).RootElement;
        string fileId = file.GetProperty("id").GetString()!;
        Assert.Equal(65 * MiB, file.GetProperty("bytes").GetInt64());
        Assert.Equal(collection, file.GetProperty("collection").GetString());
        Assert.Equal("search", file.GetProperty("metadata").GetProperty("team").GetString());
        Assert.Equal(2, fixture.Proxy.Seen.Count(r => r.IsPart && r.Status == 200));
        Assert.Single(fixture.Proxy.Seen, r => r.Method == "POST" && r.PathAndQuery == "/v1/uploads");
        Assert.DoesNotContain(fixture.Proxy.Seen, r => r.Method == "POST" && r.PathAndQuery == "/v1/files");

        var listed = await cli.RunAsync("files", "ls", "--metadata", "team=search", "--metadata", "run=7", "--collection", collection, "--json");
        Assert.True(listed.ExitCode == 0, listed.ToString());
        Assert.Equal([fileId], JsonDocument.Parse(listed.Stdout).RootElement.GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()!));
        var other = await cli.RunAsync("files", "ls", "--metadata", "team=other", "--collection", collection, "--json");
        Assert.True(other.ExitCode == 0, other.ToString());
        Assert.Equal(0, JsonDocument.Parse(other.Stdout).RootElement.GetProperty("data").GetArrayLength());

        var removed = await cli.RunAsync("files", "rm", fileId, "--json");
        Assert.True(removed.ExitCode == 0, removed.ToString());
        File.Delete(path);
    }

    [Fact]
    public async Task A_bad_collection_on_a_file_above_64_MiB_is_the_servers_400_naming_it_and_no_part_is_sent()
    {
        string path = Path.Combine(TestFiles.Directory, "big-65.bin");
        using (var sparse = File.Create(path))
        {
            sparse.SetLength(65 * MiB);
        }
        using var cli = fixture.Cli();
        fixture.Proxy.Clear();

        var result = await cli.RunAsync("files", "upload", path, "--collection", new string('c', 257));

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("collection", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.Proxy.Seen, r => r.IsPart);
        File.Delete(path);
    }

    /// <summary>
    /// An interrupted upload asked again with another collection is not resumed: the old upload (created for the other
    /// collection) is cancelled and a new one made, so the file carries what the last command asked for.
    /// </summary>
    [Fact]
    public async Task An_interrupted_upload_asked_again_with_another_collection_starts_again_with_it()
    {
        var (path, _) = TestFiles.Random("restart-65.bin", 65 * MiB, seed: 650);
        using var cli = fixture.Cli();
        fixture.Proxy.Clear();
        fixture.Proxy.PartsToLetThrough = 1;
        fixture.Proxy.WithholdPartAnswers = true;
        string oldUpload;
        using (var first = cli.Start("files", "upload", path, "--collection", "first-try", "--json"))
        {
            oldUpload = await PollAsync(() => Task.FromResult(UploadIdIn(cli.UploadStateDir)));
            await PollAsync(async () =>
                (await fixture.GetAsync($"/v1/uploads/{oldUpload}")).GetProperty("parts").GetArrayLength() > 0 ? "held" : null);
            first.Kill();
        }
        fixture.Proxy.ReleaseHeld();
        Assert.Equal("first-try", (await fixture.GetAsync($"/v1/uploads/{oldUpload}")).GetProperty("collection").GetString());
        fixture.Proxy.Clear();

        var second = await cli.RunAsync("files", "upload", path, "--collection", "second-try", "--json");

        Assert.True(second.ExitCode == 0, second.ToString());
        var file = JsonDocument.Parse(second.Stdout).RootElement;
        Assert.Equal("second-try", file.GetProperty("collection").GetString());
        Assert.Equal("cancelled", (await fixture.GetAsync($"/v1/uploads/{oldUpload}")).GetProperty("status").GetString());
        Assert.Single(fixture.Proxy.Seen, r => r.Method == "POST" && r.PathAndQuery == "/v1/uploads");
        Assert.Equal(2, fixture.Proxy.Seen.Count(r => r.IsPart && r.Status == 200));
        var removed = await cli.RunAsync("files", "rm", file.GetProperty("id").GetString()!);
        Assert.True(removed.ExitCode == 0, removed.ToString());
        File.Delete(path);
    }

    private static string? UploadIdIn(string stateDir)
    {
        if (!Directory.Exists(stateDir))
        {
            return null;
        }
        foreach (string state in Directory.GetFiles(stateDir, "*.json"))
        {
            try
            {
                return JsonDocument.Parse(File.ReadAllText(state)).RootElement.GetProperty("upload_id").GetString();
            }
            catch (IOException)
            {
            }
        }
        return null;
    }

    private static async Task<T> PollAsync<T>(Func<Task<T?>> probe)
        where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (await probe() is { } value)
            {
                return value;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException("The condition was not met within 60 s.");
    }
}
