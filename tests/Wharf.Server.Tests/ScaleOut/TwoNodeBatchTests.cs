using Npgsql;
using Wharf.Server.Tests.Batches;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.ScaleOut;

/// <summary>
/// A batch run by one of two real nodes on one PostgreSQL database and one bucket: the node working on it is killed
/// (SIGKILL) in the middle, the other takes it over once the lease runs out, and every line ends in the output once.
/// </summary>
public sealed class TwoNodeBatchTests
{
    private const int Lines = 2_000;

    private static readonly string[] MockBatches =
    [
        "--Wharf:Providers:mock:Type=mock",
        "--Wharf:Providers:mock:LatencyMs=40",
        "--Wharf:Routing:Default:0=mock",
        "--Wharf:Batches:PollIntervalMilliseconds=100",
        "--Wharf:Batches:LeaseSeconds=2",
        "--Wharf:Batches:LineConcurrency=16",
        "--Wharf:Batches:ChunkLines=50",
        "--Wharf:Batches:ChunkFlushMilliseconds=200",
    ];

    [Fact]
    public async Task A_2000_line_batch_whose_node_is_killed_mid_batch_completes_on_the_other_with_every_line_once()
    {
        var store = await ScaleOutStore.CreateAsync();
        await using var a = await store.StartNodeAsync(MockBatches);
        await using var b = await store.StartNodeAsync(MockBatches);

        string fileId = await BatchKit.UploadAsync(a, BatchKit.Lines(Lines, "mock-model"));
        string batchId;
        using (var client = a.CreateClient())
        {
            batchId = (await BatchKit.CreateAsync(client, fileId)).GetProperty("id").GetString()!;
            // Some chunks recorded, most lines still to go: then the node that runs the batch is killed.
            await BatchKit.WaitAsync(client, batchId, batch => batch.Counts().Completed >= 300, seconds: 120);
        }
        // The node whose lease the batch holds in the catalog is the one working on it.
        string owner = await LeaseOwnerAsync(store, batchId);
        var (runner, survivor) = a.Output.Contains("Batch engine started as " + owner, StringComparison.Ordinal) ? (a, b) : (b, a);
        Assert.Contains("Batch engine started as " + owner, runner.Output, StringComparison.Ordinal);
        Assert.Equal(1, Claimed(runner.Output, batchId));
        runner.Kill();
        using (var client = survivor.CreateClient())
        {
            var stopped = await Wire.GetJsonAsync(client, $"/v1/batches/{batchId}");
            Assert.True(stopped.Counts().Completed < Lines, $"the batch was done before the kill: {stopped}");
        }

        using var after = survivor.CreateClient();
        var batch = await BatchKit.WaitForEndAsync(after, batchId, seconds: 180);

        Assert.True(Claimed(survivor.Output, batchId) >= 1, survivor.Output); // taken over once its lease ran out
        Assert.Equal("completed", batch.Status());
        Assert.Equal((Lines, Lines, 0), batch.Counts());
        var output = await BatchKit.ResultLinesAsync(survivor, batch.GetProperty("output_file_id"));
        var errors = await BatchKit.ResultLinesAsync(survivor, batch.GetProperty("error_file_id"));
        Assert.Empty(errors);
        var written = output.Select(line => line.CustomId()).ToList();
        Assert.Equal(Lines, written.Count);
        Assert.Equal(Enumerable.Range(1, Lines).Select(i => "req-" + i).Order(StringComparer.Ordinal), written.Order(StringComparer.Ordinal));
        Assert.All(output, line => Assert.Equal(200, line.GetProperty("response").GetProperty("status_code").GetInt32()));
    }

    private static async Task<string> LeaseOwnerAsync(ScaleOutStore store, string batchId)
    {
        await using var connection = new NpgsqlConnection(store.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT lease_owner FROM batches WHERE id = @id;", connection);
        command.Parameters.AddWithValue("@id", batchId);
        return Assert.IsType<string>(await command.ExecuteScalarAsync());
    }

    /// <summary>How many times the node's log says it claimed the batch.</summary>
    private static int Claimed(string logs, string batchId) =>
        logs.Split('\n').Count(line => line.Contains($"Batch {batchId} claimed", StringComparison.Ordinal));
}
