using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Providers;

namespace Wharf.Core.Tests;

/// <summary>
/// Files on providers, with fakes: the order of an upload to a provider, what a refusal keeps (nothing), deletes of
/// upstream copies now and by the sweeper with backoff, lazy copies in one flight, copies cut by a stop.
/// </summary>
public sealed class ProviderFilesTests
{
    private const string Ws = "ws_00000000000000000000000000000001";
    private const string OtherWs = "ws_00000000000000000000000000000002";
    private static readonly DateTimeOffset Start = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static CancellationToken Ct => CancellationToken.None;

    private readonly CallLog _log = new();
    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeFileCatalog _catalog;
    private readonly FakeBlobStore _blobs;
    private readonly FakeFileCopyCatalog _copies;
    private readonly FakeFilesProvider _openai;
    private readonly ProviderFilesOptions _options = new() { RetryBaseSeconds = 30, RetryMaxSeconds = 600, InterruptedCopyGraceSeconds = 3600 };
    private readonly UpstreamDeletions _deletions;
    private readonly FileService _files;
    private readonly FakeDeferredBlobDeletions _deferred = new(new CallLog());
    private readonly ProviderFileCopies _lazy;

    public ProviderFilesTests()
    {
        _catalog = new FakeFileCatalog(_log, _workspaces, _time);
        _workspaces.FileCatalog = _catalog;
        _workspaces.Add(new Workspace { Id = Ws, Name = "a", CreatedAt = 1 });
        _workspaces.Add(new Workspace { Id = OtherWs, Name = "b", CreatedAt = 1, AllowedProviders = [] });
        _blobs = new FakeBlobStore(_log);
        _copies = new FakeFileCopyCatalog(_log).Attach(_catalog, _time);
        _openai = new FakeFilesProvider("openai", _log, _time);
        var registry = new ProviderList(_openai, new FakeProvider("mock"));
        _deletions = new UpstreamDeletions(_copies, registry, Options.Create(_options), _time, NullLogger<UpstreamDeletions>.Instance);
        var filesOptions = Options.Create(new FilesOptions { MaxUploadBytes = 1 << 20 });
        _files = new FileService(_catalog, _workspaces, new EmptyUploadCatalog(), _blobs, registry, _copies, _deferred, _deletions,
            new FilePurposes(filesOptions), new IdGenerator(_time), filesOptions, _time, NullLogger<FileService>.Instance);
        _lazy = new ProviderFileCopies(_files, _copies, registry, _workspaces, _deletions, _time, NullLogger<ProviderFileCopies>.Instance);
    }

    private async Task<Result<FileRecord>> UploadAsync(string? provider, string text = "hello upstream", string workspace = Ws)
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        var staged = await _files.StageAsync(workspace, stream, Ct);
        await using var content = staged.Value;
        return await _files.CreateAsync(workspace, new FileUploadRequest { Purpose = "user_data", Filename = "notes.txt", Provider = provider }, content, Ct);
    }

    private long Usage(string ws = Ws) => _workspaces.Live(ws)!.UsageBytes;

    private void AssertNothingKept(long usageBefore)
    {
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);
        Assert.Empty(_copies.Copies);
        Assert.Empty(_copies.Intents);
        Assert.Equal(usageBefore, Usage());
    }

    // ------------------------------------------------------------------ upload

    [Fact]
    public async Task UploadCommitsTheBlobSendsItUpstreamThenWritesRowAndCopyInOneStep()
    {
        var file = (await UploadAsync("openai")).Value;

        Assert.StartsWith("file-", file.Id, StringComparison.Ordinal);
        Assert.Equal("openai", file.Provider);
        var copy = Assert.Single(_copies.Copies);
        Assert.Equal((file.Id, "openai", Ws), (copy.FileId, copy.Provider, copy.WorkspaceId));
        var upstream = _openai.Files[copy.UpstreamId];
        Assert.Equal("hello upstream", Encoding.UTF8.GetString(upstream.Content));
        Assert.Equal("notes.txt", upstream.File.Filename);
        Assert.Equal("user_data", upstream.File.Purpose);
        Assert.Equal("hello upstream", Encoding.UTF8.GetString(_blobs.Blobs[file.Id]));
        Assert.Empty(_copies.Intents);
        Assert.Equal(file.Bytes, Usage());

        var order = _log.Calls.Where(c => !c.StartsWith("get:", StringComparison.Ordinal)).ToList();
        Assert.Equal(
            [$"commit:{file.Id}", $"intent:{file.Id}:openai", $"upstream-upload:openai:notes.txt:14", $"insert-with-copy:{file.Id}:openai:{copy.UpstreamId}", $"insert:{file.Id}"],
            order);
    }

    [Fact]
    public async Task LocalOrNoProviderSendsNothingUpstream()
    {
        Assert.True((await UploadAsync(null)).IsOk);
        Assert.True((await UploadAsync("local")).IsOk);
        Assert.Equal(0, _openai.Uploads);
        Assert.Empty(_copies.Copies);
        Assert.All(_catalog.Files.Values, f => Assert.Equal("local", f.Provider));
    }

    [Theory]
    [InlineData(400)]
    [InlineData(413)]
    [InlineData(422)]
    public async Task AnUpstreamVerdictOnTheFileIsPassedBackAndNothingIsKept(int status)
    {
        long before = Usage();
        _openai.UploadFailure = UpstreamFailure.FromAnswer(status, null, new UpstreamErrorDetail("invalid_file", "The file is not valid JSONL.", null, "file"), "{\"error\":...}");

        var error = (await UploadAsync("openai")).ErrorOf();

        Assert.Equal(status, error.Status);
        Assert.True(error.FromUpstream);
        Assert.Equal("upstream", error.Origin);
        Assert.Equal("user", error.ErrorType);
        Assert.Equal(("file", "invalid_file"), (error.Param, error.Code));
        Assert.Contains("The file is not valid JSONL.", error.Message, StringComparison.Ordinal);
        Assert.Equal(["openai"], error.Upstream!.FailedProviders);
        Assert.Equal([status], error.Upstream.FailedStatuses);
        Assert.Equal(1, error.Upstream.AttemptCount);
        Assert.Equal("The file is not valid JSONL.", error.Upstream.UpstreamError!.Message);
        AssertNothingKept(before);
    }

    [Theory]
    [InlineData(500, 502, "server_error")]
    [InlineData(503, 502, "server_error")]
    [InlineData(401, 502, "credentials_invalid_or_forbidden")]
    [InlineData(429, 502, "rate_limited")]
    [InlineData(404, 502, "model_unavailable_for_endpoint")]
    public async Task AnUpstreamFaultIsA5xxWithDiagnosticsAndNothingIsKept(int upstreamStatus, int status, string category)
    {
        long before = Usage();
        _openai.UploadFailure = UpstreamFailure.FromAnswer(upstreamStatus, null, new UpstreamErrorDetail(null, "upstream says no", null, null), null);

        var error = (await UploadAsync("openai")).ErrorOf();

        Assert.Equal(status, error.Status);
        Assert.Equal("upstream_error", error.Type);
        Assert.Equal("system", error.ErrorType);
        Assert.False(error.FromUpstream);
        Assert.Equal(category, error.Upstream!.ProviderFailureDiagnostics!.Category);
        Assert.Equal("openai", error.Upstream.ProviderFailureDiagnostics.Provider);
        Assert.Equal(upstreamStatus, Assert.Single(error.Upstream.FailureSample).Status);
        AssertNothingKept(before);
    }

    [Fact]
    public async Task AnUpstreamTimeoutIsA504AndAPaymentRefusalNamesTheProvider()
    {
        _openai.UploadFailure = UpstreamFailure.Timeout();
        var timeout = (await UploadAsync("openai")).ErrorOf();
        Assert.Equal(504, timeout.Status);
        Assert.Equal("timeout", Assert.Single(timeout.Upstream!.FailureSample).Type);

        _openai.UploadFailure = UpstreamFailure.FromAnswer(402, null, null, null);
        var payment = (await UploadAsync("openai")).ErrorOf();
        Assert.Equal(502, payment.Status);
        Assert.Equal("openai", payment.Upstream!.ProviderPaymentRequiredProvider);
        Assert.NotNull(payment.Upstream.ProviderPaymentRequiredSupportNotice);
        AssertNothingKept(0);
    }

    [Theory]
    [InlineData("nope", "unknown_provider")]
    [InlineData("mock", "provider_without_files")]
    public async Task AnUnknownProviderOrOneWithoutFilesIsA400OnProvider(string provider, string code)
    {
        var error = (await UploadAsync(provider)).ErrorOf();
        Assert.Equal((400, "provider", code), (error.Status, error.Param, error.Code));
        Assert.Equal(0, _openai.Uploads);
        AssertNothingKept(0);
    }

    [Fact]
    public async Task AProviderTheWorkspaceMayNotUseIsA400()
    {
        var error = (await UploadAsync("openai", workspace: OtherWs)).ErrorOf();
        Assert.Equal((400, "provider", "provider_not_enabled"), (error.Status, error.Param, error.Code));
        Assert.Equal(0, _openai.Uploads);
        Assert.Empty(_blobs.Blobs);
    }

    [Fact]
    public async Task ARowRefusedAfterTheUpstreamKeptTheBytesDeletesTheUpstreamCopy()
    {
        // The quota is taken by another upload while this one is upstream.
        _workspaces.Add(new Workspace { Id = "ws_00000000000000000000000000000003", Name = "q", CreatedAt = 1, StorageQuotaBytes = 20 });
        const string Quota = "ws_00000000000000000000000000000003";
        _openai.UploadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var upload = UploadAsync("openai", "fourteen bytes", Quota);
        while (_openai.Uploads == 0)
        {
            await Task.Yield();
        }
        _workspaces.SetUsage(Quota, 10);
        _openai.UploadGate.SetResult();

        var error = (await upload).ErrorOf();

        Assert.Equal("storage_quota_exceeded", error.Code);
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);
        Assert.Empty(_copies.Copies);
        Assert.Empty(_copies.Deletions);
        Assert.Empty(_copies.Intents);
        Assert.Empty(_openai.Files);
        Assert.Equal(1, _openai.Deletes);
    }

    [Fact]
    public async Task AFailureWhileSendingLeavesTheIntentForTheSweeperAndNoBlob()
    {
        using var cancelled = new CancellationTokenSource();
        _openai.UploadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stream = new MemoryStream("abc"u8.ToArray());
        var staged = await _files.StageAsync(Ws, stream, Ct);
        await using var content = staged.Value;
        var upload = _files.CreateAsync(Ws, new FileUploadRequest { Purpose = "user_data", Filename = "a.txt", Provider = "openai" }, content, cancelled.Token);
        while (_openai.Uploads == 0)
        {
            await Task.Yield();
        }
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => upload);
        Assert.Empty(_catalog.Files);
        Assert.Empty(_blobs.Blobs);
        Assert.Single(_copies.Intents);
    }

    // ------------------------------------------------------------------ delete

    [Fact]
    public async Task DeleteRemovesTheFileThenItsUpstreamCopy()
    {
        var file = (await UploadAsync("openai")).Value;
        string upstreamId = _copies.Copies.Single().UpstreamId;

        var deleted = await _files.DeleteAsync(Ws, file.Id, Ct);

        Assert.True(deleted.IsOk);
        Assert.Empty(_catalog.Files);
        Assert.Empty(_copies.Copies);
        Assert.Empty(_copies.Deletions);
        Assert.False(_openai.Files.ContainsKey(upstreamId));
        Assert.True(_log.Calls.IndexOf($"delete:{file.Id}") < _log.Calls.IndexOf($"upstream-delete:openai:{upstreamId}"));
    }

    [Fact]
    public async Task AFailedUpstreamDeleteIsRetriedByTheSweeperWithBackoffUntilDone()
    {
        var file = (await UploadAsync("openai")).Value;
        string upstreamId = _copies.Copies.Single().UpstreamId;
        _openai.DeleteFailures.Enqueue(UpstreamFailure.FromAnswer(503, TimeSpan.FromSeconds(1), null, null));
        _openai.DeleteFailures.Enqueue(UpstreamFailure.ConnectionFailed("refused"));

        Assert.True((await _files.DeleteAsync(Ws, file.Id, Ct)).IsOk);

        // Gone from Wharf at once; the copy waits for its next attempt.
        Assert.Empty(_catalog.Files);
        Assert.True((await _files.GetAsync(Ws, file.Id, Ct)).ErrorOf().Status == 404);
        var pending = Assert.Single(_copies.Deletions);
        Assert.Equal(1, pending.Attempts);
        long first = pending.NextAttemptAt - Start.ToUnixTimeSeconds();
        Assert.InRange(first, 30, 33);
        Assert.True(_openai.Files.ContainsKey(upstreamId));

        Assert.Equal(0, await _deletions.SweepAsync(Ct));
        Assert.Equal(1, _openai.Deletes);

        _time.Advance(TimeSpan.FromSeconds(first));
        Assert.Equal(0, await _deletions.SweepAsync(Ct));
        pending = Assert.Single(_copies.Deletions);
        Assert.Equal(2, pending.Attempts);
        Assert.InRange(pending.NextAttemptAt - _time.GetUtcNow().ToUnixTimeSeconds(), 60, 66);

        _time.Advance(TimeSpan.FromSeconds(66));
        Assert.Equal(1, await _deletions.SweepAsync(Ct));
        Assert.Empty(_copies.Deletions);
        Assert.False(_openai.Files.ContainsKey(upstreamId));
        Assert.Equal(3, _openai.Deletes);
    }

    [Fact]
    public async Task AnUpstream404CountsAsDeleted()
    {
        var file = (await UploadAsync("openai")).Value;
        _openai.DeleteFailures.Enqueue(UpstreamFailure.FromAnswer(404, null, null, null));

        Assert.True((await _files.DeleteAsync(Ws, file.Id, Ct)).IsOk);

        Assert.Empty(_copies.Deletions);
    }

    [Fact]
    public void BackoffDoublesFromTheBaseUpToTheMaximumWithSomeJitter()
    {
        Assert.InRange(_deletions.Backoff(1).TotalSeconds, 30, 33);
        Assert.InRange(_deletions.Backoff(2).TotalSeconds, 60, 66);
        Assert.InRange(_deletions.Backoff(3).TotalSeconds, 120, 132);
        Assert.InRange(_deletions.Backoff(10).TotalSeconds, 600, 660);
        Assert.InRange(_deletions.Backoff(1000).TotalSeconds, 600, 660);
    }

    [Fact]
    public async Task ExpiredFilesQueueTheirCopiesForTheSweeper()
    {
        using var stream = new MemoryStream("x"u8.ToArray());
        await using var staged = (await _files.StageAsync(Ws, stream, Ct)).Value;
        var file = (await _files.CreateAsync(Ws, new FileUploadRequest
        {
            Purpose = "user_data", Filename = "a.txt", Provider = "openai", ExpiresAfterAnchor = "created_at", ExpiresAfterSeconds = "3600",
        }, staged, Ct)).Value;
        _time.Advance(TimeSpan.FromHours(2));

        Assert.Equal(1, await _files.DeleteExpiredAsync(Ct));
        Assert.Single(_copies.Deletions);
        Assert.Single(_openai.Files);

        Assert.Equal(1, await _deletions.SweepAsync(Ct));
        Assert.Empty(_openai.Files);
        Assert.Empty(_copies.Deletions);
        Assert.DoesNotContain(file.Id, _blobs.Blobs.Keys);
    }

    // ------------------------------------------------------------------ lazy copy

    private async Task<FileRecord> LocalFileAsync(string workspace = Ws) => (await UploadAsync(null, "lazy bytes", workspace)).Value;

    [Fact]
    public async Task ConcurrentRequestsCopyAFileOnceAndAllGetTheUpstreamId()
    {
        var file = await LocalFileAsync();
        _openai.UploadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var requests = Enumerable.Range(0, 8).Select(_ => _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct)).ToList();
        while (_openai.Uploads == 0)
        {
            await Task.Yield();
        }
        _openai.UploadGate.SetResult();
        var results = await Task.WhenAll(requests);

        Assert.Equal(1, _openai.Uploads);
        var copy = Assert.Single(_copies.Copies);
        Assert.All(results, r => Assert.Equal(copy.UpstreamId, r.Value.Value));
        Assert.Equal("lazy bytes", Encoding.UTF8.GetString(_openai.Files[copy.UpstreamId].Content));

        // Recorded: the next request sends nothing.
        Assert.Equal(copy.UpstreamId, (await _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct)).Value.Value);
        Assert.Equal(1, _openai.Uploads);
    }

    [Fact]
    public async Task ACopyTheProviderNoLongerKeepsIsRetiredAndMadeAgainOnce()
    {
        var file = await LocalFileAsync();
        _openai.DropsCopies = true;
        string first = (await _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct)).Value.Value;
        _openai.UnusableCopies.Add(first);

        var again = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct)));

        string second = again[0].Value.Value;
        Assert.NotEqual(first, second);
        Assert.All(again, r => Assert.Equal(second, r.Value.Value));
        Assert.Equal(2, _openai.Uploads);
        Assert.Equal(second, Assert.Single(_copies.Copies).UpstreamId);
        // The old copy's id is queued for deletion (the provider's 404 will count as deleted).
        Assert.Contains(_copies.Deletions, d => d.UpstreamId == first && d.FileId == file.Id);
        Assert.Contains($"retire:{file.Id}:openai:{first}", _log.Calls);
    }

    [Fact]
    public async Task ACopyOfAProviderThatKeepsItsFilesIsTrustedWithoutACheck()
    {
        var file = await LocalFileAsync();
        string first = (await _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct)).Value.Value;
        _openai.CopyCheckFailure = UpstreamFailure.ConnectionFailed("would fail if asked");
        _openai.UnusableCopies.Add(first);

        Assert.Equal(first, (await _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct)).Value.Value);
        Assert.Equal(1, _openai.Uploads);
    }

    [Fact]
    public async Task ACopyCheckThatFailsIsTheUpstreamsFailureAndKeepsTheRecord()
    {
        var file = await LocalFileAsync();
        _openai.DropsCopies = true;
        string first = (await _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct)).Value.Value;
        _openai.CopyCheckFailure = UpstreamFailure.ConnectionFailed("down");

        var checkedCopy = await _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct);

        Assert.True(checkedCopy.IsOk);
        Assert.False(checkedCopy.Value.IsOk);
        Assert.Equal(first, Assert.Single(_copies.Copies).UpstreamId);
        Assert.Equal(1, _openai.Uploads);
    }

    [Fact]
    public async Task AnotherWorkspacesFileOrAnUnknownOneIsRefusedAndNeverCopied()
    {
        var theirs = await LocalFileAsync(OtherWs);
        string unknown = WharfIds.File(new IdGenerator(_time).Next());

        foreach (string id in new[] { theirs.Id, unknown })
        {
            var error = (await _lazy.EnsureCopyAsync(Ws, id, _openai, "input[0].content[1].file_id", Ct)).ErrorOf();
            Assert.Equal((400, "input[0].content[1].file_id", "file_not_found"), (error.Status, error.Param, error.Code));
            Assert.Equal($"No such File object: {id}", error.Message);
        }
        Assert.Equal(0, _openai.Uploads);
        Assert.Empty(_copies.Copies);
    }

    [Fact]
    public async Task AFailedCopyIsAnUpstreamFailureKeepsNoIntentAndIsTriedAgainNextTime()
    {
        var file = await LocalFileAsync();
        _openai.UploadFailure = UpstreamFailure.FromAnswer(500, null, null, null);

        var failed = await _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct);

        Assert.True(failed.IsOk);
        Assert.Equal(500, failed.Value.Failure!.Status);
        Assert.Empty(_copies.Intents);
        Assert.Empty(_copies.Copies);

        _openai.UploadFailure = null;
        var copied = await _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct);
        Assert.Equal(_copies.Copies.Single().UpstreamId, copied.Value.Value);
        Assert.Equal(2, _openai.Uploads);
    }

    [Fact]
    public async Task AFileDeletedWhileItIsCopiedLeavesNoUpstreamCopy()
    {
        var file = await LocalFileAsync();
        _openai.UploadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var copying = _lazy.EnsureCopyAsync(Ws, file.Id, _openai, "messages", Ct);
        while (_openai.Uploads == 0)
        {
            await Task.Yield();
        }
        Assert.True((await _files.DeleteAsync(Ws, file.Id, Ct)).IsOk);
        _openai.UploadGate.SetResult();

        var error = (await copying).ErrorOf();

        Assert.Equal("file_not_found", error.Code);
        Assert.Empty(_copies.Copies);
        Assert.Empty(_copies.Deletions);
        Assert.Empty(_copies.Intents);
        Assert.Empty(_openai.Files);
    }

    // ------------------------------------------------------------------ interrupted copies

    [Fact]
    public async Task TheSweeperDeletesWhatACopyCutByAStopLeftUpstreamAndNothingElse()
    {
        long started = Start.ToUnixTimeSeconds();
        await _copies.RecordIntentAsync(new CopyIntent("file-cut", "openai", Ws, "report.pdf", 5, started), Ct);
        // What the cut copy left, a file of another size, one of another name, and a recorded copy of the same name and size.
        await _openai.UploadFileAsync(new UpstreamFileUpload(new MemoryStream("12345"u8.ToArray()), 5, "report.pdf", "user_data", null), Ct);
        await _openai.UploadFileAsync(new UpstreamFileUpload(new MemoryStream("123456"u8.ToArray()), 6, "report.pdf", "user_data", null), Ct);
        await _openai.UploadFileAsync(new UpstreamFileUpload(new MemoryStream("12345"u8.ToArray()), 5, "other.pdf", "user_data", null), Ct);
        var recorded = (await _openai.UploadFileAsync(new UpstreamFileUpload(new MemoryStream("12345"u8.ToArray()), 5, "report.pdf", "user_data", null), Ct)).Value;
        _copies.Copies.Add(new FileCopy(Ws, "file-kept", "openai", recorded.Id, started));

        // Before the grace, the copy may still be running.
        _time.Advance(TimeSpan.FromMinutes(30));
        await _deletions.SweepAsync(Ct);
        Assert.Equal(4, _openai.Files.Count);
        Assert.Single(_copies.Intents);

        _time.Advance(TimeSpan.FromMinutes(31));
        await _deletions.SweepAsync(Ct);
        await _deletions.SweepAsync(Ct);

        Assert.Equal(3, _openai.Files.Count);
        Assert.DoesNotContain("openai-file-1", _openai.Files.Keys);
        Assert.Contains(recorded.Id, _openai.Files.Keys);
        Assert.Empty(_copies.Intents);
        Assert.Empty(_copies.Deletions);
    }

    [Fact]
    public async Task AnInterruptedCopyWhoseProviderCannotBeListedIsLookedForAgainLater()
    {
        await _copies.RecordIntentAsync(new CopyIntent("file-cut", "openai", Ws, "a.txt", 3, Start.ToUnixTimeSeconds()), Ct);
        await _openai.UploadFileAsync(new UpstreamFileUpload(new MemoryStream("abc"u8.ToArray()), 3, "a.txt", "user_data", null), Ct);
        _openai.ListFailure = UpstreamFailure.FromAnswer(500, null, null, null);
        _time.Advance(TimeSpan.FromHours(2));

        await _deletions.SweepAsync(Ct);
        Assert.Single(_copies.Intents);
        Assert.Single(_openai.Files);

        _openai.ListFailure = null;
        await _deletions.SweepAsync(Ct);
        await _deletions.SweepAsync(Ct);
        Assert.Empty(_copies.Intents);
        Assert.Empty(_openai.Files);
    }

    // ------------------------------------------------------------------ listing

    [Fact]
    public async Task ListingByProviderChecksTheNameAndLocalListsEverything()
    {
        await LocalFileAsync();
        await UploadAsync("openai");

        var unknown = (await _files.ListAsync(Ws, new FileListRequest { Provider = "nope" }, Ct)).ErrorOf();
        Assert.Equal((400, "provider", "unknown_provider"), (unknown.Status, unknown.Param, unknown.Code));
        Assert.Equal(2, (await _files.ListAsync(Ws, new FileListRequest { Provider = "local" }, Ct)).Value.Items.Count);
    }

    [Fact]
    public async Task UpstreamListingPassesThePagingThroughAndChecksItsParameters()
    {
        for (int i = 0; i < 5; i++)
        {
            await UploadAsync("openai", $"file {i}");
            _time.Advance(TimeSpan.FromSeconds(1));
        }
        var first = (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest("2", null, null, null, null), Ct)).Value;
        Assert.Equal(["openai-file-5", "openai-file-4"], first.Data.Select(f => f.Id));
        Assert.True(first.HasMore);
        var last = (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest("10", "openai-file-2", null, null, null), Ct)).Value;
        Assert.Equal(["openai-file-1"], last.Data.Select(f => f.Id));
        Assert.False(last.HasMore);

        Assert.Equal("limit", (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest("0", null, null, null, null), Ct)).ErrorOf().Param);
        Assert.Equal("order", (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest(null, null, null, "up", null), Ct)).ErrorOf().Param);
        Assert.Equal("before", (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest(null, null, "x", null, null), Ct)).ErrorOf().Param);
        Assert.Equal("provider_without_files", (await _lazy.ListUpstreamAsync(Ws, "mock", new UpstreamListRequest(null, null, null, null, null), Ct)).ErrorOf().Code);
        Assert.Equal("provider_not_enabled", (await _lazy.ListUpstreamAsync(OtherWs, "openai", new UpstreamListRequest(null, null, null, null, null), Ct)).ErrorOf().Code);

        _openai.ListFailure = UpstreamFailure.FromAnswer(401, null, null, null);
        var failed = (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest(null, null, null, null, null), Ct)).ErrorOf();
        Assert.Equal(502, failed.Status);
        Assert.Equal("credentials_invalid_or_forbidden", failed.Upstream!.ProviderFailureDiagnostics!.Category);
    }

    [Fact]
    public async Task UpstreamListingShowsOnlyTheWorkspacesOwnCopiesAndKeepsTheProvidersCursor()
    {
        for (int i = 0; i < 5; i++)
        {
            await UploadAsync("openai", $"file {i}");
            _time.Advance(TimeSpan.FromSeconds(1));
        }
        // The provider's account is shared: two of its files are another workspace's copies.
        for (int i = 0; i < _copies.Copies.Count; i++)
        {
            if (_copies.Copies[i].UpstreamId is "openai-file-4" or "openai-file-3")
            {
                _copies.Copies[i] = _copies.Copies[i] with { WorkspaceId = OtherWs };
            }
        }

        var first = (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest("2", null, null, null, null), Ct)).Value;
        Assert.Equal(["openai-file-5"], first.Data.Select(f => f.Id));
        Assert.True(first.HasMore);
        Assert.Equal("openai-file-4", first.Cursor);
        var second = (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest("2", first.Cursor, null, null, null), Ct)).Value;
        Assert.Equal(["openai-file-2"], second.Data.Select(f => f.Id));
        Assert.True(second.HasMore);
        Assert.Equal("openai-file-2", second.Cursor);
        var all = (await _lazy.ListUpstreamAsync(Ws, "openai", new UpstreamListRequest(null, null, null, null, null), Ct)).Value;
        Assert.DoesNotContain(all.Data, f => f.Id is "openai-file-4" or "openai-file-3");
        Assert.Equal(3, all.Data.Count);
    }
}
