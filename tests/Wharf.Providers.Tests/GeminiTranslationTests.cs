using System.Buffers.Binary;
using System.ClientModel.Primitives;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using OpenAI.Chat;
using OpenAI.Embeddings;
using Wharf.Core.Providers;
using Wharf.Providers.Gemini;

namespace Wharf.Providers.Tests;

/// <summary>
/// The Gemini translation both ways, without a network: OpenAI requests into <c>generateContent</c> and
/// <c>batchEmbedContents</c> bodies, and answers in the shapes of Gemini's API reference back into what the official
/// OpenAI SDK reads; streamed answers event by event; Google's errors into failures.
/// </summary>
public sealed class GeminiTranslationTests
{
    private static JsonElement Gemini(string openAIBody)
    {
        var outcome = GeminiChatRequest.Translate(Encoding.UTF8.GetBytes(openAIBody));
        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        using var document = JsonDocument.Parse(outcome.Value.Body);
        return document.RootElement.Clone();
    }

    private static UpstreamFailure Refused(string openAIBody)
    {
        var outcome = GeminiChatRequest.Translate(Encoding.UTF8.GetBytes(openAIBody));
        Assert.False(outcome.IsOk);
        Assert.Equal((UpstreamFailureKind.NotAttempted, FailureCategory.RequestRejected, 400), (outcome.Failure.Kind, outcome.Failure.Category, outcome.Failure.Status));
        return outcome.Failure;
    }

    [Fact]
    public void A_conversation_with_system_tools_calls_and_results_becomes_contents_system_instruction_and_function_parts()
    {
        var body = Gemini("""
        {"model":"gemini-2.0-flash","messages":[
          {"role":"system","content":"Be brief."},
          {"role":"developer","content":[{"type":"text","text":"Use metric units."}]},
          {"role":"user","content":"Weather in Paris and Rome?"},
          {"role":"assistant","content":null,"tool_calls":[
            {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
            {"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
          {"role":"tool","tool_call_id":"call_a","content":"{\"celsius\":21}"},
          {"role":"tool","tool_call_id":"call_b","content":"sunny"},
          {"role":"assistant","content":"Paris 21, Rome sunny."},
          {"role":"user","content":"Thanks"}],
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
         "tool_choice":{"type":"function","function":{"name":"get_weather"}},
         "temperature":0.2,"top_p":0.9,"max_completion_tokens":256,"stop":"END","n":2,"seed":7,"presence_penalty":0.5,
         "response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object","properties":{"t":{"type":"number"}}}}},
         "stream_options":{"include_usage":true},"logprobs":false,"parallel_tool_calls":true}
        """);

        Assert.Equal(["Be brief.", "Use metric units."], body.GetProperty("systemInstruction").GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("text").GetString()));
        var contents = body.GetProperty("contents").EnumerateArray().ToList();
        Assert.Equal(["user", "model", "user", "model", "user"], contents.Select(c => c.GetProperty("role").GetString()));
        var calls = contents[1].GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("functionCall")).ToList();
        Assert.Equal(["get_weather", "get_weather"], calls.Select(c => c.GetProperty("name").GetString()));
        Assert.Equal("Rome", calls[1].GetProperty("args").GetProperty("city").GetString());
        // Both results answer one turn, each named after the call it answers; text that is no object is wrapped.
        var responses = contents[2].GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("functionResponse")).ToList();
        Assert.Equal(2, responses.Count);
        Assert.Equal(21, responses[0].GetProperty("response").GetProperty("celsius").GetInt32());
        Assert.Equal(("get_weather", "sunny"), (responses[1].GetProperty("name").GetString(), responses[1].GetProperty("response").GetProperty("content").GetString()));
        Assert.Equal("Paris 21, Rome sunny.", contents[3].GetProperty("parts")[0].GetProperty("text").GetString());

        var declaration = body.GetProperty("tools")[0].GetProperty("functionDeclarations")[0];
        Assert.Equal(("get_weather", "Weather now", "object"), (declaration.GetProperty("name").GetString(), declaration.GetProperty("description").GetString(),
            declaration.GetProperty("parameters").GetProperty("type").GetString()));
        var calling = body.GetProperty("toolConfig").GetProperty("functionCallingConfig");
        Assert.Equal(("ANY", "get_weather"), (calling.GetProperty("mode").GetString(), calling.GetProperty("allowedFunctionNames")[0].GetString()));

        var config = body.GetProperty("generationConfig");
        Assert.Equal(0.2, config.GetProperty("temperature").GetDouble());
        Assert.Equal(0.9, config.GetProperty("topP").GetDouble());
        Assert.Equal(256, config.GetProperty("maxOutputTokens").GetInt32());
        Assert.Equal(["END"], config.GetProperty("stopSequences").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(2, config.GetProperty("candidateCount").GetInt32());
        Assert.Equal(7, config.GetProperty("seed").GetInt32());
        Assert.Equal(0.5, config.GetProperty("presencePenalty").GetDouble());
        Assert.Equal("application/json", config.GetProperty("responseMimeType").GetString());
        Assert.Equal("number", config.GetProperty("responseSchema").GetProperty("properties").GetProperty("t").GetProperty("type").GetString());
        Assert.False(body.TryGetProperty("model", out _));
    }

    [Fact]
    public void Images_as_data_urls_become_inline_data_and_max_tokens_and_required_tool_choice_translate()
    {
        var body = Gemini("""
        {"messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],
         "max_tokens":50,"stop":["a","b"],"tool_choice":"required","tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}}
        """);

        var inline = body.GetProperty("contents")[0].GetProperty("parts")[1].GetProperty("inlineData");
        Assert.Equal(("image/png", "iVBORw0KGgo="), (inline.GetProperty("mimeType").GetString(), inline.GetProperty("data").GetString()));
        var config = body.GetProperty("generationConfig");
        Assert.Equal(50, config.GetProperty("maxOutputTokens").GetInt32());
        Assert.Equal(["a", "b"], config.GetProperty("stopSequences").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal("application/json", config.GetProperty("responseMimeType").GetString());
        Assert.False(config.TryGetProperty("responseSchema", out _));
        Assert.Equal("ANY", body.GetProperty("toolConfig").GetProperty("functionCallingConfig").GetProperty("mode").GetString());
    }

    [Fact]
    public void An_assistants_earlier_refusal_is_its_turns_text()
    {
        var body = Gemini("""
            {"messages":[{"role":"user","content":"Do a bad thing"},{"role":"assistant","content":null,"refusal":"I can't help with that."},{"role":"user","content":"OK"}]}
            """);

        var turn = body.GetProperty("contents")[1];
        Assert.Equal(("model", "I can't help with that."), (turn.GetProperty("role").GetString(), turn.GetProperty("parts")[0].GetProperty("text").GetString()));
    }

    [Theory]
    [InlineData("\"logprobs\":true", "logprobs")]
    [InlineData("\"top_logprobs\":3", "top_logprobs")]
    [InlineData("\"user\":\"end-user-1\"", "user")]
    [InlineData("\"parallel_tool_calls\":false", "parallel_tool_calls")]
    [InlineData("\"logit_bias\":{\"50256\":-100}", "logit_bias")]
    [InlineData("\"reasoning_effort\":\"low\"", "reasoning_effort")]
    [InlineData("\"modalities\":[\"audio\"]", "modalities")]
    [InlineData("\"something_new\":1", "something_new")]
    [InlineData("\"response_format\":{\"type\":\"grammar\"}", "response_format")]
    [InlineData("\"tools\":[{\"type\":\"web_search\"}]", "tools[0]")]
    public void A_parameter_without_an_equivalent_is_a_400_naming_it(string parameter, string param)
    {
        var failure = Refused($$"""{"messages":[{"role":"user","content":"hi"}],{{parameter}}}""");

        Assert.Equal(param, failure.Error!.Param);
        Assert.Contains(param.Split('[')[0], failure.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_image_by_url_a_tool_result_for_no_call_an_unknown_role_and_a_message_field_are_400s_naming_where()
    {
        Assert.Equal("messages[0].content[0].image_url", Refused("""
            {"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}
            """).Error!.Param);
        Assert.Equal("messages[1].tool_call_id", Refused("""
            {"messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"call_x","content":"1"}]}
            """).Error!.Param);
        Assert.Equal("messages[0].role", Refused("""{"messages":[{"role":"function","content":"hi"}]}""").Error!.Param);
        Assert.Equal("messages[0].name", Refused("""{"messages":[{"role":"user","name":"ann","content":"hi"}]}""").Error!.Param);
        Assert.Equal("messages[0].tool_call_id", Refused("""{"messages":[{"role":"user","tool_call_id":"x","content":"hi"}]}""").Error!.Param);
        Assert.Equal("messages[0].content[0]", Refused("""
            {"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}
            """).Error!.Param);
    }

    // The answer of Gemini's reference for a text prompt (a thinking model: thoughts counted apart, a cached prefix).
    private const string TextAnswer = """
        {"candidates":[{"content":{"parts":[{"text":"Thinking...","thought":true},{"text":"AI learns "},{"text":"patterns from data."}],"role":"model"},
          "finishReason":"STOP","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"}]}],
         "usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":6,"totalTokenCount":44,"thoughtsTokenCount":30,"cachedContentTokenCount":4,
          "promptTokensDetails":[{"modality":"TEXT","tokenCount":8}]},
         "modelVersion":"gemini-2.5-flash","responseId":"mz2uaOWlBqKp1dkP2ruYwQk"}
        """;

    private static ChatCompletion Completion(string geminiAnswer)
    {
        using var document = JsonDocument.Parse(geminiAnswer);
        byte[] body = GeminiChatAnswer.Translate(document.RootElement, "gemini-2.5-flash", 1_700_000_000)!;
        return ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromBytes(body))!;
    }

    [Fact]
    public void A_text_answer_becomes_a_chat_completion_the_sdk_reads_with_usage_and_without_thoughts()
    {
        var completion = Completion(TextAnswer);

        Assert.Equal("AI learns patterns from data.", completion.Content.Single().Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("chatcmpl-mz2uaOWlBqKp1dkP2ruYwQk", completion.Id);
        Assert.Equal("gemini-2.5-flash", completion.Model);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal((8, 36, 44), (completion.Usage.InputTokenCount, completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount));
        Assert.Equal(30, completion.Usage.OutputTokenDetails.ReasoningTokenCount);
        Assert.Equal(4, completion.Usage.InputTokenDetails.CachedTokenCount);
    }

    [Fact]
    public void A_function_call_answer_becomes_tool_calls_with_json_arguments()
    {
        var completion = Completion("""
            {"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris","days":2}}},
              {"functionCall":{"id":"fc-2","name":"get_time","args":{}}}],"role":"model"},"finishReason":"STOP","index":0}],
             "usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":10,"totalTokenCount":30},"modelVersion":"gemini-2.0-flash"}
            """);

        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        Assert.Empty(completion.Content);
        Assert.Equal(["get_weather", "get_time"], completion.ToolCalls.Select(c => c.FunctionName));
        using var arguments = JsonDocument.Parse(completion.ToolCalls[0].FunctionArguments);
        Assert.Equal(("Paris", 2), (arguments.RootElement.GetProperty("city").GetString(), arguments.RootElement.GetProperty("days").GetInt32()));
        Assert.StartsWith("call_", completion.ToolCalls[0].Id, StringComparison.Ordinal);
        Assert.Equal("fc-2", completion.ToolCalls[1].Id);
        Assert.NotEqual(completion.ToolCalls[0].Id, Completion("""
            {"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{}}}],"role":"model"},"finishReason":"STOP"}]}
            """).ToolCalls[0].Id);
    }

    [Theory]
    [InlineData("MAX_TOKENS", "length")]
    [InlineData("SAFETY", "content_filter")]
    [InlineData("RECITATION", "content_filter")]
    [InlineData("PROHIBITED_CONTENT", "content_filter")]
    [InlineData("SPII", "content_filter")]
    [InlineData("BLOCKLIST", "content_filter")]
    [InlineData("OTHER", "stop")]
    [InlineData("MALFORMED_FUNCTION_CALL", "stop")]
    [InlineData("STOP", "stop")]
    public void Finish_reasons_map_to_what_openai_clients_know(string gemini, string openAI)
    {
        using var document = JsonDocument.Parse($$"""
            {"candidates":[{"content":{"parts":[{"text":"x"}],"role":"model"},"finishReason":"{{gemini}}","index":0}]}
            """);
        using var completion = JsonDocument.Parse(GeminiChatAnswer.Translate(document.RootElement, "m", 0)!);

        Assert.Equal(openAI, completion.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public void A_blocked_prompt_and_several_candidates_read_as_choices()
    {
        var blocked = Completion("""{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5,"totalTokenCount":5}}""");
        Assert.Equal(ChatFinishReason.ContentFilter, blocked.FinishReason);
        Assert.Empty(blocked.Content);

        using var document = JsonDocument.Parse("""
            {"candidates":[{"content":{"parts":[{"text":"one"}],"role":"model"},"finishReason":"STOP","index":0},
                           {"content":{"parts":[{"text":"two"}],"role":"model"},"finishReason":"MAX_TOKENS","index":1}]}
            """);
        using var two = JsonDocument.Parse(GeminiChatAnswer.Translate(document.RootElement, "m", 0)!);
        var choices = two.RootElement.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal((1, "two", "length"), (choices[1].GetProperty("index").GetInt32(), choices[1].GetProperty("message").GetProperty("content").GetString(), choices[1].GetProperty("finish_reason").GetString()));
        Assert.Equal("one", choices[0].GetProperty("message").GetProperty("content").GetString());
    }

    // Events of a streamGenerateContent?alt=sse answer as the reference shows them (CRLF line ends).
    private static readonly string[] StreamEvents =
    [
        """{"candidates":[{"content":{"parts":[{"text":"The"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.0-flash","responseId":"abc"}""",
        """{"candidates":[{"content":{"parts":[{"text":" quick fox"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3,"totalTokenCount":12},"modelVersion":"gemini-2.0-flash","responseId":"abc"}""",
        """{"candidates":[{"content":{"parts":[{"text":"."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"totalTokenCount":13},"modelVersion":"gemini-2.0-flash","responseId":"abc"}""",
    ];

    private static MemoryStream Sse(IEnumerable<string> events) => new(Encoding.UTF8.GetBytes(string.Concat(events.Select(e => $"data: {e}\r\n\r\n"))));

    private static List<string> DataLines(string text) =>
        [.. text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => Assert.Single(e.Split('\n')))
            .Select(line => { Assert.StartsWith("data: ", line, StringComparison.Ordinal); return line["data: ".Length..]; })];

    [Fact]
    public async Task A_stream_becomes_chunks_the_sdk_reads_then_a_usage_chunk_and_done()
    {
        await using var stream = new GeminiChunkStream(Sse(StreamEvents), "gemini-2.0-flash", 1_700_000_000, includeUsage: true);
        string text = await new StreamReader(stream).ReadToEndAsync();

        var data = DataLines(text);
        Assert.Equal("[DONE]", data[^1]);
        var updates = data[..^1].Select(d => ModelReaderWriter.Read<StreamingChatCompletionUpdate>(BinaryData.FromString(d))!).ToList();
        Assert.Equal(4, updates.Count);
        Assert.Equal("The quick fox.", string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text)));
        Assert.Equal(ChatMessageRole.Assistant, updates[0].Role);
        Assert.Null(updates[1].Role);
        Assert.Equal([null, null, ChatFinishReason.Stop, null], updates.Select(u => u.FinishReason));
        Assert.All(updates, u => Assert.Equal("chatcmpl-abc", u.CompletionId));
        Assert.Equal((9, 4, 13), (updates[^1].Usage.InputTokenCount, updates[^1].Usage.OutputTokenCount, updates[^1].Usage.TotalTokenCount));
        using var last = JsonDocument.Parse(data[^2]);
        Assert.Equal(0, last.RootElement.GetProperty("choices").GetArrayLength());
    }

    [Fact]
    public async Task A_streamed_function_call_becomes_an_indexed_tool_call_delta_and_no_usage_chunk_unless_asked()
    {
        string[] events =
        [
            """{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Oslo"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"totalTokenCount":13}}""",
        ];
        await using var stream = new GeminiChunkStream(Sse(events), "gemini-2.0-flash", 0, includeUsage: false);
        var data = DataLines(await new StreamReader(stream).ReadToEndAsync());

        Assert.Equal(2, data.Count);
        var update = ModelReaderWriter.Read<StreamingChatCompletionUpdate>(BinaryData.FromString(data[0]))!;
        var call = Assert.Single(update.ToolCallUpdates);
        Assert.Equal((0, "get_weather", "{\"city\":\"Oslo\"}"), (call.Index, call.FunctionName, call.FunctionArgumentsUpdate.ToString()));
        Assert.Equal(ChatFinishReason.ToolCalls, update.FinishReason);
        Assert.Equal("[DONE]", data[1]);
    }

    [Fact]
    public async Task Each_event_is_handed_on_as_it_arrives_not_once_the_stream_is_read()
    {
        var pipe = new Pipe();
        await using var stream = new GeminiChunkStream(pipe.Reader.AsStream(), "gemini-2.0-flash", 0, includeUsage: false);
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes($"data: {StreamEvents[0]}\r\n\r\n"));

        byte[] buffer = new byte[64 * 1024];
        int read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        string first = Encoding.UTF8.GetString(buffer, 0, read);
        Assert.Contains("\"content\":\"The\"", first, StringComparison.Ordinal);
        Assert.EndsWith("\n\n", first, StringComparison.Ordinal);
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes($"data: {StreamEvents[2]}\r\n\r\n"));
        await pipe.Writer.CompleteAsync();
        string rest = await new StreamReader(stream).ReadToEndAsync();
        Assert.EndsWith("data: [DONE]\n\n", rest, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"cut\"}]}}]}")]
    [InlineData("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"cut\"}]}}]}\r\n\r\ndata: {\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}")]
    [InlineData("{\"candidates\":[")]
    public async Task A_stream_that_ends_unfinished_or_breaks_fails_its_read_rather_than_ending_as_whole(string events)
    {
        await using var stream = new GeminiChunkStream(Sse([events]), "m", 0, includeUsage: false);

        await Assert.ThrowsAsync<IOException>(() => new StreamReader(stream).ReadToEndAsync());
    }

    [Fact]
    public void Embeddings_requests_become_batch_requests_and_answers_float_or_base64_lists()
    {
        var translated = GeminiEmbeddings.Translate(Encoding.UTF8.GetBytes("""{"model":"text-embedding-004","input":["a","b"],"dimensions":3,"encoding_format":"base64"}"""), "text-embedding-004");
        Assert.True(translated.IsOk);
        Assert.True(translated.Value.Base64);
        using var request = JsonDocument.Parse(translated.Value.Body);
        var requests = request.RootElement.GetProperty("requests").EnumerateArray().ToList();
        Assert.Equal(["a", "b"], requests.Select(r => r.GetProperty("content").GetProperty("parts")[0].GetProperty("text").GetString()));
        Assert.All(requests, r => Assert.Equal(("models/text-embedding-004", 3), (r.GetProperty("model").GetString(), r.GetProperty("outputDimensionality").GetInt32())));

        using var answer = JsonDocument.Parse("""{"embeddings":[{"values":[0.25,-1.5,3]},{"values":[1,2,0.125]}]}""");
        var floats = ModelReaderWriter.Read<OpenAIEmbeddingCollection>(BinaryData.FromBytes(GeminiEmbeddings.TranslateAnswer(answer.RootElement, "text-embedding-004", base64: false)!))!;
        Assert.Equal([0.25f, -1.5f, 3f], floats[0].ToFloats().ToArray());
        using var encoded = JsonDocument.Parse(GeminiEmbeddings.TranslateAnswer(answer.RootElement, "text-embedding-004", base64: true)!);
        byte[] bytes = Convert.FromBase64String(encoded.RootElement.GetProperty("data")[1].GetProperty("embedding").GetString()!);
        Assert.Equal([1f, 2f, 0.125f], Enumerable.Range(0, 3).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4))));
        Assert.Equal(1, encoded.RootElement.GetProperty("data")[1].GetProperty("index").GetInt32());
    }

    [Theory]
    [InlineData("""{"input":[[1,2,3]]}""", "input")]
    [InlineData("""{"input":[]}""", "input")]
    [InlineData("""{"input":"a","user":"u1"}""", "user")]
    [InlineData("""{"input":"a","encoding_format":"int8"}""", "encoding_format")]
    public void An_embeddings_parameter_without_an_equivalent_is_a_400_naming_it(string body, string param)
    {
        var outcome = GeminiEmbeddings.Translate(Encoding.UTF8.GetBytes(body), "m");

        Assert.False(outcome.IsOk);
        Assert.Equal((400, param), (outcome.Failure.Status, outcome.Failure.Error!.Param));
    }

    private const string Key = "AIzaSyTestKey0123456789abcdefghijklmnop";

    [Fact]
    public void A_bad_key_answered_400_is_wharfs_credential_failing_not_the_users_request()
    {
        byte[] body = Encoding.UTF8.GetBytes($$$"""
            {"error":{"code":400,"message":"API key not valid. Please pass a valid API key. ({{{Key}}})","status":"INVALID_ARGUMENT",
              "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}
            """);

        var failure = GeminiErrors.Classify(400, body, null, [Key]);

        Assert.Equal((FailureCategory.CredentialsInvalidOrForbidden, 400, false), (failure.Category, failure.Status, failure.Retryable));
        Assert.Equal(("API_KEY_INVALID", "INVALID_ARGUMENT"), (failure.Error!.Code, failure.Error.Description));
        Assert.DoesNotContain(Key, failure.Error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, failure.PayloadPreview, StringComparison.Ordinal);
    }

    [Fact]
    public void Google_statuses_classify_as_seed_categories_and_retry_info_is_the_wait()
    {
        var limited = GeminiErrors.Classify(429, Encoding.UTF8.GetBytes("""
            {"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2.5s"}]}}
            """), TimeSpan.FromSeconds(9), []);
        Assert.Equal((FailureCategory.RateLimited, true, TimeSpan.FromSeconds(2.5)), (limited.Category, limited.Retryable, limited.RetryAfter));
        Assert.Equal(TimeSpan.FromSeconds(9), GeminiErrors.Classify(429, """{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"""u8, TimeSpan.FromSeconds(9), []).RetryAfter);

        var unavailable = GeminiErrors.Classify(503, """{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"""u8, null, []);
        Assert.Equal((FailureCategory.ServerError, true, "UNAVAILABLE"), (unavailable.Category, unavailable.Retryable, unavailable.Error!.Code));
        Assert.True(GeminiErrors.Classify(500, """{"error":{"code":500,"status":"INTERNAL"}}"""u8, null, []).Retryable);
        Assert.Equal(FailureCategory.CredentialsInvalidOrForbidden, GeminiErrors.Classify(403, """{"error":{"code":403,"status":"PERMISSION_DENIED"}}"""u8, null, []).Category);
        Assert.Equal(FailureCategory.ModelUnavailableForEndpoint, GeminiErrors.Classify(404, """{"error":{"code":404,"status":"NOT_FOUND"}}"""u8, null, []).Category);
        Assert.Equal(FailureCategory.RegionOrProjectRestriction, GeminiErrors.Classify(400,
            """{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"""u8, null, []).Category);
        var rejected = GeminiErrors.Classify(400, """{"error":{"code":400,"message":"Invalid value at 'contents'","status":"INVALID_ARGUMENT"}}"""u8, null, []);
        Assert.Equal((FailureCategory.RequestRejected, "Invalid value at 'contents'"), (rejected.Category, rejected.Error!.Message));
        Assert.Equal(FailureCategory.ServerError, GeminiErrors.Classify(502, "<html>bad gateway</html>"u8, null, []).Category);
    }
}
