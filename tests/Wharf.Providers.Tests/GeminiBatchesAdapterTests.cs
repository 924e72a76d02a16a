using System.Text;
using System.Text.Json;
using Wharf.Core.Batches;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>
/// The <c>gemini</c> adapter's batch mode against the simulator: the input translated into <c>{key, request}</c> lines
/// and uploaded, the batch created on the lines' model with Wharf's id as its name, states and counts mapped, cancel
/// and list, and the responses file read back as OpenAI lines.
/// </summary>
public sealed class GeminiBatchesAdapterTests : IAsyncLifetime
{
    private GeminiSimulator _sim = null!;
    private ProviderHarness _harness = null!;

    private IProvider Provider => _harness["gem"];

    public async Task InitializeAsync()
    {
        _sim = await GeminiSimulator.StartAsync();
        _harness = ProviderHarness.Start(
            ("gem:Type", "gemini"), ("gem:ApiKey", _sim.ApiKey), ("gem:BaseUrl", _sim.BaseUrl.ToString()), ("gem:TimeoutSeconds", "30"));
        _harness.Time.SetUtcNow(DateTimeOffset.UtcNow);
    }

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _sim.DisposeAsync();
    }

    private static string Line(string customId, string model, string content = "hi", string extra = "") =>
        $$$"""{"custom_id":"{{{customId}}}","method":"POST","url":"/v1/chat/completions","body":{"model":"{{{model}}}","messages":[{"role":"user","content":"{{{content}}}"}]{{{extra}}}}}""";

    /// <summary>An opener of <paramref name="jsonl"/> as Wharf's input file, counting how often it is opened.</summary>
    private static BatchInputOpener Input(string jsonl, Action? opened = null) => _ =>
    {
        opened?.Invoke();
        byte[] bytes = Encoding.UTF8.GetBytes(jsonl);
        return Task.FromResult<UpstreamFileContent?>(new UpstreamFileContent(new MemoryStream(bytes), bytes.Length));
    };

    private static UpstreamBatchCreate Create(string jsonl, string endpoint = "/v1/chat/completions", Action? opened = null) =>
        new(null, endpoint, "24h", new Dictionary<string, string> { ["wharf_batch_id"] = "batch_0123456789abcdef0123456789abcdef", ["run"] = "x" })
        {
            Input = Input(jsonl, opened),
        };

    private static async Task<List<JsonElement>> LinesOf(UpstreamFileContent content)
    {
        await using (content)
        {
            string text = await new StreamReader(content.Content).ReadToEndAsync();
            return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
        }
    }

    [Fact]
    public void It_takes_wharfs_input_file_itself()
    {
        Assert.Contains(ProviderCapability.Batches, Provider.Capabilities);
        Assert.Equal(BatchInputForm.WharfFile, Provider.BatchInputForm);
    }

    [Fact]
    public async Task Configured_without_batch_mode_it_declares_no_batches_and_creates_none()
    {
        await using var harness = ProviderHarness.Start(
            ("plain:Type", "gemini"), ("plain:ApiKey", _sim.ApiKey), ("plain:BaseUrl", _sim.BaseUrl.ToString()), ("plain:NativeBatches", "false"));

        Assert.DoesNotContain(ProviderCapability.Batches, harness["plain"].Capabilities);
        Assert.Contains(ProviderCapability.Files, harness["plain"].Capabilities);
        var created = await harness["plain"].CreateBatchAsync(Create(Line("a", "gemini-2.0-flash") + "\n"), CancellationToken.None);
        Assert.Equal(FailureCategory.Unsupported, created.Failure!.Category);
        Assert.Empty(_sim.Requests);
    }

    [Fact]
    public async Task A_batch_is_created_from_translated_lines_on_their_model_named_by_wharfs_id()
    {
        int opened = 0;
        string jsonl = Line("a", "gem/gemini-2.0-flash", "first") + "\n" + Line("b", "gemini-2.0-flash", "second", ",\"temperature\":0.2") + "\n";

        var created = await Provider.CreateBatchAsync(Create(jsonl, opened: () => opened++), CancellationToken.None);

        Assert.True(created.IsOk, created.IsOk ? "" : created.Failure.ToString());
        Assert.Equal(2, opened); // read twice, forward: once to translate and measure, once to send
        var batch = created.Value;
        Assert.StartsWith("batches/", batch.Id, StringComparison.Ordinal);
        Assert.Equal("completed", batch.Status); // the simulator runs it at once
        Assert.Equal(new BatchRequestCounts(2, 2, 0), batch.RequestCounts);
        Assert.Equal("batch_0123456789abcdef0123456789abcdef", batch.Metadata!["wharf_batch_id"]);
        Assert.NotNull(batch.OutputFileId);
        Assert.Null(batch.ErrorFileId);

        var create = Assert.Single(_sim.Requests, r => r.Path.EndsWith(":batchGenerateContent", StringComparison.Ordinal));
        Assert.Equal("/v1beta/models/gemini-2.0-flash:batchGenerateContent", create.Path);
        using var body = JsonDocument.Parse(create.Body);
        var spec = body.RootElement.GetProperty("batch");
        Assert.Equal("batch_0123456789abcdef0123456789abcdef", spec.GetProperty("display_name").GetString());
        string inputName = spec.GetProperty("input_config").GetProperty("file_name").GetString()!;
        var input = _sim.Files[inputName];
        Assert.Equal("application/jsonl", input.MimeType);
        var lines = Encoding.UTF8.GetString(input.Content).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["a", "b"], lines.Select(l => l.GetProperty("key").GetString()));
        Assert.Equal("first", lines[0].GetProperty("request").GetProperty("contents")[0].GetProperty("parts")[0].GetProperty("text").GetString());
        Assert.Equal(0.2, lines[1].GetProperty("request").GetProperty("generationConfig").GetProperty("temperature").GetDouble());
    }

    [Fact]
    public async Task Lines_longer_than_a_read_and_a_last_line_without_its_newline_are_translated_whole()
    {
        string longText = string.Concat(Enumerable.Repeat("0123456789abcdef", 20_000)); // 320 KB, several reads
        string jsonl = Line("long", "gemini-2.0-flash", longText) + "\r\n" + Line("last", "gemini-2.0-flash", "end");

        var created = await Provider.CreateBatchAsync(Create(jsonl), CancellationToken.None);

        Assert.True(created.IsOk, created.IsOk ? "" : created.Failure.ToString());
        var upstream = Assert.Single(_sim.Batches.Values);
        var lines = Encoding.UTF8.GetString(_sim.Files[upstream.InputFile].Content).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal(longText, first.RootElement.GetProperty("request").GetProperty("contents")[0].GetProperty("parts")[0].GetProperty("text").GetString());
        Assert.Equal(new BatchRequestCounts(2, 2, 0), created.Value.RequestCounts);
    }

    /// <summary>
    /// Wharf's input check passes a file that starts with a UTF-8 byte order mark and has blank lines (spaces, tabs,
    /// carriage returns): its lines are translated as without them.
    /// </summary>
    [Fact]
    public async Task An_input_with_a_byte_order_mark_and_blank_lines_is_translated_as_without_them()
    {
        string jsonl = "\uFEFF" + Line("first", "gemini-2.0-flash") + "\n \t\r\n" + Line("second", "gemini-2.0-flash") + "\n\r";

        var created = await Provider.CreateBatchAsync(Create(jsonl), CancellationToken.None);

        Assert.True(created.IsOk, created.IsOk ? "" : created.Failure.ToString());
        var upstream = Assert.Single(_sim.Batches.Values);
        var keys = Encoding.UTF8.GetString(_sim.Files[upstream.InputFile].Content).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("key").GetString());
        Assert.Equal(["first", "second"], keys);
    }

    [Fact]
    public async Task Lines_gemini_cannot_take_are_refused_before_anything_is_sent()
    {
        var mixed = await Provider.CreateBatchAsync(Create(Line("a", "gemini-2.0-flash") + "\n" + Line("b", "gemini-1.5-pro") + "\n"), CancellationToken.None);
        var untranslatable = await Provider.CreateBatchAsync(Create(Line("a", "gemini-2.0-flash", extra: ",\"logit_bias\":{\"1\":2}") + "\n"), CancellationToken.None);
        var embeddings = await Provider.CreateBatchAsync(Create(Line("a", "gemini-2.0-flash"), "/v1/embeddings"), CancellationToken.None);

        Assert.False(mixed.IsOk);
        Assert.Contains("one model", mixed.Failure.Error?.Message, StringComparison.Ordinal);
        Assert.False(untranslatable.IsOk);
        Assert.Equal("line 1: body.logit_bias", untranslatable.Failure.Error?.Param);
        Assert.False(embeddings.IsOk);
        Assert.Equal("endpoint", embeddings.Failure.Error?.Param);
        Assert.All([mixed, untranslatable, embeddings], o => Assert.Equal(UpstreamFailureKind.NotAttempted, o.Failure!.Kind));
        Assert.Empty(_sim.Requests);
    }

    [Fact]
    public async Task States_and_counts_are_mapped_while_a_batch_runs_and_when_it_is_cancelled()
    {
        _sim.RunBatchesAtOnce = false;
        var created = await Provider.CreateBatchAsync(Create(Line("a", "gemini-2.0-flash") + "\n" + Line("b", "gemini-2.0-flash") + "\n"), CancellationToken.None);
        Assert.True(created.IsOk);
        Assert.Equal("in_progress", created.Value.Status);
        Assert.Null(created.Value.OutputFileId);

        var seen = await Provider.GetBatchAsync(created.Value.Id, CancellationToken.None);
        Assert.Equal(("in_progress", new BatchRequestCounts(2, 0, 0)), (seen.Value.Status, seen.Value.RequestCounts));

        var cancelled = await Provider.CancelBatchAsync(created.Value.Id, CancellationToken.None);
        Assert.True(cancelled.IsOk);
        Assert.Equal("cancelled", cancelled.Value.Status);
        Assert.True(cancelled.Value.IsFinal);
        Assert.Contains(_sim.Requests, r => r.Method == "POST" && r.Path == $"/v1beta/{created.Value.Id}:cancel");
    }

    [Fact]
    public async Task The_batch_list_pages_by_token_and_reports_wharfs_id()
    {
        var ids = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            ids.Add((await Provider.CreateBatchAsync(Create(Line($"k{i}", "gemini-2.0-flash") + "\n"), CancellationToken.None)).Value.Id);
        }

        var seen = new List<UpstreamBatch>();
        string? after = null;
        do
        {
            var page = await Provider.ListBatchesAsync(new UpstreamBatchQuery(2, after), CancellationToken.None);
            Assert.True(page.IsOk);
            seen.AddRange(page.Value.Data);
            after = page.Value.HasMore ? page.Value.Cursor : null;
            Assert.True(!page.Value.HasMore || after is not null);
        }
        while (after is not null);

        Assert.Equal(ids.Order(StringComparer.Ordinal), seen.Select(b => b.Id).Order(StringComparer.Ordinal));
        Assert.All(seen, b => Assert.Equal("batch_0123456789abcdef0123456789abcdef", b.Metadata!["wharf_batch_id"]));
    }

    [Fact]
    public async Task The_responses_file_is_read_back_as_openai_output_and_error_lines()
    {
        _sim.FailingKeys["bad"] = 500;
        string jsonl = Line("good", "gemini-2.0-flash") + "\n" + Line("bad", "gemini-2.0-flash") + "\n" + Line("fine", "gemini-2.0-flash") + "\n";
        var batch = (await Provider.CreateBatchAsync(Create(jsonl), CancellationToken.None)).Value;
        Assert.Equal(new BatchRequestCounts(3, 2, 1), batch.RequestCounts);
        Assert.Equal(batch.OutputFileId, batch.ErrorFileId); // one responses file holds both kinds
        Assert.Null(batch.Usage); // Gemini gives none: the execution sums the output lines' usage

        var output = await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Output, batch.OutputFileId!, Input(jsonl)), CancellationToken.None);
        var errors = await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Error, batch.ErrorFileId!, Input(jsonl)), CancellationToken.None);

        var outputLines = await LinesOf(output.Value);
        Assert.Equal(["good", "fine"], outputLines.Select(l => l.GetProperty("custom_id").GetString()));
        Assert.All(outputLines, l =>
        {
            Assert.StartsWith("batch_req_", l.GetProperty("id").GetString(), StringComparison.Ordinal);
            var response = l.GetProperty("response");
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            Assert.StartsWith("req_", response.GetProperty("request_id").GetString(), StringComparison.Ordinal);
            var body = response.GetProperty("body");
            Assert.Equal("chat.completion", body.GetProperty("object").GetString());
            Assert.Equal("gemini-2.0-flash", body.GetProperty("model").GetString());
            Assert.Equal(_sim.ReplyText, body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
            Assert.True(body.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);
            Assert.Equal(JsonValueKind.Null, l.GetProperty("error").ValueKind);
        });
        var error = Assert.Single(await LinesOf(errors.Value));
        Assert.Equal("bad", error.GetProperty("custom_id").GetString());
        Assert.Equal(500, error.GetProperty("response").GetProperty("status_code").GetInt32());
        var errorBody = error.GetProperty("response").GetProperty("body").GetProperty("error");
        Assert.Equal(("server_error", "INTERNAL"), (errorBody.GetProperty("type").GetString(), errorBody.GetProperty("code").GetString()));
        Assert.Contains(_sim.Requests, r => r.Path == $"/download/v1beta/{batch.OutputFileId}:download" && r.Query == "?alt=media");
    }

    [Fact]
    public async Task A_responses_file_that_is_not_gemini_s_fails_its_read()
    {
        string name = _sim.AddFile("junk", "application/jsonl", "{\"no\":\"key\"}\n"u8.ToArray());
        var batch = new UpstreamBatch { Id = "batches/x", Status = "completed", OutputFileId = name };

        var output = await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Output, name, Input("")), CancellationToken.None);

        Assert.True(output.IsOk);
        await Assert.ThrowsAsync<InvalidDataException>(() => LinesOf(output.Value));
    }

    [Fact]
    public async Task Gemini_s_faults_are_the_upstream_s_failures()
    {
        string jsonl = Line("a", "gemini-2.0-flash") + "\n";
        var batch = (await Provider.CreateBatchAsync(Create(jsonl), CancellationToken.None)).Value;

        _sim.EnqueueFileFault(Fault.Status(503));
        var poll = await Provider.GetBatchAsync(batch.Id, CancellationToken.None);
        _sim.EnqueueFileFault(Fault.Status(404));
        var download = await Provider.OpenBatchResultsAsync(new UpstreamBatchResults(batch, BatchFileKind.Output, batch.OutputFileId!, Input(jsonl)), CancellationToken.None);
        _sim.EnqueueFileFault(GeminiSimulator.RateLimited("4s"));
        var refusedUpload = await Provider.CreateBatchAsync(Create(jsonl), CancellationToken.None);

        Assert.Equal((503, true), (poll.Failure!.Status, poll.Failure.Retryable));
        Assert.Equal((404, false), (download.Failure!.Status, download.Failure.Retryable));
        Assert.Equal((429, TimeSpan.FromSeconds(4)), (refusedUpload.Failure!.Status, refusedUpload.Failure.RetryAfter));
        Assert.Single(_sim.Batches);
    }

    [Fact]
    public void Batch_states_map_to_openai_statuses()
    {
        foreach (var (state, status) in new[]
        {
            ("BATCH_STATE_PENDING", "in_progress"), ("BATCH_STATE_RUNNING", "in_progress"), ("BATCH_STATE_SUCCEEDED", "completed"),
            ("BATCH_STATE_FAILED", "failed"), ("BATCH_STATE_CANCELLED", "cancelled"), ("BATCH_STATE_EXPIRED", "expired"),
        })
        {
            using var operation = JsonDocument.Parse($$$"""{"name":"batches/b1","metadata":{"state":"{{{state}}}","displayName":"batch_x","createTime":"2025-07-01T10:00:00.123Z"}}""");
            var batch = Gemini.GeminiBatches.ToBatch(operation.RootElement)!;
            Assert.Equal(status, batch.Status);
            Assert.Null(batch.RequestCounts);
            Assert.Equal(new DateTimeOffset(2025, 7, 1, 10, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds(), batch.CreatedAt);
        }
        using var failed = JsonDocument.Parse("""{"name":"batches/b2","metadata":{"state":"BATCH_STATE_FAILED"},"done":true,"error":{"code":3,"message":"The input file is invalid."}}""");
        Assert.Equal("The input file is invalid.", Assert.Single(Gemini.GeminiBatches.ToBatch(failed.RootElement)!.Errors).Message);
    }
}
