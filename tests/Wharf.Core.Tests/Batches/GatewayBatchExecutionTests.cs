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
        // The first owner's lease runs out (it stopped renewing it) and another owner claims the batch; the first
        // owner's next chunk is refused: it stops, its line in flight cancelled, and ends nothing.
        var takenOver = await rig.TakeOverMidRunAsync(batch.Id, sent: 4);
        Assert.Empty(await rig.Catalog.ListDoneLinesAsync(batch.Id, CancellationToken.None));
        Assert.Equal(BatchStatus.InProgress, (await rig.GetAsync(batch.Id)).Status);

        rig.Provider.Holding = false;
        await rig.Execution.RunAsync(takenOver, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        var ended = await rig.GetAsync(batch.Id);
        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Equal(new BatchRequestCounts(4, 4, 0), ended.RequestCounts);
        Assert.Equal(["a1", "a2", "a3", "held"], (await rig.LinesOfAsync(ended.OutputFileId)).Select(CustomId).Order());
        Assert.Null(ended.ErrorFileId);
    }

    private static string CustomId(JsonElement line) => line.GetProperty("custom_id").GetString()!;

    /// <summary>Runs a batch of <paramref name="lines"/> to its end (ticking the fake clock) and returns it.</summary>
    private static async Task<BatchRecord> RunToEndAsync(BatchRig rig, BatchRecord batch)
    {
        var lease = await rig.ClaimAsync("owner-a", batch.Id);
        var run = rig.Execution.RunAsync(lease, CancellationToken.None);
        await BatchRig.WaitUntilAsync(() =>
        {
            rig.Time.Advance(TimeSpan.FromMilliseconds(BatchRig.ChunkFlushMilliseconds));
            return Task.FromResult(run.IsCompleted);
        }, "the run ended");
        await run;
        return await rig.GetAsync(batch.Id);
    }

    [Fact]
    public async Task An_answer_nested_deeper_than_a_document_and_spread_over_lines_is_one_output_line()
    {
        await using var rig = new BatchRig();
        var batch = await rig.CreateBatchAsync([BatchRig.Line("deep", "deep"), BatchRig.Line("plain")]);

        var ended = await RunToEndAsync(rig, batch);

        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Equal(new BatchRequestCounts(2, 2, 0), ended.RequestCounts);
        var deep = Assert.Single(await rig.LinesOfAsync(ended.OutputFileId), l => CustomId(l) == "deep");
        var body = deep.GetProperty("response").GetProperty("body");
        for (int i = 0; i < 70; i++)
        {
            body = body.GetProperty("a");
        }
        Assert.Equal(1, body.GetInt32());
    }

    [Fact]
    public async Task A_line_every_candidate_failed_with_an_answer_keeps_the_final_status_and_error_body()
    {
        await using var rig = new BatchRig();
        var batch = await rig.CreateBatchAsync([BatchRig.Line("pay", "pay"), BatchRig.Line("fine")]);

        var ended = await RunToEndAsync(rig, batch);

        Assert.Equal(new BatchRequestCounts(2, 1, 1), ended.RequestCounts);
        var line = Assert.Single(await rig.LinesOfAsync(ended.ErrorFileId));
        Assert.Equal("pay", CustomId(line));
        Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
        var response = line.GetProperty("response");
        Assert.Equal(402, response.GetProperty("status_code").GetInt32());
        var error = response.GetProperty("body").GetProperty("error");
        Assert.Equal("Your credit is exhausted.", error.GetProperty("message").GetString());
        Assert.Equal("insufficient_quota", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task An_input_file_starting_with_a_byte_order_mark_runs_its_first_line()
    {
        await using var rig = new BatchRig();
        var batch = await rig.CreateBatchAsync([BatchRig.Line("first"), BatchRig.Line("second")], prefix: "\uFEFF");

        var ended = await RunToEndAsync(rig, batch);

        Assert.Equal(BatchStatus.Completed, ended.Status);
        Assert.Equal(["first", "second"], (await rig.LinesOfAsync(ended.OutputFileId)).Select(CustomId).Order());
    }

    [Fact]
    public async Task A_batch_whose_workspace_is_deleted_mid_run_stops_sending_and_fails()
    {
        await using var rig = new BatchRig();
        var batch = await rig.CreateBatchAsync([BatchRig.Line("f1"), BatchRig.Line("h2", hold: true), BatchRig.Line("h3", hold: true)]);
        var lease = await rig.ClaimAsync("owner-a", batch.Id);
        var run = rig.Execution.RunAsync(lease, CancellationToken.None);
        await BatchRig.WaitUntilAsync(() => Task.FromResult(rig.Provider.Received == 3), "every line was sent");

        Assert.True(await rig.Workspaces.DeleteWorkspaceAsync(rig.Workspace.Id, 1, CancellationToken.None));
        await BatchRig.WaitUntilAsync(() =>
        {
            rig.Time.Advance(TimeSpan.FromMilliseconds(BatchRig.ChunkFlushMilliseconds));
            return Task.FromResult(run.IsCompleted);
        }, "the run stopped");
        await run;

        var ended = await rig.GetAsync(batch.Id);
        Assert.Equal(BatchStatus.Failed, ended.Status);
        Assert.Equal("workspace_not_found", Assert.Single(ended.Errors).Code);
        Assert.Equal(3, rig.Provider.Received); // the held lines were cancelled, not sent again
    }
}
