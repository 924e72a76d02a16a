using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;

namespace Wharf.Storage.Tests;

/// <summary>Batches, their leases, chunks and done lines: what every catalog back-end must do with them.</summary>
public abstract partial class StorageConformanceTests
{
    private const string NodeA = "node_a";
    private const string NodeB = "node_b";

    private IBatchCatalog Batches => Backend.Batches;

    private BatchRecord NewBatch(string ws = WsA, string status = BatchStatus.Validating) => new()
    {
        Id = WharfIds.Hex(WharfIds.BatchPrefix, _ids.Next()),
        WorkspaceId = ws,
        Endpoint = "/v1/chat/completions",
        InputFileId = NewFileId(),
        Execution = BatchExecution.Gateway,
        Status = status,
        CreatedAt = 1_750_000_000,
        ExpiresAt = 1_750_086_400,
    };

    private BatchChunk Chunk(BatchRecord batch, BatchFileKind kind, long bytes, params int[] lines) => new()
    {
        BatchId = batch.Id,
        WorkspaceId = batch.WorkspaceId,
        Kind = kind,
        PartId = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next()),
        Bytes = bytes,
        Sha256 = new string('a', 64),
        CreatedAt = 1_750_000_100,
        Lines = lines,
        Completed = kind == BatchFileKind.Output ? lines.Length : 0,
        Failed = kind == BatchFileKind.Error ? lines.Length : 0,
        Usage = new BatchUsage(10 * lines.Length, 1, 5 * lines.Length, 2, 15 * lines.Length),
    };

    private async Task<BatchRecord> ClaimedAsync(BatchRecord batch, string owner = NodeA, long now = 1000)
    {
        Assert.True(await Batches.InsertAsync(batch, Ct));
        var claimed = await Batches.ClaimAsync(owner, now, now + 30_000, [], Ct);
        Assert.Equal(batch.Id, claimed?.Id);
        return claimed!;
    }

    [Fact]
    public async Task ABatchRoundTripsEveryFieldAndStaysInItsWorkspace()
    {
        var batch = NewBatch() with
        {
            Provider = "groq",
            Metadata = new Dictionary<string, string> { ["team"] = "search", ["ü"] = "é" },
            OutputExpiresAfterSeconds = 7200,
        };
        Assert.True(await Batches.InsertAsync(batch, Ct));

        var read = await Batches.GetAsync(WsA, batch.Id, Ct);
        Assert.NotNull(read);
        Assert.Equal(batch.Id, read.Id);
        Assert.Equal("/v1/chat/completions", read.Endpoint);
        Assert.Equal(batch.InputFileId, read.InputFileId);
        Assert.Equal("24h", read.CompletionWindow);
        Assert.Equal("groq", read.Provider);
        Assert.Equal(BatchStatus.Validating, read.Status);
        Assert.Equal(1_750_086_400, read.ExpiresAt);
        Assert.Equal(7200, read.OutputExpiresAfterSeconds);
        Assert.Equal(batch.Metadata, read.Metadata);
        Assert.Equal(BatchRequestCounts.None, read.RequestCounts);
        Assert.Null(read.Native);
        Assert.Null(await Batches.GetAsync(WsB, batch.Id, Ct));
    }

    [Fact]
    public async Task ABatchOfADeletedWorkspaceIsNotInserted()
    {
        await Backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = WsA, Name = "gone", CreatedAt = 1 }, Ct);
        Assert.True(await Backend.Workspaces.DeleteWorkspaceAsync(WsA, 2, Ct));

        var batch = NewBatch();
        Assert.False(await Batches.InsertAsync(batch, Ct));
        Assert.Null(await Batches.GetAsync(WsA, batch.Id, Ct));
    }

    [Fact]
    public async Task BatchesAreListedNewestFirstPageByPage()
    {
        var ids = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            var batch = NewBatch();
            Assert.True(await Batches.InsertAsync(batch, Ct));
            ids.Add(batch.Id);
        }
        Assert.True(await Batches.InsertAsync(NewBatch(WsB), Ct));
        ids.Reverse();

        var first = await Batches.ListAsync(WsA, 2, null, Ct);
        Assert.Equal(ids[..2], first.Items.Select(b => b.Id));
        Assert.True(first.HasMore);
        var second = await Batches.ListAsync(WsA, 2, first.Items[^1].Id, Ct);
        Assert.Equal(ids[2..4], second.Items.Select(b => b.Id));
        Assert.True(second.HasMore);
        var last = await Batches.ListAsync(WsA, 2, second.Items[^1].Id, Ct);
        Assert.Equal(ids[4..], last.Items.Select(b => b.Id));
        Assert.False(last.HasMore);
    }

    [Fact]
    public async Task ACancelMovesARunningBatchToCancellingOnceAndLeavesAFinishedOneAlone()
    {
        var running = NewBatch(status: BatchStatus.InProgress);
        Assert.True(await Batches.InsertAsync(running, Ct));

        var cancelling = await Batches.RequestCancelAsync(WsA, running.Id, 1_750_000_500, Ct);
        Assert.Equal(BatchStatus.Cancelling, cancelling?.Status);
        Assert.Equal(1_750_000_500, cancelling?.CancellingAt);
        var again = await Batches.RequestCancelAsync(WsA, running.Id, 1_750_000_900, Ct);
        Assert.Equal(1_750_000_500, again?.CancellingAt);

        var done = NewBatch(status: BatchStatus.Completed);
        Assert.True(await Batches.InsertAsync(done, Ct));
        Assert.Equal(BatchStatus.Completed, (await Batches.RequestCancelAsync(WsA, done.Id, 1, Ct))?.Status);
        Assert.Null(await Batches.RequestCancelAsync(WsB, running.Id, 1, Ct));
    }

    [Fact]
    public async Task ALeaseIsHeldByOneOwnerUntilItRunsOutOrIsReleased()
    {
        var batch = await ClaimedAsync(NewBatch(), NodeA, now: 1000);

        Assert.Null(await Batches.ClaimAsync(NodeB, 2000, 32_000, [], Ct));
        Assert.True(await Batches.RenewLeaseAsync(batch.Id, NodeA, 60_000, Ct));
        Assert.False(await Batches.RenewLeaseAsync(batch.Id, NodeB, 90_000, Ct));
        Assert.Null(await Batches.ClaimAsync(NodeB, 59_999, 90_000, [], Ct));

        // Run out: another node takes it over, and the first one's writes are refused from then on.
        Assert.Equal(batch.Id, (await Batches.ClaimAsync(NodeB, 60_000, 90_000, [], Ct))?.Id);
        Assert.False(await Batches.RenewLeaseAsync(batch.Id, NodeA, 120_000, Ct));
        Assert.Null(await Batches.UpdateAsync(batch with { Status = BatchStatus.InProgress }, NodeA, Ct));
        Assert.False(await Batches.RecordChunkAsync(Chunk(batch, BatchFileKind.Output, 10, 1), NodeA, Ct));
        Assert.Empty(await Batches.ListDoneLinesAsync(batch.Id, Ct));

        await Batches.ReleaseLeaseAsync(batch.Id, NodeB, Ct);
        Assert.Equal(batch.Id, (await Batches.ClaimAsync(NodeA, 60_001, 90_000, [], Ct))?.Id);
    }

    [Fact]
    public async Task AClaimSkipsFinishedBatchesAndThoseInHand()
    {
        Assert.True(await Batches.InsertAsync(NewBatch(status: BatchStatus.Completed), Ct));
        var first = NewBatch();
        var second = NewBatch(status: BatchStatus.Cancelling);
        Assert.True(await Batches.InsertAsync(first, Ct));
        Assert.True(await Batches.InsertAsync(second, Ct));

        Assert.Equal(second.Id, (await Batches.ClaimAsync(NodeA, 1000, 31_000, [first.Id], Ct))?.Id);
        Assert.Equal(first.Id, (await Batches.ClaimAsync(NodeA, 1000, 31_000, [], Ct))?.Id);
        Assert.Null(await Batches.ClaimAsync(NodeA, 1000, 31_000, [], Ct));
    }

    [Fact]
    public async Task ANativeBatchIsNotClaimedBeforeItsNextPollUnlessACancelMakesItDue()
    {
        // Its provider chosen and its upstream batch polled: the next poll at 100 s (unix seconds); the claim's clock is in ms.
        var batch = await ClaimedAsync(NewBatch() with { Execution = BatchExecution.Native });
        Assert.NotNull(await Batches.UpdateAsync(batch with { Status = BatchStatus.InProgress, Native = new NativeBatchState("openai", "batch_up", 100, 1) }, NodeA, Ct));
        await Batches.ReleaseLeaseAsync(batch.Id, NodeA, Ct);
        // A native batch whose provider is not chosen yet, and a gateway batch: both claimable at once.
        var choosing = NewBatch() with { Execution = BatchExecution.Native };
        Assert.True(await Batches.InsertAsync(choosing, Ct));
        var gateway = NewBatch();
        Assert.True(await Batches.InsertAsync(gateway, Ct));

        Assert.Equal(choosing.Id, (await Batches.ClaimAsync(NodeB, 99_999, 200_000, [], Ct))?.Id);
        Assert.Equal(gateway.Id, (await Batches.ClaimAsync(NodeB, 99_999, 200_000, [choosing.Id], Ct))?.Id);
        Assert.Null(await Batches.ClaimAsync(NodeB, 99_999, 200_000, [choosing.Id, gateway.Id], Ct));
        Assert.Equal(batch.Id, (await Batches.ClaimAsync(NodeB, 100_000, 200_000, [choosing.Id, gateway.Id], Ct))?.Id);

        // Polled again, next at 500 s; a cancel asked (on any node) makes it due at once.
        var polled = await Batches.GetAsync(WsA, batch.Id, Ct);
        Assert.NotNull(await Batches.UpdateAsync(polled! with { Native = new NativeBatchState("openai", "batch_up", 500, 2) }, NodeB, Ct));
        await Batches.ReleaseLeaseAsync(batch.Id, NodeB, Ct);
        Assert.Null(await Batches.ClaimAsync(NodeA, 300_000, 400_000, [choosing.Id, gateway.Id], Ct));
        var cancelling = await Batches.RequestCancelAsync(WsA, batch.Id, 300, Ct);
        Assert.Equal((BatchStatus.Cancelling, 0L, "batch_up", 2), (cancelling!.Status, cancelling.Native!.NextPollAt, cancelling.Native.UpstreamBatchId, cancelling.Native.Polls));
        var claimed = await Batches.ClaimAsync(NodeA, 300_000, 400_000, [choosing.Id, gateway.Id], Ct);
        Assert.Equal(batch.Id, claimed?.Id);

        // Once the cancel is passed on and the next poll stored, a cancelling batch waits for it too (no claim in a loop).
        Assert.NotNull(await Batches.UpdateAsync(claimed! with { Native = claimed.Native! with { NextPollAt = 305 } }, NodeA, Ct));
        await Batches.ReleaseLeaseAsync(batch.Id, NodeA, Ct);
        Assert.Null(await Batches.ClaimAsync(NodeB, 304_999, 400_000, [choosing.Id, gateway.Id], Ct));
        Assert.Equal(batch.Id, (await Batches.ClaimAsync(NodeB, 305_000, 400_000, [choosing.Id, gateway.Id], Ct))?.Id);

        // A batch without native state keeps none when cancelled.
        Assert.Null((await Batches.RequestCancelAsync(WsA, gateway.Id, 300, Ct))!.Native);
    }

    [Fact]
    public async Task AnUpdateKeepsACancelAskedMeanwhileUnlessTheBatchEnds()
    {
        var batch = await ClaimedAsync(NewBatch());
        Assert.NotNull(await Batches.RequestCancelAsync(WsA, batch.Id, 1_750_000_010, Ct));

        var updated = await Batches.UpdateAsync(batch with { Status = BatchStatus.InProgress, InProgressAt = 1_750_000_020, RequestCounts = new(7, 0, 0) }, NodeA, Ct);
        Assert.Equal(BatchStatus.Cancelling, updated?.Status);
        Assert.Equal(1_750_000_010, updated?.CancellingAt);
        Assert.Equal(1_750_000_020, updated?.InProgressAt);
        Assert.Equal(7, updated?.RequestCounts.Total);

        var failed = await Batches.UpdateAsync(batch with { Status = BatchStatus.Failed, FailedAt = 1_750_000_030 }, NodeA, Ct);
        Assert.Equal(BatchStatus.Failed, failed?.Status);
    }

    [Fact]
    public async Task ChunksRecordTheirLinesOnceAndAddTheirCountsUsageAndBytes()
    {
        await Backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = WsA, Name = "batches", CreatedAt = 1, StorageQuotaBytes = 100 }, Ct);
        var batch = await ClaimedAsync(NewBatch());

        Assert.True(await Batches.RecordChunkAsync(Chunk(batch, BatchFileKind.Output, 60, 1, 3, 4), NodeA, Ct));
        // Past the quota: Wharf wrote these bytes, so they are counted, not refused.
        Assert.True(await Batches.RecordChunkAsync(Chunk(batch, BatchFileKind.Error, 70, 2), NodeA, Ct));
        await Assert.ThrowsAnyAsync<Exception>(() => Batches.RecordChunkAsync(Chunk(batch, BatchFileKind.Output, 5, 5, 3), NodeA, Ct));

        Assert.Equal([1, 2, 3, 4], await Batches.ListDoneLinesAsync(batch.Id, Ct));
        var read = await Batches.GetAsync(WsA, batch.Id, Ct);
        Assert.Equal(new BatchRequestCounts(0, 3, 1), read?.RequestCounts);
        Assert.Equal(new BatchUsage(40, 2, 20, 4, 60), read?.Usage);
        Assert.Equal(130, (await Backend.Workspaces.GetWorkspaceAsync(WsA, Ct))!.UsageBytes);
    }

    [Fact]
    public async Task FinalizingMakesTheChunksSegmentedFilesAndQueuesTheEventOnlyWithAWebhook()
    {
        await Backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = WsA, Name = "batches", CreatedAt = 1 }, Ct);
        var batch = await ClaimedAsync(NewBatch() with { OutputExpiresAfterSeconds = 3600 });
        var first = Chunk(batch, BatchFileKind.Output, 11, 1);
        var second = Chunk(batch, BatchFileKind.Output, 22, 2);
        Assert.True(await Batches.RecordChunkAsync(first, NodeA, Ct));
        Assert.True(await Batches.RecordChunkAsync(second, NodeA, Ct));

        string outputId = NewFileId(), errorId = NewFileId();
        var ended = await Batches.FinalizeAsync(new BatchFinal
        {
            Batch = batch with { Status = BatchStatus.Completed, CompletedAt = 1_750_000_200, RequestCounts = new(2, 0, 0) },
            OutputFileId = outputId,
            ErrorFileId = errorId,
            FilesCreatedAt = 1_750_000_200,
            Event = new WebhookEvent("evt_1", WsA, "batch.completed", 1_750_000_200, "{}"),
        }, NodeA, Ct);

        Assert.Equal(BatchStatus.Completed, ended?.Status);
        Assert.Equal(outputId, ended?.OutputFileId);
        Assert.Null(ended?.ErrorFileId); // no error chunk: no error file
        Assert.Equal(new BatchRequestCounts(2, 2, 0), ended?.RequestCounts);
        var file = await Catalog.GetAsync(WsA, outputId, Ct);
        Assert.NotNull(file);
        Assert.Equal(33, file.Bytes);
        Assert.Equal(FilePurposes.BatchOutput, file.Purpose);
        Assert.True(file.Segmented);
        Assert.Equal(1_750_003_800, file.ExpiresAt);
        Assert.Equal([first.PartId, second.PartId], (await Backend.Uploads.GetSegmentsAsync(outputId, Ct)).Select(s => s.BlobId));
        Assert.Equal(33, (await Backend.Workspaces.GetWorkspaceAsync(WsA, Ct))!.UsageBytes);
        Assert.Empty(await Batches.ListDoneLinesAsync(batch.Id, Ct)); // the run's bookkeeping went with it

        // The lease went with the end: nothing claims a finished batch, and the old owner writes nothing more.
        Assert.Null(await Batches.ClaimAsync(NodeB, long.MaxValue, long.MaxValue, [], Ct));
        Assert.Null(await Batches.FinalizeAsync(new BatchFinal
        {
            Batch = batch with { Status = BatchStatus.Failed },
            OutputFileId = NewFileId(),
            ErrorFileId = NewFileId(),
            FilesCreatedAt = 1,
        }, NodeA, Ct));
    }

    [Fact]
    public async Task ABatchEndingAfterItsWorkspaceWasDeletedLeavesNoFileAndNoPartRow()
    {
        await Backend.Workspaces.InsertWorkspaceAsync(new Workspace { Id = WsA, Name = "going", CreatedAt = 1 }, Ct);
        var batch = await ClaimedAsync(NewBatch());
        var chunk = Chunk(batch, BatchFileKind.Output, 10, 1);
        Assert.True(await Batches.RecordChunkAsync(chunk, NodeA, Ct));
        Assert.Equal([chunk.PartId], await Backend.Uploads.FindExistingPartsAsync([chunk.PartId], Ct));
        Assert.True(await Backend.Workspaces.DeleteWorkspaceAsync(WsA, 2, Ct));

        string outputId = NewFileId();
        var ended = await Batches.FinalizeAsync(new BatchFinal
        {
            Batch = batch with { Status = BatchStatus.Failed, FailedAt = 3 },
            OutputFileId = outputId,
            ErrorFileId = NewFileId(),
            FilesCreatedAt = 3,
        }, NodeA, Ct);

        Assert.Null(ended?.OutputFileId);
        Assert.Null(await Catalog.GetAsync(WsA, outputId, Ct));
        Assert.Empty(await Backend.Uploads.FindExistingPartsAsync([chunk.PartId], Ct)); // its blob is an orphan for the sweep
    }
}
