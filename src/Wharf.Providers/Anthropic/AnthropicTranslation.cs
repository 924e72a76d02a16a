using System.Buffers;
using System.Text.Json;
using static Wharf.Providers.Anthropic.AnthropicJson;
using Wharf.Core.Providers;

namespace Wharf.Providers.Anthropic;

/// <summary>A chat completion request as Anthropic's Messages API takes it, and whether the client asked for a usage chunk.</summary>
internal sealed record MessagesRequest(ReadOnlyMemory<byte> Body, bool IncludeUsage);

/// <summary>
/// OpenAI's chat completions ↔ Anthropic's Messages API, both ways. A request parameter with no equivalent there is
/// refused (<see cref="UpstreamFailure.Untranslatable"/>, naming it), never dropped; a parameter set to null or to
/// OpenAI's default (<c>n: 1</c>, <c>logprobs: false</c>, a penalty of 0, <c>response_format: text</c>) asks for
/// nothing and is left out.
/// </summary>
internal sealed class AnthropicTranslation(int defaultMaxTokens, TimeProvider time)
{
    public UpstreamOutcome<MessagesRequest> ToMessagesRequest(ReadOnlyMemory<byte> body, string model)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException)
        {
            return UpstreamFailure.Untranslatable("messages", "The request body is not valid JSON.");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return UpstreamFailure.Untranslatable("messages", "The request body must be a JSON object.");
            }
            var buffer = new ArrayBufferWriter<byte>(body.Length + 256);
            using var writer = new Utf8JsonWriter(buffer, AnthropicJson.WriterOptions);
            var request = new AnthropicRequestWriter(writer, defaultMaxTokens);
            if (request.Write(document.RootElement, model) is { } refusal)
            {
                return refusal;
            }
            writer.Flush();
            return new MessagesRequest(buffer.WrittenMemory, request.IncludeUsage);
        }
    }

    /// <summary>Anthropic's message object as a <c>chat.completion</c>; an answer without its content is the upstream's fault (502).</summary>
    public async Task<UpstreamOutcome<ModelResponse>> ToChatCompletionAsync(int status, Stream content, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(content, cancellationToken: cancellationToken);
        }
        catch (JsonException)
        {
            return UpstreamFailure.Malformed(status, "Anthropic answered with a body that is not valid JSON.");
        }
        catch (IOException)
        {
            return UpstreamFailure.ConnectionFailed("The upstream closed the connection before its answer ended.");
        }
        using (document)
        {
            var message = document.RootElement;
            if (!IsMessage(message, out var blocks))
            {
                return UpstreamFailure.Malformed(status, "Anthropic's answer is not a message with content.");
            }
            var buffer = new ArrayBufferWriter<byte>(1024);
            using (var writer = new Utf8JsonWriter(buffer, AnthropicJson.WriterOptions))
            {
                WriteChatCompletion(writer, message, blocks);
            }
            return new ModelResponse(status, "application/json", new MemoryStream(buffer.WrittenSpan.ToArray(), writable: false));
        }
    }

    /// <summary>Whether Anthropic's answer is a message with its content blocks (the least a <c>chat.completion</c> is made of).</summary>
    public static bool IsMessage(JsonElement message, out JsonElement blocks)
    {
        blocks = default;
        return message.ValueKind == JsonValueKind.Object && message.TryGetProperty("content", out blocks) && blocks.ValueKind == JsonValueKind.Array;
    }

    /// <summary>Anthropic's message (checked by <see cref="IsMessage"/>) as a <c>chat.completion</c>: a model answer's body, or a batch output line's.</summary>
    public void WriteChatCompletion(Utf8JsonWriter writer, JsonElement message, JsonElement blocks)
    {
        writer.WriteStartObject();
        writer.WriteString("id", Text(message, "id") ?? "");
        writer.WriteString("object", "chat.completion");
        writer.WriteNumber("created", time.GetUtcNow().ToUnixTimeSeconds());
        writer.WriteString("model", Text(message, "model") ?? "");
        writer.WriteStartArray("choices");
        writer.WriteStartObject();
        writer.WriteNumber("index", 0);
        writer.WriteStartObject("message");
        writer.WriteString("role", "assistant");
        string? text = null;
        bool hasToolCalls = false;
        foreach (var block in blocks.EnumerateArray())
        {
            switch (Text(block, "type"))
            {
                case "text":
                    text = string.Concat(text, Text(block, "text"));
                    break;
                case "tool_use":
                    hasToolCalls = true;
                    break;
            }
        }
        if (text is null)
        {
            writer.WriteNull("content");
        }
        else
        {
            writer.WriteString("content", text);
        }
        writer.WriteNull("refusal");
        if (hasToolCalls)
        {
            writer.WriteStartArray("tool_calls");
            foreach (var block in blocks.EnumerateArray())
            {
                if (Text(block, "type") == "tool_use")
                {
                    writer.WriteStartObject();
                    writer.WriteString("id", Text(block, "id") ?? "");
                    writer.WriteString("type", "function");
                    writer.WriteStartObject("function");
                    writer.WriteString("name", Text(block, "name") ?? "");
                    writer.WriteString("arguments", block.TryGetProperty("input", out var input) ? input.GetRawText() : "{}");
                    writer.WriteEndObject();
                    writer.WriteEndObject();
                }
            }
            writer.WriteEndArray();
        }
        writer.WriteEndObject();
        writer.WriteNull("logprobs");
        WriteFinishReason(writer, Text(message, "stop_reason"));
        writer.WriteEndObject();
        writer.WriteEndArray();
        if (message.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            WriteUsage(writer, TokenCounts.From(usage));
        }
        writer.WriteEndObject();
    }

    /// <summary>Anthropic's <c>stop_reason</c> as OpenAI's <c>finish_reason</c>.</summary>
    public static string? FinishReason(string? stopReason) => stopReason switch
    {
        null => null,
        "end_turn" or "stop_sequence" or "pause_turn" => "stop",
        "max_tokens" or "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    };

    public static void WriteFinishReason(Utf8JsonWriter writer, string? stopReason)
    {
        if (FinishReason(stopReason) is { } reason)
        {
            writer.WriteString("finish_reason", reason);
        }
        else
        {
            writer.WriteNull("finish_reason");
        }
    }

    /// <summary>
    /// OpenAI's usage: <c>prompt_tokens</c> counts every input token (Anthropic's <c>input_tokens</c> leaves out those
    /// read from or written to its cache), <c>prompt_tokens_details.cached_tokens</c> those read from the cache, and
    /// <c>cache_creation_tokens</c> there those written to it.
    /// </summary>
    public static void WriteUsage(Utf8JsonWriter writer, TokenCounts counts)
    {
        long prompt = counts.Input + counts.CacheCreation + counts.CacheRead;
        writer.WriteStartObject("usage");
        writer.WriteNumber("prompt_tokens", prompt);
        writer.WriteNumber("completion_tokens", counts.Output);
        writer.WriteNumber("total_tokens", prompt + counts.Output);
        writer.WriteStartObject("prompt_tokens_details");
        writer.WriteNumber("cached_tokens", counts.CacheRead);
        writer.WriteNumber("cache_creation_tokens", counts.CacheCreation);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    public AnthropicStreamTranslator StreamState(bool includeUsage) => new(includeUsage, time.GetUtcNow().ToUnixTimeSeconds());
}

/// <summary>Anthropic's token counts, as its <c>usage</c> object gives them (each missing one 0).</summary>
internal readonly record struct TokenCounts(long Input, long Output, long CacheCreation, long CacheRead)
{
    public static TokenCounts From(JsonElement usage, TokenCounts earlier = default) => new(
        Count(usage, "input_tokens") ?? earlier.Input,
        Count(usage, "output_tokens") ?? earlier.Output,
        Count(usage, "cache_creation_input_tokens") ?? earlier.CacheCreation,
        Count(usage, "cache_read_input_tokens") ?? earlier.CacheRead);

    private static long? Count(JsonElement usage, string name) =>
        usage.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long count) ? count : null;
}

internal static class AnthropicJson
{
    /// <summary>Text as written: only what JSON requires is escaped (the answers are JSON, never HTML).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A string member of an object; null when it is missing, not a string, or the element is no object.</summary>
    public static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
