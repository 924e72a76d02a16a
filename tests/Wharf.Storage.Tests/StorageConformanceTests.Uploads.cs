using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;

namespace Wharf.Storage.Tests;

/// <summary>Uploads and their parts: the uploads part of the conformance suite, through <see cref="IUploadCatalog"/>.</summary>
public abstract partial class StorageConformanceTests
{
    private const long MiB = 1024 * 1024;

    /// <summary>A pending-upload bound no test here reaches, except where it says otherwise.</summary>
    private const int ManyPending = 1000;

    private IUploadCatalog Uploads => Backend.Uploads;

    private UploadRecord MakeUpload(string workspaceId, long bytes, long? expiresAt = null, string? mime = "text/plain", long? fileExpiresAfter = null) => new()
    {
        Id = WharfIds.Hex(WharfIds.UploadPrefix, _ids.Next()),
        WorkspaceId = workspaceId,
        Filename = "big.jsonl",
        Purpose = "batch",
        Bytes = bytes,
        MimeType = mime,
        CreatedAt = Now,
        ExpiresAt = expiresAt ?? Now + 3600,
        Status = UploadStatus.Pending,
        FileExpiresAfterSeconds = fileExpiresAfter,
    };

    private async Task<UploadRecord> AddUploadAsync(string workspaceId, long bytes, long? expiresAt = null)
    {
        var upload = MakeUpload(workspaceId, bytes, expiresAt);
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(upload, ManyPending, Ct));
        return upload;
    }

    private int _partSeed;

    private UploadPartRecord MakePart(UploadRecord upload, long bytes, string? workspaceId = null) => new()
    {
        Id = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next()),
        UploadId = upload.Id,
        WorkspaceId = workspaceId ?? upload.WorkspaceId,
        Bytes = bytes,
        // Descending, so that an order by hash is not arrival order.
        Sha256 = (9_999 - _partSeed++).ToString("d64", System.Globalization.CultureInfo.InvariantCulture),
        CreatedAt = Now,
    };

    private async Task<UploadPartRecord> AddPartAsync(UploadRecord upload, long bytes)
    {
        var part = MakePart(upload, bytes);
        Assert.Equal(PartInsertOutcome.Inserted, await TryAddPartAsync(part, upload));
        return part;
    }

    /// <summary>Adds a part with the allowance the service gives the upload, at <paramref name="now"/> (default: now).</summary>
    private Task<PartInsertOutcome> TryAddPartAsync(UploadPartRecord part, UploadRecord upload, long? now = null) =>
        Uploads.InsertPartAsync(part, now ?? Now, UploadService.MaxHeldBytes(upload.Bytes), Ct);

    private FileRecord SegmentedFile(string workspaceId, long bytes) => TestFiles.Make(workspaceId, NewFileId(), bytes: bytes) with { Segmented = true };

    private async Task<IReadOnlyList<string>> PartIdsAsync(UploadRecord upload) =>
        (await Uploads.ListPartsAsync(upload.WorkspaceId, upload.Id, Ct)).Select(p => p.Id).ToList();

    [Fact]
    public async Task UploadInsertThenGetRoundTripsEveryField()
    {
        var upload = MakeUpload(WsA, 5_000_000_000, mime: "application/jsonl; charset=utf-8", fileExpiresAfter: 7200) with
        {
            Filename = "r\u00e9sum\u00e9 \U0001F600 ../x",
        };
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(upload, ManyPending, Ct));
        Assert.Equal(upload, await Uploads.GetUploadAsync(WsA, upload.Id, Ct));

        var plain = MakeUpload(WsA, 0, mime: null);
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(plain, ManyPending, Ct));
        var read = await Uploads.GetUploadAsync(WsA, plain.Id, Ct);
        Assert.Equal(plain, read);
        Assert.Null(read!.MimeType);
        Assert.Null(read.FileExpiresAfterSeconds);
        Assert.Null(read.FileId);

        Assert.Null(await Uploads.GetUploadAsync(WsB, upload.Id, Ct));
        Assert.Null(await Uploads.GetUploadAsync(WsA, WharfIds.Hex(WharfIds.UploadPrefix, _ids.Next()), Ct));
    }

    /// <summary>
    /// Wharf's extensions of an upload (the metadata, collection and provider its file will have) round-trip, and the
    /// file completing it writes is listed by the metadata and collection filters, as a file uploaded with them.
    /// </summary>
    [Fact]
    public async Task AnUploadKeepsItsFilesMetadataCollectionAndProviderAndItsFileIsListedByThem()
    {
        var metadata = new Dictionary<string, string> { ["team"] = "r\u00e9search", ["run"] = "7", ["empty"] = "" };
        var upload = MakeUpload(WsA, 30) with { Metadata = metadata, Collection = "evals \U0001F600", Provider = "openai" };
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(upload, ManyPending, Ct));
        var read = (await Uploads.GetUploadAsync(WsA, upload.Id, Ct))!;
        Assert.Equal(metadata.OrderBy(p => p.Key, StringComparer.Ordinal), read.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(("evals \U0001F600", "openai"), (read.Collection, read.Provider));
        Assert.Equal(upload, read with { Metadata = upload.Metadata });

        var plain = await AddUploadAsync(WsA, 10);
        var plainRead = (await Uploads.GetUploadAsync(WsA, plain.Id, Ct))!;
        Assert.Empty(plainRead.Metadata);
        Assert.Null(plainRead.Collection);
        Assert.Equal(FileService.LocalProvider, plainRead.Provider);
        // The sweeper's read maps them too.
        var expired = (await Uploads.ListExpiredAsync(upload.ExpiresAt, 10, Ct)).Single(u => u.Id == upload.Id);
        Assert.Equal(("openai", metadata.Count), (expired.Provider, expired.Metadata.Count));

        var part = await AddPartAsync(upload, 30);
        var file = SegmentedFile(WsA, 30) with { Metadata = read.Metadata, Collection = read.Collection };
        Assert.Equal(CompleteOutcome.Completed, (await Uploads.CompleteAsync(upload.Id, file, [part.Id], Ct)).Outcome);
        Assert.Equal([file.Id], (await Catalog.ListAsync(Query(WsA, metadata: [new("team", "r\u00e9search"), new("run", "7")]), Ct)).Items.Select(f => f.Id));
        Assert.Equal([file.Id], (await Catalog.ListAsync(Query(WsA, collection: "evals \U0001F600"), Ct)).Items.Select(f => f.Id));
        var kept = (await Catalog.GetAsync(WsA, file.Id, Ct))!;
        Assert.Equal(metadata.OrderBy(p => p.Key, StringComparer.Ordinal), kept.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal));
        var done = (await Uploads.GetUploadAsync(WsA, upload.Id, Ct))!;
        Assert.Equal((UploadStatus.Completed, "openai", "evals \U0001F600", 3), (done.Status, done.Provider, done.Collection, done.Metadata.Count));
    }

    [Fact]
    public async Task APartIsAcceptedOnlyWhilePendingAndBeforeExpiry()
    {
        var upload = await AddUploadAsync(WsA, 100, expiresAt: Now + 10);
        var early = MakePart(upload, 10);
        Assert.Equal(PartInsertOutcome.Inserted, await TryAddPartAsync(early, upload, Now + 9));
        var atExpiry = MakePart(upload, 10);
        Assert.Equal(PartInsertOutcome.NotPending, await TryAddPartAsync(atExpiry, upload, Now + 10));
        Assert.Equal(PartInsertOutcome.NotPending, await TryAddPartAsync(MakePart(upload, 10), upload, Now + 11));
        Assert.Equal([early.Id], await PartIdsAsync(upload));
        Assert.DoesNotContain(atExpiry.Id, await Uploads.FindExistingPartsAsync([atExpiry.Id, early.Id], Ct));

        // Not for another workspace's upload, nor an unknown one.
        Assert.Equal(PartInsertOutcome.NotPending, await TryAddPartAsync(MakePart(upload, 1, workspaceId: WsB), upload));
        Assert.Equal(PartInsertOutcome.NotPending, await TryAddPartAsync(MakePart(MakeUpload(WsA, 100), 1), upload));
        Assert.Empty(await Uploads.ListPartsAsync(WsB, upload.Id, Ct));

        var cancelled = await AddUploadAsync(WsA, 100);
        Assert.NotNull(await Uploads.EndAsync(WsA, cancelled.Id, UploadStatus.Cancelled, Ct));
        Assert.Equal(PartInsertOutcome.NotPending, await TryAddPartAsync(MakePart(cancelled, 1), cancelled));

        var completed = await AddUploadAsync(WsA, 5);
        var part = await AddPartAsync(completed, 5);
        Assert.Equal(CompleteOutcome.Completed, (await Uploads.CompleteAsync(completed.Id, SegmentedFile(WsA, 5), [part.Id], Ct)).Outcome);
        Assert.Equal(PartInsertOutcome.NotPending, await TryAddPartAsync(MakePart(completed, 1), completed));
        Assert.Empty(await PartIdsAsync(completed));
    }

    [Fact]
    public async Task PartsMayExceedTheSizeOfASmallUploadByOnePart()
    {
        // 100 + 64 MiB: room to re-send a part, not an unbounded sink.
        var upload = await AddUploadAsync(WsA, 100);
        await AddPartAsync(upload, 64 * MiB);
        await AddPartAsync(upload, 60);
        await AddPartAsync(upload, 40);
        var over = MakePart(upload, 1);
        Assert.Equal(PartInsertOutcome.OverAllowance, await TryAddPartAsync(over, upload));
        Assert.Equal(3, (await PartIdsAsync(upload)).Count);
        Assert.Empty(await Uploads.FindExistingPartsAsync([over.Id], Ct));
    }

    [Fact]
    public async Task PartsMayExceedTheSizeOfALargeUploadByAnEighth()
    {
        // 1 GiB + 128 MiB: eighteen parts of 64 MiB, not one byte more (formerly twice the size).
        long size = 1024 * MiB;
        var upload = await AddUploadAsync(WsA, size);
        for (int i = 0; i < 17; i++)
        {
            await AddPartAsync(upload, 64 * MiB);
        }
        Assert.Equal(PartInsertOutcome.OverAllowance, await TryAddPartAsync(MakePart(upload, 64 * MiB + 1), upload));
        await AddPartAsync(upload, 64 * MiB);
        Assert.Equal(PartInsertOutcome.OverAllowance, await TryAddPartAsync(MakePart(upload, 1), upload));
        Assert.Equal(18, (await PartIdsAsync(upload)).Count);

        // Each upload has its own allowance.
        var other = await AddUploadAsync(WsA, size);
        await AddPartAsync(other, 64 * MiB);
    }

    [Fact]
    public async Task PartsAreListedInArrivalOrderForTheirUploadOnly()
    {
        var upload = await AddUploadAsync(WsA, 1000);
        var other = await AddUploadAsync(WsA, 1000);
        var foreign = await AddUploadAsync(WsB, 1000);
        var expected = new List<UploadPartRecord>();
        for (int i = 0; i < 12; i++)
        {
            // Sizes and hashes fall as ids rise: only arrival order gives the expected list.
            expected.Add(await AddPartAsync(upload, 100 - i));
            await AddPartAsync(other, 5);
            await AddPartAsync(foreign, 5);
        }
        var listed = await Uploads.ListPartsAsync(WsA, upload.Id, Ct);
        Assert.Equal(expected, listed);
        Assert.Empty(await Uploads.ListPartsAsync(WsB, upload.Id, Ct));
        Assert.Equal(12, (await Uploads.ListPartsAsync(WsB, foreign.Id, Ct)).Count);
        Assert.Empty(await Uploads.ListPartsAsync(WsA, foreign.Id, Ct));
    }

    [Fact]
    public async Task CompleteMakesTheListedPartsTheFilesSegmentsInOrder()
    {
        await Workspaces.InsertWorkspaceAsync(MakeWorkspace(id: WsA, quota: 10_000), Ct);
        var upload = await AddUploadAsync(WsA, 0);
        var parts = new List<UploadPartRecord>();
        for (int i = 0; i < 12; i++)
        {
            parts.Add(await AddPartAsync(upload, 10 + i));
        }
        // Listed out of arrival order, with two-digit positions (so a text order of positions would be wrong), and
        // leaving out parts 4 and 9.
        int[] order = [11, 3, 0, 10, 7, 1, 8, 2, 6, 5];
        var listed = order.Select(i => parts[i]).ToList();
        long bytes = listed.Sum(p => p.Bytes);
        var file = SegmentedFile(WsA, bytes);

        var (outcome, dropped) = await Uploads.CompleteAsync(upload.Id, file, listed.Select(p => p.Id).ToList(), Ct);
        Assert.Equal(CompleteOutcome.Completed, outcome);
        Assert.Equal(new[] { parts[4].Id, parts[9].Id }.Order(StringComparer.Ordinal), dropped.Order(StringComparer.Ordinal));

        var read = await Catalog.GetAsync(WsA, file.Id, Ct);
        Assert.NotNull(read);
        Assert.True(read.Segmented);
        Assert.Equal(bytes, read.Bytes);
        Assert.Equal(bytes, await UsageAsync(WsA));
        Assert.Equal(listed.Select(p => new BlobSegment(p.Id, p.Bytes)), await Uploads.GetSegmentsAsync(file.Id, Ct));

        var done = await Uploads.GetUploadAsync(WsA, upload.Id, Ct);
        Assert.Equal(UploadStatus.Completed, done!.Status);
        Assert.Equal(file.Id, done.FileId);
        Assert.Empty(await PartIdsAsync(upload));
        var existing = await Uploads.FindExistingPartsAsync(parts.Select(p => p.Id).ToList(), Ct);
        Assert.Equal(listed.Select(p => p.Id).Order(StringComparer.Ordinal), existing.Order(StringComparer.Ordinal));

        // Once only.
        var again = SegmentedFile(WsA, bytes);
        Assert.Equal(CompleteOutcome.NotPending, (await Uploads.CompleteAsync(upload.Id, again, listed.Select(p => p.Id).ToList(), Ct)).Outcome);
        Assert.Null(await Catalog.GetAsync(WsA, again.Id, Ct));
        Assert.Equal(bytes, await UsageAsync(WsA));
        Assert.Equal(listed.Select(p => new BlobSegment(p.Id, p.Bytes)), await Uploads.GetSegmentsAsync(file.Id, Ct));
        Assert.Null(await Uploads.EndAsync(WsA, upload.Id, UploadStatus.Cancelled, Ct));
        Assert.Equal(UploadStatus.Completed, (await Uploads.GetUploadAsync(WsA, upload.Id, Ct))!.Status);
    }

    [Fact]
    public async Task ASingleBlobFileHasNoSegments()
    {
        var file = TestFiles.Make(WsA, NewFileId());
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(file, Ct));
        Assert.Empty(await Uploads.GetSegmentsAsync(file.Id, Ct));
        Assert.False((await Catalog.GetAsync(WsA, file.Id, Ct))!.Segmented);
    }

    [Fact]
    public async Task CompleteOfAnotherWorkspacesUploadIsNotPending()
    {
        var upload = await AddUploadAsync(WsA, 5);
        var part = await AddPartAsync(upload, 5);
        var file = SegmentedFile(WsB, 5);
        Assert.Equal(CompleteOutcome.NotPending, (await Uploads.CompleteAsync(upload.Id, file, [part.Id], Ct)).Outcome);
        Assert.Null(await Catalog.GetAsync(WsB, file.Id, Ct));
        Assert.Equal(UploadStatus.Pending, (await Uploads.GetUploadAsync(WsA, upload.Id, Ct))!.Status);
        Assert.Equal([part.Id], await PartIdsAsync(upload));
    }

    [Fact]
    public async Task CompleteOverTheQuotaChangesNothing()
    {
        // Only the bytes of the file beyond what the upload counted meet the quota: here the file claims 50 bytes
        // for an upload that reserved 40 (the catalog does not add the parts up; the service does).
        await Workspaces.InsertWorkspaceAsync(MakeWorkspace(id: WsA, quota: 100), Ct);
        await InsertFileAsync(WsA, 60);
        var upload = await AddUploadAsync(WsA, 40);
        var a = await AddPartAsync(upload, 30);
        var b = await AddPartAsync(upload, 10);
        Assert.Equal(100, await UsageAsync(WsA));
        var file = SegmentedFile(WsA, 50);

        var (outcome, dropped) = await Uploads.CompleteAsync(upload.Id, file, [a.Id, b.Id], Ct);
        Assert.Equal(CompleteOutcome.QuotaExceeded, outcome);
        Assert.Empty(dropped);
        Assert.Null(await Catalog.GetAsync(WsA, file.Id, Ct));
        Assert.Equal(100, await UsageAsync(WsA));
        var still = await Uploads.GetUploadAsync(WsA, upload.Id, Ct);
        Assert.Equal(UploadStatus.Pending, still!.Status);
        Assert.Null(still.FileId);
        Assert.Equal([a.Id, b.Id], await PartIdsAsync(upload));
        Assert.Empty(await Uploads.GetSegmentsAsync(file.Id, Ct));

        // With room made, the same upload completes, and the usage holds the file in place of the reservation.
        var grown = (await Workspaces.GetWorkspaceAsync(WsA, Ct))! with { StorageQuotaBytes = 110 };
        Assert.True(await Workspaces.UpdateWorkspaceAsync(grown, Ct));
        var retry = SegmentedFile(WsA, 50);
        Assert.Equal(CompleteOutcome.Completed, (await Uploads.CompleteAsync(upload.Id, retry, [a.Id, b.Id], Ct)).Outcome);
        Assert.Equal(110, await UsageAsync(WsA));
        Assert.Equal([new BlobSegment(a.Id, 30), new BlobSegment(b.Id, 10)], await Uploads.GetSegmentsAsync(retry.Id, Ct));
    }

    [Theory]
    [InlineData(UploadStatus.Cancelled)]
    [InlineData(UploadStatus.Expired)]
    public async Task EndDropsThePartsOnce(string status)
    {
        var upload = await AddUploadAsync(WsA, 10);
        var other = await AddUploadAsync(WsA, 10);
        var a = await AddPartAsync(upload, 4);
        var b = await AddPartAsync(upload, 6);
        var kept = await AddPartAsync(other, 3);

        Assert.Null(await Uploads.EndAsync(WsB, upload.Id, status, Ct));
        Assert.Equal([a.Id, b.Id], await PartIdsAsync(upload));

        var dropped = await Uploads.EndAsync(WsA, upload.Id, status, Ct);
        Assert.NotNull(dropped);
        Assert.Equal(new[] { a.Id, b.Id }.Order(StringComparer.Ordinal), dropped.Order(StringComparer.Ordinal));
        Assert.Equal(status, (await Uploads.GetUploadAsync(WsA, upload.Id, Ct))!.Status);
        Assert.Empty(await PartIdsAsync(upload));
        Assert.Empty(await Uploads.FindExistingPartsAsync([a.Id, b.Id], Ct));
        Assert.Equal([kept.Id], await PartIdsAsync(other));

        Assert.Null(await Uploads.EndAsync(WsA, upload.Id, status, Ct));
        Assert.Null(await Uploads.EndAsync(WsA, upload.Id, UploadStatus.Cancelled, Ct));
        Assert.Null(await Uploads.EndAsync(WsA, WharfIds.Hex(WharfIds.UploadPrefix, _ids.Next()), status, Ct));
        Assert.Equal(status, (await Uploads.GetUploadAsync(WsA, upload.Id, Ct))!.Status);
        Assert.Equal(CompleteOutcome.NotPending, (await Uploads.CompleteAsync(upload.Id, SegmentedFile(WsA, 10), [a.Id, b.Id], Ct)).Outcome);
    }

    [Fact]
    public async Task EndWithoutPartsReturnsAnEmptyList()
    {
        var upload = await AddUploadAsync(WsA, 10);
        var dropped = await Uploads.EndAsync(WsA, upload.Id, UploadStatus.Cancelled, Ct);
        Assert.NotNull(dropped);
        Assert.Empty(dropped);
    }

    [Fact]
    public async Task ListExpiredFindsPendingUploadsPastTheirExpiry()
    {
        var soon = await AddUploadAsync(WsA, 1, expiresAt: Now + 100);
        var sooner = await AddUploadAsync(WsB, 1, expiresAt: Now + 50);
        var exact = await AddUploadAsync(WsA, 1, expiresAt: Now + 200);
        await AddUploadAsync(WsA, 1, expiresAt: Now + 201);
        var cancelled = await AddUploadAsync(WsA, 1, expiresAt: Now + 10);
        await Uploads.EndAsync(WsA, cancelled.Id, UploadStatus.Cancelled, Ct);
        var completed = await AddUploadAsync(WsA, 0, expiresAt: Now + 10);
        Assert.Equal(CompleteOutcome.Completed, (await Uploads.CompleteAsync(completed.Id, SegmentedFile(WsA, 0), [], Ct)).Outcome);

        Assert.Empty(await Uploads.ListExpiredAsync(Now + 49, 10, Ct));
        Assert.Equal([sooner.Id, soon.Id, exact.Id], (await Uploads.ListExpiredAsync(Now + 200, 10, Ct)).Select(u => u.Id));
        Assert.Equal([sooner.Id, soon.Id], (await Uploads.ListExpiredAsync(Now + 200, 2, Ct)).Select(u => u.Id));
        Assert.Equal(sooner, (await Uploads.ListExpiredAsync(Now + 200, 1, Ct)).Single());

        await Uploads.EndAsync(WsB, sooner.Id, UploadStatus.Expired, Ct);
        Assert.Equal([soon.Id, exact.Id], (await Uploads.ListExpiredAsync(Now + 200, 10, Ct)).Select(u => u.Id));
    }

    [Fact]
    public async Task FindExistingPartsSeesPendingPartsAndSegmentsOnly()
    {
        Assert.Empty(await Uploads.FindExistingPartsAsync([], Ct));
        var upload = await AddUploadAsync(WsA, 5);
        var pending = await AddUploadAsync(WsB, 5);
        var segment = await AddPartAsync(upload, 5);
        var droppedPart = await AddPartAsync(upload, 2);
        var waiting = await AddPartAsync(pending, 1);
        var (_, dropped) = await Uploads.CompleteAsync(upload.Id, SegmentedFile(WsA, 5), [segment.Id], Ct);
        Assert.Equal([droppedPart.Id], dropped);

        string unknown = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next());
        var found = await Uploads.FindExistingPartsAsync([segment.Id, droppedPart.Id, waiting.Id, unknown], Ct);
        Assert.Equal(new[] { segment.Id, waiting.Id }.Order(StringComparer.Ordinal), found.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task DeletingASegmentedFileRemovesItsSegmentsAndUsage()
    {
        await Workspaces.InsertWorkspaceAsync(MakeWorkspace(id: WsA), Ct);
        var upload = await AddUploadAsync(WsA, 9);
        var a = await AddPartAsync(upload, 4);
        var b = await AddPartAsync(upload, 5);
        var file = SegmentedFile(WsA, 9);
        Assert.Equal(CompleteOutcome.Completed, (await Uploads.CompleteAsync(upload.Id, file, [b.Id, a.Id], Ct)).Outcome);
        var other = await InsertFileAsync(WsA, 7);
        Assert.Equal(16, await UsageAsync(WsA));

        // Not through another workspace.
        Assert.False(await Catalog.DeleteAsync(WsB, file.Id, Ct));
        Assert.Equal(2, (await Uploads.FindExistingPartsAsync([a.Id, b.Id], Ct)).Count);
        Assert.Equal(2, (await Uploads.GetSegmentsAsync(file.Id, Ct)).Count);

        Assert.True(await Catalog.DeleteAsync(WsA, file.Id, Ct));
        Assert.Empty(await Uploads.FindExistingPartsAsync([a.Id, b.Id], Ct));
        Assert.Empty(await Uploads.GetSegmentsAsync(file.Id, Ct));
        Assert.Equal(7, await UsageAsync(WsA));
        Assert.NotNull(await Catalog.GetAsync(WsA, other.Id, Ct));
        Assert.False(await Catalog.DeleteAsync(WsA, file.Id, Ct));
        Assert.Equal(7, await UsageAsync(WsA));
    }
}
