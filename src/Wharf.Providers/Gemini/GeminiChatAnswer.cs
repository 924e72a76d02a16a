using System.Buffers;
using System.Text.Json;

namespace Wharf.Providers.Gemini;

/// <summary>
/// A Gemini <c>GenerateContentResponse</c> as an OpenAI <c>chat.completion</c>: one choice per candidate (its text
/// parts joined, thought parts left out, <c>functionCall</c> parts as <c>tool_calls</c>), <c>finishReason</c> mapped
/// (<see cref="FinishReason"/>), <c>usageMetadata</c> as <c>usage</c>. A prompt Gemini blocked (no candidates,
/// <c>promptFeedback.blockReason</c>) is one choice without content, finished by <c>content_filter</c>.
/// </summary>
internal static class GeminiChatAnswer
{
    /// <summary>The completion; null when the answer is not a <c>GenerateContentResponse</c> object.</summary>
    public static byte[]? Translate(JsonElement answer, string model, long created)
    {
        if (answer.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("id", CompletionId(answer));
            writer.WriteString("object", "chat.completion");
            writer.WriteNumber("created", created);
            writer.WriteString("model", ModelOf(answer, model));
            writer.WriteStartArray("choices");
            int written = 0;
            if (answer.TryGetProperty("candidates", out var candidates) && candidates.ValueKind == JsonValueKind.Array)
            {
                foreach (var candidate in candidates.EnumerateArray())
                {
                    if (candidate.ValueKind != JsonValueKind.Object)
                    {
                        return null;
                    }
                    WriteChoice(writer, candidate, IndexOf(candidate, written));
                    written++;
                }
            }
            if (written == 0)
            {
                writer.WriteStartObject();
                writer.WriteNumber("index", 0);
                writer.WriteStartObject("message");
                writer.WriteString("role", "assistant");
                writer.WriteNull("content");
                writer.WriteNull("refusal");
                writer.WriteEndObject();
                writer.WriteNull("logprobs");
                writer.WriteString("finish_reason", "content_filter");
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            WriteUsage(writer, answer);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteChoice(Utf8JsonWriter writer, JsonElement candidate, int index)
    {
        var text = new System.Text.StringBuilder();
        bool anyText = false;
        var calls = new List<JsonElement>();
        foreach (var part in Parts(candidate))
        {
            if (IsThought(part))
            {
                continue;
            }
            if (part.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
            {
                text.Append(t.GetString());
                anyText = true;
            }
            else if (part.TryGetProperty("functionCall", out var call) && call.ValueKind == JsonValueKind.Object)
            {
                calls.Add(call);
            }
        }
        writer.WriteStartObject();
        writer.WriteNumber("index", index);
        writer.WriteStartObject("message");
        writer.WriteString("role", "assistant");
        if (anyText)
        {
            writer.WriteString("content", text.ToString());
        }
        else
        {
            writer.WriteNull("content");
        }
        writer.WriteNull("refusal");
        if (calls.Count > 0)
        {
            writer.WriteStartArray("tool_calls");
            foreach (var call in calls)
            {
                writer.WriteStartObject();
                WriteCall(writer, call);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        writer.WriteEndObject();
        writer.WriteNull("logprobs");
        writer.WriteString("finish_reason", FinishReason(Text(candidate, "finishReason"), calls.Count > 0) ?? "stop");
        writer.WriteEndObject();
    }

    /// <summary>A tool call's <c>id</c>, <c>type</c> and <c>function</c> (its arguments as a JSON string), written into an open object.</summary>
    public static void WriteCall(Utf8JsonWriter writer, JsonElement call)
    {
        writer.WriteString("id", Text(call, "id") ?? "call_" + Guid.NewGuid().ToString("N")[..24]);
        writer.WriteString("type", "function");
        writer.WriteStartObject("function");
        writer.WriteString("name", Text(call, "name") ?? "");
        writer.WriteString("arguments", call.TryGetProperty("args", out var args) && args.ValueKind == JsonValueKind.Object ? args.GetRawText() : "{}");
        writer.WriteEndObject();
    }

    /// <summary>
    /// OpenAI's <c>finish_reason</c> for Gemini's <c>finishReason</c>; null while the candidate goes on. <c>STOP</c> with
    /// function calls is <c>tool_calls</c>; <c>MAX_TOKENS</c> <c>length</c>; a block for safety, recitation, a blocklist,
    /// prohibited content or personal data <c>content_filter</c>; any other end (<c>OTHER</c>,
    /// <c>MALFORMED_FUNCTION_CALL</c>, ...) <c>stop</c>, the one value OpenAI's clients know that claims nothing more.
    /// </summary>
    public static string? FinishReason(string? reason, bool hasCalls) => reason switch
    {
        null => null,
        "STOP" => hasCalls ? "tool_calls" : "stop",
        "MAX_TOKENS" => "length",
        "SAFETY" or "RECITATION" or "BLOCKLIST" or "PROHIBITED_CONTENT" or "SPII" or "IMAGE_SAFETY" or "IMAGE_PROHIBITED_CONTENT"
            or "IMAGE_RECITATION" => "content_filter",
        _ => hasCalls ? "tool_calls" : "stop",
    };

    /// <summary>
    /// <c>usage</c> from <c>usageMetadata</c>: prompt tokens, completion tokens (the candidates' and the thoughts', as
    /// OpenAI counts reasoning), the total, cached prompt tokens and reasoning tokens in their details.
    /// </summary>
    public static void WriteUsage(Utf8JsonWriter writer, JsonElement answer)
    {
        if (answer.TryGetProperty("usageMetadata", out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            writer.WritePropertyName("usage");
            WriteUsageObject(writer, usage);
        }
    }

    /// <summary>The <c>usage</c> object for a <c>usageMetadata</c> object.</summary>
    public static void WriteUsageObject(Utf8JsonWriter writer, JsonElement usage)
    {
        long prompt = Count(usage, "promptTokenCount");
        long thoughts = Count(usage, "thoughtsTokenCount");
        long completion = Count(usage, "candidatesTokenCount") + thoughts;
        long total = usage.TryGetProperty("totalTokenCount", out _) ? Count(usage, "totalTokenCount") : prompt + completion;
        writer.WriteStartObject();
        writer.WriteNumber("prompt_tokens", prompt);
        writer.WriteNumber("completion_tokens", completion);
        writer.WriteNumber("total_tokens", total);
        writer.WriteStartObject("prompt_tokens_details");
        writer.WriteNumber("cached_tokens", Count(usage, "cachedContentTokenCount"));
        writer.WriteEndObject();
        writer.WriteStartObject("completion_tokens_details");
        writer.WriteNumber("reasoning_tokens", thoughts);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    public static string CompletionId(JsonElement answer) => "chatcmpl-" + (Text(answer, "responseId") ?? Guid.NewGuid().ToString("N"));

    public static string ModelOf(JsonElement answer, string model) => Text(answer, "modelVersion") ?? model;

    public static int IndexOf(JsonElement candidate, int position) =>
        candidate.TryGetProperty("index", out var index) && index.TryGetInt32(out int value) ? value : position;

    public static IEnumerable<JsonElement> Parts(JsonElement candidate) =>
        candidate.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Object
        && content.TryGetProperty("parts", out var parts) && parts.ValueKind == JsonValueKind.Array
            ? parts.EnumerateArray().Where(p => p.ValueKind == JsonValueKind.Object)
            : [];

    public static bool IsThought(JsonElement part) => part.TryGetProperty("thought", out var thought) && thought.ValueKind == JsonValueKind.True;

    public static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static long Count(JsonElement usage, string name) =>
        usage.TryGetProperty(name, out var value) && value.TryGetInt64(out long count) ? count : 0;
}
