using System.Text;
using System.Text.Json;
using Wharf.Core.Batches;
using Wharf.Core.Providers;
using Wharf.Providers.Anthropic;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>
/// The <c>anthropic</c> adapter's native batches against the simulator's Message Batches API: the create streamed from
/// Wharf's input, translated; the batch's status and counts; its results translated into OpenAI's lines; custom_ids
/// mapped there and back.
/// </summary>
public sealed class AnthropicBatchAdapterTests(AnthropicSimulatorFixture fixture) : IClassFixture<AnthropicSimulatorFixture>, IAsyncLifetime
{
    private readonly AnthropicSimulator _sim = fixture.Simulator;
    private ProviderHarness _harness = null!;

    private IProvider Provider => _harness["claude"];

    public Task InitializeAsync()
    {
        _sim.ClearFaults();
        _sim.BatchProcessingDelay = TimeSpan.FromMilliseconds(50);
        _sim.ExpireNextBatchAfter = null;
        _sim.BrokenResultsLine = null;
        _sim.ResultsOrigin = null;
        _harness = ProviderHarness.Start(
            ("claude:Type", "anthropic"), ("claude:ApiKey", _sim.ApiKey), ("claude:BaseUrl", _sim.BaseUrl.ToString()), ("claude:TimeoutSeconds", "30"),
            ("claude:DefaultMaxTokens", "1000"));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    internal static string Line(string customId, string extra = "") =>
        JsonSerializer.Serialize(new { custom_id = customId, method = "POST", url = "/v1/chat/completions" }).TrimEnd('}')
        + ",\"body\":{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Say "
        + customId.Length + "\"}]" + extra + "}}";

    /// <summary>A tool choice naming a tool not offered: translated, and refused by Anthropic's validation.</summary>
    internal const string UnknownToolChoice =
        ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"not_offered\"}}";

    private static BatchInputOpener Input(string jsonl)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(jsonl);
        return _ => Task.FromResult<UpstreamFileContent?>(new UpstreamFileContent(new MemoryStream(bytes), bytes.Length));
    }

    private static UpstreamBatchCreate Create(BatchInputOpener input) =>
        new(null, "/v1/chat/completions", "24h", new Dictionary<string, string> { ["wharf_batch_id"] = "batch_1" }) { Input = input };

    private static async Task<List<JsonElement>> LinesAsync(UpstreamOutcome<UpstreamFileContent> content)
    {
        Assert.True(content.IsOk, content.Failure?.ToString());
        await using (content.Value)
        {
            using var reader = new StreamReader(content.Value.Content, Encoding.UTF8);
            string text = await reader.ReadToEndAsync();
            Assert.True(text.Length == 0 || text.EndsWith('\n'));
            return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
        }
    }

    private async Task<UpstreamBatch> EndedAsync(string id)
    {
        var simulated = _sim.MessageBatches.Single(b => b.Id == id);
        await simulated.Ended.WaitAsync(TimeSpan.FromSeconds(10));
        var polled = await Provider.GetBatchAsync(id, CancellationToken.None);
        Assert.True(polled.IsOk, polled.Failure?.ToString());
        return polled.Value;
    }

    [Fact]
    public async Task A_batch_is_created_from_Wharfs_input_translated_line_by_line_and_its_results_come_back_as_OpenAIs_lines()
    {
        string longId = new('x', 100);
        const string nonAscii = "ключ-2 ✓";
        const string lookalike = "wx-looks-like-Wharfs";
        string jsonl = "\uFEFF" + Line("req-1") + "\r\n" + Line(nonAscii) + "\n\n" + Line(longId) + "\n" + Line(lookalike) + "\n"
            + Line("bad-tool-choice", UnknownToolChoice); // refused by Anthropic when the batch runs, not by the translation
        var input = Input(jsonl);
        var provider = Provider;

        Assert.Contains(ProviderCapability.Batches, provider.Capabilities);
        Assert.Equal(BatchInputForm.WharfFile, provider.BatchInputForm);
        var created = await provider.CreateBatchAsync(Create(input), CancellationToken.None);

        Assert.True(created.IsOk, created.Failure?.ToString());
        Assert.Equal(BatchStatus.InProgress, created.Value.Status);
        Assert.Equal(new BatchRequestCounts(5, 0, 0), created.Value.RequestCounts);
        var sent = _sim.Requests[^1];
        Assert.Equal(("POST", "/v1/messages/batches", _sim.ApiKey, "2023-06-01"), (sent.Method, sent.Path, sent.Header("x-api-key"), sent.Header("anthropic-version")));
        Assert.Null(sent.Header("Content-Length")); // streamed as it was written
        using (var body = JsonDocument.Parse(sent.Body))
        {
            var requests = body.RootElement.GetProperty("requests").EnumerateArray().ToList();
            var ids = requests.Select(r => r.GetProperty("custom_id").GetString()!).ToList();
            Assert.Equal("req-1", ids[0]);
            Assert.All(ids, id => Assert.True(AnthropicCustomIds.Fits(id), id));
            Assert.Equal(ids.Count, ids.Distinct().Count());
            Assert.DoesNotContain(lookalike, ids);
            // Each params is the request translated as a model request is.
            var first = requests[0].GetProperty("params");
            Assert.Equal(("claude-haiku-4-5", 1000, "Be brief."), (first.GetProperty("model").GetString(), first.GetProperty("max_tokens").GetInt32(),
                first.GetProperty("system")[0].GetProperty("text").GetString()));
            Assert.Equal("user", first.GetProperty("messages")[0].GetProperty("role").GetString());
        }

        var batch = await EndedAsync(created.Value.Id);
        Assert.Equal((BatchStatus.Completed, new BatchRequestCounts(5, 4, 1)), (batch.Status, batch.RequestCounts));
        Assert.NotNull(batch.OutputFileId);
        Assert.NotNull(batch.ErrorFileId);

        var output = await LinesAsync(await provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Output, batch.OutputFileId!, input), CancellationToken.None));
        Assert.Equal(new[] { "req-1", nonAscii, longId, lookalike }.Order(StringComparer.Ordinal), output.Select(l => l.GetProperty("custom_id").GetString()!).Order(StringComparer.Ordinal));
        foreach (var line in output)
        {
            Assert.StartsWith("batch_req_", line.GetProperty("id").GetString(), StringComparison.Ordinal);
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
            var response = line.GetProperty("response");
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            Assert.StartsWith("req_", response.GetProperty("request_id").GetString(), StringComparison.Ordinal);
            var completion = response.GetProperty("body");
            Assert.Equal(("chat.completion", _sim.ReplyText, "stop"), (completion.GetProperty("object").GetString(),
                completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
                completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString()));
            Assert.True(completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 0);
        }

        var errors = await LinesAsync(await provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Error, batch.ErrorFileId!, input), CancellationToken.None));
        var error = Assert.Single(errors);
        Assert.Equal("bad-tool-choice", error.GetProperty("custom_id").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("error").ValueKind);
        Assert.Equal(400, error.GetProperty("response").GetProperty("status_code").GetInt32());
        var body400 = error.GetProperty("response").GetProperty("body").GetProperty("error");
        Assert.Equal(("invalid_request_error", "invalid_request_error"), (body400.GetProperty("type").GetString(), body400.GetProperty("code").GetString()));
        Assert.Contains("tool_choice", body400.GetProperty("message").GetString(), StringComparison.Ordinal);
        var results = _sim.Requests[^1];
        Assert.Equal(($"/v1/messages/batches/{batch.Id}/results", _sim.ApiKey), (results.Path, results.Header("x-api-key")));
    }

    [Fact]
    public async Task A_line_Anthropic_cannot_take_refuses_the_create_naming_its_line_and_parameter_before_anything_is_sent()
    {
        int before = _sim.Requests.Count;
        var created = await Provider.CreateBatchAsync(Create(Input(Line("a") + "\n" + Line("b", ",\"logprobs\":true") + "\n")), CancellationToken.None);

        Assert.False(created.IsOk);
        var failure = created.Failure;
        Assert.Equal((FailureCategory.RequestRejected, false, 400), (failure.Category, failure.Retryable, failure.Status));
        Assert.Equal("body.logprobs", failure.Error!.Param);
        Assert.Contains("Line 2", failure.Error.Message, StringComparison.Ordinal);
        Assert.Equal(before, _sim.Requests.Count);
    }

    [Fact]
    public async Task A_cancel_ends_the_batch_cancelled_and_the_requests_not_run_are_batch_cancelled_error_lines()
    {
        var hold = new Hold();
        _sim.HoldBatchesInProgress = hold;
        var input = Input(Line("c-1") + "\n" + Line("c-2") + "\n");
        var created = (await Provider.CreateBatchAsync(Create(input), CancellationToken.None)).Value;
        Assert.Equal(BatchStatus.InProgress, (await Provider.GetBatchAsync(created.Id, CancellationToken.None)).Value.Status);

        var cancelled = await Provider.CancelBatchAsync(created.Id, CancellationToken.None);

        Assert.True(cancelled.IsOk, cancelled.Failure?.ToString());
        Assert.Equal(("POST", $"/v1/messages/batches/{created.Id}/cancel"), (_sim.Requests[^1].Method, _sim.Requests[^1].Path));
        Assert.Contains(cancelled.Value.Status, new[] { BatchStatus.Cancelling, BatchStatus.Cancelled });
        var batch = await EndedAsync(created.Id);
        Assert.Equal((BatchStatus.Cancelled, new BatchRequestCounts(2, 0, 2), null), (batch.Status, batch.RequestCounts, batch.OutputFileId));
        var errors = await LinesAsync(await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Error, batch.ErrorFileId!, input), CancellationToken.None));
        Assert.Equal(["c-1", "c-2"], errors.Select(l => l.GetProperty("custom_id").GetString()).Order());
        Assert.All(errors, l =>
        {
            Assert.Equal(JsonValueKind.Null, l.GetProperty("response").ValueKind);
            Assert.Equal("batch_cancelled", l.GetProperty("error").GetProperty("code").GetString());
        });
    }

    [Fact]
    public async Task Requests_that_expired_end_the_batch_expired_with_batch_expired_lines_as_the_gateway_writes_them()
    {
        _sim.ExpireNextBatchAfter = 1;
        var input = Input(Line("e-1") + "\n" + Line("e-2") + "\n" + Line("e-3") + "\n");
        var created = (await Provider.CreateBatchAsync(Create(input), CancellationToken.None)).Value;

        var batch = await EndedAsync(created.Id);

        Assert.Equal((BatchStatus.Expired, new BatchRequestCounts(3, 1, 2)), (batch.Status, batch.RequestCounts));
        var errors = await LinesAsync(await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Error, batch.ErrorFileId!, input), CancellationToken.None));
        Assert.Equal(["e-2", "e-3"], errors.Select(l => l.GetProperty("custom_id").GetString()).Order());
        Assert.All(errors, l => Assert.Equal(("batch_expired", "This request could not be executed before the completion window expired."),
            (l.GetProperty("error").GetProperty("code").GetString(), l.GetProperty("error").GetProperty("message").GetString())));
    }

    [Fact]
    public async Task A_results_line_that_is_not_Anthropics_fails_the_read_after_whole_lines_only()
    {
        var input = Input(string.Join("\n", Enumerable.Range(1, 6).Select(i => Line("m-" + i))) + "\n");
        var created = (await Provider.CreateBatchAsync(Create(input), CancellationToken.None)).Value;
        var batch = await EndedAsync(created.Id);
        _sim.BrokenResultsLine = """{"custom_id":"m-1","result":{"type":"succeeded"}}""";

        var opened = await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Output, batch.OutputFileId!, input), CancellationToken.None);
        Assert.True(opened.IsOk, opened.Failure?.ToString());
        var read = new MemoryStream();
        await using (opened.Value)
        {
            var buffer = new byte[7];
            var failure = await Assert.ThrowsAsync<IOException>(async () =>
            {
                int n;
                while ((n = await opened.Value.Content.ReadAsync(buffer)) > 0)
                {
                    read.Write(buffer, 0, n);
                }
            });
            Assert.Contains("Line 4", failure.Message, StringComparison.Ordinal);
        }
        string text = Encoding.UTF8.GetString(read.ToArray());
        Assert.Equal(3, text.Count(c => c == '\n'));
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_list_pages_newest_first_with_after_id_and_Anthropics_batches_carry_no_metadata()
    {
        var input = Input(Line("l-1") + "\n");
        var first = (await Provider.CreateBatchAsync(Create(input), CancellationToken.None)).Value;
        var second = (await Provider.CreateBatchAsync(Create(input), CancellationToken.None)).Value;

        var page = await Provider.ListBatchesAsync(new UpstreamBatchQuery(1, null), CancellationToken.None);

        Assert.True(page.IsOk, page.Failure?.ToString());
        Assert.Equal([second.Id], page.Value.Data.Select(b => b.Id));
        Assert.True(page.Value.HasMore);
        Assert.Null(page.Value.Data[0].Metadata);
        Assert.Equal(("GET", "/v1/messages/batches", "?limit=1"), (_sim.Requests[^1].Method, _sim.Requests[^1].Path, _sim.Requests[^1].Query));
        var next = await Provider.ListBatchesAsync(new UpstreamBatchQuery(1, second.Id), CancellationToken.None);
        Assert.Equal([first.Id], next.Value.Data.Select(b => b.Id));
        Assert.Equal($"?limit=1&after_id={second.Id}", _sim.Requests[^1].Query);
    }

    [Fact]
    public async Task Results_are_read_by_the_batch_id_on_the_configured_base_even_when_results_url_names_another_host()
    {
        // Behind a proxy BaseUrl, Anthropic's results_url still names its own host: the key must not go there.
        _sim.ResultsOrigin = new Uri("http://127.0.0.2:9");
        var input = Input(Line("p-1") + "\n");
        var created = (await Provider.CreateBatchAsync(Create(input), CancellationToken.None)).Value;
        var batch = await EndedAsync(created.Id);
        Assert.StartsWith("http://127.0.0.2:9/", batch.OutputFileId, StringComparison.Ordinal);

        var output = await LinesAsync(await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Output, batch.OutputFileId!, input), CancellationToken.None));

        Assert.Equal("p-1", Assert.Single(output).GetProperty("custom_id").GetString());
        var results = _sim.Requests[^1];
        Assert.Equal(("GET", $"/v1/messages/batches/{batch.Id}/results", _sim.ApiKey), (results.Method, results.Path, results.Header("x-api-key")));
    }

    [Fact]
    public async Task Hashed_custom_ids_are_mapped_back_through_one_read_of_the_input_for_both_kinds()
    {
        string longId = new('h', 100); // sent hashed: mapped back only through the input
        int opens = 0;
        var lines = Input(Line(longId) + "\n" + Line("bad", UnknownToolChoice) + "\n");
        BatchInputOpener input = cancellationToken =>
        {
            Interlocked.Increment(ref opens);
            return lines(cancellationToken);
        };
        var created = (await Provider.CreateBatchAsync(Create(input), CancellationToken.None)).Value;
        var batch = await EndedAsync(created.Id);
        int beforeResults = opens;

        var output = await LinesAsync(await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Output, batch.OutputFileId!, input), CancellationToken.None));
        var errors = await LinesAsync(await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Error, batch.ErrorFileId!, input), CancellationToken.None));

        Assert.Equal(longId, Assert.Single(output).GetProperty("custom_id").GetString());
        Assert.Equal("bad", Assert.Single(errors).GetProperty("custom_id").GetString());
        Assert.Equal(1, opens - beforeResults);
    }

    [Fact]
    public async Task Hashed_custom_ids_holding_more_than_the_bound_together_refuse_the_create_naming_the_limit_before_anything_is_sent()
    {
        int before = _sim.Requests.Count;
        const int idBytes = 3 * 1024 * 1024; // each line stays under Wharf's 4 MiB line bound
        int count = AnthropicBatches.MaxHashedIdBytes / idBytes + 1;
        string jsonl = string.Concat(Enumerable.Range(0, count).Select(i => Line(new string((char)('a' + i), idBytes)) + "\n"));

        var created = await Provider.CreateBatchAsync(Create(Input(jsonl)), CancellationToken.None);

        Assert.Equal((FailureCategory.RequestRejected, false, 400), (created.Failure!.Category, created.Failure.Retryable, created.Failure.Status));
        Assert.Equal(("custom_ids_too_long", "custom_id"), (created.Failure.Error!.Code, created.Failure.Error.Param));
        Assert.Contains($"Line {count} ", created.Failure.Error.Message, StringComparison.Ordinal);
        Assert.Contains(AnthropicBatches.MaxHashedIdBytes.ToString("N0", System.Globalization.CultureInfo.CurrentCulture), created.Failure.Error.Message, StringComparison.Ordinal);
        Assert.Equal(before, _sim.Requests.Count);
    }

    [Fact]
    public async Task An_input_line_longer_than_Wharfs_line_bound_refuses_the_create_naming_its_line_before_anything_is_sent()
    {
        int before = _sim.Requests.Count;
        int bound = new BatchesOptions().MaxLineBytes; // the harness configures no other
        string jsonl = Line("short") + "\n" + Line("long", ",\"user\":\"" + new string('u', bound) + "\"") + "\n";

        var created = await Provider.CreateBatchAsync(Create(Input(jsonl)), CancellationToken.None);

        Assert.Equal((FailureCategory.RequestRejected, false), (created.Failure!.Category, created.Failure.Retryable));
        Assert.Contains("Line 2 ", created.Failure.Error!.Message, StringComparison.Ordinal);
        Assert.Equal(before, _sim.Requests.Count);
    }

    [Fact]
    public async Task A_5xx_on_a_poll_is_a_retryable_server_error_and_configured_without_batches_nothing_is_sent()
    {
        _sim.Enqueue(Fault.Status(529));
        var polled = await Provider.GetBatchAsync("msgbatch_any", CancellationToken.None);
        Assert.Equal((FailureCategory.ServerError, true), (polled.Failure!.Category, polled.Failure.Retryable));

        await using var without = ProviderHarness.Start(("claude:Type", "anthropic"), ("claude:ApiKey", _sim.ApiKey), ("claude:BaseUrl", _sim.BaseUrl.ToString()),
            ("claude:NativeBatches", "false"));
        int before = _sim.Requests.Count;
        Assert.DoesNotContain(ProviderCapability.Batches, without["claude"].Capabilities);
        var created = await without["claude"].CreateBatchAsync(Create(Input(Line("a"))), CancellationToken.None);
        Assert.Equal(FailureCategory.Unsupported, created.Failure!.Category);
        Assert.Equal(before, _sim.Requests.Count);
    }

    [Theory]
    [InlineData("in_progress", null, 0, 0, 0, 0, 3, "in_progress")]
    [InlineData("canceling", "2025-01-01T00:00:00Z", 0, 0, 0, 0, 3, "cancelling")]
    [InlineData("ended", null, 2, 1, 0, 0, 0, "completed")]
    [InlineData("ended", "2025-01-01T00:00:00Z", 3, 0, 0, 0, 0, "cancelled")] // cancelled after every request had run
    [InlineData("ended", null, 1, 0, 2, 0, 0, "cancelled")]
    [InlineData("ended", null, 1, 0, 0, 2, 0, "expired")]
    [InlineData("ended", "2025-01-01T00:00:00Z", 1, 0, 1, 1, 0, "cancelled")]
    public void Anthropics_processing_status_and_counts_map_to_OpenAIs(
        string processing, string? cancelAsked, int succeeded, int errored, int canceled, int expired, int inProgress, string expected)
    {
        var wire = new MessageBatchWire("msgbatch_1", processing, new MessageBatchCountsWire(inProgress, succeeded, errored, canceled, expired),
            DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), cancelAsked is null ? null : DateTimeOffset.Parse(cancelAsked, System.Globalization.CultureInfo.InvariantCulture),
            processing == "ended" ? "https://api.anthropic.com/v1/messages/batches/msgbatch_1/results" : null);

        var batch = wire.ToUpstreamBatch();

        Assert.True(batch.IsOk);
        Assert.Equal(expected, batch.Value.Status);
        Assert.Equal(1_700_000_000, batch.Value.CreatedAt);
        Assert.Equal(new BatchRequestCounts(inProgress + succeeded + errored + canceled + expired, succeeded, errored + canceled + expired), batch.Value.RequestCounts);
        Assert.Equal(processing == "ended" && succeeded > 0, batch.Value.OutputFileId is not null);
        Assert.Equal(processing == "ended" && errored + canceled + expired > 0, batch.Value.ErrorFileId is not null);
    }

    [Fact]
    public void An_ended_batch_without_results_url_is_malformed()
    {
        var batch = new MessageBatchWire("msgbatch_1", "ended", new MessageBatchCountsWire(0, 1, 0, 0, 0), null, null, null).ToUpstreamBatch();

        Assert.Equal(UpstreamFailureKind.Malformed, batch.Failure!.Kind);
    }

    [Theory]
    [InlineData("req-1", "req-1")]
    [InlineData("under_score-and-dash", "under_score-and-dash")]
    [InlineData("with space", null)]
    [InlineData("ключ", null)]
    [InlineData("", null)]
    [InlineData("wx-mine", null)]
    [InlineData("wh-mine", null)]
    public void A_custom_id_is_sent_as_it_is_only_when_Anthropic_takes_it_and_it_has_none_of_Wharfs_prefixes(string id, string? asItIs)
    {
        string sent = AnthropicCustomIds.ToAnthropic(id);

        Assert.True(AnthropicCustomIds.Fits(sent), sent);
        if (asItIs is not null)
        {
            Assert.Equal(asItIs, sent);
        }
        else
        {
            Assert.StartsWith(AnthropicCustomIds.EncodedPrefix, sent, StringComparison.Ordinal);
        }
        Assert.Equal(id, AnthropicCustomIds.FromAnthropic(sent, null));
    }

    [Fact]
    public void A_long_custom_id_is_hashed_and_mapped_back_only_through_the_ids_kept_from_the_input()
    {
        string id = string.Concat(Enumerable.Repeat("ü", 40)); // 80 bytes of UTF-8: too long to encode in 64 characters
        string sent = AnthropicCustomIds.ToAnthropic(id);

        Assert.StartsWith(AnthropicCustomIds.HashedPrefix, sent, StringComparison.Ordinal);
        Assert.True(AnthropicCustomIds.Fits(sent));
        Assert.Equal(sent, AnthropicCustomIds.ToAnthropic(id));
        Assert.NotEqual(sent, AnthropicCustomIds.ToAnthropic(id + "!"));
        Assert.Null(AnthropicCustomIds.FromAnthropic(sent, null));
        Assert.Equal(id, AnthropicCustomIds.FromAnthropic(sent, new Dictionary<string, string> { [sent] = id }));
    }

    [Fact]
    public async Task More_requests_than_a_Message_Batch_takes_refuse_the_create_at_the_line_too_many_before_anything_is_sent()
    {
        int before = _sim.Requests.Count;
        string line = Line("r") + "\n";
        var text = new StringBuilder(line.Length * (AnthropicBatches.MaxRequests + 1));
        for (int i = 0; i <= AnthropicBatches.MaxRequests; i++)
        {
            text.Append(line.Replace("\"r\"", $"\"r{i}\"", StringComparison.Ordinal));
        }

        var created = await Provider.CreateBatchAsync(Create(Input(text.ToString())), CancellationToken.None);

        Assert.Equal((FailureCategory.RequestRejected, false), (created.Failure!.Category, created.Failure.Retryable));
        Assert.Contains("line 100001", created.Failure.Error!.Message, StringComparison.Ordinal);
        Assert.Equal(before, _sim.Requests.Count);
    }

    [Theory]
    [InlineData("""{"requests":[{"custom_id":"has space","params":{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}}]}""", "custom_id")]
    [InlineData("""{"requests":[{"custom_id":"a","params":{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}},{"custom_id":"a","params":{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}}]}""", "not unique")]
    [InlineData("""{"requests":[]}""", "at least 1")]
    [InlineData("""{"requests":[{"custom_id":"a","params":{"model":"m"}}],"metadata":{}}""", "metadata")]
    public async Task The_simulators_Message_Batches_refuse_what_Anthropics_reference_refuses(string body, string said)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_sim.BaseUrl, "/v1/messages/batches")) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("x-api-key", _sim.ApiKey);
        request.Headers.Add("anthropic-version", "2023-06-01");

        using var response = await http.SendAsync(request);

        Assert.Equal(400, (int)response.StatusCode);
        string answer = await response.Content.ReadAsStringAsync();
        Assert.Contains("invalid_request_error", answer, StringComparison.Ordinal);
        Assert.Contains(said, answer, StringComparison.Ordinal);

        using var unversioned = new HttpRequestMessage(HttpMethod.Get, new Uri(_sim.BaseUrl, "/v1/messages/batches"));
        unversioned.Headers.Add("x-api-key", _sim.ApiKey);
        Assert.Equal(400, (int)(await http.SendAsync(unversioned)).StatusCode);
    }
}
