using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Wharf.Core.Providers;

namespace Wharf.Providers.Mock;

/// <summary>
/// The mock's answers, in OpenAI's exact shapes (chat completion and its chunks, text completion, embeddings, a
/// Responses API object and its events), derived from the request body alone: the same body gets the same ids,
/// text, vectors and usage (<c>created</c> is the injected clock's).
/// </summary>
internal static class MockAnswers
{
    /// <summary>Vector length when the request names no <c>dimensions</c> (that of text-embedding-3-small).</summary>
    public const int DefaultDimensions = 1536;

    /// <summary>What one request is, read from its body: null with the parameter at fault when it is not a request.</summary>
    public sealed record Request(ProviderCapability Endpoint, string Model, string Digest, int PromptTokens, JsonElement Body, string ProviderId, long Created)
    {
        public string Text => $"This is a mock answer ({Digest[..8]}) from {ProviderId} for {Model}.";

        /// <summary>The text in pieces as a stream sends them: words, each but the first with its leading space.</summary>
        public IEnumerable<string> Pieces => Text.Split(' ').Select((word, i) => i == 0 ? word : " " + word);

        public int CompletionTokens => Text.Split(' ').Length;

        public bool IncludeUsage =>
            Body.TryGetProperty("stream_options", out var options) && options.ValueKind == JsonValueKind.Object
            && options.TryGetProperty("include_usage", out var include) && include.ValueKind == JsonValueKind.True;
    }

    /// <summary>The field the endpoint cannot do without, as OpenAI asks for it.</summary>
    public static string RequiredField(ProviderCapability endpoint) => endpoint switch
    {
        ProviderCapability.ChatCompletions => "messages",
        ProviderCapability.Completions => "prompt",
        _ => "input",
    };

    public static byte[] Json(Request request) => Write(writer =>
    {
        switch (request.Endpoint)
        {
            case ProviderCapability.ChatCompletions:
                ChatCompletion(writer, request);
                break;
            case ProviderCapability.Completions:
                TextCompletion(writer, request, request.Text, "stop", usage: true);
                break;
            case ProviderCapability.Embeddings:
                Embeddings(writer, request);
                break;
            default:
                Response(writer, request, completed: true);
                break;
        }
    });

    /// <summary>Server-sent events as OpenAI sends them (<c>data: [DONE]</c> closing chat and text completions).</summary>
    public static byte[] EventStream(Request request)
    {
        var sse = new MemoryStream();
        switch (request.Endpoint)
        {
            case ProviderCapability.ChatCompletions:
                ChatChunks(sse, request);
                break;
            case ProviderCapability.Completions:
                foreach (string piece in request.Pieces)
                {
                    Data(sse, w => TextCompletion(w, request, piece, null, usage: false, streamed: request.IncludeUsage));
                }
                Data(sse, w => TextCompletion(w, request, "", "stop", usage: false, streamed: request.IncludeUsage));
                if (request.IncludeUsage)
                {
                    Data(sse, w => UsageOnlyChunk(w, request, "text_completion", "cmpl-"));
                }
                Done(sse);
                break;
            default:
                ResponseEvents(sse, request);
                break;
        }
        return sse.ToArray();
    }

    public static byte[] Error(string message, string type, string? param, string? code) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", message);
        w.WriteString("type", type);
        WriteNullable(w, "param", param);
        WriteNullable(w, "code", code);
        w.WriteEndObject();
        w.WriteEndObject();
    });

    public static string DigestOf(ReadOnlySpan<byte> body) => Convert.ToHexStringLower(SHA256.HashData(body));

    private static void ChatCompletion(Utf8JsonWriter w, Request r)
    {
        w.WriteStartObject();
        w.WriteString("id", "chatcmpl-mock" + r.Digest[..24]);
        w.WriteString("object", "chat.completion");
        w.WriteNumber("created", r.Created);
        w.WriteString("model", r.Model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("message");
        w.WriteString("role", "assistant");
        w.WriteString("content", r.Text);
        w.WriteNull("refusal");
        w.WriteStartArray("annotations");
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", "stop");
        w.WriteEndObject();
        w.WriteEndArray();
        w.WritePropertyName("usage");
        ChatUsage(w, r);
        w.WriteString("service_tier", "default");
        w.WriteString("system_fingerprint", "fp_wharf_mock");
        w.WriteEndObject();
    }

    private static void ChatUsage(Utf8JsonWriter w, Request r)
    {
        w.WriteStartObject();
        w.WriteNumber("prompt_tokens", r.PromptTokens);
        w.WriteNumber("completion_tokens", r.CompletionTokens);
        w.WriteNumber("total_tokens", r.PromptTokens + r.CompletionTokens);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", 0);
        w.WriteNumber("audio_tokens", 0);
        w.WriteEndObject();
        w.WriteStartObject("completion_tokens_details");
        w.WriteNumber("reasoning_tokens", 0);
        w.WriteNumber("audio_tokens", 0);
        w.WriteNumber("accepted_prediction_tokens", 0);
        w.WriteNumber("rejected_prediction_tokens", 0);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void ChatChunks(Stream sse, Request r)
    {
        Data(sse, w => ChatChunk(w, r, role: true, content: "", finish: null));
        foreach (string piece in r.Pieces)
        {
            Data(sse, w => ChatChunk(w, r, role: false, content: piece, finish: null));
        }
        Data(sse, w => ChatChunk(w, r, role: false, content: null, finish: "stop"));
        if (r.IncludeUsage)
        {
            Data(sse, w => UsageOnlyChunk(w, r, "chat.completion.chunk", "chatcmpl-mock"));
        }
        Done(sse);
    }

    private static void ChatChunk(Utf8JsonWriter w, Request r, bool role, string? content, string? finish)
    {
        ChunkHead(w, r, "chat.completion.chunk", "chatcmpl-mock");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("delta");
        if (role)
        {
            w.WriteString("role", "assistant");
        }
        if (content is not null)
        {
            w.WriteString("content", content);
        }
        if (role)
        {
            w.WriteNull("refusal");
        }
        w.WriteEndObject();
        w.WriteNull("logprobs");
        WriteNullable(w, "finish_reason", finish);
        w.WriteEndObject();
        w.WriteEndArray();
        if (r.IncludeUsage)
        {
            w.WriteNull("usage");
        }
        w.WriteEndObject();
    }

    /// <summary>The last chunk when <c>stream_options.include_usage</c> is set: no choices, the usage of the whole answer.</summary>
    private static void UsageOnlyChunk(Utf8JsonWriter w, Request r, string type, string idPrefix)
    {
        ChunkHead(w, r, type, idPrefix);
        w.WriteStartArray("choices");
        w.WriteEndArray();
        w.WritePropertyName("usage");
        if (r.Endpoint == ProviderCapability.ChatCompletions)
        {
            ChatUsage(w, r);
        }
        else
        {
            TextUsage(w, r);
        }
        w.WriteEndObject();
    }

    private static void ChunkHead(Utf8JsonWriter w, Request r, string type, string idPrefix)
    {
        w.WriteStartObject();
        w.WriteString("id", idPrefix + r.Digest[..24]);
        w.WriteString("object", type);
        w.WriteNumber("created", r.Created);
        w.WriteString("model", r.Model);
        if (r.Endpoint == ProviderCapability.ChatCompletions)
        {
            w.WriteString("service_tier", "default");
            w.WriteString("system_fingerprint", "fp_wharf_mock");
        }
    }

    private static void TextCompletion(Utf8JsonWriter w, Request r, string text, string? finish, bool usage, bool streamed = false)
    {
        w.WriteStartObject();
        w.WriteString("id", "cmpl-" + r.Digest[..24]);
        w.WriteString("object", "text_completion");
        w.WriteNumber("created", r.Created);
        w.WriteString("model", r.Model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteString("text", text);
        w.WriteNumber("index", 0);
        w.WriteNull("logprobs");
        WriteNullable(w, "finish_reason", finish);
        w.WriteEndObject();
        w.WriteEndArray();
        if (usage)
        {
            w.WritePropertyName("usage");
            TextUsage(w, r);
        }
        else if (streamed)
        {
            w.WriteNull("usage");
        }
        w.WriteEndObject();
    }

    private static void TextUsage(Utf8JsonWriter w, Request r)
    {
        w.WriteStartObject();
        w.WriteNumber("prompt_tokens", r.PromptTokens);
        w.WriteNumber("completion_tokens", r.CompletionTokens);
        w.WriteNumber("total_tokens", r.PromptTokens + r.CompletionTokens);
        w.WriteEndObject();
    }

    /// <summary>Most inputs one embeddings request may hold (OpenAI's limit), so an answer's size is bounded.</summary>
    public const int MaxEmbeddingInputs = 2048;

    /// <summary>How many vectors the request asks for: one per string (or token array) of an array input, else one.</summary>
    public static int EmbeddingCount(Request r) =>
        r.Body.TryGetProperty("input", out var input) && input.ValueKind == JsonValueKind.Array
            && input.GetArrayLength() > 0 && input[0].ValueKind != JsonValueKind.Number ? input.GetArrayLength() : 1;

    private static void Embeddings(Utf8JsonWriter w, Request r)
    {
        int count = EmbeddingCount(r);
        int dimensions = r.Body.TryGetProperty("dimensions", out var d) && d.ValueKind == JsonValueKind.Number
            && d.TryGetInt32(out int n) && n is > 0 and <= 8192 ? n : DefaultDimensions;
        bool base64 = r.Body.TryGetProperty("encoding_format", out var format) && format.ValueKind == JsonValueKind.String && format.GetString() == "base64";
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        for (int i = 0; i < count; i++)
        {
            w.WriteStartObject();
            w.WriteString("object", "embedding");
            w.WriteNumber("index", i);
            float[] vector = Vector(r.Digest, i, dimensions);
            if (base64)
            {
                byte[] bytes = new byte[vector.Length * sizeof(float)];
                for (int j = 0; j < vector.Length; j++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(j * sizeof(float)), vector[j]);
                }
                w.WriteBase64String("embedding", bytes);
            }
            else
            {
                w.WriteStartArray("embedding");
                foreach (float value in vector)
                {
                    w.WriteNumberValue(value);
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("model", r.Model);
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", r.PromptTokens);
        w.WriteNumber("total_tokens", r.PromptTokens);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>A unit vector drawn from the digest and the input's index (xorshift), so equal inputs embed equally.</summary>
    private static float[] Vector(string digest, int index, int dimensions)
    {
        ulong state = Convert.ToUInt64(digest[..16], 16) ^ (ulong)(index + 1) * 0x9E3779B97F4A7C15UL;
        var vector = new float[dimensions];
        double sum = 0;
        for (int i = 0; i < dimensions; i++)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            vector[i] = (float)((state >> 11) * (1.0 / (1UL << 53)) * 2 - 1);
            sum += vector[i] * (double)vector[i];
        }
        float norm = (float)Math.Sqrt(sum);
        for (int i = 0; i < dimensions && norm > 0; i++)
        {
            vector[i] /= norm;
        }
        return vector;
    }

    private static void Response(Utf8JsonWriter w, Request r, bool completed)
    {
        w.WriteStartObject();
        w.WriteString("id", "resp_mock" + r.Digest[..32]);
        w.WriteString("object", "response");
        w.WriteNumber("created_at", r.Created);
        w.WriteString("status", completed ? "completed" : "in_progress");
        w.WriteNull("error");
        w.WriteNull("incomplete_details");
        if (r.Body.TryGetProperty("instructions", out var instructions) && instructions.ValueKind == JsonValueKind.String)
        {
            w.WriteString("instructions", instructions.GetString());
        }
        else
        {
            w.WriteNull("instructions");
        }
        w.WriteNull("max_output_tokens");
        w.WriteString("model", r.Model);
        w.WriteStartArray("output");
        if (completed)
        {
            OutputMessage(w, r, r.Text, completed: true);
        }
        w.WriteEndArray();
        w.WriteBoolean("parallel_tool_calls", true);
        w.WriteNull("previous_response_id");
        w.WriteStartObject("reasoning");
        w.WriteNull("effort");
        w.WriteNull("summary");
        w.WriteEndObject();
        w.WriteBoolean("store", false);
        w.WriteNumber("temperature", 1.0);
        w.WriteStartObject("text");
        w.WriteStartObject("format");
        w.WriteString("type", "text");
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteString("tool_choice", "auto");
        w.WriteStartArray("tools");
        w.WriteEndArray();
        w.WriteNumber("top_p", 1.0);
        w.WriteString("truncation", "disabled");
        if (completed)
        {
            w.WriteStartObject("usage");
            w.WriteNumber("input_tokens", r.PromptTokens);
            w.WriteStartObject("input_tokens_details");
            w.WriteNumber("cached_tokens", 0);
            w.WriteEndObject();
            w.WriteNumber("output_tokens", r.CompletionTokens);
            w.WriteStartObject("output_tokens_details");
            w.WriteNumber("reasoning_tokens", 0);
            w.WriteEndObject();
            w.WriteNumber("total_tokens", r.PromptTokens + r.CompletionTokens);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("usage");
        }
        w.WriteNull("user");
        w.WriteStartObject("metadata");
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static string MessageId(Request r) => "msg_mock" + r.Digest[..32];

    private static void OutputMessage(Utf8JsonWriter w, Request r, string text, bool completed)
    {
        w.WriteStartObject();
        w.WriteString("type", "message");
        w.WriteString("id", MessageId(r));
        w.WriteString("status", completed ? "completed" : "in_progress");
        w.WriteString("role", "assistant");
        w.WriteStartArray("content");
        if (completed)
        {
            OutputText(w, text);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void OutputText(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject();
        w.WriteString("type", "output_text");
        w.WriteString("text", text);
        w.WriteStartArray("annotations");
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>The Responses API's typed events: created, in progress, the message and its text in deltas, completed.</summary>
    private static void ResponseEvents(Stream sse, Request r)
    {
        int sequence = 0;
        void Event(string type, Action<Utf8JsonWriter> fields)
        {
            int number = sequence++;
            Write(sse, $"event: {type}\ndata: ", w =>
            {
                w.WriteStartObject();
                w.WriteString("type", type);
                w.WriteNumber("sequence_number", number);
                fields(w);
                w.WriteEndObject();
            });
        }
        Event("response.created", w => { w.WritePropertyName("response"); Response(w, r, completed: false); });
        Event("response.in_progress", w => { w.WritePropertyName("response"); Response(w, r, completed: false); });
        Event("response.output_item.added", w => { w.WriteNumber("output_index", 0); w.WritePropertyName("item"); OutputMessage(w, r, "", completed: false); });
        Event("response.content_part.added", w =>
        {
            PartPosition(w, r);
            w.WritePropertyName("part");
            OutputText(w, "");
        });
        foreach (string piece in r.Pieces)
        {
            Event("response.output_text.delta", w => { PartPosition(w, r); w.WriteString("delta", piece); w.WriteStartArray("logprobs"); w.WriteEndArray(); });
        }
        Event("response.output_text.done", w => { PartPosition(w, r); w.WriteString("text", r.Text); w.WriteStartArray("logprobs"); w.WriteEndArray(); });
        Event("response.content_part.done", w => { PartPosition(w, r); w.WritePropertyName("part"); OutputText(w, r.Text); });
        Event("response.output_item.done", w => { w.WriteNumber("output_index", 0); w.WritePropertyName("item"); OutputMessage(w, r, r.Text, completed: true); });
        Event("response.completed", w => { w.WritePropertyName("response"); Response(w, r, completed: true); });
    }

    private static void PartPosition(Utf8JsonWriter w, Request r)
    {
        w.WriteString("item_id", MessageId(r));
        w.WriteNumber("output_index", 0);
        w.WriteNumber("content_index", 0);
    }

    private static void Data(Stream sse, Action<Utf8JsonWriter> write) => Write(sse, "data: ", write);

    private static void Write(Stream sse, string prefix, Action<Utf8JsonWriter> write)
    {
        sse.Write(Encoding.UTF8.GetBytes(prefix));
        using (var writer = new Utf8JsonWriter(sse))
        {
            write(writer);
        }
        sse.Write("\n\n"u8);
    }

    private static void Done(Stream sse) => sse.Write("data: [DONE]\n\n"u8);

    private static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }
        return buffer.ToArray();
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }
}
