using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;

namespace Wharf.Core.Tests;

public sealed class FileServiceTests
{
    private const string Ws = "ws_00000000000000000000000000000001";
    private const string OtherWs = "ws_00000000000000000000000000000002";
    private static readonly DateTimeOffset Start = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly CallLog _log = new();
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeFileCatalog _catalog;
    private readonly FakeBlobStore _blobs;
    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeFileCopyCatalog _copies = new();
    private readonly FileService _service;
    private readonly FakeDeferredBlobDeletions _deferred = new(new CallLog());

    public FileServiceTests()
    {
        _catalog = new FakeFileCatalog(_log, _workspaces, _time);
        _workspaces.FileCatalog = _catalog;
        _blobs = new FakeBlobStore(_log);
        var options = Microsoft.Extensions.Options.Options.Create(new FilesOptions { MaxUploadBytes = 1024, ExtraPurposes = ["document"] });
        _service = new FileService(_catalog, _workspaces, new EmptyUploadCatalog(), _blobs, new FakeProviderRegistry("local", "openai"), _copies, _deferred, _copies.Deleter(_time), new FilePurposes(options),
            new IdGenerator(_time), options, _time, NullLogger<FileService>.Instance);
    }

    private async Task<StagedBlob> StageAsync(string text = "hello", string workspace = Ws)
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        var staged = await _service.StageAsync(workspace, stream, CancellationToken.None);
        Assert.True(staged.IsOk, staged.Error?.Message);
        return staged.Value;
    }

    private async Task<FileRecord> CreateAsync(FileUploadRequest request, string workspace = Ws, string text = "hello")
    {
        await using var staged = await StageAsync(text, workspace);
        var result = await _service.CreateAsync(workspace, request, staged, CancellationToken.None);
        Assert.True(result.IsOk, result.Error?.Message);
        return result.Value;
    }

    [Fact]
    public async Task StageRefusesContentOverTheMaximum()
    {
        using var stream = new MemoryStream(new byte[1025]);
        var result = await _service.StageAsync(Ws, stream, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(413, result.Error.Status);
        Assert.Equal("file_too_large", result.Error.Code);
        Assert.Equal(1024, _service.MaxUploadBytes);
        Assert.Equal(0, _blobs.Staged);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public async Task MissingPurpose(string? purpose)
    {
        await using var staged = await StageAsync();
        // Every other field is bad too: the purpose is checked first.
        var request = new FileUploadRequest { Purpose = purpose, Filename = "", Metadata = "[]", Provider = "nope" };
        var result = await _service.CreateAsync(Ws, request, staged, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("purpose", result.Error.Param);
        Assert.Equal("missing_required_parameter", result.Error.Code);
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);
    }

    [Theory]
    [InlineData("batch_output")]
    [InlineData("unknown")]
    [InlineData("Assistants")]
    public async Task PurposeThatCannotBeUploaded(string purpose)
    {
        await using var staged = await StageAsync();
        var result = await _service.CreateAsync(Ws, new FileUploadRequest { Purpose = purpose, Filename = "a.txt" }, staged, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("purpose", result.Error.Param);
        Assert.Contains("assistants", result.Error.Message, StringComparison.Ordinal);
        Assert.Contains("document", result.Error.Message, StringComparison.Ordinal);
        Assert.Empty(_catalog.Files);
    }

    [Theory]
    [InlineData("", null, null, null, null, "file")]
    [InlineData("a.txt", "{bad", null, null, null, "metadata")]
    [InlineData("a.txt", null, "", null, null, "collection")]
    [InlineData("a.txt", null, null, "nope", null, "provider")]
    [InlineData("a.txt", null, null, null, "10", "expires_after[seconds]")]
    public async Task InvalidFieldsNameTheirParameter(string filename, string? metadata, string? collection, string? provider, string? seconds, string param)
    {
        await using var staged = await StageAsync();
        var request = new FileUploadRequest
        {
            Purpose = "assistants",
            Filename = filename,
            Metadata = metadata,
            Collection = collection,
            Provider = provider,
            ExpiresAfterAnchor = seconds is null ? null : "created_at",
            ExpiresAfterSeconds = seconds,
        };
        var result = await _service.CreateAsync(Ws, request, staged, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal(param, result.Error.Param);
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);
        Assert.DoesNotContain(_log.Calls, c => c.StartsWith("commit:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UnknownProviderIsA400OnProvider()
    {
        await using var staged = await StageAsync();
        var result = await _service.CreateAsync(Ws, new FileUploadRequest { Purpose = "assistants", Filename = "a.txt", Provider = "groq" }, staged, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("provider", result.Error.Param);
        Assert.Contains("groq", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateCommitsTheBlobBeforeInsertingTheRow()
    {
        var file = await CreateAsync(new FileUploadRequest
        {
            Purpose = "assistants",
            Filename = "r\u00e9sum\u00e9\r\n.txt",
            ContentType = "text/plain",
            Metadata = """{"team":"a"}""",
            Collection = "docs",
        });

        Assert.Equal(new[] { "commit:" + file.Id, "insert:" + file.Id }, _log.Calls);
        Assert.True(WharfIds.IsFileId(file.Id));
        Assert.Equal(Ws, file.WorkspaceId);
        Assert.Equal(5, file.Bytes);
        Assert.Equal(Start.ToUnixTimeSeconds(), file.CreatedAt);
        Assert.Equal("r\u00e9sum\u00e9.txt", file.Filename);
        Assert.Equal("assistants", file.Purpose);
        Assert.Equal(FileStatus.Processed, file.Status);
        Assert.Null(file.ExpiresAt);
        Assert.Equal("a", file.Metadata["team"]);
        Assert.Equal("docs", file.Collection);
        Assert.Equal("local", file.Provider);
        Assert.Equal("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", file.Sha256);
        Assert.Equal("text/plain", file.ContentType);
        Assert.Same(file, _catalog.Files[file.Id]);
        Assert.Equal("hello", Encoding.UTF8.GetString(_blobs.Blobs[file.Id]));
    }

    [Theory]
    [InlineData("text/plain; charset=\u00e9")]
    [InlineData("text/plain\u0001")]
    public async Task AContentTypeThatCannotBeSentBackIsA400OnFile(string contentType)
    {
        await using var staged = await StageAsync();
        var result = await _service.CreateAsync(Ws, new FileUploadRequest { Purpose = "assistants", Filename = "a.txt", ContentType = contentType }, staged, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(("file", "invalid_content_type"), (result.Error.Param, result.Error.Code));
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);
    }

    [Fact]
    public async Task CreateWithoutContentTypeOrMetadata()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "vision", Filename = "a.png", ContentType = " " });
        Assert.Null(file.ContentType);
        Assert.Empty(file.Metadata);
        Assert.Null(file.Collection);
    }

    [Fact]
    public async Task CreateWithExplicitLocalProvider()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "user_data", Filename = "a.txt", Provider = "local" });
        Assert.Equal("local", file.Provider);
    }

    [Fact]
    public async Task AProviderWithoutAFilesApiIsA400OnProviderAndKeepsNothing()
    {
        await using var staged = await StageAsync();
        var result = await _service.CreateAsync(Ws, new FileUploadRequest { Purpose = "user_data", Filename = "a.txt", Provider = "openai" }, staged, CancellationToken.None);
        var error = result.ErrorOf();
        Assert.Equal((400, "provider", "provider_without_files"), (error.Status, error.Param, error.Code));
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);
    }

    [Fact]
    public async Task BatchFilesExpireInThirtyDays()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "batch", Filename = "in.jsonl" });
        Assert.Equal(file.CreatedAt + 2_592_000, file.ExpiresAt);
    }

    [Fact]
    public async Task ExplicitExpiry()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a", ExpiresAfterAnchor = "created_at", ExpiresAfterSeconds = "3600" });
        Assert.Equal(file.CreatedAt + 3600, file.ExpiresAt);
    }

    [Fact]
    public async Task LaterFilesHaveGreaterIds()
    {
        var a = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" });
        var b = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "b" });
        Assert.True(string.CompareOrdinal(b.Id, a.Id) > 0);
    }

    [Theory]
    [InlineData("file-abc")]
    [InlineData("../../etc/passwd")]
    [InlineData("file-zzzzzzzzzzzzzzzzzzzzzz")]
    [InlineData("")]
    public async Task GetOfMalformedIdIsNoSuchFileWithoutTouchingTheCatalog(string id)
    {
        var result = await _service.GetAsync(Ws, id, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(404, result.Error.Status);
        Assert.Equal("No such File object: " + id, result.Error.Message);
        Assert.Equal("id", result.Error.Param);
        Assert.Null(result.Error.Code);
        Assert.Empty(_log.Calls);
    }

    [Fact]
    public async Task GetOfUnknownIdIsNoSuchFile()
    {
        string id = WharfIds.File(new IdGenerator(_time).Next());
        var result = await _service.GetAsync(Ws, id, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(404, result.Error.Status);
        Assert.Equal("No such File object: " + id, result.Error.Message);
    }

    [Fact]
    public async Task GetOfAnotherWorkspacesFileIsNoSuchFile()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" }, OtherWs);
        var result = await _service.GetAsync(Ws, file.Id, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(404, result.Error.Status);
        Assert.True((await _service.GetAsync(OtherWs, file.Id, CancellationToken.None)).IsOk);
    }

    [Fact]
    public async Task ExpiredFileIsNotFound()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a", ExpiresAfterAnchor = "created_at", ExpiresAfterSeconds = "3600" });
        Assert.True((await _service.GetAsync(Ws, file.Id, CancellationToken.None)).IsOk);

        _time.Advance(TimeSpan.FromSeconds(3599));
        Assert.True((await _service.GetAsync(Ws, file.Id, CancellationToken.None)).IsOk);

        _time.Advance(TimeSpan.FromSeconds(1));
        var result = await _service.GetAsync(Ws, file.Id, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(404, result.Error.Status);
        Assert.Equal(404, (await _service.OpenContentAsync(Ws, file.Id, CancellationToken.None)).ErrorOf().Status);
    }

    [Fact]
    public async Task OpenContentStreamsTheCommittedBytes()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" }, text: "content!");
        var result = await _service.OpenContentAsync(Ws, file.Id, CancellationToken.None);
        Assert.True(result.IsOk);
        await using var content = result.Value;
        using var reader = new StreamReader(content.Content);
        Assert.Equal("content!", await reader.ReadToEndAsync());
        Assert.Equal(file.Id, content.File.Id);
    }

    [Fact]
    public async Task OpenContentOfARowWithoutBlobIsNoSuchFile()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" });
        _blobs.Blobs.Clear();
        var result = await _service.OpenContentAsync(Ws, file.Id, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(404, result.Error.Status);
    }

    [Fact]
    public async Task DeleteRemovesTheRowThenTheBlobAndASecondDeleteIs404()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" });
        _log.Calls.Clear();

        var deleted = await _service.DeleteAsync(Ws, file.Id, CancellationToken.None);
        Assert.True(deleted.IsOk);
        Assert.Equal(file.Id, deleted.Value.Id);
        int row = _log.Calls.IndexOf("delete:" + file.Id);
        int blob = _log.Calls.IndexOf("blob-delete:" + file.Id);
        Assert.True(row >= 0 && blob > row, string.Join(", ", _log.Calls));
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);

        var again = await _service.DeleteAsync(Ws, file.Id, CancellationToken.None);
        Assert.False(again.IsOk);
        Assert.Equal(404, again.Error.Status);
    }

    [Fact]
    public async Task ADeleteWhoseBlobCannotBeRemovedYetIsStillDoneAndLeavesTheBytesToTheSweep()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" });
        _blobs.DeletesFail = true;

        var deleted = await _service.DeleteAsync(Ws, file.Id, CancellationToken.None);

        Assert.True(deleted.IsOk);
        Assert.Empty(_catalog.Files);
        Assert.True(_blobs.Blobs.ContainsKey(file.Id)); // an orphan now, for the sweep
        Assert.Contains("blob-delete:" + file.Id, _log.Calls);
    }

    [Fact]
    public async Task DeleteOfAnotherWorkspacesFileIs404AndKeepsIt()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" }, OtherWs);
        var result = await _service.DeleteAsync(Ws, file.Id, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(404, result.Error.Status);
        Assert.True(_catalog.Files.ContainsKey(file.Id));
        Assert.True(_blobs.Blobs.ContainsKey(file.Id));
    }

    [Fact]
    public async Task ListValidatesTheQuery()
    {
        var result = await _service.ListAsync(Ws, new FileListRequest { Limit = "0" }, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal("limit", result.Error.Param);
        Assert.DoesNotContain("list", _log.Calls);

        await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" });
        var ok = await _service.ListAsync(Ws, new FileListRequest(), CancellationToken.None);
        Assert.Single(ok.Value.Items);
    }

    [Fact]
    public async Task DeleteExpiredRemovesOnlyExpiredFiles()
    {
        var expiring = await CreateAsync(new FileUploadRequest { Purpose = "batch", Filename = "a" });
        var keeping = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "b" });
        Assert.Equal(0, await _service.DeleteExpiredAsync(CancellationToken.None));

        _time.Advance(TimeSpan.FromDays(31));
        Assert.Equal(1, await _service.DeleteExpiredAsync(CancellationToken.None));
        Assert.False(_catalog.Files.ContainsKey(expiring.Id));
        Assert.False(_blobs.Blobs.ContainsKey(expiring.Id));
        Assert.True(_catalog.Files.ContainsKey(keeping.Id));
        Assert.True(_blobs.Blobs.ContainsKey(keeping.Id));
    }

    [Fact]
    public async Task SweepOrphansRemovesOnlyBlobsWithoutRows()
    {
        var file = await CreateAsync(new FileUploadRequest { Purpose = "assistants", Filename = "a" });
        string orphan = WharfIds.File(new IdGenerator(_time).Next() + 12345);
        _blobs.Blobs[orphan] = [1, 2, 3];
        _blobs.Blobs["upload_" + new string('0', 32)] = [4];

        int removed = await _service.SweepOrphansAsync(DateTimeOffset.MaxValue, CancellationToken.None);
        Assert.Equal(1, removed);
        Assert.False(_blobs.Blobs.ContainsKey(orphan));
        Assert.True(_blobs.Blobs.ContainsKey(file.Id));
        Assert.True(_blobs.Blobs.ContainsKey("upload_" + new string('0', 32)));
    }

    // ---------------------------------------------------------------- storage quota

    private void AddWorkspace(string id = Ws, long? quota = null, long usage = 0) =>
        _workspaces.Add(new Workspace { Id = id, Name = "w", CreatedAt = 1, StorageQuotaBytes = quota, UsageBytes = usage });

    private long UsageOf(string id) => _workspaces.Live(id)!.UsageBytes;

    private async Task<Result<StagedBlob>> StageBytesAsync(int length, string workspace = Ws)
    {
        using var stream = new MemoryStream(new byte[length]);
        return await _service.StageAsync(workspace, stream, CancellationToken.None);
    }

    [Theory]
    [InlineData(100, 0, 101)]
    [InlineData(100, 60, 41)]
    [InlineData(100, 100, 1)]
    [InlineData(100, 150, 1)]
    [InlineData(0, 0, 1)]
    [InlineData(1000, 0, 1001)]
    public async Task StageRefusesContentPastTheFreeQuotaWith403(long quota, long usage, int length)
    {
        AddWorkspace(quota: quota, usage: usage);
        var result = await StageBytesAsync(length);
        Assert.False(result.IsOk);
        Assert.Equal(403, result.Error.Status);
        Assert.Equal("storage_quota_exceeded", result.Error.Code);
        Assert.Equal("file", result.Error.Param);
        Assert.Equal("permission_error", result.Error.Type);
        Assert.Equal(0, _blobs.Staged);
        Assert.Empty(_blobs.Blobs);
        Assert.Equal(usage, UsageOf(Ws));
    }

    [Theory]
    [InlineData(100, 0, 100)]
    [InlineData(100, 60, 40)]
    [InlineData(100, 100, 0)]
    [InlineData(5000, 4000, 1000)]
    public async Task StageAcceptsContentThatExactlyFillsTheQuota(long quota, long usage, int length)
    {
        AddWorkspace(quota: quota, usage: usage);
        var result = await StageBytesAsync(length);
        Assert.True(result.IsOk, result.Error?.Message);
        await using var staged = result.Value;
        Assert.Equal(length, staged.Length);
        Assert.Equal(1, _blobs.Staged);
    }

    [Fact]
    public async Task StageIs413WhenTheContentPassesMaxUploadBytesBeforeTheQuota()
    {
        AddWorkspace(quota: 10_000, usage: 1_000);
        var result = await StageBytesAsync(1025);
        Assert.False(result.IsOk);
        Assert.Equal(413, result.Error.Status);
        Assert.Equal("file_too_large", result.Error.Code);
        Assert.Contains("1024", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _blobs.Staged);

        var ok = await StageBytesAsync(1024);
        Assert.True(ok.IsOk, ok.Error?.Message);
        await ok.Value.DisposeAsync();
    }

    [Fact]
    public async Task StageWithoutAQuotaOrAWorkspaceRowIsBoundByMaxUploadBytesOnly()
    {
        AddWorkspace(quota: null, usage: 1_000_000_000);
        var ok = await StageBytesAsync(1024);
        Assert.True(ok.IsOk, ok.Error?.Message);
        await ok.Value.DisposeAsync();
        Assert.Equal(413, (await StageBytesAsync(1025)).ErrorOf().Status);

        var noRow = await StageBytesAsync(1024, OtherWs);
        Assert.True(noRow.IsOk, noRow.Error?.Message);
        await noRow.Value.DisposeAsync();
        Assert.Equal(413, (await StageBytesAsync(1025, OtherWs)).ErrorOf().Status);
    }

    [Fact]
    public async Task CreateIs403AndDeletesTheCommittedBlobWhenTheQuotaWasTakenMeanwhile()
    {
        AddWorkspace(quota: 100);
        await using var staged = await StageAsync("0123456789");
        // Another upload of the workspace finished while this one streamed.
        _workspaces.SetUsage(Ws, 95);

        var result = await _service.CreateAsync(Ws, new FileUploadRequest { Purpose = "assistants", Filename = "a.txt" }, staged, CancellationToken.None);
        Assert.False(result.IsOk);
        Assert.Equal(403, result.Error.Status);
        Assert.Equal("storage_quota_exceeded", result.Error.Code);
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);
        string id = Assert.Single(_log.Calls, c => c.StartsWith("commit:", StringComparison.Ordinal))["commit:".Length..];
        Assert.Equal(new[] { "commit:" + id, "insert:" + id, "insert-refused:" + id, "blob-delete:" + id }, _log.Calls);
        Assert.Equal(95, UsageOf(Ws));
    }

    [Fact]
    public async Task CreateAndDeleteKeepTheWorkspaceUsageUpToTheQuota()
    {
        AddWorkspace(quota: 12);
        var request = new FileUploadRequest { Purpose = "assistants", Filename = "a" };
        var first = await CreateAsync(request, text: "hello");
        Assert.Equal(5, UsageOf(Ws));
        await CreateAsync(request, text: "world!!");
        Assert.Equal(12, UsageOf(Ws));

        Assert.Equal(403, (await StageBytesAsync(1)).ErrorOf().Status);

        Assert.True((await _service.DeleteAsync(Ws, first.Id, CancellationToken.None)).IsOk);
        Assert.Equal(7, UsageOf(Ws));
        await CreateAsync(request, text: "again");
        Assert.Equal(12, UsageOf(Ws));
    }

    // ---------------------------------------------------------------- deleted workspaces

    private readonly IdGenerator _fileIds = new(TimeProvider.System);

    private async Task<FileRecord> AddFileAsync(string workspace, long? expiresAt = null)
    {
        var file = new FileRecord
        {
            Id = WharfIds.File(_fileIds.Next()),
            WorkspaceId = workspace,
            Bytes = 3,
            CreatedAt = Start.ToUnixTimeSeconds(),
            Filename = "f",
            Purpose = "assistants",
            Status = FileStatus.Processed,
            ExpiresAt = expiresAt,
            Provider = "local",
            Sha256 = new string('0', 64),
        };
        Assert.Equal(FileInsertOutcome.Inserted, await _catalog.InsertAsync(file, CancellationToken.None));
        _blobs.Blobs[file.Id] = [1, 2, 3];
        return file;
    }

    [Fact]
    public async Task PurgeDeletedWorkspacesRemovesTheirFilesThenBlobsThenRows()
    {
        const string Empty = "ws_00000000000000000000000000000003";
        AddWorkspace(Ws);
        AddWorkspace(OtherWs);
        AddWorkspace(Empty);
        var gone = new List<FileRecord>();
        for (int i = 0; i < 1201; i++)
        {
            // More than two pages of 500.
            gone.Add(await AddFileAsync(Ws));
        }
        var kept = await AddFileAsync(OtherWs);
        Assert.Equal(1201 * 3, UsageOf(Ws));
        Assert.True(await _workspaces.DeleteWorkspaceAsync(Ws, 10, CancellationToken.None));
        Assert.True(await _workspaces.DeleteWorkspaceAsync(Empty, 11, CancellationToken.None));
        _log.Calls.Clear();

        Assert.Equal(1201, await _service.PurgeDeletedWorkspacesAsync(CancellationToken.None));

        Assert.All(gone, f =>
        {
            Assert.False(_catalog.Files.ContainsKey(f.Id));
            Assert.False(_blobs.Blobs.ContainsKey(f.Id));
            int row = _log.Calls.IndexOf("delete:" + f.Id);
            Assert.True(row >= 0 && _log.Calls.IndexOf("blob-delete:" + f.Id) > row);
        });
        Assert.True(_catalog.Files.ContainsKey(kept.Id));
        Assert.True(_blobs.Blobs.ContainsKey(kept.Id));
        Assert.DoesNotContain("delete:" + kept.Id, _log.Calls);
        Assert.False(_workspaces.HasRow(Ws));
        Assert.False(_workspaces.HasRow(Empty));
        Assert.NotNull(_workspaces.Live(OtherWs));
        Assert.Empty(await _workspaces.ListDeletedWorkspacesAsync(100, CancellationToken.None));

        Assert.Equal(0, await _service.PurgeDeletedWorkspacesAsync(CancellationToken.None));
    }

    [Fact]
    public async Task PurgeLeavesLiveWorkspacesAlone()
    {
        AddWorkspace(Ws);
        var file = await AddFileAsync(Ws);
        Assert.Equal(0, await _service.PurgeDeletedWorkspacesAsync(CancellationToken.None));
        Assert.True(_catalog.Files.ContainsKey(file.Id));
        Assert.True(_blobs.Blobs.ContainsKey(file.Id));
        Assert.NotNull(_workspaces.Live(Ws));
        Assert.DoesNotContain(_workspaces.Calls, c => c.StartsWith("purge:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PurgeKeepsADeletedWorkspacesRowUntilItsExpiredFilesAreSwept()
    {
        AddWorkspace(Ws);
        var live = await AddFileAsync(Ws);
        var expired = await AddFileAsync(Ws, expiresAt: Start.ToUnixTimeSeconds() + 10);
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.True(await _workspaces.DeleteWorkspaceAsync(Ws, 10, CancellationToken.None));

        Assert.Equal(1, await _service.PurgeDeletedWorkspacesAsync(CancellationToken.None));
        Assert.False(_catalog.Files.ContainsKey(live.Id));
        Assert.True(_workspaces.HasRow(Ws));
        Assert.Equal(new[] { Ws }, await _workspaces.ListDeletedWorkspacesAsync(100, CancellationToken.None));

        Assert.Equal(1, await _service.DeleteExpiredAsync(CancellationToken.None));
        Assert.False(_blobs.Blobs.ContainsKey(expired.Id));
        Assert.Equal(0, await _service.PurgeDeletedWorkspacesAsync(CancellationToken.None));
        Assert.False(_workspaces.HasRow(Ws));
    }
}
