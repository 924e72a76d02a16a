using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;

namespace Wharf.Storage.Tests;

/// <summary>
/// What pending uploads count in their workspace's usage: the larger of their announced size and the parts they hold,
/// from creation to their end, in the same writes as the rows. Usage is then always the files' bytes plus that.
/// </summary>
public abstract partial class StorageConformanceTests
{
    /// <summary>What the usage must be: the files' bytes, plus for each pending upload max(size, parts held).</summary>
    private async Task<long> ExpectedUsageAsync(string workspaceId, IEnumerable<UploadRecord> uploads)
    {
        long files = (await Catalog.ListAsync(Query(workspaceId, limit: 10_000), Ct)).Items.Sum(f => f.Bytes);
        long pending = 0;
        foreach (var upload in uploads)
        {
            if ((await Uploads.GetUploadAsync(workspaceId, upload.Id, Ct))?.Status == UploadStatus.Pending)
            {
                pending += Math.Max(upload.Bytes, (await Uploads.ListPartsAsync(workspaceId, upload.Id, Ct)).Sum(p => p.Bytes));
            }
        }
        return files + pending;
    }

    [Fact]
    public async Task CreatingAnUploadReservesItsSizeUntilItEnds()
    {
        var ws = await AddWorkspaceAsync(quota: 1000);
        var cancelled = await AddUploadAsync(ws.Id, 600);
        Assert.Equal(600, await UsageAsync(ws.Id));

        var tooBig = MakeUpload(ws.Id, 401);
        Assert.Equal(UploadInsertOutcome.QuotaExceeded, await Uploads.InsertUploadAsync(tooBig, ManyPending, Ct));
        Assert.Null(await Uploads.GetUploadAsync(ws.Id, tooBig.Id, Ct));
        Assert.Equal(600, await UsageAsync(ws.Id));
        var expired = await AddUploadAsync(ws.Id, 400, expiresAt: Now + 10);
        Assert.Equal(1000, await UsageAsync(ws.Id));
        // Full: a file of one byte does not fit, an empty upload does.
        Assert.Equal(FileInsertOutcome.QuotaExceeded, await Catalog.InsertAsync(TestFiles.Make(ws.Id, NewFileId(), bytes: 1), Ct));
        await AddUploadAsync(ws.Id, 0);

        Assert.NotNull(await Uploads.EndAsync(ws.Id, cancelled.Id, UploadStatus.Cancelled, Ct));
        Assert.Equal(400, await UsageAsync(ws.Id));
        // Ending it again releases nothing twice.
        Assert.Null(await Uploads.EndAsync(ws.Id, cancelled.Id, UploadStatus.Expired, Ct));
        Assert.Equal(400, await UsageAsync(ws.Id));
        Assert.NotNull(await Uploads.EndAsync(ws.Id, expired.Id, UploadStatus.Expired, Ct));
        Assert.Equal(0, await UsageAsync(ws.Id));

        // A workspace without a quota counts too, and another workspace's uploads are not this one's.
        var open = await AddWorkspaceAsync("open");
        await AddUploadAsync(open.Id, 5_000_000_000);
        Assert.Equal(5_000_000_000, await UsageAsync(open.Id));
        Assert.Equal(0, await UsageAsync(ws.Id));
    }

    [Fact]
    public async Task PartsCountOnlyBeyondTheSizeAndNotPastTheQuota()
    {
        var ws = await AddWorkspaceAsync(quota: 100);
        var upload = await AddUploadAsync(ws.Id, 50);
        var a = await AddPartAsync(upload, 30);
        var b = await AddPartAsync(upload, 20);
        Assert.Equal(50, await UsageAsync(ws.Id)); // within the reservation
        var again = await AddPartAsync(upload, 30); // b and more re-sent: 80 held
        Assert.Equal(80, await UsageAsync(ws.Id));

        var over = MakePart(upload, 21);
        Assert.Equal(PartInsertOutcome.QuotaExceeded, await TryAddPartAsync(over, upload));
        Assert.Empty(await Uploads.FindExistingPartsAsync([over.Id], Ct));
        Assert.Equal(80, await UsageAsync(ws.Id));
        var last = await AddPartAsync(upload, 20);
        Assert.Equal(100, await UsageAsync(ws.Id));
        Assert.Equal([a.Id, b.Id, again.Id, last.Id], await PartIdsAsync(upload));

        // Completing counts the file in place of all the upload held; the parts left out are released.
        var file = SegmentedFile(ws.Id, 50);
        var (outcome, dropped) = await Uploads.CompleteAsync(upload.Id, file, [a.Id, b.Id], Ct);
        Assert.Equal(CompleteOutcome.Completed, outcome);
        Assert.Equal(new[] { again.Id, last.Id }.Order(StringComparer.Ordinal), dropped.Order(StringComparer.Ordinal));
        Assert.Equal(50, await UsageAsync(ws.Id));
        Assert.True(await Catalog.DeleteAsync(ws.Id, file.Id, Ct));
        Assert.Equal(0, await UsageAsync(ws.Id));
    }

    [Fact]
    public async Task AQuotaLoweredAfterTheReservationDoesNotStopTheUploadCompleting()
    {
        var ws = await AddWorkspaceAsync(quota: 100);
        var upload = await AddUploadAsync(ws.Id, 60);
        var part = await AddPartAsync(upload, 60);
        Assert.True(await Workspaces.UpdateWorkspaceAsync((await Workspaces.GetWorkspaceAsync(ws.Id, Ct))! with { StorageQuotaBytes = 10 }, Ct));

        // More than the reservation is refused; what was reserved completes.
        Assert.Equal(PartInsertOutcome.QuotaExceeded, await TryAddPartAsync(MakePart(upload, 61), upload));
        Assert.Equal(CompleteOutcome.Completed, (await Uploads.CompleteAsync(upload.Id, SegmentedFile(ws.Id, 60), [part.Id], Ct)).Outcome);
        Assert.Equal(60, await UsageAsync(ws.Id));
    }

    [Fact]
    public async Task AWorkspaceMayHaveABoundedNumberOfPendingUploads()
    {
        var ws = await AddWorkspaceAsync();
        var other = await AddWorkspaceAsync("other");
        var first = MakeUpload(ws.Id, 1);
        var second = MakeUpload(ws.Id, 1, expiresAt: Now + 10);
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(first, 2, Ct));
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(second, 2, Ct));
        var third = MakeUpload(ws.Id, 1);
        Assert.Equal(UploadInsertOutcome.TooManyPending, await Uploads.InsertUploadAsync(third, 2, Ct));
        Assert.Null(await Uploads.GetUploadAsync(ws.Id, third.Id, Ct));
        Assert.Equal(2, await UsageAsync(ws.Id));
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(MakeUpload(other.Id, 1), 2, Ct));

        // Past its expiry but not yet swept, an upload still holds its parts: it still counts.
        Assert.Equal(UploadInsertOutcome.TooManyPending, await Uploads.InsertUploadAsync(MakeUpload(ws.Id, 1, expiresAt: Now + 100), 2, Ct));
        Assert.NotNull(await Uploads.EndAsync(ws.Id, second.Id, UploadStatus.Expired, Ct));
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(third, 2, Ct));

        // A completed upload no longer counts.
        var part = await AddPartAsync(first, 1);
        Assert.Equal(CompleteOutcome.Completed, (await Uploads.CompleteAsync(first.Id, SegmentedFile(ws.Id, 1), [part.Id], Ct)).Outcome);
        Assert.Equal(UploadInsertOutcome.Inserted, await Uploads.InsertUploadAsync(MakeUpload(ws.Id, 1), 2, Ct));
        Assert.Equal(UploadInsertOutcome.TooManyPending, await Uploads.InsertUploadAsync(MakeUpload(ws.Id, 1), 2, Ct));
    }

    [Fact]
    public async Task NothingIsAddedToADeletedWorkspaceAndTheCatalogSaysSo()
    {
        var ws = await AddWorkspaceAsync(quota: 1000);
        var upload = await AddUploadAsync(ws.Id, 10);
        var part = await AddPartAsync(upload, 10);
        Assert.True(await Workspaces.DeleteWorkspaceAsync(ws.Id, Now, Ct));

        var file = TestFiles.Make(ws.Id, NewFileId(), bytes: 1);
        Assert.Equal(FileInsertOutcome.WorkspaceDeleted, await Catalog.InsertAsync(file, Ct));
        Assert.Null(await Catalog.GetAsync(ws.Id, file.Id, Ct));
        var late = MakePart(upload, 1);
        Assert.Equal(PartInsertOutcome.WorkspaceDeleted, await TryAddPartAsync(late, upload));
        Assert.Empty(await Uploads.FindExistingPartsAsync([late.Id], Ct));
        var segmented = SegmentedFile(ws.Id, 10);
        Assert.Equal(CompleteOutcome.WorkspaceDeleted, (await Uploads.CompleteAsync(upload.Id, segmented, [part.Id], Ct)).Outcome);
        Assert.Null(await Catalog.GetAsync(ws.Id, segmented.Id, Ct));
        Assert.Equal(UploadStatus.Pending, (await Uploads.GetUploadAsync(ws.Id, upload.Id, Ct))!.Status);
        Assert.Equal(UploadInsertOutcome.WorkspaceDeleted, await Uploads.InsertUploadAsync(MakeUpload(ws.Id, 1), ManyPending, Ct));

        // Its pending upload still ends (expiry) and gives back its parts for deletion.
        Assert.Equal([part.Id], await Uploads.EndAsync(ws.Id, upload.Id, UploadStatus.Expired, Ct));
    }

    [Fact]
    public async Task UsageStaysTheFilesPlusWhatPendingUploadsHoldUnderParallelWrites()
    {
        const long Quota = 30_000;
        var ws = await AddWorkspaceAsync(quota: Quota);
        var all = new System.Collections.Concurrent.ConcurrentBag<UploadRecord>();
        long maxSeen = 0;
        int refusals = 0;
        using var done = new CancellationTokenSource();
        var monitor = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                InterlockedMax(ref maxSeen, await UsageAsync(ws.Id));
                await Task.Yield();
            }
        });

        var writers = Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            var random = new Random(2000 + t);
            for (int i = 0; i < 12; i++)
            {
                var upload = MakeUpload(ws.Id, random.Next(100, 3000));
                if (await Uploads.InsertUploadAsync(upload, ManyPending, Ct) != UploadInsertOutcome.Inserted)
                {
                    Interlocked.Increment(ref refusals);
                    continue;
                }
                all.Add(upload);
                var parts = new List<UploadPartRecord>();
                long held = 0;
                // Parts up to the size, and now and then one more (a re-sent part).
                while (held < upload.Bytes || random.Next(4) == 0)
                {
                    var part = MakePart(upload, Math.Max(1, Math.Min(upload.Bytes - held, random.Next(50, 1200))));
                    var added = await TryAddPartAsync(part, upload);
                    if (added != PartInsertOutcome.Inserted)
                    {
                        Assert.Equal(PartInsertOutcome.QuotaExceeded, added);
                        Interlocked.Increment(ref refusals);
                        break;
                    }
                    parts.Add(part);
                    held += part.Bytes;
                }
                switch (random.Next(3))
                {
                    case 0:
                        await Uploads.EndAsync(ws.Id, upload.Id, UploadStatus.Cancelled, Ct);
                        break;
                    case 1 when parts.Sum(p => p.Bytes) >= upload.Bytes:
                        // The first parts that make up the size, as a client lists them.
                        var listed = new List<UploadPartRecord>();
                        foreach (var p in parts.TakeWhile(_ => listed.Sum(l => l.Bytes) < upload.Bytes))
                        {
                            listed.Add(p);
                        }
                        var file = SegmentedFile(ws.Id, listed.Sum(p => p.Bytes));
                        Assert.Equal(CompleteOutcome.Completed, (await Uploads.CompleteAsync(upload.Id, file, listed.Select(p => p.Id).ToList(), Ct)).Outcome);
                        break;
                }
            }
        })).ToList();
        await Task.WhenAll(writers);
        await done.CancelAsync();
        await monitor;

        long usage = await UsageAsync(ws.Id);
        Assert.Equal(await ExpectedUsageAsync(ws.Id, all), usage);
        Assert.True(maxSeen <= Quota, $"usage reached {maxSeen}, over the quota {Quota}");
        Assert.True(refusals > 0, "nothing was refused: the test did not reach the quota");
        int completed = 0;
        foreach (var upload in all)
        {
            completed += (await Uploads.GetUploadAsync(ws.Id, upload.Id, Ct))?.Status == UploadStatus.Completed ? 1 : 0;
        }
        Assert.True(completed > 0, "no upload was completed");

        // Ending every pending upload leaves exactly the files.
        foreach (var upload in all)
        {
            await Uploads.EndAsync(ws.Id, upload.Id, UploadStatus.Expired, Ct);
        }
        Assert.Equal((await Catalog.ListAsync(Query(ws.Id, limit: 10_000), Ct)).Items.Sum(f => f.Bytes), await UsageAsync(ws.Id));
    }
}
