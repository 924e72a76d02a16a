using System.Text.Json;

namespace Wharf.Core.Batches;

/// <summary>
/// The tokens of one model answer, read from its top-level <c>usage</c> without a document. Chat and text
/// completions and embeddings name them <c>prompt_tokens</c>, <c>completion_tokens</c>, <c>total_tokens</c>, with
/// <c>prompt_tokens_details.cached_tokens</c> and <c>completion_tokens_details.reasoning_tokens</c>; the Responses API
/// <c>input_tokens</c>, <c>output_tokens</c>, <c>total_tokens</c>, with <c>input_tokens_details.cached_tokens</c> and
/// <c>output_tokens_details.reasoning_tokens</c>.
/// </summary>
internal static class AnswerUsage
{
    /// <summary>The answer's tokens; <see cref="BatchUsage.None"/> when it has no usage (or is not a JSON object).</summary>
    public static BatchUsage Read(ReadOnlySpan<byte> answer)
    {
        var reader = new Utf8JsonReader(answer, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return BatchUsage.None;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isUsage = reader.ValueTextEquals("usage"u8);
                reader.Read();
                if (isUsage && reader.TokenType == JsonTokenType.StartObject)
                {
                    return ReadUsage(ref reader);
                }
                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }
        return BatchUsage.None;
    }

    private static BatchUsage ReadUsage(ref Utf8JsonReader reader)
    {
        long input = 0, output = 0, cached = 0, reasoning = 0;
        long? total = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("prompt_tokens"u8) || reader.ValueTextEquals("input_tokens"u8))
            {
                input = Number(ref reader);
            }
            else if (reader.ValueTextEquals("completion_tokens"u8) || reader.ValueTextEquals("output_tokens"u8))
            {
                output = Number(ref reader);
            }
            else if (reader.ValueTextEquals("total_tokens"u8))
            {
                total = Number(ref reader);
            }
            else if (reader.ValueTextEquals("prompt_tokens_details"u8) || reader.ValueTextEquals("input_tokens_details"u8))
            {
                cached = Detail(ref reader, "cached_tokens"u8);
            }
            else if (reader.ValueTextEquals("completion_tokens_details"u8) || reader.ValueTextEquals("output_tokens_details"u8))
            {
                reasoning = Detail(ref reader, "reasoning_tokens"u8);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return new BatchUsage(input, cached, output, reasoning, total ?? input + output);
    }

    private static long Number(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long value) && value >= 0)
        {
            return value;
        }
        reader.Skip();
        return 0;
    }

    private static long Detail(ref Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return 0;
        }
        long value = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals(name))
            {
                value = Number(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return value;
    }
}
