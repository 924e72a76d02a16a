using System.ClientModel;
using System.Security.Cryptography;
using System.Text;
using OpenAI.Files;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>The Files API as the official OpenAI .NET SDK uses it, against the real server on the embedded store.</summary>
public sealed class SdkFilesTests(ServerFixture fixture) : SdkFilesSuite<ServerFixture>(fixture);

/// <summary>The same suite against a server on PostgreSQL + S3.</summary>
public sealed class SdkFilesOnPostgresAndS3Tests(ScaleOutServerFixture fixture) : SdkFilesSuite<ScaleOutServerFixture>(fixture);

/// <summary>The Files API as the official OpenAI .NET SDK uses it, against the real server.</summary>
public abstract class SdkFilesSuite<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : ServerFixture
{
    private readonly OpenAIFileClient _files = fixture.Server.CreateFileClient();

    [Fact]
    public async Task Upload_get_download_delete_round_trip()
    {
        byte[] content = RandomNumberGenerator.GetBytes(300_000);
        OpenAIFile uploaded = await _files.UploadFileAsync(new MemoryStream(content), "data.bin", FileUploadPurpose.Assistants);

        Assert.StartsWith("file-", uploaded.Id);
        Assert.Equal(27, uploaded.Id.Length);
        Assert.Equal("data.bin", uploaded.Filename);
        Assert.Equal(content.Length, uploaded.SizeInBytesLong);
        Assert.Equal(FilePurpose.Assistants, uploaded.Purpose);
        Assert.True(Math.Abs((uploaded.CreatedAt - DateTimeOffset.UtcNow).TotalMinutes) < 5);

        OpenAIFile fetched = await _files.GetFileAsync(uploaded.Id);
        Assert.Equal(uploaded.Id, fetched.Id);
        Assert.Equal(uploaded.SizeInBytesLong, fetched.SizeInBytesLong);

        BinaryData downloaded = await _files.DownloadFileAsync(uploaded.Id);
        Assert.Equal(content, downloaded.ToArray());

        FileDeletionResult deleted = await _files.DeleteFileAsync(uploaded.Id);
        Assert.True(deleted.Deleted);
        Assert.Equal(uploaded.Id, deleted.FileId);

        var again = await Assert.ThrowsAsync<ClientResultException>(() => _files.GetFileAsync(uploaded.Id));
        Assert.Equal(404, again.Status);
    }

    [Fact]
    public async Task GetFiles_returns_more_than_25_files_newest_first()
    {
        var ids = new List<string>();
        for (int i = 0; i < 30; i++)
        {
            OpenAIFile file = await _files.UploadFileAsync(BinaryData.FromString($"{{\"n\":{i}}}\n"), $"many-{i}.jsonl", FileUploadPurpose.FineTune);
            ids.Add(file.Id);
        }

        OpenAIFileCollection all = await _files.GetFilesAsync();
        var listed = all.Select(f => f.Id).Where(ids.Contains).ToList();

        Assert.Equal(30, listed.Count);
        ids.Reverse();
        Assert.Equal(ids, listed);

        OpenAIFileCollection fineTune = await _files.GetFilesAsync(FilePurpose.FineTune);
        Assert.All(fineTune, f => Assert.Equal(FilePurpose.FineTune, f.Purpose));
        Assert.True(fineTune.Count >= 30);
    }

    [Fact]
    public async Task Unknown_id_is_404_with_OpenAI_message()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() => _files.GetFileAsync("file-0000000000000000000000"));
        Assert.Equal(404, error.Status);
        Assert.Contains("No such File object: file-0000000000000000000000", error.Message);

        var download = await Assert.ThrowsAsync<ClientResultException>(() => _files.DownloadFileAsync("file-nope"));
        Assert.Equal(404, download.Status);

        var delete = await Assert.ThrowsAsync<ClientResultException>(() => _files.DeleteFileAsync("file-0000000000000000000000"));
        Assert.Equal(404, delete.Status);
    }

    [Fact]
    public async Task Bad_purpose_is_400_naming_the_valid_ones()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() =>
            _files.UploadFileAsync(BinaryData.FromString("x"), "x.txt", new FileUploadPurpose("bogus")));
        Assert.Equal(400, error.Status);
        Assert.Contains("assistants", error.Message);
        Assert.Contains("fine-tune", error.Message);
    }

    [Fact]
    public async Task Non_ascii_filename_is_kept()
    {
        const string name = "Übersicht – 日本語 📄.txt";
        OpenAIFile uploaded = await _files.UploadFileAsync(new MemoryStream(Encoding.UTF8.GetBytes("grüße")), name, FileUploadPurpose.UserData);
        Assert.Equal(name, uploaded.Filename);

        OpenAIFile fetched = await _files.GetFileAsync(uploaded.Id);
        Assert.Equal(name, fetched.Filename);
        Assert.Equal("grüße", (await _files.DownloadFileAsync(uploaded.Id)).Value.ToString());
    }

    [Theory]
    [InlineData("/openai/v1")]
    [InlineData("/openai")]
    public async Task Sdk_works_under_the_aliases(string prefix)
    {
        var client = fixture.Server.CreateFileClient(prefix);
        OpenAIFile uploaded = await client.UploadFileAsync(BinaryData.FromString("alias"), "alias.txt", FileUploadPurpose.Vision);
        Assert.Equal("alias", (await client.DownloadFileAsync(uploaded.Id)).Value.ToString());
        OpenAIFileCollection listed = await client.GetFilesAsync();
        Assert.Contains(listed, f => f.Id == uploaded.Id);
        FileDeletionResult deleted = await _files.DeleteFileAsync(uploaded.Id);
        Assert.True(deleted.Deleted);
    }
}
