using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI.Batch;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Batches;

/// <summary>
/// A Wharf server whose batches may run natively: <c>upstream</c> (an OpenAI simulator with its batch API),
/// <c>azure</c> (an Azure simulator, dated api-version) and <c>mock</c> (no batch API). <c>gpt-4o-mini</c> routes to
/// mock first, then upstream. Native batches are polled every second (the shortest backoff).
/// </summary>
public sealed class NativeBatchUpstreamsFixture : IAsyncLifetime
{
    public const string OpenAIKey = "sk-sim-native-batches-0c1d2e3f4a5b6c7d";
    public const string AzureKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

    public OpenAISimulator OpenAI { get; private set; } = null!;
    public AzureOpenAISimulator Azure { get; private set; } = null!;
    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        OpenAI = await OpenAISimulator.StartAsync(OpenAIKey);
        Azure = await AzureOpenAISimulator.StartAsync(AzureKey);
        Server = await WharfServer.StartAsync(
            "--Wharf:Providers:upstream:Type=openai", $"--Wharf:Providers:upstream:BaseUrl={OpenAI.BaseUrl}", $"--Wharf:Providers:upstream:ApiKey={OpenAIKey}",
            "--Wharf:Providers:azure:Type=azure", $"--Wharf:Providers:azure:BaseUrl={Azure.BaseUrl}", $"--Wharf:Providers:azure:ApiKey={AzureKey}",
            "--Wharf:Providers:mock:Type=mock",
            "--Wharf:Routing:Models:gpt-4o-mini:0=mock",
            "--Wharf:Routing:Models:gpt-4o-mini:1=upstream",
            "--Wharf:Routing:Models:mock-only:0=mock",
            // Every line of a native batch must route to the provider it runs on, this one too (the upstream refuses it).
            "--Wharf:Routing:Models:refused-model:0=upstream",
            "--Wharf:Batches:PollIntervalMilliseconds=100",
            "--Wharf:Batches:NativePollMinSeconds=1",
            "--Wharf:Batches:NativePollMaxSeconds=1");
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await OpenAI.DisposeAsync();
        await Azure.DisposeAsync();
    }
}

/// <summary>
/// <c>"execution": "native"</c> through the real server: the batch is handed to the provider's own batch API (the
/// simulator runs it), mirrored, and its results come back as Wharf's files.
/// </summary>
public sealed class NativeBatchTests(NativeBatchUpstreamsFixture upstreams) : IClassFixture<NativeBatchUpstreamsFixture>, IDisposable
{
    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose() => _client.Dispose();

    private async Task<JsonElement> CreateNativeAsync(string fileId, string? provider = null)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["input_file_id"] = fileId,
            ["endpoint"] = BatchKit.ChatEndpoint,
            ["completion_window"] = "24h",
            ["execution"] = "native",
            ["provider"] = provider,
        }.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value));
        using var response = await _client.PostAsync("/v1/batches", new StringContent(body, Encoding.UTF8, "application/json"));
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json;
    }

    [Fact]
    public async Task A_native_batch_runs_on_the_providers_batch_API_through_the_SDK_and_its_results_are_Wharf_files()
    {
        upstreams.OpenAI.ClearFaults();
        upstreams.OpenAI.SetRule("refused-model", Fault.Status(400, """{"error":{"message":"Invalid 'messages'.","type":"invalid_request_error","param":"messages","code":null}}"""));
        string jsonl = BatchKit.ChatLine("req-1", "gpt-4o-mini") + "\n" + BatchKit.ChatLine("req-2", "refused-model") + "\n" + BatchKit.ChatLine("req-3", "gpt-4o-mini") + "\n";
        string fileId = await BatchKit.UploadAsync(upstreams.Server, jsonl);
        var batches = BatchKit.Client(upstreams.Server);

        using var content = BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            input_file_id = fileId,
            endpoint = BatchKit.ChatEndpoint,
            completion_window = "24h",
            metadata = new { run = "native-sdk" },
            execution = "native",
        }));
        CreateBatchOperation operation = await batches.CreateBatchAsync(content, waitUntilCompleted: true);
        ClientResult result = await operation.GetBatchAsync(options: null);
        using var document = JsonDocument.Parse(result.GetRawResponse().Content);
        var batch = document.RootElement.Clone();
        string batchId = batch.GetProperty("id").GetString()!;

        Assert.Equal("completed", batch.Status());
        Assert.Equal((3, 2, 1), batch.Counts());
        foreach (string stamp in new[] { "in_progress_at", "finalizing_at", "completed_at" })
        {
            Assert.Equal(JsonValueKind.Number, batch.GetProperty(stamp).ValueKind);
        }
        Assert.True(batch.GetProperty("usage").GetProperty("total_tokens").GetInt64() > 0);
        Assert.Equal("native-sdk", batch.GetProperty("metadata").GetProperty("run").GetString());

        // It ran upstream (mock, first on the route, has no batch API), named by Wharf's id, on a copy of the input.
        var upstream = Assert.Single(upstreams.OpenAI.Batches, b => b.Metadata.GetValueOrDefault("wharf_batch_id") == batchId);
        Assert.Equal("native-sdk", upstream.Metadata["run"]);
        Assert.Equal(jsonl, Encoding.UTF8.GetString(upstreams.OpenAI.Files.Single(f => f.Id == upstream.InputFileId).Content));

        var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
        Assert.Equal(["req-1", "req-3"], output.Select(l => l.CustomId()).Order());
        Assert.All(output, l => Assert.Equal(200, l.GetProperty("response").GetProperty("status_code").GetInt32()));
        var errors = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("error_file_id"));
        Assert.Equal(("req-2", 400), (Assert.Single(errors).CustomId(), errors[0].GetProperty("response").GetProperty("status_code").GetInt32()));
        var file = await Wire.GetJsonAsync(_client, "/v1/files/" + batch.GetProperty("output_file_id").GetString());
        Assert.Equal("batch_output", file.GetProperty("purpose").GetString());
    }

    [Fact]
    public async Task A_cancel_asked_in_Wharf_is_passed_on_and_the_batch_ends_cancelled()
    {
        upstreams.OpenAI.ClearFaults();
        var hold = new Hold();
        upstreams.OpenAI.HoldBatchesInProgress = hold;
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(3, "gpt-4o-mini"));
        string batchId = (await CreateNativeAsync(fileId)).GetProperty("id").GetString()!;
        await BatchKit.WaitAsync(_client, batchId, b => b.Status() == "in_progress");

        using var cancel = await _client.PostAsync($"/v1/batches/{batchId}/cancel", null);
        Assert.Equal("cancelling", (await Wire.JsonAsync(cancel)).Status());
        var batch = await BatchKit.WaitForEndAsync(_client, batchId);

        Assert.Equal("cancelled", batch.Status());
        Assert.Equal(JsonValueKind.Number, batch.GetProperty("cancelled_at").ValueKind);
        var upstream = upstreams.OpenAI.Batches.Single(b => b.Metadata.GetValueOrDefault("wharf_batch_id") == batchId);
        Assert.Equal("cancelled", upstream.Status);
        Assert.Contains(upstreams.OpenAI.Requests, r => r.Method == "POST" && r.Path == $"/v1/batches/{upstream.Id}/cancel");
        hold.Release();
    }

    [Fact]
    public async Task A_native_batch_named_to_azure_runs_on_its_dated_batch_API()
    {
        upstreams.Azure.ClearFaults();
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(2, "gpt-4o-batch"));

        string batchId = (await CreateNativeAsync(fileId, provider: "azure")).GetProperty("id").GetString()!;
        var batch = await BatchKit.WaitForEndAsync(_client, batchId);

        Assert.Equal(("completed", (2, 2, 0)), (batch.Status(), batch.Counts()));
        Assert.Contains(upstreams.Azure.Requests, r => r.Method == "POST" && r.Path == "/openai/batches" && r.Query.Contains("api-version=", StringComparison.Ordinal));
        Assert.Equal(2, (await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"))).Count);
    }

    [Fact]
    public async Task A_native_batch_whose_model_only_a_provider_without_a_batch_API_serves_fails_saying_why()
    {
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(2, "mock-only"));

        string batchId = (await CreateNativeAsync(fileId)).GetProperty("id").GetString()!;
        var batch = await BatchKit.WaitForEndAsync(_client, batchId);

        Assert.Equal("failed", batch.Status());
        var error = batch.GetProperty("errors").GetProperty("data")[0];
        Assert.Equal("no_batch_provider", error.GetProperty("code").GetString());
        Assert.Contains("gateway", error.GetProperty("message").GetString(), StringComparison.Ordinal);

        // Naming that provider is refused at once.
        string body = JsonSerializer.Serialize(new { input_file_id = fileId, endpoint = BatchKit.ChatEndpoint, completion_window = "24h", execution = "native", provider = "mock" });
        using var refused = await _client.PostAsync("/v1/batches", new StringContent(body, Encoding.UTF8, "application/json"));
        await Wire.AssertErrorAsync(refused, 400, "provider", "provider_without_batches");
    }
}

/// <summary>A server with one batch slot (<c>MaxConcurrentBatches: 1</c>), an OpenAI simulator with a batch API and a mock.</summary>
public sealed class OneBatchSlotFixture : IAsyncLifetime
{
    public OpenAISimulator OpenAI { get; private set; } = null!;
    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        OpenAI = await OpenAISimulator.StartAsync(NativeBatchUpstreamsFixture.OpenAIKey);
        Server = await WharfServer.StartAsync(
            "--Wharf:Providers:upstream:Type=openai", $"--Wharf:Providers:upstream:BaseUrl={OpenAI.BaseUrl}", $"--Wharf:Providers:upstream:ApiKey={NativeBatchUpstreamsFixture.OpenAIKey}",
            "--Wharf:Providers:mock:Type=mock",
            "--Wharf:Routing:Models:gpt-4o-mini:0=upstream",
            "--Wharf:Routing:Models:mock-only:0=mock",
            "--Wharf:Batches:MaxConcurrentBatches=1",
            "--Wharf:Batches:PollIntervalMilliseconds=100",
            "--Wharf:Batches:NativePollMinSeconds=1",
            "--Wharf:Batches:NativePollMaxSeconds=1");
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await OpenAI.DisposeAsync();
    }
}

/// <summary>A native batch waiting for its provider holds no engine slot between its polls.</summary>
public sealed class NativeBatchSlotTests(OneBatchSlotFixture upstreams) : IClassFixture<OneBatchSlotFixture>, IDisposable
{
    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task A_gateway_batch_runs_while_a_native_batch_waits_upstream_on_the_only_slot_and_a_cancel_still_reaches_the_native_one()
    {
        var hold = new Hold();
        upstreams.OpenAI.HoldBatchesInProgress = hold;
        try
        {
            string nativeFile = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(2, "gpt-4o-mini"));
            string body = JsonSerializer.Serialize(new { input_file_id = nativeFile, endpoint = BatchKit.ChatEndpoint, completion_window = "24h", execution = "native" });
            using var created = await _client.PostAsync("/v1/batches", new StringContent(body, Encoding.UTF8, "application/json"));
            string nativeId = (await Wire.JsonAsync(created)).GetProperty("id").GetString()!;
            await BatchKit.WaitAsync(_client, nativeId, b => b.Status() == "in_progress", seconds: 20);

            // The only slot is free while the native batch waits for its next poll: a gateway batch runs to its end.
            string gatewayFile = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(3, "mock-only"));
            string gatewayId = (await BatchKit.CreateAsync(_client, gatewayFile)).GetProperty("id").GetString()!;
            var gateway = await BatchKit.WaitForEndAsync(_client, gatewayId, seconds: 20);
            Assert.Equal(("completed", (3, 3, 0)), (gateway.Status(), gateway.Counts()));
            Assert.Equal("in_progress", (await Wire.GetJsonAsync(_client, "/v1/batches/" + nativeId)).Status());

            // Held by no node, the native batch is still claimed at once for a cancel, which reaches its provider.
            using var cancel = await _client.PostAsync($"/v1/batches/{nativeId}/cancel", null);
            Assert.Equal("cancelling", (await Wire.JsonAsync(cancel)).Status());
            Assert.Equal("cancelled", (await BatchKit.WaitForEndAsync(_client, nativeId, seconds: 20)).Status());
            var upstream = upstreams.OpenAI.Batches.Single(b => b.Metadata.GetValueOrDefault("wharf_batch_id") == nativeId);
            Assert.Contains(upstreams.OpenAI.Requests, r => r.Method == "POST" && r.Path == $"/v1/batches/{upstream.Id}/cancel");
        }
        finally
        {
            hold.Release();
        }
    }
}
