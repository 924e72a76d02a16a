using System.Buffers;
using System.Text.Json;
using static Wharf.Providers.Anthropic.AnthropicJson;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// One stream's translation, event by event: <c>message_start</c> gives the first chunk (the assistant's role),
/// <c>content_block_start</c> of a <c>tool_use</c> a tool call's id and name, <c>text_delta</c> and
/// <c>input_json_delta</c> content and arguments, <c>message_delta</c> the <c>finish_reason</c>, <c>message_stop</c> the
/// usage chunk (when asked for) and <c>data: [DONE]</c>. <c>ping</c>, <c>content_block_stop</c> and event types it
/// does not know give nothing (Anthropic may add event types); an <c>error</c> event fails the stream.
/// </summary>
internal sealed class AnthropicStreamTranslator(bool includeUsage, long created)
{
    /// <summary>A content block's index → its tool call's index among the tool calls (OpenAI numbers them apart).</summary>
    private readonly Dictionary<int, int> _toolCalls = [];
    private string _id = "";
    private string _model = "";
    private TokenCounts _usage;

    public bool Finished { get; private set; }

    public void Translate(JsonElement data, IBufferWriter<byte> output)
    {
        if (Finished || data.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        switch (Text(data, "type"))
        {
            case "message_start" when data.TryGetProperty("message", out var message):
                _id = Text(message, "id") ?? "";
                _model = Text(message, "model") ?? "";
                if (message.TryGetProperty("usage", out var startUsage) && startUsage.ValueKind == JsonValueKind.Object)
                {
                    _usage = TokenCounts.From(startUsage);
                }
                Chunk(output, writer =>
                {
                    writer.WriteString("role", "assistant");
                    writer.WriteString("content", "");
                });
                break;
            case "content_block_start" when data.TryGetProperty("content_block", out var block):
                int blockIndex = Index(data);
                if (Text(block, "type") == "tool_use")
                {
                    int toolIndex = _toolCalls.Count;
                    _toolCalls[blockIndex] = toolIndex;
                    Chunk(output, writer => ToolCall(writer, toolIndex, Text(block, "id") ?? "", Text(block, "name") ?? "", ""));
                }
                else if (Text(block, "type") == "text" && Text(block, "text") is { Length: > 0 } text)
                {
                    Chunk(output, writer => writer.WriteString("content", text));
                }
                break;
            case "content_block_delta" when data.TryGetProperty("delta", out var delta):
                switch (Text(delta, "type"))
                {
                    case "text_delta" when Text(delta, "text") is { } text:
                        Chunk(output, writer => writer.WriteString("content", text));
                        break;
                    case "input_json_delta" when _toolCalls.TryGetValue(Index(data), out int toolIndex) && Text(delta, "partial_json") is { } json:
                        Chunk(output, writer => ToolCall(writer, toolIndex, null, null, json));
                        break;
                }
                break;
            case "message_delta":
                if (data.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                {
                    _usage = TokenCounts.From(usage, _usage);
                }
                string? stopReason = data.TryGetProperty("delta", out var messageDelta) ? Text(messageDelta, "stop_reason") : null;
                if (AnthropicTranslation.FinishReason(stopReason) is not null)
                {
                    Chunk(output, _ => { }, stopReason);
                }
                break;
            case "message_stop":
                if (includeUsage)
                {
                    Event(output, writer =>
                    {
                        Head(writer);
                        writer.WriteStartArray("choices");
                        writer.WriteEndArray();
                        AnthropicTranslation.WriteUsage(writer, _usage);
                    });
                }
                output.Write("data: [DONE]\n\n"u8);
                Finished = true;
                break;
            case "error":
                string? type = data.TryGetProperty("error", out var error) ? Text(error, "type") : null;
                throw new IOException($"Anthropic ended its event stream with an error ({type ?? "unknown"}).");
        }
    }

    /// <summary>One <c>chat.completion.chunk</c> with one choice, its delta written by <paramref name="delta"/>.</summary>
    private void Chunk(IBufferWriter<byte> output, Action<Utf8JsonWriter> delta, string? stopReason = null) => Event(output, writer =>
    {
        Head(writer);
        writer.WriteStartArray("choices");
        writer.WriteStartObject();
        writer.WriteNumber("index", 0);
        writer.WriteStartObject("delta");
        delta(writer);
        writer.WriteEndObject();
        writer.WriteNull("logprobs");
        AnthropicTranslation.WriteFinishReason(writer, stopReason);
        writer.WriteEndObject();
        writer.WriteEndArray();
    });

    private void Head(Utf8JsonWriter writer)
    {
        writer.WriteString("id", _id);
        writer.WriteString("object", "chat.completion.chunk");
        writer.WriteNumber("created", created);
        writer.WriteString("model", _model);
    }

    private static void Event(IBufferWriter<byte> output, Action<Utf8JsonWriter> body)
    {
        output.Write("data: "u8);
        using (var writer = new Utf8JsonWriter(output, WriterOptions))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        output.Write("\n\n"u8);
    }

    private static void ToolCall(Utf8JsonWriter writer, int index, string? id, string? name, string arguments)
    {
        writer.WriteStartArray("tool_calls");
        writer.WriteStartObject();
        writer.WriteNumber("index", index);
        if (id is not null)
        {
            writer.WriteString("id", id);
            writer.WriteString("type", "function");
        }
        writer.WriteStartObject("function");
        if (name is not null)
        {
            writer.WriteString("name", name);
        }
        writer.WriteString("arguments", arguments);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndArray();
    }

    private static int Index(JsonElement data) =>
        data.TryGetProperty("index", out var index) && index.ValueKind == JsonValueKind.Number && index.TryGetInt32(out int value) ? value : -1;
}
