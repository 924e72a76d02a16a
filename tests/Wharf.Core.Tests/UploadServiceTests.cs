using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Leases;
using Wharf.Core.Ports;
using Wharf.Core.Providers;
using Wharf.Core.Uploads;

namespace Wharf.Core.Tests;

public sealed class UploadServiceTests
{
    private const string Ws = "ws_00000000000000000000000000000001";
    private const string OtherWs = "ws_00000000000000000000000000000002";
    private const long GiB = 1024L * 1024 * 1024;
    private static readonly DateTimeOffset Start = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly CallLog _log = new();
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeFileCatalog _files;
    private readonly FakeBlobStore _blobs;
    private readonly FakeUploadCatalog _uploads;
    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeFileCopyCatalog _copies;
    private readonly FakeFilesProvider _openai;
    private readonly ProviderList _providers;
    private UploadService _service;

    public UploadServiceTests()
    {
        _workspaces.Add(new Workspace { Id = Ws, Name = "default", CreatedAt = 1 });
        _workspaces.Add(new Workspace { Id = OtherWs, Name = "other", CreatedAt = 1 });
        _files = new FakeFileCatalog(_log, _workspaces, _time);
        _blobs = new FakeBlobStore(_log);
        _uploads = new FakeUploadCatalog(_log, _files);
        _copies = new FakeFileCopyCatalog(_log).Attach(_files, _time);
        _openai = new FakeFilesProvider("openai", _log, _time);
        _providers = new ProviderList(_openai, new FakeProvider("mock"));
        _service = NewService(_blobs);
    }

    private readonly FilesOptions _filesOptions = new();
    private DeferredFileHasher? _deferred;
    private UploadHasher _hasher = null!;

    private UploadService NewService(IBlobStore blobs)
    {
        var options = Microsoft.Extensions.Options.Options.Create(_filesOptions);
        _deferred = new DeferredFileHasher(_files, _uploads, blobs, new NodeIdentity(), _time, NullLogger<DeferredFileHasher>.Instance);
        _hasher = new UploadHasher(blobs, options, NullLogger<UploadHasher>.Instance);
        return new UploadService(_uploads, _files, blobs, _hasher,
            _deferred, options, new FilePurposes(options), new IdGenerator(_time), _time, NullLogger<UploadService>.Instance,
            _providers, _workspaces, _copies, _copies.Deleter(_time, _providers));
    }

    private static CancellationToken Ct => CancellationToken.None;

    private long Now => _time.GetUtcNow().ToUnixTimeSeconds();

    private static UploadCreateRequest Request(long? bytes = 10, string? purpose = "assistants", string? mime = "text/plain",
        string? filename = "data.txt", string? anchor = null, long? seconds = null) => new()
        {
            Bytes = bytes,
            Purpose = purpose,
            MimeType = mime,
            Filename = filename,
            ExpiresAfterAnchor = anchor,
            ExpiresAfterSeconds = seconds,
        };

    private async Task<UploadRecord> CreateAsync(long bytes, string purpose = "assistants", string workspace = Ws, string? anchor = null, long? seconds = null)
    {
        var result = await _service.CreateAsync(workspace, Request(bytes, purpose, anchor: anchor, seconds: seconds), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        return result.Value;
    }

    private async Task<PartTicket> BeginAsync(UploadRecord upload)
    {
        var ticket = await _service.BeginPartAsync(upload.WorkspaceId, upload.Id, Ct);
        Assert.True(ticket.IsOk, ticket.Error?.Message);
        return ticket.Value;
    }

    /// <summary>Stages and keeps a part under a ticket taken earlier (the ticket stays open).</summary>
    private async Task<Result<UploadPartRecord>> SendAsync(PartTicket ticket, byte[] data)
    {
        using var content = new MemoryStream(data);
        var staged = await _service.StagePartAsync(content, Ct);
        Assert.True(staged.IsOk, staged.Error?.Message);
        await using var blob = staged.Value;
        return await _service.AddPartAsync(ticket, blob, Ct);
    }

    /// <summary>One part request as the API makes it: begin, stage, add, end.</summary>
    private async Task<Result<UploadPartRecord>> TryAddPartAsync(UploadRecord upload, byte[] data)
    {
        using var ticket = await BeginAsync(upload);
        return await SendAsync(ticket, data);
    }

    private async Task<UploadPartRecord> AddPartAsync(UploadRecord upload, byte[] data)
    {
        var part = await TryAddPartAsync(upload, data);
        Assert.True(part.IsOk, part.Error?.Message);
        return part.Value;
    }

    /// <summary>A 30-byte upload and its three parts (10, 12 and 8 bytes), sent one after the other.</summary>
    private async Task<(UploadRecord Upload, byte[] A, byte[] B, byte[] C, UploadPartRecord Pa, UploadPartRecord Pb, UploadPartRecord Pc)> ThreePartsAsync()
    {
        var upload = await CreateAsync(30);
        byte[] a = Bytes(10, 1), b = Bytes(12, 2), c = Bytes(8, 3);
        return (upload, a, b, c, await AddPartAsync(upload, a), await AddPartAsync(upload, b), await AddPartAsync(upload, c));
    }

    private static byte[] Bytes(int length, int seed) => Enumerable.Range(0, length).Select(i => (byte)(i * 31 + seed * 101 + 7)).ToArray();

#pragma warning disable CA5351 // the API's own checksum
    private static string Md5(byte[] data) => Convert.ToHexStringLower(MD5.HashData(data));
#pragma warning restore CA5351

    private static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    private static void AssertError<T>(Result<T> result, int status, string? param, string? code)
    {
        Assert.False(result.IsOk);
        Assert.Equal(status, result.Error.Status);
        Assert.Equal(param, result.Error.Param);
        Assert.Equal(code, result.Error.Code);
    }

    private async Task<string> StatusAsync(UploadRecord upload) => (await _uploads.GetUploadAsync(upload.WorkspaceId, upload.Id, Ct))!.Status;

    private async Task<byte[]> ContentOfAsync(FileRecord file)
    {
        await using var stream = new SegmentedStream(await _uploads.GetSegmentsAsync(file.Id, Ct), _blobs.OpenReadAsync);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    // ---------------------------------------------------------------- create

    [Fact]
    public async Task CreateMakesAPendingUploadThatExpiresInAnHour()
    {
        var result = await _service.CreateAsync(Ws, Request(bytes: 1234, purpose: "fine-tune", mime: "application/jsonl", filename: "train.jsonl"), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        var upload = result.Value;
        Assert.True(WharfIds.IsHexId(upload.Id, WharfIds.UploadPrefix));
        Assert.Equal(Ws, upload.WorkspaceId);
        Assert.Equal("train.jsonl", upload.Filename);
        Assert.Equal("fine-tune", upload.Purpose);
        Assert.Equal(1234, upload.Bytes);
        Assert.Equal("application/jsonl", upload.MimeType);
        Assert.Equal(UploadStatus.Pending, upload.Status);
        Assert.Equal(Start.ToUnixTimeSeconds(), upload.CreatedAt);
        Assert.Equal(upload.CreatedAt + 3600, upload.ExpiresAt);
        Assert.Null(upload.FileId);
        Assert.Null(upload.FileExpiresAfterSeconds);
        Assert.Equal(upload, _uploads.Uploads[upload.Id]);

        var view = await _service.GetAsync(Ws, upload.Id, Ct);
        Assert.True(view.IsOk);
        Assert.Equal(upload, view.Value.Upload);
        Assert.Empty(view.Value.Parts);
        Assert.Null(view.Value.File);
    }

    [Fact]
    public async Task CreateKeepsExpiresAfterForTheFile()
    {
        var upload = await CreateAsync(10, anchor: "created_at", seconds: 7200);
        Assert.Equal(7200, upload.FileExpiresAfterSeconds);
        Assert.Equal(upload.CreatedAt + 3600, upload.ExpiresAt);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public async Task CreateWithoutPurpose(string? purpose)
    {
        // Everything else is wrong too: the purpose is checked first.
        var result = await _service.CreateAsync(Ws, Request(bytes: null, purpose: purpose, mime: null), Ct);
        AssertError(result, 400, "purpose", "missing_required_parameter");
        Assert.Empty(_uploads.Uploads);
    }

    [Theory]
    [InlineData("batch_output")]
    [InlineData("nope")]
    [InlineData("Batch")]
    public async Task CreateWithAnInvalidPurpose(string purpose)
    {
        var result = await _service.CreateAsync(Ws, Request(purpose: purpose), Ct);
        AssertError(result, 400, "purpose", "invalid_purpose");
        Assert.False(result.IsOk);
        Assert.Contains("assistants", result.Error.Message, StringComparison.Ordinal);
        Assert.Empty(_uploads.Uploads);
    }

    [Fact]
    public async Task CreateWithoutBytes()
    {
        var result = await _service.CreateAsync(Ws, Request(bytes: null), Ct);
        AssertError(result, 400, "bytes", "missing_required_parameter");
        Assert.Empty(_uploads.Uploads);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    [InlineData(8L * 1024 * 1024 * 1024 + 1)]
    [InlineData(long.MaxValue)]
    public async Task CreateWithBytesOutOfRange(long bytes)
    {
        var result = await _service.CreateAsync(Ws, Request(bytes: bytes), Ct);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("bytes", result.Error.Param);
        Assert.Empty(_uploads.Uploads);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(8L * 1024 * 1024 * 1024)]
    public async Task CreateAcceptsBytesUpToEightGiB(long bytes)
    {
        var upload = await CreateAsync(bytes);
        Assert.Equal(bytes, upload.Bytes);
        Assert.Single(_uploads.Uploads);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("text/plain\r\nX-Evil: 1")]
    [InlineData("text/plain; charset=\u00e9")]
    [InlineData("text/\u65e5\u672c")]
    public async Task CreateWithoutAValidMimeType(string? mime)
    {
        var result = await _service.CreateAsync(Ws, Request(mime: mime), Ct);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("mime_type", result.Error.Param);
        Assert.Empty(_uploads.Uploads);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("\u0001\u0002")]
    public async Task CreateWithoutAFilename(string? filename)
    {
        var result = await _service.CreateAsync(Ws, Request(filename: filename), Ct);
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal("filename", result.Error.Param);
        Assert.Empty(_uploads.Uploads);
    }

    [Theory]
    [InlineData("created_at", 3599L, "expires_after[seconds]")]
    [InlineData("created_at", 2_592_001L, "expires_after[seconds]")]
    [InlineData("created_at", null, "expires_after[seconds]")]
    [InlineData("last_active_at", 7200L, "expires_after[anchor]")]
    [InlineData(null, 7200L, "expires_after[anchor]")]
    public async Task CreateWithABadExpiresAfter(string? anchor, long? seconds, string param)
    {
        var result = await _service.CreateAsync(Ws, Request(anchor: anchor, seconds: seconds), Ct);
        AssertError(result, 400, param, "invalid_expires_after");
        Assert.Empty(_uploads.Uploads);
    }

    [Fact]
    public async Task CreateBeyondTheFreeQuotaIsForbidden()
    {
        await _workspaces.UpdateWorkspaceAsync(new Workspace { Id = Ws, Name = "default", CreatedAt = 1, StorageQuotaBytes = 1000 }, Ct);
        _workspaces.SetUsage(Ws, 600);

        var result = await _service.CreateAsync(Ws, Request(bytes: 401), Ct);
        AssertError(result, 403, "bytes", "storage_quota_exceeded");
        Assert.Empty(_uploads.Uploads);
        Assert.Equal(600, _workspaces.Live(Ws)!.UsageBytes);

        // Exactly what is free is fine, and reserved at once; another workspace's quota is not this one's.
        await CreateAsync(400);
        Assert.Equal(1000, _workspaces.Live(Ws)!.UsageBytes);
        AssertError(await _service.CreateAsync(Ws, Request(bytes: 1), Ct), 403, "bytes", "storage_quota_exceeded");
        await CreateAsync(0);
        await CreateAsync(5000, workspace: OtherWs);
        Assert.Equal(3, _uploads.Uploads.Count);
    }

    // ---------------------------------------------------------------- metadata, collection, provider

    [Theory]
    [InlineData("[1]", null, null, "metadata", "invalid_metadata")]
    [InlineData("{\"k\": 1}", null, null, "metadata", "invalid_metadata")]
    [InlineData("not json", null, null, "metadata", "invalid_metadata")]
    [InlineData(null, "", null, "collection", "invalid_collection")]
    [InlineData(null, "a\u0001b", null, "collection", "invalid_collection")]
    [InlineData(null, null, "nowhere", "provider", "unknown_provider")]
    [InlineData(null, null, "mock", "provider", "provider_without_files")]
    public async Task BadFileFieldsAreRefusedNamingTheParameterAsForFiles(string? metadata, string? collection, string? provider, string param, string code)
    {
        var created = await _service.CreateAsync(Ws, Request(10) with { Metadata = metadata, Collection = collection, Provider = provider }, Ct);
        AssertError(created, 400, param, code);
        Assert.Equal(0, _workspaces.Live(Ws)!.UsageBytes);
    }

    [Fact]
    public async Task AProviderTheWorkspaceMayNotUseIsRefused()
    {
        _workspaces.Add(new Workspace { Id = "ws_00000000000000000000000000000003", Name = "closed", CreatedAt = 1, AllowedProviders = [] });
        var created = await _service.CreateAsync("ws_00000000000000000000000000000003", Request(10) with { Provider = "openai" }, Ct);
        AssertError(created, 400, "provider", "provider_not_enabled");
    }

    [Fact]
    public async Task TheFileCompletingMakesCarriesTheUploadsMetadataAndCollection()
    {
        var created = await _service.CreateAsync(Ws, Request(30) with { Metadata = "{\"team\":\"a\",\"run\":\"7\"}", Collection = "evals" }, Ct);
        Assert.True(created.IsOk, created.Error?.Message);
        Assert.Equal(("a", "evals", "local"), (created.Value.Metadata["team"], created.Value.Collection, created.Value.Provider));
        var upload = created.Value;
        var part = await AddPartAsync(upload, Bytes(30, 4));

        var done = await _service.CompleteAsync(Ws, upload.Id, [part.Id], null, Ct);

        Assert.True(done.IsOk, done.Error?.Message);
        var file = done.Value.File!;
        Assert.Equal(("a", "7", "evals", "local"), (file.Metadata["team"], file.Metadata["run"], file.Collection, file.Provider));
        Assert.Equal(file, _files.Files[file.Id]);
        Assert.Equal(0, _openai.Uploads);
    }

    [Fact]
    public async Task CompletingAnUploadForAProviderSendsItsPartsThereInOrderAndRecordsTheCopy()
    {
        var created = await _service.CreateAsync(Ws, Request(30) with { Provider = "openai", Collection = "c" }, Ct);
        Assert.True(created.IsOk, created.Error?.Message);
        var upload = created.Value;
        byte[] a = Bytes(10, 1), b = Bytes(20, 2);
        var pb = await AddPartAsync(upload, b);
        var pa = await AddPartAsync(upload, a);

        var done = await _service.CompleteAsync(Ws, upload.Id, [pa.Id, pb.Id], null, Ct);

        Assert.True(done.IsOk, done.Error?.Message);
        var file = done.Value.File!;
        Assert.Equal("openai", file.Provider);
        var (upstream, content) = Assert.Single(_openai.Files.Values);
        Assert.Equal([.. a, .. b], content);
        Assert.Equal(("data.txt", "assistants", 30L), (upstream.Filename, upstream.Purpose, upstream.Bytes));
        Assert.Equal(new FileCopy(Ws, file.Id, "openai", upstream.Id, Now), Assert.Single(_copies.Copies));
        Assert.Empty(_copies.Intents);
        // The intent was recorded before the bytes went, the file after they were taken.
        Assert.True(_log.Calls.IndexOf($"intent:{file.Id}:openai") < _log.Calls.IndexOf("upstream-upload:openai:data.txt:30"));
    }

    [Fact]
    public async Task AProviderThatRefusesTheCopyLeavesTheUploadPendingToCompleteAgain()
    {
        var upload = (await _service.CreateAsync(Ws, Request(10) with { Provider = "openai" }, Ct)).Value;
        var part = await AddPartAsync(upload, Bytes(10, 5));
        _openai.UploadFailure = UpstreamFailure.FromAnswer(400, null, new UpstreamErrorDetail("bad_file", "Bad file", null, "file"), null);

        var refused = await _service.CompleteAsync(Ws, upload.Id, [part.Id], null, Ct);

        Assert.False(refused.IsOk);
        Assert.Equal(400, refused.Error.Status);
        Assert.Contains("openai", refused.Error.Message, StringComparison.Ordinal);
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
        Assert.Empty(_files.Files);
        Assert.Empty(_copies.Intents);
        Assert.Empty(_copies.Copies);

        _openai.UploadFailure = UpstreamFailure.Timeout();
        var timedOut = await _service.CompleteAsync(Ws, upload.Id, [part.Id], null, Ct);
        AssertError(timedOut, 504, null, "upstream_timeout");
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));

        _openai.UploadFailure = null;
        var done = await _service.CompleteAsync(Ws, upload.Id, [part.Id], null, Ct);
        Assert.True(done.IsOk, done.Error?.Message);
        Assert.Equal(done.Value.File!.Id, Assert.Single(_copies.Copies).FileId);
    }

    // ---------------------------------------------------------------- get

    [Fact]
    public async Task GetOfAnUnknownOrForeignOrMalformedIdIs404()
    {
        var upload = await CreateAsync(10);
        foreach (var (ws, id) in new[] { (OtherWs, upload.Id), (Ws, "upload_" + new string('0', 32)), (Ws, "nope"), (Ws, upload.Id.ToUpperInvariant()) })
        {
            var result = await _service.GetAsync(ws, id, Ct);
            AssertError(result, 404, "id", null);
            Assert.False(result.IsOk);
            Assert.Equal($"No such Upload object: {id}", result.Error.Message);
        }
        Assert.True((await _service.GetAsync(Ws, upload.Id, Ct)).IsOk);
    }

    [Fact]
    public async Task GetListsThePartsReceived()
    {
        var upload = await CreateAsync(6);
        var a = await AddPartAsync(upload, Bytes(4, 1));
        var b = await AddPartAsync(upload, Bytes(2, 2));
        var view = await _service.GetAsync(Ws, upload.Id, Ct);
        Assert.Equal([a.Id, b.Id], view.Value.Parts.Select(p => p.Id));
    }

    // ---------------------------------------------------------------- parts

    [Fact]
    public async Task AddPartKeepsTheBlobUnderThePartId()
    {
        var upload = await CreateAsync(10);
        byte[] data = Bytes(10, 3);
        var part = await AddPartAsync(upload, data);
        Assert.True(WharfIds.IsHexId(part.Id, WharfIds.PartPrefix));
        Assert.Equal(upload.Id, part.UploadId);
        Assert.Equal(Ws, part.WorkspaceId);
        Assert.Equal(10, part.Bytes);
        Assert.Equal(Sha256(data), part.Sha256);
        Assert.Equal(Now, part.CreatedAt);
        Assert.Equal(data, _blobs.Blobs[part.Id]);
        Assert.Equal([part], await _uploads.ListPartsAsync(Ws, upload.Id, Ct));
    }

    [Fact]
    public async Task AnEmptyPartIsRefused()
    {
        var upload = await CreateAsync(10);
        var result = await TryAddPartAsync(upload, []);
        AssertError(result, 400, "data", "empty_part");
        Assert.Empty(_uploads.Parts);
        Assert.Empty(_blobs.Blobs);
        Assert.Equal(0, _blobs.Staged);
    }

    [Fact]
    public async Task StagingAPartOfExactly64MiBIsAccepted()
    {
        var service = NewService(new FakeBlobStore(_log) { DiscardContent = true });
        var source = new ZeroStream(UploadService.MaxPartBytes);
        var staged = await service.StagePartAsync(source, Ct);
        Assert.True(staged.IsOk, staged.Error?.Message);
        await using var blob = staged.Value;
        Assert.Equal(64L * 1024 * 1024, blob.Length);
        Assert.Equal(UploadService.MaxPartBytes, source.BytesRead);
    }

    [Fact]
    public async Task StagingAPartOverThe64MiBIsRefusedWith413()
    {
        var blobs = new FakeBlobStore(_log) { DiscardContent = true };
        var service = NewService(blobs);
        var result = await service.StagePartAsync(new ZeroStream(64L * 1024 * 1024 + 1), Ct);
        AssertError(result, 413, "data", "part_too_large");
        Assert.Equal(0, blobs.Staged);
        Assert.Empty(blobs.Blobs);
    }

    [Fact]
    public async Task CheckCanAddPartOfAnUnknownUploadIs404()
    {
        AssertError(await _service.BeginPartAsync(Ws, "upload_" + new string('f', 32), Ct), 404, "id", null);
        var upload = await CreateAsync(10);
        AssertError(await _service.BeginPartAsync(OtherWs, upload.Id, Ct), 404, "id", null);
        using var ticket = await BeginAsync(upload);
        Assert.Equal(upload, ticket.Upload);
        Assert.Null(ticket.PartId);
    }

    [Fact]
    public async Task APartBeyondWhatTheUploadCanNeedIsRefusedAndItsBlobRemoved()
    {
        // An upload of 2 bytes may hold at most 2 + 64 MiB of parts (room for a re-sent part, not for unbounded ones).
        // The catalog refuses the part (the fake applies SQLite's rule); the service must answer 400 and not keep its blob.
        var upload = await CreateAsync(2);
        await AddPartAsync(upload, Bytes(2, 1));
        _blobs.DiscardContent = true;
        var big = await _service.StagePartAsync(new ZeroStream(UploadService.MaxPartBytes), Ct);
        Assert.True(big.IsOk);
        using (var ticket = await BeginAsync(upload))
        await using (var blob = big.Value)
        {
            Assert.True((await _service.AddPartAsync(ticket, blob, Ct)).IsOk);
        }
        _blobs.DiscardContent = false;
        Assert.Equal(2, _blobs.Blobs.Count);

        var result = await TryAddPartAsync(upload, Bytes(1, 2));
        AssertError(result, 400, "data", "too_many_parts");
        Assert.Equal(2, _uploads.Parts.Count);
        Assert.Equal(2, _blobs.Blobs.Count);
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
    }

    [Fact]
    public async Task PartsBeyondTheSizeCountAgainstTheQuotaAndARefusedOneKeepsNothing()
    {
        await _workspaces.UpdateWorkspaceAsync(new Workspace { Id = Ws, Name = "default", CreatedAt = 1, StorageQuotaBytes = 25 }, Ct);
        var upload = await CreateAsync(20);
        Assert.Equal(20, _workspaces.Live(Ws)!.UsageBytes);
        await AddPartAsync(upload, Bytes(12, 1));
        await AddPartAsync(upload, Bytes(8, 2));
        Assert.Equal(20, _workspaces.Live(Ws)!.UsageBytes); // within the reservation
        await AddPartAsync(upload, Bytes(5, 3)); // a re-sent part: 25 held, 25 counted
        Assert.Equal(25, _workspaces.Live(Ws)!.UsageBytes);
        int blobs = _blobs.Blobs.Count;

        var refused = await TryAddPartAsync(upload, Bytes(1, 4));
        AssertError(refused, 403, "data", "storage_quota_exceeded");
        Assert.Equal(blobs, _blobs.Blobs.Count);
        Assert.Equal(3, _uploads.Parts.Count);
        Assert.Equal(25, _workspaces.Live(Ws)!.UsageBytes);

        Assert.True((await _service.CancelAsync(Ws, upload.Id, Ct)).IsOk);
        Assert.Equal(0, _workspaces.Live(Ws)!.UsageBytes);
    }

    [Theory]
    [InlineData(0, 64L * 1024 * 1024)]
    [InlineData(100, 100 + 64L * 1024 * 1024)]
    [InlineData(512L * 1024 * 1024, 576L * 1024 * 1024)]
    [InlineData(8L * 1024 * 1024 * 1024, 9L * 1024 * 1024 * 1024)]
    public void AnUploadMayHoldItsSizePlusRoomForReSentParts(long bytes, long expected) =>
        Assert.Equal(expected, UploadService.MaxHeldBytes(bytes));

    [Fact]
    public async Task AWorkspaceHasABoundedNumberOfPendingUploads()
    {
        _filesOptions.MaxPendingUploadsPerWorkspace = 2;
        var first = await CreateAsync(1);
        await CreateAsync(1);
        var refused = await _service.CreateAsync(Ws, Request(bytes: 1), Ct);
        AssertError(refused, 403, null, "too_many_pending_uploads");
        Assert.False(refused.IsOk);
        Assert.Contains("2 pending uploads", refused.Error.Message, StringComparison.Ordinal);
        await CreateAsync(1, workspace: OtherWs);

        Assert.True((await _service.CancelAsync(Ws, first.Id, Ct)).IsOk);
        await CreateAsync(1);
        AssertError(await _service.CreateAsync(Ws, Request(bytes: 1), Ct), 403, null, "too_many_pending_uploads");
    }

    [Fact]
    public async Task AfterItsWorkspaceIsDeletedAnUploadTakesNoPartAndDoesNotCompleteAnswering401()
    {
        var upload = await CreateAsync(4);
        var a = await AddPartAsync(upload, Bytes(2, 1));
        var b = await AddPartAsync(upload, Bytes(2, 2));
        int blobs = _blobs.Blobs.Count;
        using (var ticket = await BeginAsync(upload)) // a part in flight while the workspace is deleted
        {
            Assert.True(await _workspaces.DeleteWorkspaceAsync(Ws, Now, Ct));
            AssertError(await SendAsync(ticket, Bytes(2, 3)), 401, null, "invalid_api_key");
        }
        Assert.Equal(blobs, _blobs.Blobs.Count);
        AssertError(await _service.CompleteAsync(Ws, upload.Id, [a.Id, b.Id], null, Ct), 401, null, "invalid_api_key");
        Assert.Empty(_files.Files);
        Assert.Equal(0, _hasher.Tracked(Ws));
    }

    [Fact]
    public async Task ARefusedPartLeavesNothingInTheRunningHash()
    {
        var cancelled = await CreateAsync(2);
        Assert.True((await _service.CancelAsync(Ws, cancelled.Id, Ct)).IsOk);
        var completed = await CreateAsync(2);
        var part = await AddPartAsync(completed, Bytes(2, 1));
        Assert.Equal(1, _hasher.Tracked(Ws));
        Assert.True((await _service.CompleteAsync(Ws, completed.Id, [part.Id], null, Ct)).IsOk);
        Assert.Equal(0, _hasher.Tracked(Ws));
        var expiring = await CreateAsync(2);

        AssertError(await _service.BeginPartAsync(Ws, cancelled.Id, Ct), 400, "id", "upload_already_cancelled");
        AssertError(await _service.BeginPartAsync(Ws, completed.Id, Ct), 400, "id", "upload_already_completed");
        AssertError(await _service.BeginPartAsync(OtherWs, expiring.Id, Ct), 404, "id", null);
        AssertError(await _service.BeginPartAsync(Ws, "upload_" + new string('a', 32), Ct), 404, "id", null);
        _time.Advance(TimeSpan.FromHours(1));
        AssertError(await _service.BeginPartAsync(Ws, expiring.Id, Ct), 400, "id", "upload_already_expired");
        Assert.Equal(0, _hasher.Tracked());
    }

    [Fact]
    public async Task EveryEndOfAnUploadForgetsItsRunningHash()
    {
        var cancelled = await CreateAsync(2);
        await AddPartAsync(cancelled, Bytes(2, 1));
        var expired = await CreateAsync(2);
        await AddPartAsync(expired, Bytes(2, 2));
        var completed = await CreateAsync(2);
        var part = await AddPartAsync(completed, Bytes(2, 3));
        Assert.Equal(3, _hasher.Tracked(Ws));

        Assert.True((await _service.CancelAsync(Ws, cancelled.Id, Ct)).IsOk);
        Assert.True((await _service.CompleteAsync(Ws, completed.Id, [part.Id], null, Ct)).IsOk);
        Assert.Equal(1, _hasher.Tracked(Ws));
        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(1, await _service.ExpirePendingAsync(Ct));
        Assert.Equal(0, _hasher.Tracked());
    }

    // ---------------------------------------------------------------- complete

    [Fact]
    public async Task CompleteAssemblesThePartsInTheListedOrder()
    {
        var upload = await CreateAsync(23, purpose: "user_data");
        byte[] a = Bytes(5, 1), b = Bytes(11, 2), c = Bytes(7, 3);
        var pa = await AddPartAsync(upload, a);
        var pb = await AddPartAsync(upload, b);
        var pc = await AddPartAsync(upload, c);

        var result = await _service.CompleteAsync(Ws, upload.Id, [pc.Id, pa.Id, pb.Id], null, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        byte[] expected = [.. c, .. a, .. b];
        var file = result.Value.File!;
        Assert.Equal(UploadStatus.Completed, result.Value.Upload.Status);
        Assert.Equal(file.Id, result.Value.Upload.FileId);
        Assert.Empty(result.Value.Parts);
        Assert.True(WharfIds.IsFileId(file.Id));
        Assert.Equal(Ws, file.WorkspaceId);
        Assert.Equal(23, file.Bytes);
        Assert.Equal("data.txt", file.Filename);
        Assert.Equal("user_data", file.Purpose);
        Assert.Equal(FileStatus.Processed, file.Status);
        Assert.Equal("local", file.Provider);
        Assert.Equal("text/plain", file.ContentType);
        Assert.True(file.Segmented);
        Assert.Null(file.ExpiresAt);
        Assert.Equal(Now, file.CreatedAt);
        Assert.Equal(Sha256(expected), file.Sha256);
        Assert.NotEqual(Sha256([.. a, .. b, .. c]), file.Sha256);

        Assert.Equal(file, _files.Files[file.Id]);
        Assert.Equal(23, _workspaces.Live(Ws)!.UsageBytes);
        Assert.Equal([new BlobSegment(pc.Id, 7), new BlobSegment(pa.Id, 5), new BlobSegment(pb.Id, 11)], await _uploads.GetSegmentsAsync(file.Id, Ct));
        Assert.Equal(expected, await ContentOfAsync(file));
        // Nothing copied: the part blobs are the file's content, and no blob is named by the file id.
        Assert.Equal(3, _blobs.Blobs.Count);
        Assert.False(_blobs.Blobs.ContainsKey(file.Id));
        Assert.Equal(UploadStatus.Completed, await StatusAsync(upload));

        var view = await _service.GetAsync(Ws, upload.Id, Ct);
        Assert.Equal(file, view.Value.File);
        Assert.Equal(UploadStatus.Completed, view.Value.Upload.Status);
    }

    [Fact]
    public async Task CompleteDropsThePartsNotListedAndDeletesTheirBlobs()
    {
        var upload = await CreateAsync(8);
        var keep1 = await AddPartAsync(upload, Bytes(3, 1));
        var drop1 = await AddPartAsync(upload, Bytes(3, 2));
        var keep2 = await AddPartAsync(upload, Bytes(5, 3));
        var drop2 = await AddPartAsync(upload, Bytes(9, 4));

        var result = await _service.CompleteAsync(Ws, upload.Id, [keep1.Id, keep2.Id], null, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal([keep1.Id, keep2.Id], _blobs.Blobs.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("blob-delete:" + drop1.Id, _log.Calls);
        Assert.Contains("blob-delete:" + drop2.Id, _log.Calls);
        Assert.Equal(2, _uploads.Parts.Count);
        byte[] expected = [.. Bytes(3, 1), .. Bytes(5, 3)];
        Assert.Equal(expected, await ContentOfAsync(result.Value.File!));
    }

    [Fact]
    public async Task CompleteWithAPartOfAnotherUploadIsUnknownPart()
    {
        var upload = await CreateAsync(4);
        var other = await CreateAsync(4);
        var mine = await AddPartAsync(upload, Bytes(2, 1));
        var theirs = await AddPartAsync(other, Bytes(2, 2));

        foreach (string bad in new[] { theirs.Id, "part_" + new string('0', 32), "" })
        {
            var result = await _service.CompleteAsync(Ws, upload.Id, [mine.Id, bad], null, Ct);
            AssertError(result, 400, "part_ids", "unknown_part");
        }
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
        Assert.Empty(_files.Files);
        Assert.DoesNotContain(_log.Calls, c => c.StartsWith("upload-complete:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task CompleteWithADuplicatePartIsRefused()
    {
        var upload = await CreateAsync(4);
        var part = await AddPartAsync(upload, Bytes(2, 1));
        var result = await _service.CompleteAsync(Ws, upload.Id, [part.Id, part.Id], null, Ct);
        AssertError(result, 400, "part_ids", "duplicate_part");
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
        Assert.Empty(_files.Files);
    }

    [Fact]
    public async Task CompleteWithoutPartIds()
    {
        var upload = await CreateAsync(4);
        var result = await _service.CompleteAsync(Ws, upload.Id, null, null, Ct);
        AssertError(result, 400, "part_ids", "missing_required_parameter");
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
    }

    [Fact]
    public async Task ASizeMismatchLeavesTheUploadPendingToBeCompletedCorrectly()
    {
        var upload = await CreateAsync(10);
        var a = await AddPartAsync(upload, Bytes(6, 1));
        var b = await AddPartAsync(upload, Bytes(4, 2));
        var c = await AddPartAsync(upload, Bytes(1, 3));

        foreach (IReadOnlyList<string> ids in new string[][] { [a.Id], [a.Id, b.Id, c.Id], [], [b.Id, c.Id] })
        {
            var result = await _service.CompleteAsync(Ws, upload.Id, ids, null, Ct);
            AssertError(result, 400, "part_ids", "size_mismatch");
        }
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
        Assert.Equal(3, (await _uploads.ListPartsAsync(Ws, upload.Id, Ct)).Count);
        Assert.Equal(3, _blobs.Blobs.Count);
        Assert.Empty(_files.Files);

        var ok = await _service.CompleteAsync(Ws, upload.Id, [b.Id, a.Id], null, Ct);
        Assert.True(ok.IsOk, ok.Error?.Message);
        Assert.Equal(10, ok.Value.File!.Bytes);
        byte[] expected = [.. Bytes(4, 2), .. Bytes(6, 1)];
        Assert.Equal(expected, await ContentOfAsync(ok.Value.File));
        Assert.False(_blobs.Blobs.ContainsKey(c.Id));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ACorrectMd5IsAccepted(bool upperCase)
    {
        var upload = await CreateAsync(9);
        var a = await AddPartAsync(upload, Bytes(4, 1));
        var b = await AddPartAsync(upload, Bytes(5, 2));
        string md5 = Md5([.. Bytes(5, 2), .. Bytes(4, 1)]);
        var result = await _service.CompleteAsync(Ws, upload.Id, [b.Id, a.Id], upperCase ? md5.ToUpperInvariant() : md5, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(UploadStatus.Completed, await StatusAsync(upload));
    }

    [Fact]
    public async Task AnMd5MismatchLeavesTheUploadPending()
    {
        var upload = await CreateAsync(9);
        var a = await AddPartAsync(upload, Bytes(4, 1));
        var b = await AddPartAsync(upload, Bytes(5, 2));
        // The MD5 of the parts in arrival order: right bytes, wrong order.
        string arrivalOrder = Md5([.. Bytes(4, 1), .. Bytes(5, 2)]);
        string listedOrder = Md5([.. Bytes(5, 2), .. Bytes(4, 1)]);

        var result = await _service.CompleteAsync(Ws, upload.Id, [b.Id, a.Id], arrivalOrder, Ct);
        AssertError(result, 400, "md5", "md5_mismatch");
        Assert.False(result.IsOk);
        Assert.Contains(listedOrder, result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
        Assert.Equal(2, (await _uploads.ListPartsAsync(Ws, upload.Id, Ct)).Count);
        Assert.Equal(2, _blobs.Blobs.Count);
        Assert.Empty(_files.Files);
        Assert.Equal(9, _workspaces.Live(Ws)!.UsageBytes); // still the pending upload's reservation

        var ok = await _service.CompleteAsync(Ws, upload.Id, [b.Id, a.Id], listedOrder, Ct);
        Assert.True(ok.IsOk, ok.Error?.Message);
        Assert.Equal(9, _workspaces.Live(Ws)!.UsageBytes); // now the file's bytes
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("zz000000000000000000000000000000")]
    [InlineData("d41d8cd98f00b204e9800998ecf8427e0")]
    public async Task AMalformedMd5IsRefused(string md5)
    {
        var upload = await CreateAsync(2);
        var a = await AddPartAsync(upload, Bytes(2, 1));
        var result = await _service.CompleteAsync(Ws, upload.Id, [a.Id], md5, Ct);
        AssertError(result, 400, "md5", "invalid_md5");
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
    }

    [Theory]
    [InlineData("batch", null, null, 2_592_000L)]
    [InlineData("assistants", null, null, null)]
    [InlineData("batch", "created_at", 7200L, 7200L)]
    [InlineData("vision", "created_at", 3600L, 3600L)]
    public async Task TheFileExpiresAsAskedOrByThePurposeDefault(string purpose, string? anchor, long? seconds, long? expected)
    {
        var upload = await CreateAsync(3, purpose: purpose, anchor: anchor, seconds: seconds);
        var a = await AddPartAsync(upload, Bytes(3, 1));
        var result = await _service.CompleteAsync(Ws, upload.Id, [a.Id], null, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        var file = result.Value.File!;
        Assert.Equal(purpose, file.Purpose);
        Assert.Equal(file.CreatedAt + expected, file.ExpiresAt);
    }

    [Fact]
    public async Task CompletingAnEmptyUploadWithNoPartsMakesAnEmptyFile()
    {
        var upload = await CreateAsync(0);
        var result = await _service.CompleteAsync(Ws, upload.Id, [], null, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(0, result.Value.File!.Bytes);
        Assert.Equal(Sha256([]), result.Value.File.Sha256);
        Assert.Empty(await ContentOfAsync(result.Value.File));
    }

    [Fact]
    public async Task CompletingIsNotRefusedByAQuotaLoweredAfterTheSizeWasReserved()
    {
        var upload = await CreateAsync(5);
        var a = await AddPartAsync(upload, Bytes(5, 1));
        await _workspaces.UpdateWorkspaceAsync(new Workspace { Id = Ws, Name = "default", CreatedAt = 1, StorageQuotaBytes = 0 }, Ct);

        Assert.True((await _service.CompleteAsync(Ws, upload.Id, [a.Id], null, Ct)).IsOk);
        Assert.Equal(5, _workspaces.Live(Ws)!.UsageBytes);
    }

    [Fact]
    public async Task CompleteOverTheQuotaIsForbiddenAndLeavesThePartsPending()
    {
        var upload = await CreateAsync(5);
        var a = await AddPartAsync(upload, Bytes(5, 1));
        await _workspaces.UpdateWorkspaceAsync(new Workspace { Id = Ws, Name = "default", CreatedAt = 1, StorageQuotaBytes = 100 }, Ct);
        // The catalog checks only what the file holds beyond what the upload counted; made to count nothing here, the
        // upload is checked for all of its bytes, which is the way to reach the refusal.
        _uploads.Counted[upload.Id] = 0;
        _workspaces.SetUsage(Ws, 96);

        var result = await _service.CompleteAsync(Ws, upload.Id, [a.Id], null, Ct);
        AssertError(result, 403, "file", "storage_quota_exceeded");
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
        Assert.Single(await _uploads.ListPartsAsync(Ws, upload.Id, Ct));
        Assert.True(_blobs.Blobs.ContainsKey(a.Id));
        Assert.Empty(_files.Files);

        _workspaces.SetUsage(Ws, 95);
        Assert.True((await _service.CompleteAsync(Ws, upload.Id, [a.Id], null, Ct)).IsOk);
        Assert.Equal(100, _workspaces.Live(Ws)!.UsageBytes);
    }

    [Fact]
    public async Task CompleteOfAnotherWorkspacesUploadIs404()
    {
        var upload = await CreateAsync(2);
        var a = await AddPartAsync(upload, Bytes(2, 1));
        AssertError(await _service.CompleteAsync(OtherWs, upload.Id, [a.Id], null, Ct), 404, "id", null);
        AssertError(await _service.CancelAsync(OtherWs, upload.Id, Ct), 404, "id", null);
        Assert.Equal(UploadStatus.Pending, await StatusAsync(upload));
    }

    // ---------------------------------------------------------------- digests computed while parts stream

    [Fact]
    public async Task CompletingInArrivalOrderUsesTheDigestsComputedWhileThePartsStreamed()
    {
        var (upload, a, b, c, pa, pb, pc) = await ThreePartsAsync();
        byte[] all = [.. a, .. b, .. c];

        var result = await _service.CompleteAsync(Ws, upload.Id, [pa.Id, pb.Id, pc.Id], Md5(all), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(all), result.Value.File!.Sha256);
        // Each part was read back once, while it streamed; completing made no second pass.
        Assert.Equal(3, _blobs.Opens);
    }

    [Fact]
    public async Task PartsSentToManyCancelledUploadsLeaveAnotherWorkspacesRunningHashOn()
    {
        // Nothing is hashed at completion: the SHA-256 is there only if the running hash tracked the upload.
        _filesOptions.HashAtCompletionMaxBytes = 0;
        for (int i = 0; i < 10_100; i++)
        {
            var cancelled = await CreateAsync(10, workspace: OtherWs);
            Assert.True((await _service.CancelAsync(OtherWs, cancelled.Id, Ct)).IsOk);
            AssertError(await _service.BeginPartAsync(OtherWs, cancelled.Id, Ct), 400, "id", "upload_already_cancelled");
        }

        var (upload, a, b, c, pa, pb, pc) = await ThreePartsAsync();
        var result = await _service.CompleteAsync(Ws, upload.Id, [pa.Id, pb.Id, pc.Id], null, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256([.. a, .. b, .. c]), result.Value.File!.Sha256);
    }

    [Fact]
    public async Task CompletingInAnotherOrderHashesThePartsInTheListedOrder()
    {
        var (upload, a, b, c, pa, pb, pc) = await ThreePartsAsync();
        byte[] listed = [.. b, .. c, .. a];

        var result = await _service.CompleteAsync(Ws, upload.Id, [pb.Id, pc.Id, pa.Id], Md5(listed), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(listed), result.Value.File!.Sha256);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PartsFinishingOutOfOrderStillHashInTheListedOrder(bool listedBFirst)
    {
        var upload = await CreateAsync(9);
        byte[] a = Bytes(4, 1), b = Bytes(5, 2);
        // Both requests start (a, then b); b's bytes arrive and b's request ends first.
        var ticketA = await BeginAsync(upload);
        var ticketB = await BeginAsync(upload);
        var pb = await SendAsync(ticketB, b);
        ticketB.Dispose();
        var pa = await SendAsync(ticketA, a);
        ticketA.Dispose();

        byte[] expected = listedBFirst ? [.. b, .. a] : [.. a, .. b];
        string[] ids = listedBFirst ? [pb.Value.Id, pa.Value.Id] : [pa.Value.Id, pb.Value.Id];
        var started = System.Diagnostics.Stopwatch.StartNew();
        var result = await _service.CompleteAsync(Ws, upload.Id, ids, Md5(expected), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(expected), result.Value.File!.Sha256);
        // Nothing was left in flight: completing did not wait for the hasher to give up.
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"completing took {started.Elapsed}");
        if (!listedBFirst)
        {
            // In the order the requests started: the streamed digests serve, no second pass over the parts.
            Assert.Equal(2, _blobs.Opens);
        }
    }

    [Fact]
    public async Task DisposingATicketTwiceDoesNotHoldTheCompletion()
    {
        var upload = await CreateAsync(4);
        byte[] a = Bytes(4, 1);
        var ticket = await BeginAsync(upload);
        var pa = await SendAsync(ticket, a);
        ticket.Dispose();
        ticket.Dispose();

        var started = System.Diagnostics.Stopwatch.StartNew();
        var result = await _service.CompleteAsync(Ws, upload.Id, [pa.Value.Id], null, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(a), result.Value.File!.Sha256);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"completing took {started.Elapsed}");
    }

    [Fact]
    public async Task ARefusedPartInTheMiddleIsLeftOutOfTheDigest()
    {
        var upload = await CreateAsync(9);
        byte[] a = Bytes(4, 1), b = Bytes(5, 2);
        var pa = await AddPartAsync(upload, a);
        AssertError(await TryAddPartAsync(upload, []), 400, "data", "empty_part");
        var pb = await AddPartAsync(upload, b);
        byte[] all = [.. a, .. b];

        var result = await _service.CompleteAsync(Ws, upload.Id, [pa.Id, pb.Id], Md5(all), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(all), result.Value.File!.Sha256);
    }

    [Fact]
    public async Task AReSentOrUnlistedPartIsLeftOutOfTheDigest()
    {
        var upload = await CreateAsync(9);
        byte[] a = Bytes(4, 1), bad = Bytes(5, 7), b = Bytes(5, 2), extra = Bytes(3, 9);
        var pa = await AddPartAsync(upload, a);
        await AddPartAsync(upload, bad);
        var pb = await AddPartAsync(upload, b);
        await AddPartAsync(upload, extra);
        byte[] all = [.. a, .. b];

        var result = await _service.CompleteAsync(Ws, upload.Id, [pa.Id, pb.Id], Md5(all), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(all), result.Value.File!.Sha256);
        Assert.Equal(all, await ContentOfAsync(result.Value.File));
    }

    [Fact]
    public async Task OnlyTheFirstPartsListedGiveTheirOwnDigest()
    {
        var upload = await CreateAsync(4);
        byte[] a = Bytes(4, 1), b = Bytes(4, 2);
        var pa = await AddPartAsync(upload, a);
        await AddPartAsync(upload, b);

        var result = await _service.CompleteAsync(Ws, upload.Id, [pa.Id], Md5(a), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(a), result.Value.File!.Sha256);
    }

    [Fact]
    public async Task AnMd5MismatchOnStreamedDigestsLeavesTheUploadCompletable()
    {
        var upload = await CreateAsync(9);
        byte[] a = Bytes(4, 1), b = Bytes(5, 2);
        var pa = await AddPartAsync(upload, a);
        var pb = await AddPartAsync(upload, b);
        byte[] all = [.. a, .. b];

        AssertError(await _service.CompleteAsync(Ws, upload.Id, [pa.Id, pb.Id], Md5(b), Ct), 400, "md5", "md5_mismatch");
        AssertError(await _service.CompleteAsync(Ws, upload.Id, [pa.Id], null, Ct), 400, "part_ids", "size_mismatch");
        var result = await _service.CompleteAsync(Ws, upload.Id, [pa.Id, pb.Id], Md5(all), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(all), result.Value.File!.Sha256);
    }

    // ---------------------------------------------------------------- SHA-256 computed after completion

    /// <summary>Runs the background pass until <paramref name="fileId"/> has a SHA-256 (or 10 s have passed).</summary>
    private async Task<string?> HashInBackgroundAsync(string fileId)
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var running = _deferred!.RunAsync(stop.Token);
        while (!stop.IsCancellationRequested && _files.Files[fileId].Sha256 is null)
        {
            await Task.Delay(10);
        }
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        return _files.Files[fileId].Sha256;
    }

    [Fact]
    public async Task ALargeUploadListedOutOfStreamedOrderCompletesWithoutAPassAndIsHashedAfter()
    {
        _filesOptions.HashAtCompletionMaxBytes = 20;
        var (upload, a, b, c, pa, pb, pc) = await ThreePartsAsync();
        // The running hash reads each part back once, in the background; let it finish first.
        for (int i = 0; i < 500 && _blobs.Opens < 3; i++)
        {
            await Task.Delay(10);
        }
        int opensBefore = _blobs.Opens;
        Assert.Equal(3, opensBefore);

        var result = await _service.CompleteAsync(Ws, upload.Id, [pc.Id, pa.Id, pb.Id], null, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        var file = result.Value.File!;
        // Completing read none of the parts: the file is kept at once, its SHA-256 still to come.
        Assert.Equal(opensBefore, _blobs.Opens);
        Assert.Null(file.Sha256);
        Assert.Null(_files.Files[file.Id].Sha256);
        byte[] expected = [.. c, .. a, .. b];
        Assert.Equal(expected, await ContentOfAsync(file));

        Assert.Equal(Sha256(expected), await HashInBackgroundAsync(file.Id));
    }

    [Fact]
    public async Task AnMd5ToCheckIsCheckedAtCompletionWhateverTheSize()
    {
        _filesOptions.HashAtCompletionMaxBytes = 0;
        var (upload, a, b, c, pa, pb, pc) = await ThreePartsAsync();
        byte[] listed = [.. b, .. c, .. a];

        AssertError(await _service.CompleteAsync(Ws, upload.Id, [pb.Id, pc.Id, pa.Id], Md5([.. a, .. b, .. c]), Ct), 400, "md5", "md5_mismatch");
        var result = await _service.CompleteAsync(Ws, upload.Id, [pb.Id, pc.Id, pa.Id], Md5(listed), Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(Sha256(listed), result.Value.File!.Sha256);
    }

    [Fact]
    public async Task FilesLeftWithoutASha256AreFoundInTheCatalogAndHashed()
    {
        _filesOptions.HashAtCompletionMaxBytes = 0;
        var upload = await CreateAsync(9);
        byte[] a = Bytes(4, 1), b = Bytes(5, 2);
        var pa = await AddPartAsync(upload, a);
        var pb = await AddPartAsync(upload, b);
        var file = (await _service.CompleteAsync(Ws, upload.Id, [pb.Id, pa.Id], null, Ct)).Value.File!;
        var gone = await CreateAsync(4);
        var pg = await AddPartAsync(gone, Bytes(4, 3));
        await AddPartAsync(gone, Bytes(4, 4));
        var deleted = (await _service.CompleteAsync(Ws, gone.Id, [pg.Id], null, Ct)).Value.File!;
        Assert.Null(deleted.Sha256);
        Assert.True(await _files.DeleteAsync(Ws, deleted.Id, Ct));

        // A restart: a new hasher knows nothing of the queue; the catalog still lists the file without a SHA-256.
        _service = NewService(_blobs);
        Assert.Equal(1, await _deferred!.EnqueueUnhashedAsync(Ct));
        Assert.Equal(0, await _deferred.EnqueueUnhashedAsync(Ct));
        Assert.Equal(Sha256([.. b, .. a]), await HashInBackgroundAsync(file.Id));
        Assert.Empty(await _files.ListUnhashedAsync(null, 10, _time.GetUtcNow().ToUnixTimeMilliseconds(), Ct));
    }

    [Fact]
    public async Task AFailedPassIsLoggedLeftAloneForAWhileThenTriedAgainAndTheLoopGoesOn()
    {
        _filesOptions.HashAtCompletionMaxBytes = 0;
        async Task<(FileRecord File, UploadPartRecord[] Parts, byte[] Content)> CompleteReversedAsync(int seed)
        {
            var upload = await CreateAsync(9);
            byte[] a = Bytes(4, seed), b = Bytes(5, seed + 1);
            var pa = await AddPartAsync(upload, a);
            var pb = await AddPartAsync(upload, b);
            var file = (await _service.CompleteAsync(Ws, upload.Id, [pb.Id, pa.Id], null, Ct)).Value.File!;
            Assert.Null(file.Sha256);
            return (file, [pa, pb], [.. b, .. a]);
        }
        var broken = await CompleteReversedAsync(1);
        var fine = await CompleteReversedAsync(3);
        await _blobs.DeleteAsync(broken.Parts[0].Id, Ct); // a segment lost: its pass cannot succeed

        // The broken file fails first (ids are in creation order); the loop goes on to the next one.
        Assert.Equal(Sha256(fine.Content), await HashInBackgroundAsync(fine.File.Id));
        Assert.Null(_files.Files[broken.File.Id].Sha256);

        // Left out of the sweeps' queueing for a while, then queued again.
        Assert.Equal(0, await _deferred!.EnqueueUnhashedAsync(Ct));
        _time.Advance(DeferredFileHasher.RetryAfter + TimeSpan.FromSeconds(1));
        Assert.Equal(1, await _deferred.EnqueueUnhashedAsync(Ct));
    }

    [Fact]
    public async Task TheScanQueuesEveryUnhashedFilePastOnePage()
    {
        var ids = new IdGenerator(_time);
        for (int i = 0; i < 2_345; i++)
        {
            var file = new FileRecord
            {
                Id = WharfIds.File(ids.Next()),
                WorkspaceId = Ws, Bytes = 1, CreatedAt = 1, Filename = "f", Purpose = "batch", Status = FileStatus.Processed,
                Provider = "local", Sha256 = null, Segmented = true,
            };
            _files.Files.Add(file.Id, file);
        }
        Assert.Equal(2_345, await _deferred!.EnqueueUnhashedAsync(Ct));
        Assert.Equal(0, await _deferred.EnqueueUnhashedAsync(Ct)); // all still waiting: none queued twice
    }

    // ---------------------------------------------------------------- states

    [Fact]
    public async Task NothingMoreOnceCompleted()
    {
        var upload = await CreateAsync(2);
        var a = await AddPartAsync(upload, Bytes(2, 1));
        // A part request that began before the upload completed (on another node: a part in flight here would hold
        // the completion while the hasher waits for it).
        var otherNode = NewService(_blobs);
        using var lateTicket = (await otherNode.BeginPartAsync(Ws, upload.Id, Ct)).Value;
        Assert.True((await _service.CompleteAsync(Ws, upload.Id, [a.Id], null, Ct)).IsOk);
        int blobs = _blobs.Blobs.Count;

        AssertError(await _service.BeginPartAsync(Ws, upload.Id, Ct), 400, "id", "upload_already_completed");
        // The part that passed the check before the upload completed is refused too, and its blob not kept.
        var staged = await otherNode.StagePartAsync(new MemoryStream(Bytes(2, 2)), Ct);
        await using (var blob = staged.Value)
        {
            AssertError(await otherNode.AddPartAsync(lateTicket, blob, Ct), 400, "id", "upload_already_completed");
        }
        Assert.Null(lateTicket.PartId);
        Assert.Equal(blobs, _blobs.Blobs.Count);
        AssertError(await _service.CompleteAsync(Ws, upload.Id, [a.Id], null, Ct), 400, "id", "upload_already_completed");
        AssertError(await _service.CancelAsync(Ws, upload.Id, Ct), 400, "id", "upload_already_completed");
        Assert.Single(_files.Files);
        Assert.Equal(UploadStatus.Completed, await StatusAsync(upload));
    }

    [Fact]
    public async Task CancelDropsThePartsAndNothingMoreAfterwards()
    {
        var upload = await CreateAsync(4);
        var a = await AddPartAsync(upload, Bytes(2, 1));
        var b = await AddPartAsync(upload, Bytes(2, 2));
        using var lateTicket = await BeginAsync(upload);

        var cancelled = await _service.CancelAsync(Ws, upload.Id, Ct);
        Assert.True(cancelled.IsOk, cancelled.Error?.Message);
        Assert.Equal(UploadStatus.Cancelled, cancelled.Value.Upload.Status);
        Assert.Null(cancelled.Value.File);
        Assert.Equal(UploadStatus.Cancelled, await StatusAsync(upload));
        Assert.Empty(_blobs.Blobs);
        Assert.Empty(_uploads.Parts);
        Assert.Contains("blob-delete:" + a.Id, _log.Calls);
        Assert.Contains("blob-delete:" + b.Id, _log.Calls);

        AssertError(await _service.BeginPartAsync(Ws, upload.Id, Ct), 400, "id", "upload_already_cancelled");
        AssertError(await SendAsync(lateTicket, Bytes(2, 3)), 400, "id", "upload_already_cancelled");
        Assert.Empty(_blobs.Blobs);
        AssertError(await _service.CompleteAsync(Ws, upload.Id, [a.Id, b.Id], null, Ct), 400, "id", "upload_already_cancelled");
        AssertError(await _service.CancelAsync(Ws, upload.Id, Ct), 400, "id", "upload_already_cancelled");
        Assert.Empty(_files.Files);
    }

    [Fact]
    public async Task NothingMoreOnceTheHourHasPassed()
    {
        var upload = await CreateAsync(2);
        var a = await AddPartAsync(upload, Bytes(2, 1));
        _time.Advance(TimeSpan.FromSeconds(3599));
        using var lateTicket = await BeginAsync(upload);
        _time.Advance(TimeSpan.FromSeconds(1));

        AssertError(await _service.BeginPartAsync(Ws, upload.Id, Ct), 400, "id", "upload_already_expired");
        AssertError(await SendAsync(lateTicket, Bytes(2, 2)), 400, "id", "upload_already_expired");
        AssertError(await _service.CompleteAsync(Ws, upload.Id, [a.Id], null, Ct), 400, "id", "upload_already_expired");
        AssertError(await _service.CancelAsync(Ws, upload.Id, Ct), 400, "id", "upload_already_expired");
        Assert.Empty(_files.Files);
        Assert.Single(_blobs.Blobs);
    }

    [Fact]
    public async Task ExpirePendingMarksOverdueUploadsExpiredAndDeletesTheirParts()
    {
        var old = await CreateAsync(4);
        var oldA = await AddPartAsync(old, Bytes(2, 1));
        var oldB = await AddPartAsync(old, Bytes(2, 2));
        var done = await CreateAsync(2);
        var doneA = await AddPartAsync(done, Bytes(2, 3));
        Assert.True((await _service.CompleteAsync(Ws, done.Id, [doneA.Id], null, Ct)).IsOk);
        _time.Advance(TimeSpan.FromMinutes(30));
        var young = await CreateAsync(2);
        var youngA = await AddPartAsync(young, Bytes(2, 4));

        Assert.Equal(0, await _service.ExpirePendingAsync(Ct));
        Assert.Equal(4, _blobs.Blobs.Count);

        _time.Advance(TimeSpan.FromMinutes(30));
        Assert.Equal(1, await _service.ExpirePendingAsync(Ct));
        Assert.Equal(UploadStatus.Expired, await StatusAsync(old));
        Assert.Equal(UploadStatus.Completed, await StatusAsync(done));
        Assert.Equal(UploadStatus.Pending, await StatusAsync(young));
        Assert.False(_blobs.Blobs.ContainsKey(oldA.Id));
        Assert.False(_blobs.Blobs.ContainsKey(oldB.Id));
        Assert.True(_blobs.Blobs.ContainsKey(doneA.Id));
        Assert.True(_blobs.Blobs.ContainsKey(youngA.Id));
        AssertError(await _service.CancelAsync(Ws, old.Id, Ct), 400, "id", "upload_already_expired");

        // Idempotent: nothing left to expire until the young one's hour is up.
        Assert.Equal(0, await _service.ExpirePendingAsync(Ct));
        _time.Advance(TimeSpan.FromMinutes(30));
        Assert.Equal(1, await _service.ExpirePendingAsync(Ct));
        Assert.Equal(UploadStatus.Expired, await StatusAsync(young));
        Assert.Equal([doneA.Id], _blobs.Blobs.Keys);
    }
}
