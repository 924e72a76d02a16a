using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Batches;

/// <summary>Kills the server (SIGKILL) while a batch runs and checks that the restarted one finishes it exactly once.</summary>
public sealed class BatchCrashTests
{
    [Fact]
    public async Task Killed_mid_batch_the_restart_finishes_it_with_every_line_once_and_none_sent_more_than_twice()
    {
        const string key = "sk-sim-crash-0123456789abcdef01234567";
        const int lines = 300;
        await using var sim = await OpenAISimulator.StartAsync(key);
        sim.Always = Fault.Delay(TimeSpan.FromMilliseconds(20));
        await using var server = await WharfServer.StartAsync(
            "--Wharf:Providers:sim:Type=openai", $"--Wharf:Providers:sim:BaseUrl={sim.BaseUrl}", $"--Wharf:Providers:sim:ApiKey={key}",
            "--Wharf:Routing:Default:0=sim",
            "--Wharf:Batches:PollIntervalMilliseconds=100",
            "--Wharf:Batches:LeaseSeconds=2",
            "--Wharf:Batches:LineConcurrency=8",
            "--Wharf:Batches:ChunkLines=20",
            "--Wharf:Batches:ChunkFlushMilliseconds=200");
        string fileId = await BatchKit.UploadAsync(server, BatchKit.Lines(lines, "crash-model"));
        string batchId;
        using (var client = server.CreateClient())
        {
            batchId = (await BatchKit.CreateAsync(client, fileId)).GetProperty("id").GetString()!;
            // Some chunks recorded, most lines still to go: then the kill.
            await BatchKit.WaitAsync(client, batchId, b => b.Counts().Completed >= 60);
        }
        server.Kill();
        int sentBeforeKill = sim.Requests.Count;
        Assert.True(sentBeforeKill < lines, $"the batch was nearly done before the kill: {sentBeforeKill} calls");

        await server.RestartAsync();
        using var after = server.CreateClient();
        var batch = await BatchKit.WaitForEndAsync(after, batchId);

        Assert.Equal("completed", batch.Status());
        Assert.Equal((lines, lines, 0), batch.Counts());
        var output = await BatchKit.ResultLinesAsync(server, batch.GetProperty("output_file_id"));
        var errors = await BatchKit.ResultLinesAsync(server, batch.GetProperty("error_file_id"));
        Assert.Empty(errors);
        var written = output.Select(l => l.CustomId()).ToList();
        Assert.Equal(lines, written.Count);
        Assert.Equal(Enumerable.Range(1, lines).Select(i => "req-" + i).Order(), written.Order());

        var sent = sim.Requests.GroupBy(BatchKit.LineOf).ToDictionary(g => g.Key!, g => g.Count());
        Assert.Equal(lines, sent.Count);
        Assert.All(sent, s => Assert.InRange(s.Value, 1, 2));
        // Re-sent: at most the lines in flight or waiting for their chunk when the kill came (a chunk filling while
        // the one before it is written: two chunks of 20, and 8 lines in flight).
        Assert.InRange(sim.Requests.Count - lines, 0, 2 * 20 + 8);
    }
}
