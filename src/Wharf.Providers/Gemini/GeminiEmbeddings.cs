using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using Wharf.Core.Providers;

namespace Wharf.Providers.Gemini;

/// <summary>What an embeddings request becomes for Gemini, and how its answer is encoded back.</summary>
internal sealed record GeminiEmbeddingCall(byte[] Body, bool Base64);

/// <summary>
/// OpenAI's embeddings request as a Gemini <c>batchEmbedContents</c> body (each input a request with one text
/// part; <c>dimensions</c> as <c>outputDimensionality</c>), and the answer's <c>embeddings[].values</c> as OpenAI's
/// embedding list. <c>encoding_format: base64</c> (what OpenAI's SDKs ask for by default) is done by Wharf: the
/// floats as little-endian float32, base64-encoded, as OpenAI sends them. Gemini reports no token counts for
/// embeddings, so <c>usage</c> is zero. Token-array inputs have no equivalent (Gemini takes text): a 400.
/// </summary>
internal static class GeminiEmbeddings
{
    public static UpstreamOutcome<GeminiEmbeddingCall> Translate(ReadOnlyMemory<byte> body, string model)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException)
        {
            return UpstreamFailure.Untranslatable("input", "The request body is not valid JSON.");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return UpstreamFailure.Untranslatable("input", "The request body must be a JSON object.");
            }
            bool base64 = false;
            long? dimensions = null;
            foreach (var property in root.EnumerateObject())
            {
                var value = property.Value;
                switch (property.Name)
                {
                    case "model" or "input":
                        break;
                    case "encoding_format" when value.ValueKind == JsonValueKind.Null || value.ValueEquals("float"):
                        break;
                    case "encoding_format" when value.ValueEquals("base64"):
                        base64 = true;
                        break;
                    case "encoding_format":
                        return UpstreamFailure.Untranslatable("encoding_format", "'encoding_format' must be 'float' or 'base64'.");
                    case "dimensions" when value.ValueKind == JsonValueKind.Null:
                        break;
                    case "dimensions" when value.TryGetInt64(out long d) && d > 0:
                        dimensions = d;
                        break;
                    case "dimensions":
                        return UpstreamFailure.Untranslatable("dimensions", "'dimensions' must be a positive integer.");
                    case var _ when value.ValueKind == JsonValueKind.Null:
                        break;
                    default:
                        return UpstreamFailure.Untranslatable(property.Name,
                            $"'{property.Name}' has no equivalent in the Gemini API, so the provider cannot honour it; leave it out or send the request to another provider.");
                }
            }
            if (!root.TryGetProperty("input", out var input))
            {
                return UpstreamFailure.Untranslatable("input", "'input' is required.");
            }
            IEnumerable<JsonElement> texts = input.ValueKind == JsonValueKind.String ? [input]
                : input.ValueKind == JsonValueKind.Array ? input.EnumerateArray() : [];
            if (input.ValueKind is not (JsonValueKind.String or JsonValueKind.Array) || input.ValueKind == JsonValueKind.Array && input.GetArrayLength() == 0
                || texts.Any(t => t.ValueKind != JsonValueKind.String))
            {
                return UpstreamFailure.Untranslatable("input", "'input' must be a string or a non-empty array of strings for Gemini (it takes text, not token arrays).");
            }
            var buffer = new ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteStartArray("requests");
                foreach (var text in texts)
                {
                    writer.WriteStartObject();
                    writer.WriteString("model", "models/" + model);
                    writer.WriteStartObject("content");
                    writer.WriteStartArray("parts");
                    writer.WriteStartObject();
                    writer.WriteString("text", text.GetString());
                    writer.WriteEndObject();
                    writer.WriteEndArray();
                    writer.WriteEndObject();
                    if (dimensions is { } d)
                    {
                        writer.WriteNumber("outputDimensionality", d);
                    }
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            return new GeminiEmbeddingCall(buffer.WrittenSpan.ToArray(), base64);
        }
    }

    /// <summary>The OpenAI embedding list; null when the answer is not <c>{"embeddings":[{"values":[numbers]}]}</c>.</summary>
    public static byte[]? TranslateAnswer(JsonElement answer, string model, bool base64)
    {
        if (answer.ValueKind != JsonValueKind.Object || !answer.TryGetProperty("embeddings", out var embeddings) || embeddings.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("object", "list");
            writer.WriteStartArray("data");
            int index = 0;
            foreach (var embedding in embeddings.EnumerateArray())
            {
                if (embedding.ValueKind != JsonValueKind.Object || !embedding.TryGetProperty("values", out var values) || values.ValueKind != JsonValueKind.Array
                    || values.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.Number))
                {
                    return null;
                }
                writer.WriteStartObject();
                writer.WriteString("object", "embedding");
                writer.WriteNumber("index", index++);
                writer.WritePropertyName("embedding");
                if (base64)
                {
                    byte[] floats = new byte[values.GetArrayLength() * sizeof(float)];
                    int offset = 0;
                    foreach (var value in values.EnumerateArray())
                    {
                        BinaryPrimitives.WriteSingleLittleEndian(floats.AsSpan(offset), value.GetSingle());
                        offset += sizeof(float);
                    }
                    writer.WriteBase64StringValue(floats);
                }
                else
                {
                    values.WriteTo(writer);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteString("model", model);
            writer.WriteStartObject("usage");
            writer.WriteNumber("prompt_tokens", 0);
            writer.WriteNumber("total_tokens", 0);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
