using System.Text.Json;
using Wharf.Cli.Tests.Infrastructure;

namespace Wharf.Cli.Tests;

/// <summary><c>wharf files upload|ls|get|download|rm</c> of small files: JSON output, cursors, resumed downloads.</summary>
[Collection(CliCollection.Name)]
public sealed class FileListingAndDownloadTests(CliServerFixture fixture)
{
    [Fact]
    public async Task Ls_json_is_one_document_and_all_follows_the_cursors_across_pages()
    {
        string collection = "c-" + Guid.NewGuid().ToString("N");
        var paths = Enumerable.Range(1, 5).Select(i => TestFiles.Random($"small-{collection}-{i}.txt", 1000 + i, seed: i).Path).ToArray();
        using var cli = fixture.Cli();

        var upload = await cli.RunAsync(["files", "upload", .. paths, "--collection", collection, "--metadata", "team=search", "--metadata", "night=1", "--json"]);

        Assert.True(upload.ExitCode == 0, upload.ToString());
        var uploaded = JsonDocument.Parse(upload.Stdout).RootElement.GetProperty("data").EnumerateArray()
            .Select(f => f.GetProperty("id").GetString()!).ToHashSet();
        Assert.Equal(5, uploaded.Count);

        var firstPage = await cli.RunAsync("files", "ls", "--collection", collection, "--limit", "2", "--json");
        Assert.True(firstPage.ExitCode == 0, firstPage.ToString());
        var page = JsonDocument.Parse(firstPage.Stdout).RootElement;
        Assert.Equal(2, page.GetProperty("data").GetArrayLength());
        Assert.True(page.GetProperty("has_more").GetBoolean());
        Assert.Contains("--after " + page.GetProperty("last_id").GetString(), firstPage.Stderr);

        fixture.Proxy.Clear();
        var all = await cli.RunAsync("files", "ls", "--collection", collection, "--metadata", "team=search", "--limit", "2", "--all", "--json");

        Assert.True(all.ExitCode == 0, all.ToString());
        var list = JsonDocument.Parse(all.Stdout).RootElement;
        Assert.Equal("list", list.GetProperty("object").GetString());
        var listed = list.GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()!).ToList();
        Assert.Equal(uploaded.Order(StringComparer.Ordinal).Reverse(), listed);
        Assert.False(list.GetProperty("has_more").GetBoolean());
        Assert.Equal(listed[0], list.GetProperty("first_id").GetString());
        Assert.Equal(listed[^1], list.GetProperty("last_id").GetString());
        var pages = fixture.Proxy.Seen.Where(r => r.PathAndQuery.StartsWith("/v1/files?", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, pages.Count);
        Assert.Equal(2, pages.Count(r => r.PathAndQuery.Contains("after=file-", StringComparison.Ordinal)));
        Assert.All(pages, r => Assert.Contains("metadata.team=search", r.PathAndQuery));

        var table = await cli.RunAsync("files", "ls", "--collection", collection);
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.All(uploaded, id => Assert.Contains(id, table.Stdout));

        var removed = await cli.RunAsync(["files", "rm", .. uploaded, "--json"]);
        Assert.True(removed.ExitCode == 0, removed.ToString());
        Assert.Equal(5, JsonDocument.Parse(removed.Stdout).RootElement.GetProperty("data").EnumerateArray().Count(d => d.GetProperty("deleted").GetBoolean()));
        var empty = await cli.RunAsync("files", "ls", "--collection", collection, "--json");
        Assert.Equal(0, JsonDocument.Parse(empty.Stdout).RootElement.GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task A_shorter_file_at_the_output_path_is_resumed_with_a_range_and_checked()
    {
        var (path, sha256) = TestFiles.Random("resume-download.bin", 3 * 1024 * 1024 + 17, seed: 33);
        using var cli = fixture.Cli();
        var upload = await cli.RunAsync("files", "upload", path, "--json");
        Assert.True(upload.ExitCode == 0, upload.ToString());
        string id = JsonDocument.Parse(upload.Stdout).RootElement.GetProperty("id").GetString()!;
        string target = Path.Combine(TestFiles.Directory, "resume-download.out");
        using (var source = File.OpenRead(path))
        using (var partial = File.Create(target))
        {
            var head = new byte[1024 * 1024];
            source.ReadExactly(head);
            partial.Write(head);
        }
        fixture.Proxy.Clear();

        var download = await cli.RunAsync("files", "download", id, "-o", target, "--json");

        Assert.True(download.ExitCode == 0, download.ToString());
        Assert.Equal(sha256, TestFiles.Sha256Of(target));
        var result = JsonDocument.Parse(download.Stdout).RootElement;
        Assert.Equal(1024 * 1024, result.GetProperty("resumed_from").GetInt64());
        var content = Assert.Single(fixture.Proxy.Seen, r => r.PathAndQuery == $"/v1/files/{id}/content");
        Assert.Equal("bytes=1048576-", content.Range);
        Assert.Equal($"\"{sha256}\"", content.IfRange);
        Assert.Equal(206, content.Status);
        Assert.Equal(2 * 1024 * 1024 + 17, content.ResponseBytes);

        // Bytes that are not the file's beginning: found by the SHA-256 check and downloaded again whole.
        using (var wrong = new FileStream(target, FileMode.Open))
        {
            wrong.SetLength(1024 * 1024);
            wrong.Position = 10;
            wrong.Write("not the same bytes"u8);
        }
        fixture.Proxy.Clear();

        var again = await cli.RunAsync("files", "download", id, "-o", target);

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(sha256, TestFiles.Sha256Of(target));
        Assert.Contains("was not the start of " + id, again.Stderr);
        Assert.Equal([206, 200], fixture.Proxy.Seen.Where(r => r.PathAndQuery.EndsWith("/content", StringComparison.Ordinal)).Select(r => r.Status));

        // Whole and the same: nothing is fetched; a different file of the same size is not overwritten without --force.
        fixture.Proxy.Clear();
        var there = await cli.RunAsync("files", "download", id, "-o", target);
        Assert.True(there.ExitCode == 0, there.ToString());
        Assert.Contains("already there", there.Stdout);
        Assert.DoesNotContain(fixture.Proxy.Seen, r => r.PathAndQuery.EndsWith("/content", StringComparison.Ordinal));
        File.WriteAllBytes(target, new byte[3 * 1024 * 1024 + 17]);
        var refused = await cli.RunAsync("files", "download", id, "-o", target);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--force", refused.Stderr);
        var forced = await cli.RunAsync("files", "download", id, "-o", target, "--force");
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Equal(sha256, TestFiles.Sha256Of(target));
        File.Delete(target);
        File.Delete(path);
    }

    [Fact]
    public async Task Get_prints_the_file_and_an_unknown_id_prints_the_servers_message_and_fails()
    {
        var (path, sha256) = TestFiles.Random("get-me.jsonl", 2048, seed: 7);
        using var cli = fixture.Cli();
        var upload = await cli.RunAsync("files", "upload", path, "--purpose", "batch", "--json");
        string id = JsonDocument.Parse(upload.Stdout).RootElement.GetProperty("id").GetString()!;

        var get = await cli.RunAsync("files", "get", id, "--json");
        Assert.True(get.ExitCode == 0, get.ToString());
        var file = JsonDocument.Parse(get.Stdout).RootElement;
        Assert.Equal(sha256, file.GetProperty("sha256").GetString());
        Assert.Equal("batch", file.GetProperty("purpose").GetString());

        var missing = await cli.RunAsync("files", "get", "file-0000000000000000000000");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("error: No such File object: file-0000000000000000000000", missing.Stderr);
        Assert.Contains("request id: req_", missing.Stderr);
        Assert.Equal("", missing.Stdout);
        File.Delete(path);
    }
}
