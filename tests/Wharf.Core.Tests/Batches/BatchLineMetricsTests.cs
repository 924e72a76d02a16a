using Wharf.Core.Batches;
using Wharf.Simulators;

namespace Wharf.Core.Tests.Batches;

/// <summary>
/// <c>wharf.batch.lines</c> counts each line as it ends, while its batch runs: a gateway line when its chunk is recorded,
/// a native batch's lines as the upstream's mirrored counts rise; once each, across a lease handed over to another
/// owner, and never again at the batch's end.
/// </summary>
public sealed class BatchLineMetricsTests(BatchSimulatorFixture simulator) : IClassFixture<BatchSimulatorFixture>
{
    private readonly OpenAISimulator _sim = simulator.Simulator;

    [Fact]
    public async Task Gateway_lines_are_counted_as_their_chunks_are_recorded_and_not_again_when_the_batch_ends()
    {
        await using var rig = new BatchRig();
        using var lines = new BatchLineCounter(rig.Meters);
        var batch = await rig.CreateBatchAsync([BatchRig.Line("f1"), BatchRig.Line("f2"), BatchRig.Line("p3", "pay"), BatchRig.Line("h4", hold: true), BatchRig.Line("h5", hold: true)]);
        var run = rig.Execution.RunAsync(await rig.ClaimAsync("owner-a", batch.Id), CancellationToken.None);
        await BatchRig.WaitUntilAsync(async () =>
        {
            rig.Time.Advance(TimeSpan.FromMilliseconds(BatchRig.ChunkFlushMilliseconds));
            var counts = (await rig.GetAsync(batch.Id)).RequestCounts;
            return counts.Completed == 2 && counts.Failed == 1;
        }, "the answered and the failed lines were recorded");

        // Progress while the batch runs: the lines that ended, by state.
        Assert.Equal(BatchStatus.InProgress, (await rig.GetAsync(batch.Id)).Status);
        Assert.Equal((2L, 1L), (lines.Completed, lines.Failed));

        rig.Time.Advance(TimeSpan.FromSeconds(BatchEndpoints.CompletionWindowSeconds));
        await run.WaitAsync(TimeSpan.FromSeconds(10));

        var ended = await rig.GetAsync(batch.Id);
        Assert.Equal(BatchStatus.Expired, ended.Status);
        Assert.Equal(new BatchRequestCounts(5, 2, 3), ended.RequestCounts);
        // The two lines in flight ended as expired errors: counted then, and the end adds nothing.
        Assert.Equal((2L, 3L), (lines.Completed, lines.Failed));
    }

    [Fact]
    public async Task A_gateway_owner_whose_lease_was_taken_over_counts_nothing_and_the_new_owner_counts_each_line_once()
    {
        await using var rig = new BatchRig();
        using var lines = new BatchLineCounter(rig.Meters);
        var batch = await rig.CreateBatchAsync([BatchRig.Line("a1"), BatchRig.Line("a2"), BatchRig.Line("a3"), BatchRig.Line("held", hold: true)]);
        var takenOver = await rig.TakeOverMidRunAsync(batch.Id, sent: 4);
        // Its chunk was refused: its three answered lines were not recorded, so not counted.
        Assert.Equal((0L, 0L), (lines.Completed, lines.Failed));

        rig.Provider.Holding = false;
        await rig.Execution.RunAsync(takenOver, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(new BatchRequestCounts(4, 4, 0), (await rig.GetAsync(batch.Id)).RequestCounts);
        Assert.Equal((4L, 0L), (lines.Completed, lines.Failed));
    }

    [Fact]
    public async Task Native_lines_are_counted_as_the_mirrored_counts_rise_once_each_across_a_lease_handover()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        using var lines = new BatchLineCounter(harness.Meters);
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        _sim.HoldAfterLines = 2;
        _sim.SetRule("refused-model", Fault.Status(400));
        try
        {
            var batch = await harness.CreateBatchAsync(await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini", "refused-model", "gpt-4o-mini", "gpt-4o-mini")));
            var running = await harness.DriveAsync(batch.Id, "node-a", b => b.Native?.UpstreamBatchId is not null);
            var upstream = _sim.Batches.Single(b => b.Id == running.Native!.UpstreamBatchId);
            while (upstream.Counts.Completed + upstream.Counts.Failed < 2)
            {
                await Task.Delay(2);
            }

            // node-a mirrors the two lines that ended upstream, and counts them; a poll that sees nothing new counts nothing.
            var mirrored = await harness.DriveAsync(batch.Id, "node-a", b => b.RequestCounts.Completed + b.RequestCounts.Failed >= 2);
            Assert.Equal(BatchStatus.InProgress, mirrored.Status);
            Assert.Equal((1, 1), (mirrored.RequestCounts.Completed, mirrored.RequestCounts.Failed));
            Assert.Equal((1L, 1L), (lines.Completed, lines.Failed));
            int runs = harness.Runs;
            await harness.DriveAsync(batch.Id, "node-a", _ => harness.Runs >= runs + 2);
            Assert.Equal((1L, 1L), (lines.Completed, lines.Failed));

            // node-b takes the batch over and counts from what was stored: the two lines are not counted again.
            hold.Release();
            var ended = await harness.DriveAsync(batch.Id, "node-b");
            Assert.Equal(BatchStatus.Completed, ended.Status);
            Assert.Equal((3, 1), (ended.RequestCounts.Completed, ended.RequestCounts.Failed));
            Assert.Equal((3L, 1L), (lines.Completed, lines.Failed));
        }
        finally
        {
            _sim.HoldBatchesInProgress = null;
            _sim.HoldAfterLines = 0;
            _sim.ClearFaults();
            hold.Release();
        }
    }
}
