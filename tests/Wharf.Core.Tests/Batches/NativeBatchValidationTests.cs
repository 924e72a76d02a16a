using System.Text;
using Wharf.Core.Batches;
using Wharf.Simulators;

namespace Wharf.Core.Tests.Batches;

/// <summary>
/// A native batch's input is checked as the gateway execution checks it, and every line's model against the provider
/// the batch runs on, before anything is sent upstream; its metadata leaves room for Wharf's own pair.
/// </summary>
public sealed class NativeBatchValidationTests(BatchSimulatorFixture fixture) : IClassFixture<BatchSimulatorFixture>
{
    private readonly OpenAISimulator _sim = fixture.Simulator;

    private static string Line(string customId, string model, string method = "POST") =>
        $$$"""{"custom_id":"{{{customId}}}","method":"{{{method}}}","url":"/v1/chat/completions","body":{"model":"{{{model}}}","messages":[{"role":"user","content":"Hi"}]}}""" + "\n";

    /// <summary>Runs the batch's first step (validating) and returns it as stored, checking that nothing reached the upstream.</summary>
    private async Task<BatchRecord> RefusedAsync(NativeBatchHarness harness, string lines, string? provider = null)
    {
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(lines), provider);
        int received = _sim.Received;

        await harness.Execution.RunAsync(await harness.ClaimAsync(batch.Id, "node-a"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        var ended = await harness.GetAsync(batch.Id);
        Assert.Equal(BatchStatus.Failed, ended.Status);
        Assert.Null(ended.Native);
        Assert.Equal(received, _sim.Received); // no copy of the input, no batch
        return ended;
    }

    [Fact]
    public async Task BadLinesFailTheBatchWithTheirLineNumbersAndNothingIsSentUpstream()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        string lines = Line("a", "gpt-4o-mini") + "\n" + Line("b", "gpt-4o-mini", method: "GET") + Line("a", "gpt-4o-mini") + "not json\n";

        var ended = await RefusedAsync(harness, lines);

        Assert.Equal(
            [(BatchInputLine.InvalidMethod, 3), (BatchInputLine.DuplicateCustomId, 4), (BatchInputLine.InvalidJson, 5)],
            ended.Errors.Select(e => (e.Code, e.Line ?? 0)));
    }

    [Fact]
    public async Task ALineWhoseBodyNamesAFileIsRefusedWithItsLineSinceNativeLinesGoUpstreamUnrewritten()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        // A Wharf file id (it would not be rewritten to the provider's copy), a provider's id spelled with escapes (it
        // would not be checked against other workspaces' copies), and a line that only mentions "file_id" in its text.
        string wharfFile = """{"type":"file","file":{"file_id":"file-0123456789abcdefABCDEF"}}""";
        string providerFile = """{"type":"file","file":{"\u0066ile_id":"file-upstream-123"}}""";
        string lines = Line("a", "gpt-4o-mini")
            + Line("b", "gpt-4o-mini").Replace("\"content\":\"Hi\"", "\"content\":[{\"type\":\"text\",\"text\":\"Read it\"}," + wharfFile + "]", StringComparison.Ordinal)
            + Line("c", "gpt-4o-mini").Replace("\"content\":\"Hi\"", "\"content\":[" + providerFile + "]", StringComparison.Ordinal)
            + Line("d", "gpt-4o-mini").Replace("\"content\":\"Hi\"", "\"content\":\"What is a file_id?\"", StringComparison.Ordinal);

        var ended = await RefusedAsync(harness, lines);

        Assert.Equal([(NativeBatchExecution.FileReferenceInNativeBatch, 2, "body"), (NativeBatchExecution.FileReferenceInNativeBatch, 3, "body")],
            ended.Errors.Select(e => (e.Code, e.Line ?? 0, e.Param)));
        Assert.Contains("body.messages[0].content[1].file.file_id", ended.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("\"execution\": \"gateway\"", ended.Errors[0].Message, StringComparison.Ordinal);
        Assert.DoesNotContain("file-0123456789abcdefABCDEF", ended.Errors[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALineWhoseModelRoutesToAnotherProviderIsRefusedWithItsLine()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);

        // Line 1 chooses 'up' (the first provider of its route with a batch API); "only-on-mock" routes to 'demo' only.
        var ended = await RefusedAsync(harness, NativeBatchHarness.Lines("gpt-4o-mini", "only-on-mock", "gpt-4o-mini"));

        var error = Assert.Single(ended.Errors);
        Assert.Equal((NativeBatchExecution.ModelNotOnProvider, 2, "body.model"), (error.Code, error.Line, error.Param));
        Assert.Contains("'up'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'demo'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ANamedProvidersModelsListAppliesToEveryLine()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);

        var ended = await RefusedAsync(harness, NativeBatchHarness.Lines("gpt-4o-mini", "narrow-model", "gpt-4o"), provider: "narrow");

        var error = Assert.Single(ended.Errors);
        Assert.Equal((NativeBatchExecution.ModelNotOnProvider, 3), (error.Code, error.Line));
        Assert.Contains("'narrow'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AModelWithAProviderPrefixIsRefusedSinceTheUpstreamWouldNotKnowIt()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);

        var ended = await RefusedAsync(harness, NativeBatchHarness.Lines("up/gpt-4o-mini", "gpt-4o-mini", "up/gpt-4o-mini"));

        Assert.Equal([1, 3], ended.Errors.Select(e => e.Line ?? 0));
        Assert.All(ended.Errors, e => Assert.Equal(NativeBatchExecution.ModelHasProviderPrefix, e.Code));
        Assert.Contains("('gpt-4o-mini')", ended.Errors[0].Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\n\r\n \n")]
    public async Task LeadingBlankLinesAreSkippedAsTheGatewaySkipsThem(string start)
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(start + NativeBatchHarness.Lines("gpt-4o-mini", "gpt-4o-mini")));

        var ended = await harness.DriveAsync(batch.Id, "node-a");

        Assert.True(ended.Status == BatchStatus.Completed, string.Join("; ", ended.Errors.Select(e => $"{e.Code} {e.Line}: {e.Message}")));
        Assert.Equal("up", ended.Native!.Provider);
        Assert.Equal(new BatchRequestCounts(2, 2, 0), ended.RequestCounts);
    }

    [Theory]
    [InlineData("\uFEFF")]
    [InlineData("\uFEFF\n")]
    public async Task AByteOrderMarkPassesWharfsCheckAsInTheGatewayAndTheFileGoesUpstreamAsItIs(string start)
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        string lines = start + NativeBatchHarness.Lines("gpt-4o-mini", "only-on-mock");
        var batch = await harness.CreateBatchAsync(await harness.UploadAsync(lines));

        // Its first request line chose the provider; a model check found line 2 (whatever its number) not on it.
        var refused = await harness.DriveAsync(batch.Id, "node-a");
        Assert.Equal(BatchStatus.Failed, refused.Status);
        var error = Assert.Single(refused.Errors);
        Assert.Equal((NativeBatchExecution.ModelNotOnProvider, start.Length + 1), (error.Code, error.Line));

        // With good lines it reaches the upstream, byte for byte.
        var good = await harness.CreateBatchAsync(await harness.UploadAsync(start + NativeBatchHarness.Lines("gpt-4o-mini")));
        var created = await harness.DriveAsync(good.Id, "node-a", b => b.Native?.UpstreamBatchId is not null);
        Assert.Empty(created.Errors);
        var upstream = _sim.Batches.Single(b => b.Id == created.Native!.UpstreamBatchId);
        Assert.Equal(Encoding.UTF8.GetBytes(start + NativeBatchHarness.Lines("gpt-4o-mini")), _sim.Files.Single(f => f.Id == upstream.InputFileId).Content);
    }

    [Fact]
    public async Task ANativeBatchLeavesOneMetadataPairForWharfsOwnAndNothingIsDropped()
    {
        await using var harness = await NativeBatchHarness.StartAsync(_sim);
        string input = await harness.UploadAsync(NativeBatchHarness.Lines("gpt-4o-mini"));
        static string Pairs(int count, string? extra = null) =>
            "{" + string.Join(",", Enumerable.Range(1, count).Select(i => $"\"k{i}\":\"v{i}\"").Concat(extra is null ? [] : [extra])) + "}";

        var sixteen = await harness.TryCreateBatchAsync(input, metadataJson: Pairs(16));
        Assert.False(sixteen.IsOk);
        Assert.Equal((400, "metadata", "invalid_metadata"), (sixteen.Error!.Status, sixteen.Error.Param, sixteen.Error.Code));
        Assert.Contains("15", sixteen.Error.Message, StringComparison.Ordinal);
        var reserved = await harness.TryCreateBatchAsync(input, metadataJson: Pairs(1, $"\"{NativeBatchExecution.MetadataKey}\":\"batch_x\""));
        Assert.False(reserved.IsOk);
        Assert.Equal((400, "metadata"), (reserved.Error!.Status, reserved.Error.Param));

        var batch = await harness.CreateBatchAsync(input, metadataJson: Pairs(15));
        var running = await harness.DriveAsync(batch.Id, "node-a", b => b.Native?.UpstreamBatchId is not null);

        var upstream = _sim.Batches.Single(b => b.Id == running.Native!.UpstreamBatchId);
        Assert.Equal(16, upstream.Metadata.Count);
        Assert.Equal(batch.Id, upstream.Metadata[NativeBatchExecution.MetadataKey]);
        Assert.All(Enumerable.Range(1, 15), i => Assert.Equal($"v{i}", upstream.Metadata[$"k{i}"]));
        Assert.Equal(BatchStatus.Completed, (await harness.DriveAsync(batch.Id, "node-a")).Status);

        // A gateway batch keeps OpenAI's 16.
        Assert.True((await harness.TryCreateBatchAsync(input, metadataJson: Pairs(16), execution: BatchExecution.Gateway)).IsOk);
    }
}
