using System.Text.Json;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Batches;

/// <summary>Follows a batch until it reaches a final status, reading it every second and showing its request counts.</summary>
internal sealed class BatchWatcher(WharfClient client)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    public async Task<Outcome<JsonElement>> WatchAsync(string batchId, IBatchProgress progress, CancellationToken cancellationToken)
    {
        var uri = client.Address.Api($"batches/{Uri.EscapeDataString(batchId)}");
        while (true)
        {
            var answer = await client.GetAsync(uri, ApiKeyKind.Workspace, cancellationToken);
            if (!answer.IsOk)
            {
                progress.Finish("failed");
                return answer;
            }
            var batch = answer.Value.Deserialize(CliJson.Default.BatchObject)!;
            var counts = batch.RequestCounts ?? new BatchCounts(0, 0, 0);
            progress.Update(batch.Status, counts.Completed + counts.Failed, counts.Total);
            if (batch.IsFinal)
            {
                progress.Finish($"{batch.Status}: {counts.Completed} completed, {counts.Failed} failed of {counts.Total}");
                return answer;
            }
            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    /// <summary>A batch that ended without completing, as the failure its exit code reports.</summary>
    public static CliFailure? Verdict(JsonElement answer)
    {
        var batch = answer.Deserialize(CliJson.Default.BatchObject)!;
        if (batch.Status == "completed")
        {
            return null;
        }
        var error = batch.Errors?.Data.FirstOrDefault();
        string detail = error is null ? "" : $": {error.Message}{(error.Line is { } line ? $" (line {line})" : "")}";
        return new CliFailure(ExitCodes.BatchNotCompleted, $"Batch {batch.Id} ended {batch.Status}{detail}.");
    }
}
