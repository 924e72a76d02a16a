using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Wharf.Server.Tests.Batches;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Models;

/// <summary>
/// A Wharf server in front of an Anthropic simulator (<c>claude</c>, and <c>claudebad</c> with a wrong key) and an
/// OpenAI simulator (<c>backup</c>). Routes: <c>claude-fallback</c> → claude, backup; <c>claude-creds</c> → claudebad.
/// </summary>
public sealed class AnthropicUpstreamsFixture : IAsyncLifetime
{
    public const string ClaudeKey = "sk-ant-sim-claude-5f1d2c3b4a69788796a5b4c3";
    public const string BackupKey = "sk-sim-backup-a1b2c3d4e5f60718293a4b5c6d";
    public const string WrongKey = "sk-ant-wrong-7c6b5a4938271605f4e3d2c1b0a9";

    public AnthropicSimulator Claude { get; private set; } = null!;
    public OpenAISimulator Backup { get; private set; } = null!;
    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Claude = await AnthropicSimulator.StartAsync(ClaudeKey);
        Backup = await OpenAISimulator.StartAsync(BackupKey);
        Server = await WharfServer.StartAsync(
        [
            "--Wharf:Providers:claude:Type=anthropic", $"--Wharf:Providers:claude:BaseUrl={Claude.BaseUrl}", $"--Wharf:Providers:claude:ApiKey={ClaudeKey}",
            "--Wharf:Providers:claudebad:Type=anthropic", $"--Wharf:Providers:claudebad:BaseUrl={Claude.BaseUrl}", $"--Wharf:Providers:claudebad:ApiKey={WrongKey}",
            "--Wharf:Providers:backup:Type=openai", $"--Wharf:Providers:backup:BaseUrl={Backup.BaseUrl}", $"--Wharf:Providers:backup:ApiKey={BackupKey}",
            "--Wharf:Routing:Default:0=claude",
            "--Wharf:Routing:Models:claude-fallback:0=claude", "--Wharf:Routing:Models:claude-fallback:1=backup",
            "--Wharf:Routing:Models:claude-creds:0=claudebad",
            "--Wharf:Routing:RetryBaseDelayMilliseconds=1",
            "--Wharf:Routing:RetryMaxDelayMilliseconds=2",
        ]);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Claude.DisposeAsync();
        await Backup.DisposeAsync();
    }
}

/// <summary>
/// The official OpenAI SDK's <c>ChatClient</c> through the real server to Anthropic's Messages API (simulated): plain,
/// streamed and with tools; faults become Wharf's statuses and diagnostics, one before the first byte falls back.
/// </summary>
public sealed class AnthropicModelTests(AnthropicUpstreamsFixture upstreams) : IClassFixture<AnthropicUpstreamsFixture>, IDisposable
{
    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose()
    {
        _client.Dispose();
        upstreams.Claude.ClearFaults();
        upstreams.Claude.ErrorEventAfter = null;
    }

    private ChatClient Chat(string model) =>
        new(model, new ApiKeyCredential(WharfServer.Key), new OpenAIClientOptions { Endpoint = new Uri(upstreams.Server.BaseAddress, "/v1") });

    private static string Header(HttpResponseMessage response, string name) => response.Headers.GetValues(name).Single();

    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    [Fact]
    public async Task The_SDK_ChatClient_talks_to_Claude_through_Wharf()
    {
        int before = upstreams.Claude.Requests.Count;

        ClientResult<ChatCompletion> result = await Chat("claude/claude-sonnet-4-5").CompleteChatAsync(
            [new SystemChatMessage("Be brief."), new UserChatMessage("Say hello"), new AssistantChatMessage("Hello!"), new UserChatMessage("Again")],
            new ChatCompletionOptions { MaxOutputTokenCount = 200, Temperature = 0.3f, StopSequences = { "never-said" } });

        Assert.Equal(upstreams.Claude.ReplyText, result.Value.Content.Single().Text);
        Assert.Equal(ChatFinishReason.Stop, result.Value.FinishReason);
        Assert.True(result.Value.Usage.TotalTokenCount > 0);
        var raw = result.GetRawResponse();
        Assert.Equal("claude", raw.Headers.TryGetValue("x-wharf-provider", out string? provider) ? provider : null);
        using var body = JsonDocument.Parse(raw.Content);
        Assert.Equal("claude-sonnet-4-5", body.RootElement.GetProperty("extra_fields").GetProperty("model_deployment").GetString());

        var sent = upstreams.Claude.Requests.Skip(before).Single();
        Assert.Equal(("/v1/messages", AnthropicUpstreamsFixture.ClaudeKey, "2023-06-01"), (sent.Path, sent.Header("x-api-key"), sent.Header("anthropic-version")));
        using var request = JsonDocument.Parse(sent.Body);
        var root = request.RootElement;
        Assert.Equal(("claude-sonnet-4-5", 200), (root.GetProperty("model").GetString(), root.GetProperty("max_tokens").GetInt32()));
        Assert.Equal("Be brief.", root.GetProperty("system")[0].GetProperty("text").GetString());
        Assert.Equal(["user", "assistant", "user"], root.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.Equal(["never-said"], root.GetProperty("stop_sequences").EnumerateArray().Select(s => s.GetString()));
    }

    [Fact]
    public async Task The_SDK_ChatClient_streams_from_Claude_through_Wharf()
    {
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int before = upstreams.Claude.Requests.Count;
        // The SDK asks for the usage chunk itself (stream_options.include_usage).
        await foreach (var update in Chat("claude/claude-sonnet-4-5").CompleteChatStreamingAsync([new UserChatMessage("Say hello")]))
        {
            text.Append(string.Concat(update.ContentUpdate.Select(p => p.Text)));
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal(upstreams.Claude.ReplyText, text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.NotNull(usage);
        Assert.True(usage.OutputTokenCount > 0);
        Assert.True(JsonDocument.Parse(upstreams.Claude.Requests.Skip(before).Single().Body).RootElement.GetProperty("stream").GetBoolean());
    }

    [Fact]
    public async Task The_SDK_ChatClient_calls_a_tool_through_Claude_and_sends_its_result_back()
    {
        var tool = ChatTool.CreateFunctionTool("get_weather", "The weather now", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        List<ChatMessage> messages = [new UserChatMessage("Weather in Paris?")];
        var chat = Chat("claude/claude-sonnet-4-5");

        ChatCompletion first = await chat.CompleteChatAsync(messages, options);

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("Paris", JsonDocument.Parse(call.FunctionArguments).RootElement.GetProperty("city").GetString());

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "18 degrees and sunny"));
        ChatCompletion second = await chat.CompleteChatAsync(messages, options);

        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal(upstreams.Claude.ReplyText, second.Content.Single().Text);
        using var sent = JsonDocument.Parse(upstreams.Claude.Requests[^1].Body);
        var result = sent.RootElement.GetProperty("messages")[2].GetProperty("content")[0];
        Assert.Equal(("tool_result", call.Id, "18 degrees and sunny"),
            (result.GetProperty("type").GetString(), result.GetProperty("tool_use_id").GetString(), result.GetProperty("content").GetString()));

        // Streamed, the tool call arrives in pieces the SDK puts together.
        var arguments = new StringBuilder();
        string? name = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Weather in Paris?")], options))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                name ??= part.FunctionName;
                arguments.Append(part.FunctionArgumentsUpdate?.ToString());
            }
        }
        Assert.Equal("get_weather", name);
        Assert.Equal("Paris", JsonDocument.Parse(arguments.ToString()).RootElement.GetProperty("city").GetString());
    }

    [Fact]
    public async Task A_parameter_Claude_has_no_equivalent_for_is_a_400_naming_it_and_nothing_is_sent()
    {
        int before = upstreams.Claude.Requests.Count;

        using var response = await _client.PostAsync("/v1/chat/completions",
            Json("""{"model":"claude/claude-sonnet-4-5","n":2,"messages":[{"role":"user","content":"hi"}]}"""));

        await Wire.AssertErrorAsync(response, 400, param: "n", code: "unsupported_parameter");
        var json = await Wire.JsonAsync(response);
        Assert.Equal(("user", "user"), (json.GetProperty("error_type").GetString(), json.GetProperty("error_origin").GetString()));
        Assert.Equal(before, upstreams.Claude.Requests.Count);
    }

    [Fact]
    public async Task Claudes_own_400_about_the_request_is_passed_back()
    {
        using var response = await _client.PostAsync("/v1/chat/completions",
            Json("""{"model":"claude/claude-sonnet-4-5","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}},"messages":[{"role":"user","content":"hi"}]}"""));

        var error = await Wire.AssertErrorAsync(response, 400, code: "invalid_request_error");
        Assert.Contains("tool_choice", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("upstream", (await Wire.JsonAsync(response)).GetProperty("error_origin").GetString());
    }

    [Fact]
    public async Task An_overloaded_Claude_is_retried_then_the_request_falls_back_before_the_first_byte()
    {
        upstreams.Claude.SetRule("claude-fallback", Fault.Status(529));

        using var response = await _client.PostAsync("/v1/chat/completions",
            Json("""{"model":"claude-fallback","stream":true,"messages":[{"role":"user","content":"hi"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(("backup", "4"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-attempts")));
        string sse = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("data: [DONE]\n\n", sse, StringComparison.Ordinal);
        Assert.Equal(3, upstreams.Claude.Requests.Count(r => r.BodyText.Contains("\"claude-fallback\"", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_rate_limited_Claude_is_retried_after_its_retry_after()
    {
        upstreams.Claude.Enqueue(Fault.RateLimited("1"));

        using var response = await _client.PostAsync("/v1/chat/completions",
            Json("""{"model":"claude/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(("claude", "2"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-attempts")));
    }

    [Fact]
    public async Task A_key_Claude_refuses_is_Wharfs_credential_failing_a_502_that_never_shows_the_key()
    {
        using var response = await _client.PostAsync("/v1/chat/completions",
            Json("""{"model":"claude-creds","messages":[{"role":"user","content":"hi"}]}"""));

        string raw = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(AnthropicUpstreamsFixture.WrongKey, raw, StringComparison.Ordinal);
        await Wire.AssertErrorAsync(response, 502, code: "all_candidates_failed");
        var json = await Wire.JsonAsync(response);
        Assert.Equal(("system", "credentials_invalid_or_forbidden"),
            (json.GetProperty("error_type").GetString(), json.GetProperty("provider_failure_diagnostics").GetProperty("category").GetString()));
        var sample = json.GetProperty("failure_sample")[0];
        Assert.Equal(("claudebad", 401, false), (sample.GetProperty("provider").GetString(), sample.GetProperty("status").GetInt32(), sample.GetProperty("retryable").GetBoolean()));
    }

    [Fact]
    public async Task A_malformed_answer_from_every_try_is_a_502()
    {
        upstreams.Claude.Always = Fault.MalformedJson();

        using var response = await _client.PostAsync("/v1/chat/completions",
            Json("""{"model":"claude/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}"""));

        await Wire.AssertErrorAsync(response, 502, code: "all_candidates_failed");
        Assert.Equal("malformed_response", (await Wire.JsonAsync(response)).GetProperty("failure_sample")[0].GetProperty("type").GetString());
        upstreams.Claude.Always = null;
        using var healthy = await _client.PostAsync("/v1/chat/completions",
            Json("""{"model":"claude/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}"""));
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
    }

    [Fact]
    public async Task An_error_event_mid_stream_ends_the_stream_with_an_SSE_error_event()
    {
        upstreams.Claude.ErrorEventAfter = 5;

        using var response = await _client.PostAsync("/v1/chat/completions",
            Json("""{"model":"claude/claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"hi"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        string sse = await response.Content.ReadAsStringAsync();
        Assert.Contains("chat.completion.chunk", sse, StringComparison.Ordinal);
        Assert.DoesNotContain("[DONE]", sse, StringComparison.Ordinal);
        int at = sse.IndexOf("event: error\ndata: ", StringComparison.Ordinal);
        Assert.True(at > 0, sse);
        using var envelope = JsonDocument.Parse(sse[(at + "event: error\ndata: ".Length)..].Trim());
        Assert.Equal((502, "upstream_stream_failed"), (envelope.RootElement.GetProperty("status_code").GetInt32(), envelope.RootElement.GetProperty("error").GetProperty("code").GetString()));
    }

    [Fact]
    public async Task Embeddings_are_not_routed_to_Claude()
    {
        using var response = await _client.PostAsync("/v1/embeddings", Json("""{"model":"claude/some-model","input":"x"}"""));

        await Wire.AssertErrorAsync(response, 503, code: "no_eligible_provider");
        var json = await Wire.JsonAsync(response);
        Assert.Equal(["claude"], json.GetProperty("provider_candidate_diagnostics").GetProperty("droppedUnsupportedEndpoint").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task A_file_uploaded_to_Claude_is_listed_there_referenced_by_a_chat_request_and_deleted_there_too()
    {
        byte[] content = Encoding.UTF8.GetBytes("%PDF-1.4 quarterly report");
        using var upload = await _client.PostAsync("/v1/files", Wire.Form("user_data", content, "report.pdf", ("provider", "claude")));
        Assert.True(upload.IsSuccessStatusCode, await upload.Content.ReadAsStringAsync());
        string fileId = (await Wire.JsonAsync(upload)).Id();
        var copy = Assert.Single(upstreams.Claude.Files, f => f.Content.AsSpan().SequenceEqual(content));
        Assert.Equal("report.pdf", copy.Filename);
        Assert.NotEqual(fileId, copy.Id);

        // The provider's own list, live, in OpenAI's file object shape with Anthropic's ids.
        var upstreamList = await Wire.GetJsonAsync(_client, "/v1/files?provider=claude&source=upstream");
        Assert.Contains(copy.Id, upstreamList.Ids());

        // The SDK names Wharf's id; Claude gets a document block naming its copy.
        ChatCompletion answer = await Chat("claude/claude-sonnet-4-5").CompleteChatAsync(
            [new UserChatMessage(ChatMessageContentPart.CreateTextPart("Summarise"), ChatMessageContentPart.CreateFilePart(fileId))]);
        Assert.Equal(upstreams.Claude.ReplyText, answer.Content.Single().Text);
        using (var sent = JsonDocument.Parse(upstreams.Claude.Requests.Last(r => r.Path == "/v1/messages").Body))
        {
            var block = sent.RootElement.GetProperty("messages")[0].GetProperty("content")[1];
            Assert.Equal(("document", "file", copy.Id), (block.GetProperty("type").GetString(),
                block.GetProperty("source").GetProperty("type").GetString(), block.GetProperty("source").GetProperty("file_id").GetString()));
        }

        using var deleted = await _client.DeleteAsync("/v1/files/" + fileId);
        Assert.True(deleted.IsSuccessStatusCode);
        Assert.DoesNotContain(upstreams.Claude.Files, f => f.Id == copy.Id);
    }

    [Fact]
    public async Task A_gateway_batch_routed_to_Claude_ends_with_OpenAI_shaped_lines_and_an_untranslatable_line_in_the_error_file_unsent()
    {
        string jsonl = BatchKit.Lines(30, "claude/claude-sonnet-4-5") + BatchKit.ChatLine("two-choices", "claude/claude-sonnet-4-5", "\"n\":2") + "\n";
        string fileId = await BatchKit.UploadAsync(upstreams.Server, jsonl);

        var created = await BatchKit.CreateAsync(_client, fileId);
        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("completed", batch.Status());
        Assert.Equal((31, 30, 1), batch.Counts());
        var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
        Assert.Equal(Enumerable.Range(1, 30).Select(i => "req-" + i).Order(), output.Select(l => l.CustomId()).Order());
        foreach (var line in output)
        {
            var response = line.GetProperty("response");
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            var body = response.GetProperty("body");
            Assert.Equal("chat.completion", body.GetProperty("object").GetString());
            Assert.Equal(upstreams.Claude.ReplyText, body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
            Assert.True(body.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);
        }
        Assert.True(batch.GetProperty("usage").GetProperty("total_tokens").GetInt64() > 0);
        var error = Assert.Single(await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("error_file_id")));
        Assert.Equal("two-choices", error.CustomId());
        // No upstream answered it: no response, the refusal as the line's error.
        Assert.Equal(JsonValueKind.Null, error.GetProperty("response").ValueKind);
        Assert.Equal("unsupported_parameter", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("'n'", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        // Claude got each other line once, as a Messages request; the refused one was never sent.
        var sent = upstreams.Claude.Requests.Where(r => r.Path == "/v1/messages").Select(r => r.BodyText).ToList();
        Assert.DoesNotContain(sent, b => b.Contains("line two-choices", StringComparison.Ordinal));
        Assert.All(Enumerable.Range(1, 30), i => Assert.Single(sent, b => b.Contains($"\"line req-{i}\"", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_local_file_named_in_a_chat_to_Claude_is_copied_there_once_when_first_needed()
    {
        byte[] content = Encoding.UTF8.GetBytes("%PDF-1.4 kept locally until Claude needs it");
        string fileId = (await Wire.UploadAsync(_client, "user_data", Encoding.UTF8.GetString(content), "brief.pdf")).Id();
        Assert.DoesNotContain(upstreams.Claude.Files, f => f.Content.AsSpan().SequenceEqual(content));
        var chat = Chat("claude/claude-sonnet-4-5");

        for (int i = 0; i < 2; i++)
        {
            await chat.CompleteChatAsync([new UserChatMessage(ChatMessageContentPart.CreateTextPart("Read it"), ChatMessageContentPart.CreateFilePart(fileId))]);
        }

        var copy = Assert.Single(upstreams.Claude.Files, f => f.Content.AsSpan().SequenceEqual(content));
        Assert.Equal("brief.pdf", copy.Filename);
        var sent = upstreams.Claude.Requests.Where(r => r.Path == "/v1/messages").TakeLast(2).ToList();
        Assert.All(sent, r => Assert.Contains($"\"file_id\":\"{copy.Id}\"", r.BodyText, StringComparison.Ordinal));
        Assert.Contains(fileId, (await Wire.GetJsonAsync(_client, "/v1/files?provider=claude")).Ids());
    }

    [Fact]
    public async Task Claude_is_listed_with_its_capabilities_and_no_secret()
    {
        string raw = await _client.GetStringAsync("/v1/providers");
        Assert.DoesNotContain(AnthropicUpstreamsFixture.ClaudeKey, raw, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(raw);
        var claude = json.RootElement.GetProperty("data").EnumerateArray().Single(p => p.GetProperty("id").GetString() == "claude");
        Assert.Equal("anthropic", claude.GetProperty("type").GetString());
        Assert.Equal(["batches", "chat.completions", "files"], claude.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()!).Order());
    }
}
