using System.ClientModel;
using System.Net;
using System.Text.Json;
using OpenAI.Batch;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Batches;

/// <summary>
/// Batches run by Wharf itself (the gateway execution) through the real server: lines dispatched to the mock
/// provider and to simulators, their results in the output and error files, the counts and the usage, and the
/// model requests' own retries, fallback and concurrency limits applied to every line.
/// </summary>
public sealed class BatchExecutionTests(BatchUpstreamsFixture upstreams) : IClassFixture<BatchUpstreamsFixture>, IDisposable
{
    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose() => _client.Dispose();

    private static List<RecordedRequest> CallsFor(UpstreamSimulator simulator, string model) =>
        [.. simulator.Requests.Where(r => r.BodyText.Contains($"\"model\":\"{model}\"", StringComparison.Ordinal))];

    [Fact]
    public async Task A_batch_on_the_mock_provider_completes_through_the_SDK_with_every_line_once_and_its_usage()
    {
        const int lines = 23;
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(lines, "mock/batch-model"));
        var batches = BatchKit.Client(upstreams.Server);

        using var content = BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            input_file_id = fileId,
            endpoint = BatchKit.ChatEndpoint,
            completion_window = "24h",
            metadata = new { run = "sdk" },
        }));
        CreateBatchOperation operation = await batches.CreateBatchAsync(content, waitUntilCompleted: true);
        ClientResult result = await operation.GetBatchAsync(options: null);
        using var document = JsonDocument.Parse(result.GetRawResponse().Content);
        var batch = document.RootElement.Clone();

        Assert.Equal("completed", batch.Status());
        Assert.Equal((lines, lines, 0), batch.Counts());
        foreach (string stamp in new[] { "in_progress_at", "finalizing_at", "completed_at" })
        {
            Assert.Equal(JsonValueKind.Number, batch.GetProperty(stamp).ValueKind);
        }
        Assert.Equal(JsonValueKind.Null, batch.GetProperty("error_file_id").ValueKind);
        var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
        Assert.Equal(Enumerable.Range(1, lines).Select(i => "req-" + i).Order(), output.Select(l => l.CustomId()).Order());
        Assert.Equal(lines, output.Select(l => l.GetProperty("id").GetString()).Distinct().Count());
        long input = 0, outputTokens = 0, total = 0;
        foreach (var line in output)
        {
            Assert.StartsWith("batch_req_", line.GetProperty("id").GetString(), StringComparison.Ordinal);
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
            var response = line.GetProperty("response");
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            Assert.StartsWith("req_", response.GetProperty("request_id").GetString(), StringComparison.Ordinal);
            var body = response.GetProperty("body");
            Assert.Equal("chat.completion", body.GetProperty("object").GetString());
            Assert.Equal("batch-model", body.GetProperty("model").GetString());
            var usage = body.GetProperty("usage");
            input += usage.GetProperty("prompt_tokens").GetInt64();
            outputTokens += usage.GetProperty("completion_tokens").GetInt64();
            total += usage.GetProperty("total_tokens").GetInt64();
        }
        var summed = batch.GetProperty("usage");
        Assert.True(input > 0 && outputTokens > 0);
        Assert.Equal((input, outputTokens, total), (summed.GetProperty("input_tokens").GetInt64(), summed.GetProperty("output_tokens").GetInt64(), summed.GetProperty("total_tokens").GetInt64()));

        var file = await Wire.GetJsonAsync(_client, "/v1/files/" + batch.GetProperty("output_file_id").GetString());
        Assert.Equal("batch_output", file.GetProperty("purpose").GetString());
        Assert.Equal(batch.GetProperty("id").GetString() + "_output.jsonl", file.GetProperty("filename").GetString());
    }

    [Fact]
    public async Task Bad_lines_fail_the_batch_with_their_line_numbers_and_nothing_is_sent_upstream()
    {
        const string model = "validation-model";
        string[] lines =
        [
            BatchKit.ChatLine("ok-1", model),
            "{\"custom_id\": \"broken\", \"method\": \"POST\"",
            BatchKit.ChatLine("ok-1", model),
            BatchKit.ChatLine("ok-4", model).Replace(BatchKit.ChatEndpoint, "/v1/embeddings", StringComparison.Ordinal),
            "{\"custom_id\":\"no-model\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"messages\":[]}}",
            BatchKit.ChatLine("get-6", model).Replace("\"POST\"", "\"GET\"", StringComparison.Ordinal),
            BatchKit.ChatLine("stream-7", model, "\"stream\":true"),
            "",
            "{\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"m\"}}",
            BatchKit.ChatLine("ok-10", model),
        ];
        string fileId = await BatchKit.UploadAsync(upstreams.Server, string.Join('\n', lines) + "\n");

        var created = await BatchKit.CreateAsync(_client, fileId);
        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("failed", batch.Status());
        Assert.Equal(JsonValueKind.Number, batch.GetProperty("failed_at").ValueKind);
        var errors = batch.GetProperty("errors");
        Assert.Equal("list", errors.GetProperty("object").GetString());
        var found = errors.GetProperty("data").EnumerateArray()
            .Select(e => (e.GetProperty("line").GetInt32(), e.GetProperty("code").GetString()))
            .ToList();
        Assert.Equal(
        [
            (2, "invalid_json"), (3, "duplicate_custom_id"), (4, "invalid_url"), (5, "missing_model"),
            (6, "invalid_method"), (7, "stream_not_allowed"), (9, "missing_custom_id"),
        ], found);
        Assert.All(errors.GetProperty("data").EnumerateArray(), e => Assert.False(string.IsNullOrEmpty(e.GetProperty("message").GetString())));
        Assert.Equal("custom_id", errors.GetProperty("data")[1].GetProperty("param").GetString());
        Assert.Equal(JsonValueKind.Null, batch.GetProperty("output_file_id").ValueKind);
        Assert.Empty(CallsFor(upstreams.Sim, model));
    }

    [Fact]
    public async Task An_empty_input_file_fails_the_batch()
    {
        string fileId = await BatchKit.UploadAsync(upstreams.Server, "\n\n");

        var created = await BatchKit.CreateAsync(_client, fileId);
        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("failed", batch.Status());
        Assert.Equal("empty_file", batch.GetProperty("errors").GetProperty("data")[0].GetProperty("code").GetString());
    }

    [Fact]
    public async Task An_upstream_400_goes_to_the_error_file_with_its_status_and_body_and_is_not_retried()
    {
        const string model = "rejected-model";
        upstreams.Sim.SetRule(model, Fault.Status(400, """{"error":{"message":"Invalid 'messages': too short.","type":"invalid_request_error","param":"messages","code":"invalid_value"}}"""));
        string jsonl = BatchKit.Lines(4, model) + BatchKit.ChatLine("good-5", "mock/fine") + "\n";
        string fileId = await BatchKit.UploadAsync(upstreams.Server, jsonl);

        var created = await BatchKit.CreateAsync(_client, fileId);
        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("completed", batch.Status());
        Assert.Equal((5, 1, 4), batch.Counts());
        var errorLines = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("error_file_id"));
        Assert.Equal(["req-1", "req-2", "req-3", "req-4"], errorLines.Select(l => l.CustomId()).Order());
        foreach (var line in errorLines)
        {
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
            var response = line.GetProperty("response");
            Assert.Equal(400, response.GetProperty("status_code").GetInt32());
            var error = response.GetProperty("body").GetProperty("error");
            Assert.Equal("Invalid 'messages': too short.", error.GetProperty("message").GetString());
            Assert.Equal(("invalid_request_error", "messages", "invalid_value"),
                (error.GetProperty("type").GetString(), error.GetProperty("param").GetString(), error.GetProperty("code").GetString()));
        }
        var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
        Assert.Equal(["good-5"], output.Select(l => l.CustomId()));
        Assert.Equal(4, CallsFor(upstreams.Sim, model).Count);
    }

    [Fact]
    public async Task Lines_every_candidate_failed_go_to_the_error_file_with_the_final_upstream_status_and_body()
    {
        const string model = "always-503-model";
        upstreams.Sim.SetRule(model, Fault.Status(503));
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(2, model));

        var created = await BatchKit.CreateAsync(_client, fileId);
        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("completed", batch.Status());
        Assert.Equal((2, 0, 2), batch.Counts());
        var errorLines = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("error_file_id"));
        Assert.Equal(2, errorLines.Count);
        Assert.All(errorLines, line =>
        {
            // DESIGN: an upstream answered, so the line holds its final status and error body, and error is null.
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
            var response = line.GetProperty("response");
            Assert.Equal(503, response.GetProperty("status_code").GetInt32());
            Assert.False(string.IsNullOrEmpty(response.GetProperty("body").GetProperty("error").GetProperty("message").GetString()));
        });
        Assert.Equal(6, CallsFor(upstreams.Sim, model).Count); // each line: the first call and MaxRetries (2) retries
    }

    [Fact]
    public async Task Flaky_lines_are_retried_after_Retry_After_and_complete()
    {
        const string model = "flaky-model";
        const int lines = 6;
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(lines, model));
        // The next calls of any kind meet these faults: this class's tests run one at a time.
        upstreams.Sim.Enqueue(Fault.RateLimited("1"));
        upstreams.Sim.Enqueue(Fault.Status(503));
        upstreams.Sim.Enqueue(Fault.Status(502));

        var created = await BatchKit.CreateAsync(_client, fileId);
        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("completed", batch.Status());
        Assert.Equal((lines, lines, 0), batch.Counts());
        Assert.Equal(JsonValueKind.Null, batch.GetProperty("error_file_id").ValueKind);
        Assert.Equal(lines + 3, CallsFor(upstreams.Sim, model).Count);
        var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
        Assert.Equal(lines, output.Select(l => l.CustomId()).Distinct().Count());
    }

    [Fact]
    public async Task Lines_fall_back_to_the_next_provider_of_their_route()
    {
        const int lines = 4;
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(lines, "fallback-model"));

        var created = await BatchKit.CreateAsync(_client, fileId);
        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("completed", batch.Status());
        Assert.Equal((lines, lines, 0), batch.Counts());
        Assert.Equal(lines, CallsFor(upstreams.Backup, "fallback-model").Count);
        var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
        Assert.All(output, l => Assert.Equal("fallback-model", l.GetProperty("response").GetProperty("body").GetProperty("model").GetString()));
    }

    [Fact]
    public async Task A_providers_MaxConcurrency_holds_for_the_lines_of_a_batch()
    {
        const string model = "limited-model";
        const int lines = 12;
        upstreams.Limited.SetRule(model, Fault.Delay(TimeSpan.FromMilliseconds(60)));
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(lines, model));

        var created = await BatchKit.CreateAsync(_client, fileId, provider: "limited");
        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("completed", batch.Status());
        Assert.Equal((lines, lines, 0), batch.Counts());
        Assert.Equal(lines, CallsFor(upstreams.Limited, model).Count);
        Assert.Equal(2, upstreams.Limited.MaxInFlight);
    }

    [Fact]
    public async Task A_cancel_mid_run_stops_the_calls_in_flight_and_ends_cancelled_with_the_results_so_far()
    {
        const string fast = "cancel-fast-model";
        const string held = "cancel-held-model";
        var hold = new Hold();
        upstreams.Sim.SetRule(held, Fault.Hold(hold));
        string jsonl = string.Concat(Enumerable.Range(1, 3).Select(i => BatchKit.ChatLine("fast-" + i, fast) + "\n"))
            + string.Concat(Enumerable.Range(1, 5).Select(i => BatchKit.ChatLine("held-" + i, held) + "\n"));
        string fileId = await BatchKit.UploadAsync(upstreams.Server, jsonl);
        int abortedBefore = upstreams.Sim.Aborted;
        try
        {
            var created = await BatchKit.CreateAsync(_client, fileId);
            string id = created.GetProperty("id").GetString()!;
            await BatchKit.WaitAsync(_client, id, b => b.Counts().Completed == 3);
            await upstreams.Sim.WaitForInFlightAsync(5).WaitAsync(TimeSpan.FromSeconds(30));

            using var cancel = await _client.PostAsync($"/v1/batches/{id}/cancel", null);
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
            Assert.Equal("cancelling", (await Wire.JsonAsync(cancel)).Status());
            var batch = await BatchKit.WaitForEndAsync(_client, id);

            Assert.Equal("cancelled", batch.Status());
            Assert.Equal(JsonValueKind.Number, batch.GetProperty("cancelling_at").ValueKind);
            Assert.Equal(JsonValueKind.Number, batch.GetProperty("cancelled_at").ValueKind);
            Assert.Equal((8, 3, 0), batch.Counts());
            var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
            Assert.Equal(["fast-1", "fast-2", "fast-3"], output.Select(l => l.CustomId()).Order());
            Assert.Equal(JsonValueKind.Null, batch.GetProperty("error_file_id").ValueKind);
            await upstreams.Sim.WaitForAbortedAsync(abortedBefore + 5).WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            hold.Release();
        }
    }

    [Fact]
    public async Task A_finished_batch_cannot_be_cancelled_and_its_output_is_a_listed_batch_output_file()
    {
        string fileId = await BatchKit.UploadAsync(upstreams.Server, BatchKit.Lines(3, "mock/batch-model"));
        var created = await BatchKit.CreateAsync(_client, fileId);
        string id = created.GetProperty("id").GetString()!;
        var ended = await BatchKit.WaitForEndAsync(_client, id);
        Assert.Equal("completed", ended.Status());

        using var cancel = await _client.PostAsync($"/v1/batches/{id}/cancel", null);
        var error = await Wire.AssertErrorAsync(cancel, 400, "id", "batch_not_cancellable");
        Assert.Contains("completed", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("completed", (await Wire.GetJsonAsync(_client, $"/v1/batches/{id}")).Status());

        string outputId = ended.GetProperty("output_file_id").GetString()!;
        var file = await Wire.GetJsonAsync(_client, $"/v1/files/{outputId}");
        Assert.Equal("batch_output", file.GetProperty("purpose").GetString());
        var listed = await Wire.GetJsonAsync(_client, "/v1/files?purpose=batch_output");
        Assert.Contains(outputId, listed.GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()));
    }
}

