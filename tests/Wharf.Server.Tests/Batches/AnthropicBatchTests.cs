using System.ClientModel;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI.Batch;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Batches;

/// <summary>
/// A Wharf server in front of an Anthropic simulator (<c>claude</c>, with its Message Batches API): the model
/// <c>claude-haiku-4-5</c> routes there. Native batches are polled every second.
/// </summary>
public sealed class AnthropicBatchUpstreamsFixture : IAsyncLifetime
{
    public const string ClaudeKey = "sk-ant-sim-batches-3e4f5a6b7c8d9e0f1a2b";

    public const string Model = "claude-haiku-4-5";

    public AnthropicSimulator Claude { get; private set; } = null!;
    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Claude = await AnthropicSimulator.StartAsync(ClaudeKey);
        Server = await WharfServer.StartAsync(
            "--Wharf:Providers:claude:Type=anthropic", $"--Wharf:Providers:claude:BaseUrl={Claude.BaseUrl}", $"--Wharf:Providers:claude:ApiKey={ClaudeKey}",
            $"--Wharf:Routing:Models:{Model}:0=claude",
            "--Wharf:Batches:PollIntervalMilliseconds=100",
            "--Wharf:Batches:NativePollMinSeconds=1",
            "--Wharf:Batches:NativePollMaxSeconds=1");
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Claude.DisposeAsync();
    }
}

/// <summary>
/// Native batches on Anthropic's Message Batches API through the real server and the OpenAI SDK: the same lines run
/// natively and through the gateway end with the same result lines; a cancel is passed on.
/// </summary>
public sealed class AnthropicBatchTests(AnthropicBatchUpstreamsFixture upstreams) : IClassFixture<AnthropicBatchUpstreamsFixture>, IDisposable
{
    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose()
    {
        _client.Dispose();
        upstreams.Claude.ClearFaults();
        upstreams.Claude.BatchProcessingDelay = TimeSpan.FromMilliseconds(200);
        upstreams.Claude.ResultsOrigin = null;
    }

    /// <summary>A tool choice naming a tool not offered: translated, and refused by Anthropic.</summary>
    private const string UnknownToolChoice =
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"not_offered\"}}";

    /// <summary>30 lines: plain ids, ids Anthropic would not take (spaces, non-ASCII, too long), and one line Anthropic refuses.</summary>
    private static string ThirtyLines() => string.Join('\n', Enumerable.Range(1, 30).Select(i => i switch
    {
        7 => BatchKit.ChatLine("line seven ✓", AnthropicBatchUpstreamsFixture.Model),
        8 => BatchKit.ChatLine("ключ-8", AnthropicBatchUpstreamsFixture.Model),
        9 => BatchKit.ChatLine(new string('n', 90) + "-9", AnthropicBatchUpstreamsFixture.Model),
        10 => BatchKit.ChatLine("wx-10", AnthropicBatchUpstreamsFixture.Model),
        20 => BatchKit.ChatLine("req-20", AnthropicBatchUpstreamsFixture.Model, UnknownToolChoice),
        _ => BatchKit.ChatLine("req-" + i, AnthropicBatchUpstreamsFixture.Model),
    })) + "\n";

    private async Task<JsonElement> RunWithSdkAsync(string fileId, string execution)
    {
        var batches = BatchKit.Client(upstreams.Server);
        using var content = BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            input_file_id = fileId,
            endpoint = BatchKit.ChatEndpoint,
            completion_window = "24h",
            execution,
        }));
        CreateBatchOperation operation = await batches.CreateBatchAsync(content, waitUntilCompleted: true);
        ClientResult result = await operation.GetBatchAsync(options: null);
        using var document = JsonDocument.Parse(result.GetRawResponse().Content);
        return document.RootElement.Clone();
    }

    /// <summary>A result line without what differs between two runs: its ids and the answer's creation time.</summary>
    private static string Comparable(JsonElement line)
    {
        var node = JsonNode.Parse(line.GetRawText())!.AsObject();
        node.Remove("id");
        if (node["response"] is JsonObject response)
        {
            response.Remove("request_id");
            (response["body"] as JsonObject)?.Remove("created");
        }
        return node.ToJsonString();
    }

    [Fact]
    public async Task Thirty_lines_run_natively_on_Message_Batches_end_with_the_same_result_lines_as_through_the_gateway()
    {
        string jsonl = ThirtyLines();
        string fileId = await BatchKit.UploadAsync(upstreams.Server, jsonl);
        int created = upstreams.Claude.MessageBatches.Count;

        var native = await RunWithSdkAsync(fileId, "native");
        var gateway = await RunWithSdkAsync(fileId, "gateway");

        Assert.Equal(("completed", (30, 29, 1)), (native.Status(), native.Counts()));
        Assert.Equal(("completed", (30, 29, 1)), (gateway.Status(), gateway.Counts()));
        // The batch's usage, which Anthropic gives only on each result line, is their sum, as through the gateway.
        Assert.True(native.GetProperty("usage").GetProperty("total_tokens").GetInt64() > 0, native.GetRawText());
        Assert.Equal(gateway.GetProperty("usage").GetRawText(), native.GetProperty("usage").GetRawText());
        // One Message Batch, its 30 requests sent with ids Anthropic takes.
        var upstream = Assert.Single(upstreams.Claude.MessageBatches.Skip(created));
        Assert.Equal(30, upstream.Requests.Count);
        Assert.Equal("req-1", upstream.Requests[0].CustomId);

        var nativeOutput = await BatchKit.ResultLinesAsync(upstreams.Server, native.GetProperty("output_file_id"));
        var gatewayOutput = await BatchKit.ResultLinesAsync(upstreams.Server, gateway.GetProperty("output_file_id"));
        Assert.Equal(29, nativeOutput.Count);
        Assert.Contains(nativeOutput, l => l.CustomId() == "ключ-8");
        Assert.Contains(nativeOutput, l => l.CustomId() == new string('n', 90) + "-9");
        Assert.Equal(gatewayOutput.OrderBy(l => l.CustomId(), StringComparer.Ordinal).Select(Comparable),
            nativeOutput.OrderBy(l => l.CustomId(), StringComparer.Ordinal).Select(Comparable));

        var nativeErrors = await BatchKit.ResultLinesAsync(upstreams.Server, native.GetProperty("error_file_id"));
        var gatewayErrors = await BatchKit.ResultLinesAsync(upstreams.Server, gateway.GetProperty("error_file_id"));
        Assert.Equal("req-20", Assert.Single(nativeErrors).CustomId());
        Assert.Equal(Comparable(Assert.Single(gatewayErrors)), Comparable(nativeErrors[0]));
    }

    [Fact]
    public async Task A_cancel_asked_in_Wharf_is_passed_on_to_the_Message_Batch_and_the_batch_ends_cancelled()
    {
        var hold = new Hold();
        upstreams.Claude.HoldBatchesInProgress = hold;
        try
        {
            string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(3, AnthropicBatchUpstreamsFixture.Model));
            using var response = await _client.PostAsync("/v1/batches", new StringContent(JsonSerializer.Serialize(new
            {
                input_file_id = fileId,
                endpoint = BatchKit.ChatEndpoint,
                completion_window = "24h",
                execution = "native",
            }), Encoding.UTF8, "application/json"));
            var createdBatch = await Wire.JsonAsync(response);
            Assert.True(response.IsSuccessStatusCode, createdBatch.ToString());
            string batchId = createdBatch.GetProperty("id").GetString()!;
            await BatchKit.WaitAsync(_client, batchId, b => b.Status() == "in_progress");

            using var cancel = await _client.PostAsync($"/v1/batches/{batchId}/cancel", null);
            Assert.Equal("cancelling", (await Wire.JsonAsync(cancel)).Status());
            var batch = await BatchKit.WaitForEndAsync(_client, batchId);

            Assert.Equal(("cancelled", (3, 0, 3)), (batch.Status(), batch.Counts()));
            var upstream = upstreams.Claude.MessageBatches[^1];
            Assert.Equal("ended", upstream.ProcessingStatus);
            Assert.Contains(upstreams.Claude.Requests, r => r.Method == "POST" && r.Path == $"/v1/messages/batches/{upstream.Id}/cancel");
            Assert.Equal(JsonValueKind.Null, batch.GetProperty("output_file_id").ValueKind);
            var errors = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("error_file_id"));
            Assert.Equal(["req-1", "req-2", "req-3"], errors.Select(l => l.CustomId()).Order());
            Assert.All(errors, l => Assert.Equal("batch_cancelled", l.GetProperty("error").GetProperty("code").GetString()));
        }
        finally
        {
            // Even when an assertion fails: a held Message Batch would otherwise run on into the next tests.
            hold.Release();
        }
    }

    [Fact]
    public async Task A_line_Anthropic_cannot_take_fails_the_native_batch_naming_the_line_and_nothing_is_created_upstream()
    {
        int created = upstreams.Claude.MessageBatches.Count;
        string jsonl = BatchKit.ChatLine("ok-1", AnthropicBatchUpstreamsFixture.Model) + "\n"
            + BatchKit.ChatLine("no-2", AnthropicBatchUpstreamsFixture.Model, "\"logprobs\":true") + "\n";
        string fileId = await BatchKit.UploadAsync(upstreams.Server, jsonl);

        var batch = await RunWithSdkAsync(fileId, "native");

        Assert.Equal("failed", batch.Status());
        var error = batch.GetProperty("errors").GetProperty("data")[0];
        Assert.Equal("body.logprobs", error.GetProperty("param").GetString());
        Assert.Contains("Line 2", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(created, upstreams.Claude.MessageBatches.Count);
    }

    [Fact]
    public async Task Results_are_read_on_the_configured_base_when_results_url_names_Anthropics_own_host_as_behind_a_proxy()
    {
        upstreams.Claude.ResultsOrigin = new Uri("http://127.0.0.2:9");
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(2, AnthropicBatchUpstreamsFixture.Model));

        var batch = await RunWithSdkAsync(fileId, "native");

        Assert.Equal(("completed", (2, 2, 0)), (batch.Status(), batch.Counts()));
        var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
        Assert.Equal(["req-1", "req-2"], output.Select(l => l.CustomId()).Order());
    }

    [Fact]
    public async Task A_native_batch_whose_line_names_a_file_fails_naming_the_line_and_nothing_is_created_upstream()
    {
        int created = upstreams.Claude.MessageBatches.Count;
        string document = (await upstreams.Server.CreateFileClient().UploadFileAsync(BinaryData.FromString("a document"), "note.txt", OpenAI.Files.FileUploadPurpose.UserData)).Value.Id;
        string jsonl = BatchKit.ChatLine("plain-1", AnthropicBatchUpstreamsFixture.Model) + "\n"
            + BatchKit.ChatLine("file-2", AnthropicBatchUpstreamsFixture.Model).Replace("\"messages\":[",
                "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"file_id\":\"" + document + "\"}}]},", StringComparison.Ordinal) + "\n";
        Assert.Contains(document, jsonl, StringComparison.Ordinal);
        string fileId = await BatchKit.UploadAsync(upstreams.Server, jsonl);

        var batch = await RunWithSdkAsync(fileId, "native");

        Assert.Equal("failed", batch.Status());
        var error = Assert.Single(batch.GetProperty("errors").GetProperty("data").EnumerateArray());
        Assert.Equal(("file_reference_in_native_batch", "body", 2), (error.GetProperty("code").GetString(), error.GetProperty("param").GetString(), error.GetProperty("line").GetInt32()));
        Assert.Contains("\"execution\": \"gateway\"", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(created, upstreams.Claude.MessageBatches.Count);
    }
}
