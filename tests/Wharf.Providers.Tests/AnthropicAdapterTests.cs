using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>One Anthropic simulator for the class; the tests of a class run one at a time, each scripting its own faults.</summary>
public sealed class AnthropicSimulatorFixture : IAsyncLifetime
{
    public AnthropicSimulator Simulator { get; private set; } = null!;

    public async Task InitializeAsync() => Simulator = await AnthropicSimulator.StartAsync();

    public async Task DisposeAsync() => await Simulator.DisposeAsync();
}

/// <summary>Type <c>anthropic</c> against a simulator of Anthropic's Messages API: configuration, translation on the wire, faults.</summary>
public sealed class AnthropicAdapterTests(AnthropicSimulatorFixture fixture) : IClassFixture<AnthropicSimulatorFixture>, IAsyncLifetime
{
    private readonly AnthropicSimulator _sim = fixture.Simulator;
    private ProviderHarness _harness = null!;

    private IProvider Provider => _harness["claude"];

    public Task InitializeAsync()
    {
        _sim.ClearFaults();
        _sim.ErrorEventAfter = null;
        _sim.CacheReadTokens = 0;
        _harness = ProviderHarness.Start(
            ("claude:Type", "anthropic"), ("claude:ApiKey", _sim.ApiKey), ("claude:BaseUrl", _sim.BaseUrl.ToString()), ("claude:TimeoutSeconds", "30"),
            ("claude:DefaultMaxTokens", "1000"), ("claude:Headers:anthropic-beta", "prompt-caching-2024-07-31"));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    private static ModelCall Chat(string model = "claude-sonnet-4-5", bool stream = false, string extra = "") =>
        new(ProviderCapability.ChatCompletions, model,
            Encoding.UTF8.GetBytes($$"""{"model":"claude/{{model}}","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]{{(stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "")}}{{extra}}}"""), stream);

    [Fact]
    public async Task A_chat_completion_goes_to_v1_messages_translated_with_the_key_and_version_and_comes_back_as_OpenAIs()
    {
        _sim.CacheReadTokens = 12;
        var outcome = await Provider.SendModelRequestAsync(Chat(extra: ",\"temperature\":0.5,\"user\":\"u-1\""), CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        Assert.Equal((200, false), (outcome.Value.Status, outcome.Value.IsEventStream));
        string body = await OpenAIAdapterTests.ReadAllAsync(outcome.Value);
        var completion = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(body))!;
        Assert.Equal(_sim.ReplyText, completion.Content.Single().Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("claude-sonnet-4-5", completion.Model);
        Assert.Equal(12, completion.Usage.InputTokenDetails.CachedTokenCount);

        var sent = _sim.Requests[^1];
        Assert.Equal(("POST", "/v1/messages"), (sent.Method, sent.Path));
        Assert.Equal(_sim.ApiKey, sent.Header("x-api-key"));
        Assert.Equal("2023-06-01", sent.Header("anthropic-version"));
        Assert.Equal("prompt-caching-2024-07-31,files-api-2025-04-14", sent.Header("anthropic-beta"));
        Assert.Null(sent.Header("Authorization"));
        var json = JsonNode.Parse(sent.Body)!;
        Assert.Equal("claude-sonnet-4-5", json["model"]!.GetValue<string>());
        Assert.Equal(1000, json["max_tokens"]!.GetValue<int>()); // the configured DefaultMaxTokens
        Assert.Equal("Be brief.", json["system"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("u-1", json["metadata"]!["user_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_streamed_chat_completion_is_translated_event_by_event_as_it_arrives()
    {
        var hold = new Hold();
        _sim.Enqueue(Fault.PauseStreamAfterFirstEvent(hold));
        var outcome = await Provider.SendModelRequestAsync(Chat(stream: true), CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        Assert.True(outcome.Value.IsEventStream);
        await using var response = outcome.Value;

        // message_start alone is out: its chunk can be read while the upstream holds the rest.
        var buffer = new byte[64 * 1024];
        int read = await response.Content.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        string first = Encoding.UTF8.GetString(buffer, 0, read);
        Assert.Contains("\"role\":\"assistant\"", first, StringComparison.Ordinal);
        hold.Release();

        string rest = await new StreamReader(response.Content).ReadToEndAsync();
        var data = AnthropicTranslationTests.DataOf(first + rest);
        Assert.Equal("[DONE]", data[^1]);
        var updates = data[..^1].Select(d => ModelReaderWriter.Read<StreamingChatCompletionUpdate>(BinaryData.FromString(d))!).ToList();
        Assert.Equal(_sim.ReplyText, string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text)));
        Assert.Equal(ChatFinishReason.Stop, updates.Single(u => u.FinishReason is not null).FinishReason);
        Assert.True(updates[^1].Usage.OutputTokenCount > 0);
        Assert.True(JsonNode.Parse(_sim.Requests[^1].Body)!["stream"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Tools_and_a_tool_call_go_both_ways()
    {
        var outcome = await Provider.SendModelRequestAsync(Chat(extra: ""","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"auto" """), CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        var completion = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(await OpenAIAdapterTests.ReadAllAsync(outcome.Value)))!;
        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);

        // The call and its result sent back: the simulator checks that the tool_result answers a tool_use of the previous turn.
        string followUp = $$$"""
            {"model":"m","messages":[{"role":"user","content":"Weather?"},
             {"role":"assistant","content":null,"tool_calls":[{"id":"{{{call.Id}}}","type":"function","function":{"name":"get_weather","arguments":{{{System.Text.Json.JsonSerializer.Serialize(call.FunctionArguments.ToString())}}}}}]},
             {"role":"tool","tool_call_id":"{{{call.Id}}}","content":"18C"}],
             "tools":[{"type":"function","function":{"name":"get_weather"}}]}
            """;
        var second = await Provider.SendModelRequestAsync(new ModelCall(ProviderCapability.ChatCompletions, "claude-sonnet-4-5", Encoding.UTF8.GetBytes(followUp), false), CancellationToken.None);
        Assert.True(second.IsOk, second.Failure?.Error?.Message);
        var answer = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(await OpenAIAdapterTests.ReadAllAsync(second.Value)))!;
        Assert.Equal((ChatFinishReason.Stop, _sim.ReplyText), (answer.FinishReason, answer.Content.Single().Text));
    }

    [Fact]
    public async Task An_untranslatable_parameter_is_refused_without_a_call()
    {
        int before = _sim.Requests.Count;
        var outcome = await Provider.SendModelRequestAsync(Chat(extra: ",\"n\":3"), CancellationToken.None);
        Assert.False(outcome.IsOk);
        Assert.Equal((400, "n", UpstreamFailureKind.NotAttempted), (outcome.Failure.Status, outcome.Failure.Error!.Param, outcome.Failure.Kind));
        Assert.Equal(before, _sim.Requests.Count);
    }

    [Theory]
    [InlineData(ProviderCapability.Embeddings)]
    [InlineData(ProviderCapability.Completions)]
    [InlineData(ProviderCapability.Responses)]
    public async Task Only_chat_completions_files_and_batches_are_declared_and_the_rest_is_unsupported(ProviderCapability endpoint)
    {
        Assert.Equal([ProviderCapability.Files, ProviderCapability.Batches, ProviderCapability.ChatCompletions], Provider.Capabilities.Order());
        Assert.Equal("anthropic", Provider.Type);
        var outcome = await Provider.SendModelRequestAsync(new ModelCall(endpoint, "m", "{\"model\":\"m\",\"input\":\"x\"}"u8.ToArray(), false), CancellationToken.None);
        Assert.Equal(FailureCategory.Unsupported, outcome.Failure!.Category);
    }

    [Theory]
    [InlineData(401, FailureCategory.CredentialsInvalidOrForbidden, false, "authentication_error")]
    [InlineData(403, FailureCategory.CredentialsInvalidOrForbidden, false, "permission_error")]
    [InlineData(404, FailureCategory.ModelUnavailableForEndpoint, false, "not_found_error")]
    [InlineData(500, FailureCategory.ServerError, true, "api_error")]
    [InlineData(529, FailureCategory.ServerError, true, "overloaded_error")]
    [InlineData(400, FailureCategory.RequestRejected, false, "invalid_request_error")]
    public async Task Anthropics_errors_are_classified_with_its_error_type_as_the_code(int status, FailureCategory category, bool retryable, string type)
    {
        _sim.Enqueue(Fault.Status(status));
        var outcome = await Provider.SendModelRequestAsync(Chat(), CancellationToken.None);
        Assert.False(outcome.IsOk);
        var failure = outcome.Failure;
        Assert.Equal((UpstreamFailureKind.Answered, status, category, retryable, type), (failure.Kind, failure.Status, failure.Category, failure.Retryable, failure.Error!.Code));
        Assert.Contains(type, failure.PayloadPreview, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_429_is_retryable_after_its_retry_after()
    {
        _sim.Enqueue(Fault.RateLimited("7"));
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal((429, FailureCategory.RateLimited, true, TimeSpan.FromSeconds(7), "rate_limit_error"),
            (failure.Status, failure.Category, failure.Retryable, failure.RetryAfter, failure.Error!.Code));
    }

    [Fact]
    public async Task The_simulator_refuses_a_wrong_key_and_the_adapter_reports_Wharfs_credential()
    {
        await using var harness = ProviderHarness.Start(("bad:Type", "anthropic"), ("bad:ApiKey", "sk-ant-wrong-00000000000000"), ("bad:BaseUrl", _sim.BaseUrl.ToString()));
        var failure = (await harness["bad"].SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal((401, FailureCategory.CredentialsInvalidOrForbidden, "authentication_error"), (failure.Status, failure.Category, failure.Error!.Code));
        Assert.DoesNotContain("sk-ant-wrong", failure.PayloadPreview ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_broken_JSON_answer_is_malformed_and_retryable()
    {
        _sim.Enqueue(Fault.MalformedJson());
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal((UpstreamFailureKind.Malformed, true), (failure.Kind, failure.Retryable));
    }

    [Fact]
    public async Task A_stream_cut_mid_way_or_ended_by_an_error_event_fails_its_read()
    {
        var drop = new Hold();
        _sim.Enqueue(Fault.DropStreamAfter(4, drop));
        var cut = await Provider.SendModelRequestAsync(Chat(stream: true), CancellationToken.None);
        Assert.True(cut.IsOk, cut.Failure?.ToString());
        await using (cut.Value)
        {
            Assert.True(await cut.Value.Content.ReadAsync(new byte[1024]) > 0);
            drop.Release();
            await Assert.ThrowsAnyAsync<IOException>(() => new StreamReader(cut.Value.Content).ReadToEndAsync());
        }

        _sim.ErrorEventAfter = 5;
        var errored = await Provider.SendModelRequestAsync(Chat(stream: true), CancellationToken.None);
        Assert.True(errored.IsOk, errored.Failure?.ToString());
        await using (errored.Value)
        {
            var error = await Assert.ThrowsAsync<IOException>(() => new StreamReader(errored.Value.Content).ReadToEndAsync());
            Assert.Contains("overloaded_error", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_configuration_is_checked_at_start()
    {
        Assert.Empty(ProviderHarness.ValidationFailures(("c:Type", "anthropic"), ("c:ApiKey", "k")));
        // Native batches run on Anthropic's Message Batches API: either value of NativeBatches is valid.
        Assert.Empty(ProviderHarness.ValidationFailures(("c:Type", "anthropic"), ("c:ApiKey", "k"), ("c:NativeBatches", "true")));
        Assert.Empty(ProviderHarness.ValidationFailures(("c:Type", "anthropic"), ("c:ApiKey", "k"), ("c:NativeBatches", "false")));
        var failures = ProviderHarness.ValidationFailures(("c:Type", "anthropic"), ("c:ApiVersion", "2023-06-01"),
            ("c:DefaultMaxTokens", "0"), ("c:Headers:x-api-key", "k2"));
        Assert.Contains(failures, f => f.StartsWith("Wharf:Providers:c:ApiKey is missing", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Wharf:Providers:c:ApiVersion", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Wharf:Providers:c:DefaultMaxTokens must be at least 1", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Wharf:Providers:c:Headers:x-api-key", StringComparison.Ordinal));
        Assert.Equal(4, failures.Count);
    }

    [Fact]
    public async Task A_file_is_uploaded_without_a_purpose_with_the_files_beta_listed_newest_first_and_deleted()
    {
        byte[] content = Encoding.UTF8.GetBytes("%PDF-1.4 a small document");
        var upload = await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(content), content.Length, "report.pdf", "user_data", "application/pdf"), CancellationToken.None);

        Assert.True(upload.IsOk, upload.Failure?.ToString());
        var file = upload.Value;
        Assert.Equal(("report.pdf", content.Length, "user_data"), (file.Filename, file.Bytes, file.Purpose));
        Assert.True(file.CreatedAt > 0);
        var sent = _sim.Requests[^1];
        Assert.Equal(("POST", "/v1/files"), (sent.Method, sent.Path));
        Assert.Equal(content, sent.Upload!.Content);
        Assert.Equal("", sent.Upload.Purpose); // no purpose field at all
        // The entry's own beta comes first, the Files API's is added to it.
        Assert.Equal("prompt-caching-2024-07-31,files-api-2025-04-14", sent.Header("anthropic-beta"));

        var second = await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(content), content.Length, "b.pdf", "user_data", null), CancellationToken.None);
        var page = await Provider.ListFilesAsync(new UpstreamFileQuery(1, null, null, null), CancellationToken.None);
        Assert.True(page.IsOk, page.Failure?.ToString());
        Assert.Equal([second.Value.Id], page.Value.Data.Select(f => f.Id));
        Assert.True(page.Value.HasMore);
        Assert.Equal("?limit=1", _sim.Requests[^1].Query);
        var next = await Provider.ListFilesAsync(new UpstreamFileQuery(1, second.Value.Id, "desc", null), CancellationToken.None);
        Assert.Equal([file.Id], next.Value.Data.Select(f => f.Id));
        Assert.Equal($"?limit=1&after_id={second.Value.Id}", _sim.Requests[^1].Query);

        Assert.True((await Provider.DeleteFileAsync(file.Id, CancellationToken.None)).Value);
        Assert.Equal(("DELETE", "/v1/files/" + file.Id), (_sim.Requests[^1].Method, _sim.Requests[^1].Path));
        Assert.True((await Provider.DeleteFileAsync(file.Id, CancellationToken.None)).Value); // gone already: a 404 counts as deleted
        Assert.DoesNotContain(_sim.Files, f => f.Id == file.Id);
        Assert.True((await Provider.DeleteFileAsync(second.Value.Id, CancellationToken.None)).Value);
    }

    [Theory]
    [InlineData("asc", null, "order")]
    [InlineData(null, "batch", "purpose")]
    public async Task A_list_filter_Anthropic_lacks_is_refused_naming_it(string? order, string? purpose, string param)
    {
        int before = _sim.Requests.Count;
        var page = await Provider.ListFilesAsync(new UpstreamFileQuery(10, null, order, purpose), CancellationToken.None);
        Assert.Equal((400, param), (page.Failure!.Status, page.Failure.Error!.Param));
        Assert.Equal(before, _sim.Requests.Count);
    }

    [Fact]
    public async Task A_file_part_becomes_a_document_or_image_block_naming_the_file()
    {
        byte[] content = Encoding.UTF8.GetBytes("%PDF-1.4 x");
        var file = (await Provider.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(content), content.Length, "r.pdf", "user_data", null), CancellationToken.None)).Value;
        string body = $$$"""
            {"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Summarise"},
              {"type":"file","file":{"file_id":"{{{file.Id}}}"}},{"type":"file","file":{"file_id":"{{{file.Id}}}","filename":"photo.PNG"}}]}]}
            """;

        var outcome = await Provider.SendModelRequestAsync(new ModelCall(ProviderCapability.ChatCompletions, "claude-sonnet-4-5", Encoding.UTF8.GetBytes(body), false), CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        var blocks = JsonNode.Parse(_sim.Requests[^1].Body)!["messages"]![0]!["content"]!.AsArray();
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse($$$"""{"type":"document","source":{"type":"file","file_id":"{{{file.Id}}}"}}"""), blocks[1]));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse($$$"""{"type":"image","source":{"type":"file","file_id":"{{{file.Id}}}"}}"""), blocks[2]));
        Assert.Contains("files-api-2025-04-14", _sim.Requests[^1].Header("anthropic-beta"), StringComparison.Ordinal);

        // A file Anthropic does not have: its 404 comes back as such.
        string missing = body.Replace(file.Id, "file_doesnotexist", StringComparison.Ordinal);
        var failure = (await Provider.SendModelRequestAsync(new ModelCall(ProviderCapability.ChatCompletions, "m", Encoding.UTF8.GetBytes(missing), false), CancellationToken.None)).Failure!;
        Assert.Equal((404, "not_found_error"), (failure.Status, failure.Error!.Code));
    }
}
