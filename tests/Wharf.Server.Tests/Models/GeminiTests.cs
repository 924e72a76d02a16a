using System.ClientModel;
using System.Net;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using Wharf.Server.Tests.Batches;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Models;

/// <summary>
/// A Wharf server in front of the Gemini simulator: <c>gemini</c> (the default route), <c>geminibad</c> (a wrong
/// key), and <c>backup</c> (an OpenAI simulator) after <c>gemini</c> for model <c>gemini-fallback</c>.
/// </summary>
public sealed class GeminiUpstreamsFixture : IAsyncLifetime
{
    public const string BackupKey = "sk-sim-backup-gem-0a1b2c3d4e5f6071829";
    public const string WrongKey = "AIzaWrongKey-5f1d2c3b4a69788796a5b4c3d2";

    public GeminiSimulator Gemini { get; private set; } = null!;
    public OpenAISimulator Backup { get; private set; } = null!;
    public WharfServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Gemini = await GeminiSimulator.StartAsync();
        Backup = await OpenAISimulator.StartAsync(BackupKey);
        Server = await WharfServer.StartAsync(
            "--Wharf:Providers:gemini:Type=gemini", $"--Wharf:Providers:gemini:BaseUrl={Gemini.BaseUrl}", $"--Wharf:Providers:gemini:ApiKey={Gemini.ApiKey}",
            "--Wharf:Providers:geminibad:Type=gemini", $"--Wharf:Providers:geminibad:BaseUrl={Gemini.BaseUrl}", $"--Wharf:Providers:geminibad:ApiKey={WrongKey}",
            "--Wharf:Providers:backup:Type=openai", $"--Wharf:Providers:backup:BaseUrl={Backup.BaseUrl}", $"--Wharf:Providers:backup:ApiKey={BackupKey}",
            "--Wharf:Routing:Default:0=gemini",
            "--Wharf:Routing:Models:gemini-fallback:0=gemini", "--Wharf:Routing:Models:gemini-fallback:1=backup",
            "--Wharf:Routing:RetryBaseDelayMilliseconds=1", "--Wharf:Routing:RetryMaxDelayMilliseconds=2",
            "--Wharf:Batches:PollIntervalMilliseconds=100", "--Wharf:Batches:ChunkFlushMilliseconds=100");
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Gemini.DisposeAsync();
        await Backup.DisposeAsync();
    }
}

/// <summary>
/// The official OpenAI SDK through the real Wharf server to Gemini: chat (plain, streamed, with tools and their
/// results) and embeddings, translated both ways; what cannot be translated is the user's 400; Gemini's faults are
/// the right statuses with diagnostics; a failure before the first byte falls back to the next provider.
/// </summary>
public sealed class GeminiTests(GeminiUpstreamsFixture upstreams) : IClassFixture<GeminiUpstreamsFixture>, IDisposable
{
    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose() => _client.Dispose();

    private ChatClient Chat(string model) =>
        new(model, new ApiKeyCredential(WharfServer.Key), new OpenAIClientOptions { Endpoint = new Uri(upstreams.Server.BaseAddress, "/v1") });

    private static string Header(ClientResult result, string name) => result.GetRawResponse().Headers.TryGetValue(name, out string? value) ? value! : "";

    private Task<HttpResponseMessage> PostChatAsync(string body) => _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json(body));

    [Fact]
    public async Task The_SDK_ChatClient_gets_geminis_answer_as_a_chat_completion()
    {
        ClientResult<ChatCompletion> result = await Chat("gemini/gemini-2.0-flash").CompleteChatAsync(
            [new SystemChatMessage("Be brief."), new UserChatMessage("Say hello")], new ChatCompletionOptions { Temperature = 0.4f, MaxOutputTokenCount = 100 });

        Assert.Equal(upstreams.Gemini.ReplyText, result.Value.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, result.Value.FinishReason);
        Assert.True(result.Value.Usage.TotalTokenCount > 0);
        Assert.Equal(("gemini", "gemini-2.0-flash"), (Header(result, "x-wharf-provider"), Header(result, "x-wharf-model")));
        using var body = JsonDocument.Parse(result.GetRawResponse().Content);
        Assert.Equal("gemini", body.RootElement.GetProperty("extra_fields").GetProperty("provider").GetString());

        var sent = upstreams.Gemini.CallsFor("gemini-2.0-flash")[^1];
        Assert.Equal("/v1beta/models/gemini-2.0-flash:generateContent", sent.Path);
        using var request = JsonDocument.Parse(sent.Body);
        Assert.Equal("Be brief.", request.RootElement.GetProperty("systemInstruction").GetProperty("parts")[0].GetProperty("text").GetString());
        Assert.Equal(100, request.RootElement.GetProperty("generationConfig").GetProperty("maxOutputTokens").GetInt32());
    }

    [Fact]
    public async Task The_SDK_streams_geminis_answer_chunk_by_chunk_with_usage()
    {
        var text = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in Chat("gemini-1.5-pro").CompleteChatStreamingAsync(
            [new UserChatMessage("Stream please")], new ChatCompletionOptions()))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.Equal(upstreams.Gemini.ReplyText, text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.NotNull(usage);
        Assert.True(usage.OutputTokenCount > 0);
        var sent = upstreams.Gemini.CallsFor("gemini-1.5-pro")[^1];
        Assert.Equal(("/v1beta/models/gemini-1.5-pro:streamGenerateContent", "?alt=sse"), (sent.Path, sent.Query));
    }

    [Fact]
    public async Task The_SDK_calls_a_tool_and_sends_its_result_back_as_a_function_response()
    {
        var chat = Chat("gemini-tools");
        var tool = ChatTool.CreateFunctionTool("get_weather", "The weather in a city now",
            BinaryData.FromString("""{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        List<ChatMessage> messages = [new UserChatMessage("Weather in Oslo?")];

        ChatCompletion first = await chat.CompleteChatAsync(messages, options);

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        using (var arguments = JsonDocument.Parse(call.FunctionArguments))
        {
            Assert.Equal("Weather in Oslo?", arguments.RootElement.GetProperty("query").GetString());
        }

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, """{"celsius":-3}"""));
        ChatCompletion second = await chat.CompleteChatAsync(messages, options);

        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal(upstreams.Gemini.ReplyText, second.Content[0].Text);
        using var sent = JsonDocument.Parse(upstreams.Gemini.CallsFor("gemini-tools")[^1].Body);
        var contents = sent.RootElement.GetProperty("contents");
        Assert.Equal(["user", "model", "user"], contents.EnumerateArray().Select(c => c.GetProperty("role").GetString()));
        Assert.Equal("get_weather", contents[1].GetProperty("parts")[0].GetProperty("functionCall").GetProperty("name").GetString());
        var response = contents[2].GetProperty("parts")[0].GetProperty("functionResponse");
        Assert.Equal(("get_weather", -3), (response.GetProperty("name").GetString(), response.GetProperty("response").GetProperty("celsius").GetInt32()));
        Assert.Equal("get_weather", sent.RootElement.GetProperty("tools")[0].GetProperty("functionDeclarations")[0].GetProperty("name").GetString());
    }

    [Fact]
    public async Task The_SDK_EmbeddingClient_gets_geminis_vectors()
    {
        var embeddings = new EmbeddingClient("text-embedding-004", new ApiKeyCredential(WharfServer.Key),
            new OpenAIClientOptions { Endpoint = new Uri(upstreams.Server.BaseAddress, "/v1") });

        OpenAIEmbeddingCollection result = await embeddings.GenerateEmbeddingsAsync(["first", "second", "first"]);

        Assert.Equal(3, result.Count);
        Assert.All(result, e => Assert.Equal(8, e.ToFloats().Length));
        Assert.Equal(result[0].ToFloats().ToArray(), result[2].ToFloats().ToArray());
        Assert.NotEqual(result[0].ToFloats().ToArray(), result[1].ToFloats().ToArray());
        Assert.Equal("/v1beta/models/text-embedding-004:batchEmbedContents", upstreams.Gemini.CallsFor("text-embedding-004")[^1].Path);
    }

    [Fact]
    public async Task A_parameter_gemini_cannot_take_is_the_users_400_naming_it_and_nothing_is_sent()
    {
        int before = upstreams.Gemini.CallsFor("gemini-refused").Count;

        using var response = await PostChatAsync("""{"model":"gemini-refused","logprobs":true,"messages":[{"role":"user","content":"hi"}]}""");

        await Wire.AssertErrorAsync(response, 400, param: "logprobs", code: "unsupported_parameter");
        var json = await Wire.JsonAsync(response);
        Assert.Equal("user", json.GetProperty("error_origin").GetString());
        Assert.Equal(before, upstreams.Gemini.CallsFor("gemini-refused").Count);

        using var image = await PostChatAsync("""
            {"model":"gemini-refused","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}
            """);
        await Wire.AssertErrorAsync(image, 400, param: "messages[0].content[0].image_url");
    }

    [Fact]
    public async Task A_bad_key_is_a_502_for_wharfs_credential_and_never_shows_the_key()
    {
        using var response = await _client.PostAsync("/v1/chat/completions?provider=geminibad", UpstreamsFixture.Json(
            """{"model":"gemini-badkey","messages":[{"role":"user","content":"hi"}]}"""));

        string raw = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(GeminiUpstreamsFixture.WrongKey, raw, StringComparison.Ordinal);
        await Wire.AssertErrorAsync(response, 502, code: "all_candidates_failed");
        var json = await Wire.JsonAsync(response);
        Assert.Equal("credentials_invalid_or_forbidden", json.GetProperty("provider_failure_diagnostics").GetProperty("category").GetString());
        var sample = json.GetProperty("failure_sample")[0];
        Assert.Equal(("geminibad", 400, false), (sample.GetProperty("provider").GetString(), sample.GetProperty("status").GetInt32(), sample.GetProperty("retryable").GetBoolean()));
    }

    [Fact]
    public async Task A_rate_limit_with_retry_info_is_retried_and_then_answered()
    {
        upstreams.Gemini.Enqueue(GeminiSimulator.RateLimited("0.05s"));

        using var response = await PostChatAsync("""{"model":"gemini-limited","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(("gemini", "2"), (response.Headers.GetValues("x-wharf-provider").Single(), response.Headers.GetValues("x-wharf-attempts").Single()));
        var calls = upstreams.Gemini.CallsFor("gemini-limited");
        Assert.Equal(2, calls.Count);
    }

    [Fact]
    public async Task A_rate_limit_on_every_call_is_a_502_saying_so()
    {
        upstreams.Gemini.SetRule("gemini-always-limited", GeminiSimulator.RateLimited("0.01s"));

        using var response = await PostChatAsync("""{"model":"gemini-always-limited","messages":[{"role":"user","content":"hi"}]}""");

        await Wire.AssertErrorAsync(response, 502, code: "all_candidates_failed");
        var json = await Wire.JsonAsync(response);
        Assert.Equal("rate_limited", json.GetProperty("provider_failure_diagnostics").GetProperty("category").GetString());
        Assert.Equal(3, upstreams.Gemini.CallsFor("gemini-always-limited").Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_gemini_failure_before_the_first_byte_falls_back_to_the_next_provider(bool stream)
    {
        upstreams.Gemini.SetRule("gemini-fallback", Fault.Status(503));
        int before = upstreams.Gemini.CallsFor("gemini-fallback").Count;

        using var response = await PostChatAsync($$"""{"model":"gemini-fallback","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("backup", response.Headers.GetValues("x-wharf-provider").Single());
        Assert.Equal(3, upstreams.Gemini.CallsFor("gemini-fallback").Count - before);
        string body = await response.Content.ReadAsStringAsync();
        Assert.Contains(stream ? "chat.completion.chunk" : "\"chat.completion\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_gemini_stream_cut_midway_ends_with_an_error_event_not_as_a_whole_answer()
    {
        var hold = new Hold();
        upstreams.Gemini.SetRule("gemini-cut", Fault.DropStreamAfter(2, hold));
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = UpstreamsFixture.Json("""{"model":"gemini-cut","stream":true,"messages":[{"role":"user","content":"hi"}]}"""),
        };
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? first = await reader.ReadLineAsync();
        Assert.Contains("chat.completion.chunk", first, StringComparison.Ordinal);

        hold.Release();
        string rest = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Contains("event: error", rest, StringComparison.Ordinal);
        Assert.DoesNotContain("[DONE]", rest, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gemini_serves_no_responses_endpoint_so_routing_drops_it_as_unsupported()
    {
        using var response = await _client.PostAsync("/v1/responses", UpstreamsFixture.Json("""{"model":"gemini/gemini-2.0-flash","input":"hi"}"""));

        await Wire.AssertErrorAsync(response, 503, code: "no_eligible_provider");
        var json = await Wire.JsonAsync(response);
        Assert.Equal(["gemini"], json.GetProperty("provider_candidate_diagnostics").GetProperty("droppedUnsupportedEndpoint").EnumerateArray().Select(e => e.GetString()));
        Assert.DoesNotContain(upstreams.Gemini.Requests, r => r.Path.Contains("gemini-2.0-flash:", StringComparison.Ordinal) && r.BodyText.Contains("\"input\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_gateway_batch_routed_to_gemini_ends_with_openai_shaped_output_lines_and_an_untranslatable_line_as_an_error_line()
    {
        string jsonl = BatchKit.Lines(30, "gemini/gemini-batch") + BatchKit.ChatLine("bad-1", "gemini/gemini-batch", "\"logprobs\":true") + "\n";
        string fileId = await BatchKit.UploadAsync(upstreams.Server, jsonl);
        var created = await BatchKit.CreateAsync(_client, fileId);

        var batch = await BatchKit.WaitForEndAsync(_client, created.GetProperty("id").GetString()!);

        Assert.Equal("completed", batch.Status());
        Assert.Equal((31, 30, 1), batch.Counts());
        var output = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("output_file_id"));
        Assert.Equal(Enumerable.Range(1, 30).Select(i => "req-" + i).Order(), output.Select(l => l.CustomId()).Order());
        Assert.All(output, line =>
        {
            var response = line.GetProperty("response");
            Assert.Equal(200, response.GetProperty("status_code").GetInt32());
            var completion = response.GetProperty("body");
            Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
            Assert.Equal(upstreams.Gemini.ReplyText, completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
            Assert.True(completion.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
        });
        Assert.True(batch.GetProperty("usage").GetProperty("total_tokens").GetInt64() > 0);
        var errors = await BatchKit.ResultLinesAsync(upstreams.Server, batch.GetProperty("error_file_id"));
        var bad = Assert.Single(errors);
        Assert.Equal("bad-1", bad.CustomId());
        Assert.Contains("logprobs", bad.ToString(), StringComparison.Ordinal);
        Assert.Contains("unsupported_parameter", bad.ToString(), StringComparison.Ordinal);
        Assert.Equal(30, upstreams.Gemini.CallsFor("gemini-batch").Count);
    }

    [Fact]
    public async Task The_provider_list_shows_gemini_with_files_batches_chat_completions_and_embeddings_and_no_key()
    {
        using var response = await _client.GetAsync("/v1/providers");
        string raw = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain(upstreams.Gemini.ApiKey, raw, StringComparison.Ordinal);
        using var list = JsonDocument.Parse(raw);
        var gemini = list.RootElement.GetProperty("data").EnumerateArray().Single(p => p.GetProperty("id").GetString() == "gemini");
        Assert.Equal("gemini", gemini.GetProperty("type").GetString());
        Assert.Equal(["files", "batches", "chat.completions", "embeddings"], gemini.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
    }
}
