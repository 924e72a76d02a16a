using System.ClientModel.Primitives;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI.Chat;
using OpenAI.Embeddings;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>One Gemini simulator for the class.</summary>
public sealed class GeminiSimulatorFixture : IAsyncLifetime
{
    public GeminiSimulator Simulator { get; private set; } = null!;

    public async Task InitializeAsync() => Simulator = await GeminiSimulator.StartAsync();

    public async Task DisposeAsync() => await Simulator.DisposeAsync();
}

/// <summary>
/// Type <c>gemini</c> as the server composes it, against the Gemini simulator: its configuration checked at start,
/// requests sent where and how Google's reference says, answers translated, Google's errors classified.
/// </summary>
public sealed class GeminiAdapterTests(GeminiSimulatorFixture fixture) : IClassFixture<GeminiSimulatorFixture>, IAsyncLifetime
{
    private readonly GeminiSimulator _sim = fixture.Simulator;
    private ProviderHarness _harness = null!;

    private IProvider Provider => _harness["gem"];

    public Task InitializeAsync()
    {
        _sim.Always = null;
        _harness = ProviderHarness.Start(
            ("gem:Type", "gemini"), ("gem:ApiKey", _sim.ApiKey), ("gem:BaseUrl", _sim.BaseUrl.ToString()), ("gem:TimeoutSeconds", "30"),
            ("gem:Headers:X-Title", "wharf-tests"),
            ("badkey:Type", "gemini"), ("badkey:ApiKey", "AIzaWrong-0000000000000000000000000"), ("badkey:BaseUrl", _sim.BaseUrl.ToString()));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    private static ModelCall Chat(string model, bool stream = false, string extra = "") =>
        new(ProviderCapability.ChatCompletions, model,
            Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"Hello"}]{{(stream ? ",\"stream\":true" : "")}}{{extra}}}"""), stream);

    private static async Task<string> ReadAllAsync(ModelResponse response)
    {
        await using (response)
        {
            return await new StreamReader(response.Content).ReadToEndAsync();
        }
    }

    [Fact]
    public void The_configuration_is_checked_at_start()
    {
        var missingKey = ProviderHarness.ValidationFailures(("g:Type", "gemini"));
        Assert.Contains(missingKey, f => f.Contains("Wharf:Providers:g:ApiKey", StringComparison.Ordinal) && f.Contains("x-goog-api-key", StringComparison.Ordinal));
        var badVersion = ProviderHarness.ValidationFailures(("g:Type", "gemini"), ("g:ApiKey", "k"), ("g:ApiVersion", "2024-01-01"));
        Assert.Contains(badVersion, f => f.Contains("Wharf:Providers:g:ApiVersion", StringComparison.Ordinal));
        Assert.Empty(ProviderHarness.ValidationFailures(("g:Type", "gemini"), ("g:ApiKey", "k"), ("g:NativeBatches", "true")));
        Assert.Empty(ProviderHarness.ValidationFailures(("g:Type", "gemini"), ("g:ApiKey", "k"), ("g:ApiVersion", "v1")));
        Assert.Empty(ProviderHarness.ValidationFailures(("g:Type", "gemini"), ("g:ApiKey", "k")));
    }

    [Fact]
    public void It_declares_files_batches_chat_completions_and_embeddings()
    {
        Assert.Equal("gemini", Provider.Type);
        Assert.Equal(new HashSet<ProviderCapability> { ProviderCapability.Files, ProviderCapability.Batches, ProviderCapability.ChatCompletions, ProviderCapability.Embeddings }, Provider.Capabilities);
    }

    [Fact]
    public async Task A_chat_completion_goes_to_generate_content_with_the_key_header_and_comes_back_as_the_sdk_reads_it()
    {
        var outcome = await Provider.SendModelRequestAsync(Chat("gemini-2.0-flash", extra: ",\"temperature\":0.3"), CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        Assert.Equal(("application/json", false), (outcome.Value.ContentType, outcome.Value.IsEventStream));
        var completion = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(await ReadAllAsync(outcome.Value)))!;
        Assert.Equal(_sim.ReplyText, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.True(completion.Usage.TotalTokenCount > 0);

        var sent = _sim.CallsFor("gemini-2.0-flash")[^1];
        Assert.Equal(("/v1beta/models/gemini-2.0-flash:generateContent", ""), (sent.Path, sent.Query));
        Assert.Equal(_sim.ApiKey, sent.Header("x-goog-api-key"));
        Assert.Null(sent.Header("Authorization"));
        Assert.Equal("wharf-tests", sent.Header("X-Title"));
        using var body = JsonDocument.Parse(sent.Body);
        Assert.Equal("Be kind.", body.RootElement.GetProperty("systemInstruction").GetProperty("parts")[0].GetProperty("text").GetString());
        Assert.Equal(0.3, body.RootElement.GetProperty("generationConfig").GetProperty("temperature").GetDouble());
    }

    [Fact]
    public async Task A_streamed_chat_goes_to_stream_generate_content_as_sse_and_comes_back_as_chunks_ending_in_done()
    {
        var outcome = await Provider.SendModelRequestAsync(Chat("gemini-stream", stream: true, extra: ",\"stream_options\":{\"include_usage\":true}"), CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        Assert.True(outcome.Value.IsEventStream);
        string text = await ReadAllAsync(outcome.Value);
        var data = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e["data: ".Length..]).ToList();
        Assert.Equal("[DONE]", data[^1]);
        var updates = data[..^1].Select(d => ModelReaderWriter.Read<StreamingChatCompletionUpdate>(BinaryData.FromString(d))!).ToList();
        Assert.Equal(_sim.ReplyText, string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text)));
        Assert.Equal(_sim.ReplyText.Split(' ').Length + 1, updates.Count);
        Assert.NotNull(updates[^1].Usage);
        var sent = _sim.CallsFor("gemini-stream")[^1];
        Assert.Equal(("/v1beta/models/gemini-stream:streamGenerateContent", "?alt=sse"), (sent.Path, sent.Query));
    }

    [Fact]
    public async Task Embeddings_go_to_batch_embed_contents_and_come_back_as_the_sdk_reads_them_in_base64()
    {
        var call = new ModelCall(ProviderCapability.Embeddings, "text-embedding-004",
            Encoding.UTF8.GetBytes("""{"model":"text-embedding-004","input":["one","two"],"encoding_format":"base64","dimensions":4}"""), false);

        var outcome = await Provider.SendModelRequestAsync(call, CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        var embeddings = ModelReaderWriter.Read<OpenAIEmbeddingCollection>(BinaryData.FromString(await ReadAllAsync(outcome.Value)))!;
        Assert.Equal(2, embeddings.Count);
        Assert.All(embeddings, e => Assert.Equal(4, e.ToFloats().Length));
        Assert.NotEqual(embeddings[0].ToFloats().ToArray(), embeddings[1].ToFloats().ToArray());
        Assert.Equal("/v1beta/models/text-embedding-004:batchEmbedContents", _sim.CallsFor("text-embedding-004")[^1].Path);
    }

    [Fact]
    public async Task A_wrong_key_is_wharfs_credential_failing_and_the_key_is_never_quoted()
    {
        var outcome = await _harness["badkey"].SendModelRequestAsync(Chat("gemini-badkey"), CancellationToken.None);

        Assert.False(outcome.IsOk);
        var failure = outcome.Failure;
        Assert.Equal((UpstreamFailureKind.Answered, FailureCategory.CredentialsInvalidOrForbidden, 400, false), (failure.Kind, failure.Category, failure.Status, failure.Retryable));
        Assert.Equal("API_KEY_INVALID", failure.Error!.Code);
        Assert.DoesNotContain("AIzaWrong", failure.PayloadPreview ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Faults_become_failures_classified_as_googles_statuses_say()
    {
        _sim.SetRule("gemini-429", GeminiSimulator.RateLimited("3s"));
        _sim.SetRule("gemini-503", Fault.Status(503));
        _sim.SetRule("gemini-500", Fault.Status(500));
        _sim.SetRule("gemini-403", Fault.Status(403));
        _sim.SetRule("gemini-404", Fault.Status(404));
        _sim.SetRule("gemini-malformed", Fault.MalformedJson());
        _sim.SetRule("gemini-closed", Fault.CloseConnection());

        async Task<UpstreamFailure> FailureOf(string model)
        {
            var outcome = await Provider.SendModelRequestAsync(Chat(model), CancellationToken.None);
            Assert.False(outcome.IsOk);
            return outcome.Failure;
        }

        var limited = await FailureOf("gemini-429");
        Assert.Equal((FailureCategory.RateLimited, true, TimeSpan.FromSeconds(3)), (limited.Category, limited.Retryable, limited.RetryAfter));
        var unavailable = await FailureOf("gemini-503");
        Assert.Equal((FailureCategory.ServerError, true, "UNAVAILABLE"), (unavailable.Category, unavailable.Retryable, unavailable.Error!.Code));
        Assert.Equal((FailureCategory.ServerError, true), ((await FailureOf("gemini-500")).Category, (await FailureOf("gemini-500")).Retryable));
        Assert.Equal(FailureCategory.CredentialsInvalidOrForbidden, (await FailureOf("gemini-403")).Category);
        Assert.Equal(FailureCategory.ModelUnavailableForEndpoint, (await FailureOf("gemini-404")).Category);
        var malformed = await FailureOf("gemini-malformed");
        Assert.Equal((UpstreamFailureKind.Malformed, true), (malformed.Kind, malformed.Retryable));
        Assert.Equal(UpstreamFailureKind.ConnectionFailed, (await FailureOf("gemini-closed")).Kind);
    }

    [Fact]
    public async Task An_upstream_that_does_not_answer_within_the_timeout_is_a_retryable_timeout()
    {
        var hold = new Hold();
        _sim.SetRule("gemini-slow", Fault.Hold(hold));

        var sending = Provider.SendModelRequestAsync(Chat("gemini-slow"), CancellationToken.None);
        var outcome = await _harness.AdvanceUntilDoneAsync(sending, TimeSpan.FromSeconds(5));
        hold.Release();

        Assert.False(outcome.IsOk);
        Assert.Equal((UpstreamFailureKind.Timeout, true), (outcome.Failure.Kind, outcome.Failure.Retryable));
    }

    [Fact]
    public async Task A_stream_cut_midway_fails_the_read()
    {
        var hold = new Hold();
        _sim.SetRule("gemini-cut", Fault.DropStreamAfter(2, hold));

        var outcome = await Provider.SendModelRequestAsync(Chat("gemini-cut", stream: true), CancellationToken.None);

        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        await using var response = outcome.Value;
        byte[] buffer = new byte[64 * 1024];
        int read = await response.Content.ReadAsync(buffer);
        Assert.Contains("chat.completion.chunk", Encoding.UTF8.GetString(buffer, 0, read), StringComparison.Ordinal);
        hold.Release();
        var reader = new StreamReader(response.Content);
        await Assert.ThrowsAnyAsync<IOException>(() => reader.ReadToEndAsync());
    }

    [Fact]
    public async Task An_untranslatable_parameter_is_refused_before_any_call()
    {
        int before = _sim.Requests.Count;

        var outcome = await Provider.SendModelRequestAsync(Chat("gemini-refused", extra: ",\"logprobs\":true"), CancellationToken.None);

        Assert.False(outcome.IsOk);
        Assert.Equal((UpstreamFailureKind.NotAttempted, 400, "logprobs"), (outcome.Failure.Kind, outcome.Failure.Status, outcome.Failure.Error!.Param));
        Assert.Equal(before, _sim.Requests.Count);
    }

    [Fact]
    public async Task The_simulator_refuses_what_google_refuses()
    {
        using var http = new HttpClient { BaseAddress = _sim.BaseUrl };
        async Task<(int Status, string Body)> PostAsync(string path, string json, string? key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            if (key is not null)
            {
                request.Headers.Add("x-goog-api-key", key);
            }
            using var response = await http.SendAsync(request);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        const string Good = """{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}""";

        Assert.Equal(200, (await PostAsync("/v1beta/models/m:generateContent", Good, _sim.ApiKey)).Status);
        Assert.Equal(403, (await PostAsync("/v1beta/models/m:generateContent", Good, null)).Status);
        var wrongKey = await PostAsync("/v1beta/models/m:generateContent", Good, "nope");
        Assert.Equal(400, wrongKey.Status);
        Assert.Contains("API_KEY_INVALID", wrongKey.Body, StringComparison.Ordinal);
        Assert.Equal(400, (await PostAsync("/v1beta/models/m:generateContent", """{"contents":[{"role":"assistant","parts":[{"text":"hi"}]}]}""", _sim.ApiKey)).Status);
        Assert.Equal(400, (await PostAsync("/v1beta/models/m:generateContent", """{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"temperature":1}""", _sim.ApiKey)).Status);
        Assert.Equal(400, (await PostAsync("/v1beta/models/m:generateContent", """{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"max_tokens":5}}""", _sim.ApiKey)).Status);
        Assert.Equal(400, (await PostAsync("/v1beta/models/m:generateContent", """{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"not base64!"}}]}]}""", _sim.ApiKey)).Status);
        Assert.Equal(400, (await PostAsync("/v1beta/models/m:streamGenerateContent", Good, _sim.ApiKey)).Status);
        Assert.Equal(400, (await PostAsync("/v1beta/models/m:batchEmbedContents", """{"requests":[{"model":"models/other","content":{"parts":[{"text":"a"}]}}]}""", _sim.ApiKey)).Status);
        Assert.Equal(404, (await PostAsync("/v1beta/models/m:countTokens", Good, _sim.ApiKey)).Status);
    }
}
