using System.Text.Json;
using Wharf.Core.Batches;

namespace Wharf.Core.Tests.Batches;

/// <summary>
/// The gateway execution on the real catalog and blob store, its clock a fake one: the end of the 24 h window, and a
/// lease taken over by another owner (whose writes then win, each line once).
/// </summary>
public sealed class GatewayBatchExecutionTests
{
    [Fact]
    public async Task At_the_end_of_the_window_the_lines_in_flight_stop_and_every_line_not_done_is_an_expired_error()
    {
        await using var rig = new BatchRig();
        var batch = await rig.CreateBatchAsync([BatchRig.Line("f1"), BatchRig.Line("f2"), BatchRig.Line("h3", hold: true), BatchRig.Line("h4", hold: true), BatchRig.Line("h5", hold: true)]);
        var lease = await rig.ClaimAsync("owner-a", batch.Id);

        var run = rig.Execution.RunAsync(lease, CancellationToken.None);
        await BatchRig.WaitUntilAsync(() => Task.FromResult(rig.Provider.Received == 5), "every line was sent");
        await BatchRig.WaitUntilAsync(async () =>
        {
            rig.Time.Advance(TimeSpan.FromMilliseconds(BatchRig.ChunkFlushMilliseconds));
            return (await rig.GetAsync(batch.Id)).RequestCounts.Completed == 2;
        }, "the two answered lines were recorded");
        Assert.Equal(BatchStatus.InProgress, (await rig.GetAsync(batch.Id)).Status);

        rig.Time.Advance(TimeSpan.FromSeconds(BatchEndpoints.CompletionWindowSeconds));
        await run.WaitAsync(TimeSpan.FromSeconds(10));

        var ended = await rig.GetAsync(batch.Id);
        Assert.Equal(BatchStatus.Expired, ended.Status);
        Assert.Equal(rig.Time.GetUtcNow().ToUnixTimeSeconds(), ended.ExpiredAt);
        Assert.Null(ended.CompletedAt);
        Assert.Equal(new BatchRequestCounts(5, 2, 3), ended.RequestCounts);
        Assert.Equal(new BatchUsage(InputTokens: 20, CachedTokens: 4, OutputTokens: 10, ReasoningTokens: 2, TotalTokens: 30), ended.Usage);
        var output = await rig.LinesOfAsync(ended.OutputFileId);
        Assert.Equal(["f1", "f2"], output.Select(CustomId).Order());
        var errors = await rig.LinesOfAsync(ended.ErrorFileId);
        Assert.Equal(["h3", "h4", "h5"], errors.Select(CustomId).Order());
        Assert.All(errors, line =>
        {
            Assert.StartsWith("batch_req_", line.GetProperty("id").GetString(), StringComparison.Ordinal);
            Assert.Equal(JsonValueKind.Null, line.GetProperty("response").ValueKind);
            Assert.Equal("batch_expired", line.GetProperty("error").GetProperty("code").GetString());
        });
    }

    [Fact]
    public async Task An_owner_whose_lease_was_taken_over_writes_nothing_and_the_new_owner_writes_each_line_once()
    {
        await using var rig = new BatchRig();
        var batch = await rig.CreateBatchAsync([BatchRig.Line("a1"), BatchRig.Line("a2"), BatchRig.Line("a3"), BatchRig.Line("held", hold: true)]);
        var first = await rig.ClaimAsync("owner-a", batch.Id);
        var run = rig.Execution.RunAsync(first, CancellationToken.None);
        await BatchRig.WaitUntilAsync(() => Task.FromResult(rig.Provider.Received == 4), "every line was sent");

        // The first owner's lease ran out (it stopped renewing it): another owner claims the batch.
        long later = rig.Time.GetUtcNow().AddSeconds(31).ToUnixTimeMilliseconds();
        var takenOver = await rig.Catalog.ClaimAsync("owner-b", later, later + 30_000, [], CancellationToken.None);
        Assert.Equal(batch.Id, takenOver?.Id);
        // The first owner's next chunk is refused: it stops, its line in flight cancelled, and ends nothing.
        await BatchRig.WaitUntilAsync(() =>
        {
            rig.Time.Advance(TimeSpan.FromMilliseconds(BatchRig.ChunkFlushMilliseconds));
            return Task.FromResult(run.IsCompleted);
        }, "the first owner stopped");
        await run;
        Assert.Empty(await rig.Catalog.ListDoneLinesAsync(batch.Id, CancellationToken.None));
        Assert.Equal(BatchStatus.InProgress, (await rig.GetAsync(batch.Id)).Status);

        rig.Provider.Holding = false;
        await rig.Execution.RunAsync(new BatchLease(takenOver!, "owner-b", CancellationToken.None), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        var ended = await rig.GetAsync(batch.Id);
        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Equal(new BatchRequestCounts(4, 4, 0), ended.RequestCounts);
        Assert.Equal(["a1", "a2", "a3", "held"], (await rig.LinesOfAsync(ended.OutputFileId)).Select(CustomId).Order());
        Assert.Null(ended.ErrorFileId);
    }

    private static string CustomId(JsonElement line) => line.GetProperty("custom_id").GetString()!;
}
