using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using OpenAI.Chat;
using Wharf.Core.Providers;
using Wharf.Providers.Anthropic;

namespace Wharf.Providers.Tests;

/// <summary>
/// OpenAI's chat completions ↔ Anthropic's Messages API, both ways, on shapes recorded from the providers' API
/// references (requests, message objects and event streams), read back with the official OpenAI SDK.
/// </summary>
public sealed class AnthropicTranslationTests
{
    private static readonly DateTimeOffset Now = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly AnthropicTranslation _translation = new(4096, new FakeTimeProvider(Now));

    private JsonNode Translate(string openAIRequest, string model = "claude-sonnet-4-5")
    {
        var outcome = _translation.ToMessagesRequest(Encoding.UTF8.GetBytes(openAIRequest), model);
        Assert.True(outcome.IsOk, outcome.Failure?.Error?.Message);
        return JsonNode.Parse(outcome.Value.Body.Span)!;
    }

    private UpstreamFailure Refused(string openAIRequest)
    {
        var outcome = _translation.ToMessagesRequest(Encoding.UTF8.GetBytes(openAIRequest), "claude-sonnet-4-5");
        Assert.False(outcome.IsOk);
        return outcome.Failure;
    }

    private static void AssertJson(string expected, JsonNode actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"Expected {expected}\nActual   {actual.ToJsonString()}");

    [Fact]
    public void A_conversation_with_system_images_tools_and_tool_results_becomes_one_Messages_request()
    {
        var request = Translate("""
        {"model":"claude/claude-sonnet-4-5","messages":[
          {"role":"system","content":"You are terse."},
          {"role":"developer","content":[{"type":"text","text":"Answer in French."}]},
          {"role":"user","content":[{"type":"text","text":"What is in these?"},
             {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg","detail":"high"}},
             {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
          {"role":"assistant","content":"Two cats.","tool_calls":[
             {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
             {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Lyon\"}"}}]},
          {"role":"tool","tool_call_id":"call_1","content":"18C"},
          {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"21C"}]},
          {"role":"user","content":"Thanks"}],
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
         "tool_choice":"required","parallel_tool_calls":false,
         "stop":"END","max_completion_tokens":300,"temperature":0.2,"top_p":0.9,"user":"user-42",
         "stream":true,"stream_options":{"include_usage":true},"n":1,"logprobs":false,"seed":null}
        """, model: "claude-sonnet-4-5");

        AssertJson("""
        {"model":"claude-sonnet-4-5","max_tokens":300,
         "system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in French."}],
         "messages":[
          {"role":"user","content":[{"type":"text","text":"What is in these?"},
             {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
             {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},
          {"role":"assistant","content":[{"type":"text","text":"Two cats."},
             {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
             {"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Lyon"}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"18C"},
             {"type":"tool_result","tool_use_id":"call_2","content":"21C"},
             {"type":"text","text":"Thanks"}]}],
         "stop_sequences":["END"],"temperature":0.2,"top_p":0.9,"metadata":{"user_id":"user-42"},
         "tools":[{"name":"get_weather","description":"Weather now","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
         "tool_choice":{"type":"any","disable_parallel_tool_use":true},
         "stream":true}
        """, request);
        Assert.True(_translation.ToMessagesRequest(Encoding.UTF8.GetBytes("""{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"""), "m").Value.IncludeUsage);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", 4096)]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":77}""", 77)]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"max_completion_tokens":66}""", 66)]
    public void The_token_limit_is_the_requests_else_the_providers_default(string request, int expected) =>
        Assert.Equal(expected, Translate(request)["max_tokens"]!.GetValue<int>());

    [Theory]
    [InlineData("\"auto\"", """{"type":"auto"}""")]
    [InlineData("\"none\"", """{"type":"none"}""")]
    [InlineData("""{"type":"function","function":{"name":"get_weather"}}""", """{"type":"tool","name":"get_weather"}""")]
    public void Tool_choice_is_mapped(string choice, string expected) =>
        AssertJson(expected, Translate($$$"""{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"get_weather"}}],"tool_choice":{{{choice}}}}""")["tool_choice"]!);

    [Fact]
    public void A_tool_without_parameters_gets_an_empty_object_schema() =>
        AssertJson("""[{"name":"now","input_schema":{"type":"object"}}]""",
            Translate("""{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"now"}}]}""")["tools"]!);

    [Theory]
    [InlineData(""","n":2""", "n")]
    [InlineData(""","logprobs":true""", "logprobs")]
    [InlineData(""","top_logprobs":3""", "top_logprobs")]
    [InlineData(""","presence_penalty":0.5""", "presence_penalty")]
    [InlineData(""","frequency_penalty":1""", "frequency_penalty")]
    [InlineData(""","response_format":{"type":"json_object"}""", "response_format")]
    [InlineData(""","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}""", "response_format")]
    [InlineData(""","seed":7""", "seed")]
    [InlineData(""","logit_bias":{"50256":-100}""", "logit_bias")]
    [InlineData(""","audio":{"voice":"alloy","format":"mp3"}""", "audio")]
    [InlineData(""","modalities":["text","audio"]""", "modalities")]
    [InlineData(""","temperature":1.5""", "temperature")]
    [InlineData(""","max_tokens":0""", "max_tokens")]
    [InlineData(""","tools":[{"type":"function","function":{"name":"f","strict":true}}]""", "tools[0].function.strict")]
    [InlineData(",\"tool_choice\":\"sometimes\"", "tool_choice")]
    public void A_parameter_with_no_equivalent_is_refused_naming_it(string extra, string param)
    {
        var failure = Refused($$"""{"model":"m","messages":[{"role":"user","content":"hi"}]{{extra}}}""");
        Assert.Equal((UpstreamFailureKind.NotAttempted, FailureCategory.RequestRejected, 400, false), (failure.Kind, failure.Category, failure.Status, failure.Retryable));
        Assert.Equal(param, failure.Error!.Param);
        Assert.Contains(param.Split('[')[0], failure.Error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""[{"role":"function","name":"f","content":"x"}]""", "messages[0].role")]
    [InlineData("""[{"role":"user","name":"bob","content":"x"}]""", "messages[0].name")]
    [InlineData("""[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]""", "messages[0].content[0].type")]
    [InlineData("""[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]""", "messages[0].content[0].image_url.url")]
    [InlineData("""[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://example.com/a.png"}}]}]""", "messages[0].content[0].image_url.url")]
    [InlineData("""[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]""", "messages[1].tool_calls[0].function.arguments")]
    [InlineData("""[{"role":"tool","content":"18C"}]""", "messages[0].tool_call_id")]
    [InlineData("""[{"role":"system","content":"only a system message"}]""", "messages")]
    public void A_message_that_cannot_be_translated_is_refused_naming_where(string messages, string param) =>
        Assert.Equal(param, Refused($$"""{"model":"m","messages":{{messages}}}""").Error!.Param);

    [Fact]
    public void Parameters_at_their_defaults_or_null_ask_for_nothing_and_are_left_out()
    {
        var request = Translate("""
            {"messages":[{"role":"user","content":"hi"}],"n":1,"logprobs":false,"top_logprobs":0,"presence_penalty":0,"frequency_penalty":0,
             "response_format":{"type":"text"},"modalities":["text"],"seed":null,"temperature":null,"stop":null}
            """);
        AssertJson("""{"model":"claude-sonnet-4-5","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}""", request);
    }

    /// <summary>A message object as the Messages API reference shows one (text, a tool call, usage with cache tokens).</summary>
    private const string RecordedMessage = """
        {"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
         "content":[{"type":"text","text":"I'll check the weather."},
                    {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius"}}],
         "stop_reason":"tool_use","stop_sequence":null,
         "usage":{"input_tokens":472,"cache_creation_input_tokens":100,"cache_read_input_tokens":2048,"output_tokens":89}}
        """;

    private async Task<(string Json, ChatCompletion Completion)> AnswerAsync(string message)
    {
        var outcome = await _translation.ToChatCompletionAsync(200, new MemoryStream(Encoding.UTF8.GetBytes(message)), CancellationToken.None);
        Assert.True(outcome.IsOk);
        Assert.Equal("application/json", outcome.Value.ContentType);
        string json = await new StreamReader(outcome.Value.Content).ReadToEndAsync();
        return (json, ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(json))!);
    }

    [Fact]
    public async Task A_message_with_text_and_a_tool_call_becomes_a_chat_completion()
    {
        var (json, completion) = await AnswerAsync(RecordedMessage);

        Assert.Equal("msg_01Aq9w938a90dw8q", completion.Id);
        Assert.Equal("claude-sonnet-4-5-20250929", completion.Model);
        Assert.Equal(Now, completion.CreatedAt);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal("I'll check the weather.", completion.Content.Single().Text);
        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal(("toolu_01A09q90qw90lq917835lq9", "get_weather"), (call.Id, call.FunctionName));
        AssertJson("""{"location":"San Francisco, CA","unit":"celsius"}""", JsonNode.Parse(call.FunctionArguments.ToString())!);
        Assert.Equal((472 + 100 + 2048, 89, 472 + 100 + 2048 + 89), (completion.Usage.InputTokenCount, completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount));
        Assert.Equal(2048, completion.Usage.InputTokenDetails.CachedTokenCount);
        Assert.Equal(100, JsonNode.Parse(json)!["usage"]!["prompt_tokens_details"]!["cache_creation_tokens"]!.GetValue<int>());
        Assert.Equal("chat.completion", JsonNode.Parse(json)!["object"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("refusal", "content_filter")]
    public async Task The_stop_reason_becomes_the_finish_reason(string stopReason, string finishReason)
    {
        var (json, _) = await AnswerAsync($$$"""{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"Hi"}],"stop_reason":"{{{stopReason}}}","usage":{"input_tokens":1,"output_tokens":1}}""");
        Assert.Equal(finishReason, JsonNode.Parse(json)!["choices"]![0]!["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_message_with_no_text_has_null_content()
    {
        var (json, _) = await AnswerAsync("""{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":0}}""");
        Assert.Equal(JsonValueKind.Null, JsonDocument.Parse(json).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").ValueKind);
    }

    [Theory]
    [InlineData("{\"id\":\"msg_1\",\"type\":\"message\",")]
    [InlineData("""{"type":"message","role":"assistant"}""")]
    [InlineData("""[1,2]""")]
    public async Task An_answer_that_is_not_a_message_is_the_upstreams_fault(string body)
    {
        var outcome = await _translation.ToChatCompletionAsync(200, new MemoryStream(Encoding.UTF8.GetBytes(body)), CancellationToken.None);
        Assert.False(outcome.IsOk);
        Assert.Equal((UpstreamFailureKind.Malformed, FailureCategory.ServerError, true), (outcome.Failure.Kind, outcome.Failure.Category, outcome.Failure.Retryable));
    }

    /// <summary>The event stream of the Messages API reference's streaming example with a tool call (a ping and CRLF lines included).</summary>
    internal const string RecordedStream =
        "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_read_input_tokens\":30,\"output_tokens\":2},\"content\":[],\"stop_reason\":null}}\r\n\r\n" +
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
        "event: ping\ndata: {\"type\": \"ping\"}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay, let's check\"}}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the weather.\"}}\n\n" +
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n" +
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"San Francisco, CA\\\"}\"}}\n\n" +
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n" +
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    /// <summary>A stream that gives its bytes <paramref name="piece"/> at a time (as a network may cut them).</summary>
    private sealed class Trickle(byte[] bytes, int piece) : MemoryStream(bytes)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(piece, buffer.Length)], cancellationToken);
    }

    internal static async Task<string> TranslateStreamAsync(AnthropicTranslation translation, string events, bool includeUsage, int piece = 1 << 16)
    {
        using var stream = new AnthropicEventStream(new Trickle(Encoding.UTF8.GetBytes(events), piece), translation.StreamState(includeUsage));
        return await new StreamReader(stream).ReadToEndAsync();
    }

    /// <summary>The <c>data:</c> payloads of an SSE text, in order.</summary>
    internal static List<string> DataOf(string sse) =>
        [.. sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => Assert.Single(e.Split('\n'), l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..])];

    [Theory]
    [InlineData(1 << 16)]
    [InlineData(7)]
    [InlineData(1)]
    public async Task An_event_stream_becomes_chat_completion_chunks_ending_in_DONE_however_it_is_cut(int piece)
    {
        string sse = await TranslateStreamAsync(_translation, RecordedStream, includeUsage: true, piece);

        var data = DataOf(sse);
        Assert.Equal("[DONE]", data[^1]);
        var updates = data[..^1].Select(d => ModelReaderWriter.Read<StreamingChatCompletionUpdate>(BinaryData.FromString(d))!).ToList();
        Assert.All(updates, u => Assert.Equal(("msg_014p7gG3wDgGV9EUtLvnow3U", "claude-sonnet-4-5-20250929", Now), (u.CompletionId, u.Model, u.CreatedAt)));
        Assert.Equal(ChatMessageRole.Assistant, updates[0].Role);
        Assert.Equal("Okay, let's check the weather.", string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text)));
        var toolParts = updates.SelectMany(u => u.ToolCallUpdates).ToList();
        Assert.All(toolParts, t => Assert.Equal(0, t.Index));
        Assert.Equal(("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"), (toolParts[0].ToolCallId, toolParts[0].FunctionName));
        AssertJson("""{"location": "San Francisco, CA"}""", JsonNode.Parse(string.Concat(toolParts.Select(t => t.FunctionArgumentsUpdate?.ToString())))!);
        Assert.Equal([ChatFinishReason.ToolCalls], updates.Where(u => u.FinishReason is not null).Select(u => u.FinishReason!.Value));
        var usage = updates[^1].Usage;
        Assert.Empty(updates[^1].ContentUpdate);
        Assert.Equal((472 + 30, 89, 472 + 30 + 89, 30), (usage.InputTokenCount, usage.OutputTokenCount, usage.TotalTokenCount, usage.InputTokenDetails.CachedTokenCount));
        // One chunk per event that says something: message_start, two text deltas, the tool call's start and its three
        // argument pieces, message_delta and the usage chunk.
        Assert.Equal(9, updates.Count);
    }

    [Fact]
    public async Task Without_include_usage_there_is_no_usage_chunk()
    {
        var data = DataOf(await TranslateStreamAsync(_translation, RecordedStream, includeUsage: false));
        Assert.DoesNotContain(data, d => d.Contains("\"usage\"", StringComparison.Ordinal));
        Assert.Equal("[DONE]", data[^1]);
    }

    [Fact]
    public async Task An_error_event_mid_stream_fails_the_read_after_the_chunks_before_it()
    {
        string events = RecordedStream[..RecordedStream.IndexOf("event: content_block_stop", StringComparison.Ordinal)]
            + "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
        using var stream = new AnthropicEventStream(new MemoryStream(Encoding.UTF8.GetBytes(events)), _translation.StreamState(false));
        var reader = new StreamReader(stream);
        var received = new StringBuilder();
        var error = await Assert.ThrowsAsync<IOException>(async () =>
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                received.Append(line).Append('\n');
            }
        });
        Assert.Contains("overloaded_error", error.Message, StringComparison.Ordinal);
        Assert.Contains("let's check", received.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("[DONE]", received.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n")]
    [InlineData("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_")]
    [InlineData("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\ndata: {not json}\n\n")]
    public async Task A_stream_cut_before_message_stop_or_broken_fails_the_read(string events) =>
        await Assert.ThrowsAsync<IOException>(() => TranslateStreamAsync(_translation, events, includeUsage: false));

    [Fact]
    public async Task Unknown_event_types_are_skipped()
    {
        string events = RecordedStream.Replace("event: ping\ndata: {\"type\": \"ping\"}", "event: something_new\ndata: {\"type\": \"something_new\", \"x\": 1}", StringComparison.Ordinal);
        var data = DataOf(await TranslateStreamAsync(_translation, events, includeUsage: false));
        Assert.Equal("[DONE]", data[^1]);
        Assert.Equal(9, data.Count); // 8 chunks (as in the stream with its ping) and [DONE]
    }
}
