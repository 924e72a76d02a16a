using System.Text;
using System.Text.Json;
using Wharf.Core.Batches;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>The native batch operations of the <c>openai</c> adapter against the OpenAI simulator's batch API.</summary>
public sealed class OpenAIBatchAdapterTests(OpenAISimulatorFixture fixture) : IClassFixture<OpenAISimulatorFixture>, IAsyncLifetime
{
    private readonly OpenAISimulator _sim = fixture.Simulator;
    private ProviderHarness _harness = null!;

    private IProvider Provider => _harness["up"];

    public Task InitializeAsync()
    {
        _sim.ClearFaults();
        _harness = ProviderHarness.Start(("up:Type", "openai"), ("up:ApiKey", _sim.ApiKey), ("up:BaseUrl", _sim.BaseUrl.ToString()), ("up:TimeoutSeconds", "20"));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    internal static string Lines(string url, params string[] models) => string.Concat(models.Select((model, i) =>
        $$$"""{"custom_id":"req-{{{i + 1}}}","method":"POST","url":"{{{url}}}","body":{"model":"{{{model}}}","messages":[{"role":"user","content":"Say {{{i + 1}}}"}]}}""" + "\n"));

    private async Task<string> UploadAsync(string lines)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(lines);
        var file = await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(bytes), bytes.Length, "input.jsonl", "batch", "application/jsonl"), CancellationToken.None);
        Assert.True(file.IsOk, file.Failure?.ToString());
        return file.Value.Id;
    }

    private static async Task<string> ReadAllAsync(UpstreamFileContent content)
    {
        await using (content)
        {
            using var reader = new StreamReader(content.Content, Encoding.UTF8);
            return await reader.ReadToEndAsync();
        }
    }

    [Fact]
    public async Task ABatchIsCreatedWithItsMetadataRunsUpstreamAndItsResultFilesDownload()
    {
        _sim.SetRule("broken-model", Fault.Status(400, """{"error":{"message":"Unsupported parameter.","type":"invalid_request_error","param":"messages","code":null}}"""));
        string input = await UploadAsync(Lines("/v1/chat/completions", "gpt-4o-mini", "broken-model", "gpt-4o-mini"));
        var created = await Provider.CreateBatchAsync(
            new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string> { ["wharf_batch_id"] = "batch_1", ["team"] = "a" }), CancellationToken.None);

        Assert.True(created.IsOk, created.Failure?.ToString());
        Assert.StartsWith("batch_sim", created.Value.Id, StringComparison.Ordinal);
        var sent = _sim.Requests[^1];
        Assert.Equal(("POST", "/v1/batches", "Bearer " + _sim.ApiKey), (sent.Method, sent.Path, sent.Header("Authorization")));
        using (var body = JsonDocument.Parse(sent.Body))
        {
            Assert.Equal(input, body.RootElement.GetProperty("input_file_id").GetString());
            Assert.Equal("/v1/chat/completions", body.RootElement.GetProperty("endpoint").GetString());
            Assert.Equal("24h", body.RootElement.GetProperty("completion_window").GetString());
            Assert.Equal("batch_1", body.RootElement.GetProperty("metadata").GetProperty("wharf_batch_id").GetString());
        }

        await _sim.WaitForBatchEndAsync(created.Value.Id);
        var polled = await Provider.GetBatchAsync(created.Value.Id, CancellationToken.None);
        Assert.True(polled.IsOk, polled.Failure?.ToString());
        var batch = polled.Value;
        Assert.Equal(("completed", new BatchRequestCounts(3, 2, 1)), (batch.Status, batch.RequestCounts));
        Assert.Equal(("GET", $"/v1/batches/{created.Value.Id}"), (_sim.Requests[^1].Method, _sim.Requests[^1].Path));
        Assert.Equal("a", batch.Metadata!["team"]);
        // The simulator's chat answer uses 9 prompt tokens and one per word of its reply.
        int words = _sim.ReplyText.Split(' ').Length;
        Assert.Equal(new BatchUsage(18, 0, 2 * words, 0, 18 + 2 * words), batch.Usage);
        Assert.Equal(["validating", "in_progress", "finalizing", "completed"], _sim.Batches.Single(b => b.Id == batch.Id).History);

        var output = await Provider.DownloadFileAsync(batch.OutputFileId!, CancellationToken.None);
        Assert.True(output.IsOk, output.Failure?.ToString());
        Assert.Equal(($"/v1/files/{batch.OutputFileId}/content", "Bearer " + _sim.ApiKey), (_sim.Requests[^1].Path, _sim.Requests[^1].Header("Authorization")));
        var outputLines = (await ReadAllAsync(output.Value)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["req-1", "req-3"], outputLines.Select(l => l.GetProperty("custom_id").GetString()));
        Assert.All(outputLines, l => Assert.Equal(200, l.GetProperty("response").GetProperty("status_code").GetInt32()));
        Assert.Equal("chat.completion", outputLines[0].GetProperty("response").GetProperty("body").GetProperty("object").GetString());

        var errors = await Provider.DownloadFileAsync(batch.ErrorFileId!, CancellationToken.None);
        Assert.True(errors.IsOk, errors.Failure?.ToString());
        var errorLine = JsonDocument.Parse((await ReadAllAsync(errors.Value)).Trim()).RootElement;
        Assert.Equal(("req-2", 400), (errorLine.GetProperty("custom_id").GetString(), errorLine.GetProperty("response").GetProperty("status_code").GetInt32()));
    }

    [Fact]
    public async Task ACancelStopsARunningBatchWhichEndsCancelled()
    {
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        string input = await UploadAsync(Lines("/v1/chat/completions", "gpt-4o-mini", "gpt-4o-mini"));
        var created = await Provider.CreateBatchAsync(new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string>()), CancellationToken.None);
        Assert.True(created.IsOk, created.Failure?.ToString());
        var simulated = _sim.Batches.Single(b => b.Id == created.Value.Id);
        while (simulated.Status == "validating")
        {
            await Task.Delay(5);
        }
        Assert.Equal("in_progress", (await Provider.GetBatchAsync(created.Value.Id, CancellationToken.None)).Value.Status);

        var cancelled = await Provider.CancelBatchAsync(created.Value.Id, CancellationToken.None);

        Assert.True(cancelled.IsOk, cancelled.Failure?.ToString());
        Assert.Equal("cancelling", cancelled.Value.Status);
        Assert.Equal(("POST", $"/v1/batches/{created.Value.Id}/cancel"), (_sim.Requests[^1].Method, _sim.Requests[^1].Path));
        await _sim.WaitForBatchEndAsync(created.Value.Id);
        var ended = (await Provider.GetBatchAsync(created.Value.Id, CancellationToken.None)).Value;
        Assert.Equal(("cancelled", new BatchRequestCounts(2, 0, 0), null), (ended.Status, ended.RequestCounts, ended.OutputFileId));
    }

    [Fact]
    public async Task TheListPagesNewestFirstWithTheProvidersCursorAndCarriesEachBatchsMetadata()
    {
        string input = await UploadAsync(Lines("/v1/chat/completions", "gpt-4o-mini"));
        var first = (await Provider.CreateBatchAsync(new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string> { ["wharf_batch_id"] = "batch_a" }), CancellationToken.None)).Value;
        var second = (await Provider.CreateBatchAsync(new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string> { ["wharf_batch_id"] = "batch_b" }), CancellationToken.None)).Value;

        var page = await Provider.ListBatchesAsync(new UpstreamBatchQuery(1, null), CancellationToken.None);

        Assert.True(page.IsOk, page.Failure?.ToString());
        Assert.Equal([second.Id], page.Value.Data.Select(b => b.Id));
        Assert.True(page.Value.HasMore);
        Assert.Equal("batch_b", page.Value.Data[0].Metadata!["wharf_batch_id"]);
        Assert.Equal(("GET", "/v1/batches", "?limit=1"), (_sim.Requests[^1].Method, _sim.Requests[^1].Path, _sim.Requests[^1].Query));
        var next = await Provider.ListBatchesAsync(new UpstreamBatchQuery(1, second.Id), CancellationToken.None);
        Assert.Equal([first.Id], next.Value.Data.Select(b => b.Id));
        Assert.Equal("batch_a", next.Value.Data[0].Metadata!["wharf_batch_id"]);
    }

    [Fact]
    public async Task A5xxOnAPollIsARetryableServerError()
    {
        string input = await UploadAsync(Lines("/v1/chat/completions", "gpt-4o-mini"));
        var created = (await Provider.CreateBatchAsync(new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string>()), CancellationToken.None)).Value;
        _sim.Enqueue(Fault.Status(503));

        var failure = (await Provider.GetBatchAsync(created.Id, CancellationToken.None)).Failure!;

        Assert.Equal((FailureCategory.ServerError, 503, true), (failure.Category, failure.Status, failure.Retryable));
        Assert.True((await Provider.GetBatchAsync(created.Id, CancellationToken.None)).IsOk);
    }

    [Fact]
    public async Task ABatchThatFailsUpstreamReportsItsErrors()
    {
        _sim.EndNextBatch(SimulatedBatchEnd.Failed, "token_limit_exceeded", "Enqueued token limit reached for gpt-4o-mini.");
        string input = await UploadAsync(Lines("/v1/chat/completions", "gpt-4o-mini"));
        var created = (await Provider.CreateBatchAsync(new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string>()), CancellationToken.None)).Value;
        await _sim.WaitForBatchEndAsync(created.Id);

        var batch = (await Provider.GetBatchAsync(created.Id, CancellationToken.None)).Value;

        Assert.Equal("failed", batch.Status);
        Assert.True(batch.IsFinal);
        var error = Assert.Single(batch.Errors);
        Assert.Equal(("token_limit_exceeded", "Enqueued token limit reached for gpt-4o-mini."), (error.Code, error.Message));
        Assert.Null(batch.OutputFileId);
    }

    [Fact]
    public async Task ABatchWhoseWindowRunsOutExpiresWithThePartialResults()
    {
        _sim.EndNextBatch(SimulatedBatchEnd.Expired);
        string input = await UploadAsync(Lines("/v1/chat/completions", "m", "m", "m", "m"));
        var created = (await Provider.CreateBatchAsync(new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string>()), CancellationToken.None)).Value;
        await _sim.WaitForBatchEndAsync(created.Id);

        var batch = (await Provider.GetBatchAsync(created.Id, CancellationToken.None)).Value;

        Assert.Equal(("expired", new BatchRequestCounts(4, 2, 0)), (batch.Status, batch.RequestCounts));
        var output = (await Provider.DownloadFileAsync(batch.OutputFileId!, CancellationToken.None)).Value;
        Assert.Equal(2, (await ReadAllAsync(output)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task ARefusedCreateIsTheUpstreamsVerdictAndAnUnknownBatchIsNotFound()
    {
        var refused = (await Provider.CreateBatchAsync(new UpstreamBatchCreate("file-nope", "/v1/chat/completions", "24h", new Dictionary<string, string>()), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.RequestRejected, 400, "input_file_id"), (refused.Category, refused.Status, refused.Error!.Param));

        var unknown = (await Provider.GetBatchAsync("batch_nope", CancellationToken.None)).Failure!;
        Assert.Equal((404, false), (unknown.Status, unknown.Retryable));
    }

    [Fact]
    public async Task ADownloadIsStreamedAndABodyThatStopsComingFailsItsReadAfterTheTimeout()
    {
        var last = new Hold();
        byte[] body = new byte[3 << 20];
        _sim.Enqueue(Fault.ChunkedJson(body, lastPieceWhen: last));
        var download = await Provider.DownloadFileAsync("file-any", CancellationToken.None);
        Assert.True(download.IsOk, download.Failure?.ToString());
        await using var content = download.Value;

        // The first pieces arrive while the upstream still holds back the last one: nothing waits for the whole body.
        byte[] buffer = new byte[1 << 20];
        int read = 0;
        while (read < 2 << 20)
        {
            int n = await content.Content.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(n > 0);
            read += n;
        }
        var stalled = content.Content.ReadAsync(buffer).AsTask();
        await Assert.ThrowsAsync<IOException>(() => _harness.AdvanceUntilDoneAsync(stalled, TimeSpan.FromSeconds(5)));
        last.Release();
    }

    [Fact]
    public async Task AProviderConfiguredWithoutABatchApiAnswersEveryBatchCallUnsupportedAndCallsNothing()
    {
        await using var harness = ProviderHarness.Start(("off:Type", "openai"), ("off:ApiKey", _sim.ApiKey), ("off:BaseUrl", _sim.BaseUrl.ToString()), ("off:NativeBatches", "false"));
        await AssertNoBatchesAsync(harness["off"], () => _sim.Received);
    }

    /// <summary>Each of the four batch calls of <paramref name="provider"/> fails as unsupported, not attempted, with no request sent.</summary>
    internal static async Task AssertNoBatchesAsync(IProvider provider, Func<int> received)
    {
        int before = received();
        UpstreamFailure?[] failures =
        [
            (await provider.CreateBatchAsync(new UpstreamBatchCreate("file-x", "/v1/chat/completions", "24h", new Dictionary<string, string>()), CancellationToken.None)).Failure,
            (await provider.GetBatchAsync("batch_x", CancellationToken.None)).Failure,
            (await provider.CancelBatchAsync("batch_x", CancellationToken.None)).Failure,
            (await provider.ListBatchesAsync(new UpstreamBatchQuery(10, null), CancellationToken.None)).Failure,
        ];

        Assert.DoesNotContain(ProviderCapability.Batches, provider.Capabilities);
        Assert.All(failures, f => Assert.Equal((FailureCategory.Unsupported, UpstreamFailureKind.NotAttempted), (f!.Category, f.Kind)));
        Assert.Equal(before, received());
    }
}

/// <summary>The native batch operations of the <c>azure</c> adapter on both path styles, against the Azure simulator.</summary>
public sealed class AzureBatchAdapterTests(AzureSimulatorFixture fixture) : IClassFixture<AzureSimulatorFixture>
{
    private readonly AzureOpenAISimulator _sim = fixture.Simulator;

    private ProviderHarness Start(string? apiVersion = null, string? nativeBatches = null)
    {
        _sim.ClearFaults();
        var settings = new List<(string, string?)> { ("az:Type", "azure"), ("az:ApiKey", _sim.ApiKey), ("az:BaseUrl", _sim.BaseUrl.ToString()) };
        if (apiVersion is not null)
        {
            settings.Add(("az:ApiVersion", apiVersion));
        }
        if (nativeBatches is not null)
        {
            settings.Add(("az:NativeBatches", nativeBatches));
        }
        return ProviderHarness.Start([.. settings]);
    }

    private static async Task<string> UploadAsync(IProvider provider, string lines)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(lines);
        var file = await provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(bytes), bytes.Length, "input.jsonl", "batch", null), CancellationToken.None);
        Assert.True(file.IsOk, file.Failure?.ToString());
        return file.Value.Id;
    }

    [Theory]
    [InlineData(null, "/openai/batches", "?api-version=2024-10-21", "/chat/completions")]
    [InlineData("2025-04-01-preview", "/openai/batches", "?api-version=2025-04-01-preview", "/chat/completions")]
    [InlineData("v1", "/openai/v1/batches", "", "/v1/chat/completions")]
    public async Task ABatchRunsOnEitherPathStyleWithTheEndpointAsThatStyleNamesIt(string? apiVersion, string path, string query, string endpoint)
    {
        await using var harness = Start(apiVersion);
        var provider = harness["az"];
        Assert.Contains(ProviderCapability.Batches, provider.Capabilities);
        // Lines as Wharf's clients write them (OpenAI's url); the deployment is each body's model.
        string input = await UploadAsync(provider, OpenAIBatchAdapterTests.Lines("/v1/chat/completions", "gpt-4o-prod", "no-such-deployment"));

        var created = await provider.CreateBatchAsync(
            new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string> { ["wharf_batch_id"] = "batch_z" }), CancellationToken.None);

        Assert.True(created.IsOk, created.Failure?.ToString());
        var sent = _sim.Requests[^1];
        Assert.Equal(("POST", path, query, _sim.ApiKey), (sent.Method, sent.Path, sent.Query, sent.Header("api-key")));
        Assert.Null(sent.Header("Authorization"));
        using (var body = JsonDocument.Parse(sent.Body))
        {
            Assert.Equal(endpoint, body.RootElement.GetProperty("endpoint").GetString());
        }
        await _sim.WaitForBatchEndAsync(created.Value.Id);
        var batch = (await provider.GetBatchAsync(created.Value.Id, CancellationToken.None)).Value;
        Assert.Equal(($"{path}/{created.Value.Id}", query), (_sim.Requests[^1].Path, _sim.Requests[^1].Query));
        Assert.Equal(("completed", new BatchRequestCounts(2, 1, 1)), (batch.Status, batch.RequestCounts));

        var listed = await provider.ListBatchesAsync(new UpstreamBatchQuery(5, null), CancellationToken.None);
        Assert.True(listed.IsOk, listed.Failure?.ToString());
        Assert.Equal("batch_z", listed.Value.Data.First(b => b.Id == batch.Id).Metadata!["wharf_batch_id"]);

        var output = await provider.DownloadFileAsync(batch.OutputFileId!, CancellationToken.None);
        Assert.True(output.IsOk, output.Failure?.ToString());
        string prefix = path[..^"/batches".Length];
        Assert.Equal(($"{prefix}/files/{batch.OutputFileId}/content", query), (_sim.Requests[^1].Path, _sim.Requests[^1].Query));
        await using (output.Value)
        {
            string text = await new StreamReader(output.Value.Content).ReadToEndAsync();
            Assert.Contains("\"custom_id\":\"req-1\"", text, StringComparison.Ordinal);
        }
        var errors = await provider.DownloadFileAsync(batch.ErrorFileId!, CancellationToken.None);
        await using (errors.Value)
        {
            string text = await new StreamReader(errors.Value.Content).ReadToEndAsync();
            Assert.Contains("\"status_code\":404", text, StringComparison.Ordinal);
            Assert.Contains("DeploymentNotFound", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ACancelGoesToTheCancelPathWithTheApiVersion()
    {
        await using var harness = Start();
        var provider = harness["az"];
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        string input = await UploadAsync(provider, OpenAIBatchAdapterTests.Lines("/chat/completions", "gpt-4o-prod"));
        var created = (await provider.CreateBatchAsync(new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string>()), CancellationToken.None)).Value;

        var cancelled = await provider.CancelBatchAsync(created.Id, CancellationToken.None);

        Assert.True(cancelled.IsOk, cancelled.Failure?.ToString());
        Assert.Equal(("POST", $"/openai/batches/{created.Id}/cancel", "?api-version=2024-10-21"), (_sim.Requests[^1].Method, _sim.Requests[^1].Path, _sim.Requests[^1].Query));
        await _sim.WaitForBatchEndAsync(created.Id);
        Assert.Equal("cancelled", (await provider.GetBatchAsync(created.Id, CancellationToken.None)).Value.Status);
    }

    [Fact]
    public async Task AProviderConfiguredWithoutABatchApiHasNoBatchesCapabilityAndCallsNothing()
    {
        await using var harness = Start(nativeBatches: "false");

        await OpenAIBatchAdapterTests.AssertNoBatchesAsync(harness["az"], () => _sim.Received);
    }
}
