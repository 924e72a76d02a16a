using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Wharf.Simulators;

/// <summary>
/// Normal answers in OpenAI's shapes, as its API reference shows them: chat completion and chunks, text completion,
/// embeddings (float or base64), a Responses API object and its events, the file object and the file list.
/// </summary>
public static class SimulatedAnswers
{
    public const long Created = 1_735_689_600;

    /// <summary>JSON as the providers write it: quotes, apostrophes and non-ASCII text left as they are.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Json(SimulatedOperation operation, string model, JsonElement body, string text) => operation switch
    {
        SimulatedOperation.ChatCompletions => Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("id", "chatcmpl-sim0001");
            w.WriteString("object", "chat.completion");
            w.WriteNumber("created", Created);
            w.WriteString("model", model);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", text);
            w.WriteNull("refusal");
            w.WriteEndObject();
            w.WriteNull("logprobs");
            w.WriteString("finish_reason", "stop");
            w.WriteEndObject();
            w.WriteEndArray();
            Usage(w, text);
            w.WriteString("system_fingerprint", "fp_sim");
            w.WriteEndObject();
        }),
        SimulatedOperation.Completions => Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("id", "cmpl-sim0001");
            w.WriteString("object", "text_completion");
            w.WriteNumber("created", Created);
            w.WriteString("model", model);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteString("text", text);
            w.WriteNumber("index", 0);
            w.WriteNull("logprobs");
            w.WriteString("finish_reason", "stop");
            w.WriteEndObject();
            w.WriteEndArray();
            Usage(w, text);
            w.WriteEndObject();
        }),
        SimulatedOperation.Embeddings => Embeddings(model, body),
        _ => Write(w => Response(w, model, text, completed: true)),
    };

    /// <summary>The events of a streamed answer, each a complete <c>data:</c> (or <c>event:</c> + <c>data:</c>) block.</summary>
    public static IEnumerable<string> Events(SimulatedOperation operation, string model, JsonElement body, string text)
    {
        string[] words = text.Split(' ');
        var pieces = words.Select((word, i) => i == 0 ? word : " " + word).ToList();
        bool includeUsage = body.TryGetProperty("stream_options", out var options) && options.ValueKind == JsonValueKind.Object
            && options.TryGetProperty("include_usage", out var include) && include.ValueKind == JsonValueKind.True;
        if (operation == SimulatedOperation.Responses)
        {
            int sequence = 0;
            yield return Event("response.created", sequence++, w => { w.WritePropertyName("response"); Response(w, model, text, completed: false); });
            foreach (string piece in pieces)
            {
                yield return Event("response.output_text.delta", sequence++, w =>
                {
                    w.WriteString("item_id", "msg_sim0001");
                    w.WriteNumber("output_index", 0);
                    w.WriteNumber("content_index", 0);
                    w.WriteString("delta", piece);
                });
            }
            yield return Event("response.completed", sequence, w => { w.WritePropertyName("response"); Response(w, model, text, completed: true); });
            yield break;
        }
        bool chat = operation == SimulatedOperation.ChatCompletions;
        string type = chat ? "chat.completion.chunk" : "text_completion";
        string id = chat ? "chatcmpl-sim0001" : "cmpl-sim0001";
        if (chat)
        {
            yield return Data(w => Chunk(w, id, type, model, includeUsage, choice =>
            {
                choice.WriteStartObject("delta");
                choice.WriteString("role", "assistant");
                choice.WriteString("content", "");
                choice.WriteEndObject();
                choice.WriteNull("finish_reason");
            }));
        }
        foreach (string piece in pieces)
        {
            yield return Data(w => Chunk(w, id, type, model, includeUsage, choice =>
            {
                if (chat)
                {
                    choice.WriteStartObject("delta");
                    choice.WriteString("content", piece);
                    choice.WriteEndObject();
                }
                else
                {
                    choice.WriteString("text", piece);
                }
                choice.WriteNull("finish_reason");
            }));
        }
        yield return Data(w => Chunk(w, id, type, model, includeUsage, choice =>
        {
            if (chat)
            {
                choice.WriteStartObject("delta");
                choice.WriteEndObject();
            }
            else
            {
                choice.WriteString("text", "");
            }
            choice.WriteString("finish_reason", "stop");
        }));
        if (includeUsage)
        {
            yield return Data(w =>
            {
                w.WriteStartObject();
                w.WriteString("id", id);
                w.WriteString("object", type);
                w.WriteNumber("created", Created);
                w.WriteString("model", model);
                w.WriteStartArray("choices");
                w.WriteEndArray();
                Usage(w, text);
                w.WriteEndObject();
            });
        }
        yield return "data: [DONE]\n\n";
    }

    public static string FileObject(SimulatedFile file) => Write(w => FileObject(w, file));

    public static string FileList(IReadOnlyList<SimulatedFile> files, bool hasMore) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        foreach (var file in files)
        {
            FileObject(w, file);
        }
        w.WriteEndArray();
        if (files.Count > 0)
        {
            w.WriteString("first_id", files[0].Id);
            w.WriteString("last_id", files[^1].Id);
        }
        else
        {
            w.WriteNull("first_id");
            w.WriteNull("last_id");
        }
        w.WriteBoolean("has_more", hasMore);
        w.WriteEndObject();
    });

    private static void FileObject(Utf8JsonWriter w, SimulatedFile file)
    {
        w.WriteStartObject();
        w.WriteString("id", file.Id);
        w.WriteString("object", "file");
        w.WriteNumber("bytes", file.Content.Length);
        w.WriteNumber("created_at", file.CreatedAt);
        w.WriteString("filename", file.Filename);
        w.WriteString("purpose", file.Purpose);
        w.WriteString("status", "processed");
        w.WriteNull("status_details");
        w.WriteNull("expires_at");
        w.WriteEndObject();
    }

    private static void Chunk(Utf8JsonWriter w, string id, string type, string model, bool includeUsage, Action<Utf8JsonWriter> choice)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", type);
        w.WriteNumber("created", Created);
        w.WriteString("model", model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        choice(w);
        w.WriteEndObject();
        w.WriteEndArray();
        if (includeUsage)
        {
            w.WriteNull("usage");
        }
        w.WriteEndObject();
    }

    private static void Usage(Utf8JsonWriter w, string text)
    {
        int completion = text.Split(' ').Length;
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", 9);
        w.WriteNumber("completion_tokens", completion);
        w.WriteNumber("total_tokens", 9 + completion);
        w.WriteEndObject();
    }

    private static string Embeddings(string model, JsonElement body)
    {
        int count = body.TryGetProperty("input", out var input) && input.ValueKind == JsonValueKind.Array
            && input.GetArrayLength() > 0 && input[0].ValueKind != JsonValueKind.Number ? input.GetArrayLength() : 1;
        int dimensions = body.TryGetProperty("dimensions", out var d) && d.TryGetInt32(out int n) && n > 0 ? n : 8;
        bool base64 = body.TryGetProperty("encoding_format", out var format) && format.ValueKind == JsonValueKind.String && format.GetString() == "base64";
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            for (int i = 0; i < count; i++)
            {
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                w.WriteNumber("index", i);
                float[] vector = [.. Enumerable.Range(0, dimensions).Select(j => (i + 1) * 0.01f + j * 0.001f)];
                if (base64)
                {
                    byte[] bytes = new byte[dimensions * sizeof(float)];
                    for (int j = 0; j < dimensions; j++)
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
            w.WriteString("model", model);
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", 5 * count);
            w.WriteNumber("total_tokens", 5 * count);
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }

    private static void Response(Utf8JsonWriter w, string model, string text, bool completed)
    {
        w.WriteStartObject();
        w.WriteString("id", "resp_sim0001");
        w.WriteString("object", "response");
        w.WriteNumber("created_at", Created);
        w.WriteString("status", completed ? "completed" : "in_progress");
        w.WriteNull("error");
        w.WriteNull("incomplete_details");
        w.WriteString("model", model);
        w.WriteStartArray("output");
        if (completed)
        {
            w.WriteStartObject();
            w.WriteString("type", "message");
            w.WriteString("id", "msg_sim0001");
            w.WriteString("status", "completed");
            w.WriteString("role", "assistant");
            w.WriteStartArray("content");
            w.WriteStartObject();
            w.WriteString("type", "output_text");
            w.WriteString("text", text);
            w.WriteStartArray("annotations");
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteBoolean("parallel_tool_calls", true);
        w.WriteString("tool_choice", "auto");
        w.WriteStartArray("tools");
        w.WriteEndArray();
        if (completed)
        {
            int output = text.Split(' ').Length;
            w.WriteStartObject("usage");
            w.WriteNumber("input_tokens", 9);
            w.WriteStartObject("input_tokens_details");
            w.WriteNumber("cached_tokens", 0);
            w.WriteEndObject();
            w.WriteNumber("output_tokens", output);
            w.WriteStartObject("output_tokens_details");
            w.WriteNumber("reasoning_tokens", 0);
            w.WriteEndObject();
            w.WriteNumber("total_tokens", 9 + output);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("usage");
        }
        w.WriteEndObject();
    }

    private static string Data(Action<Utf8JsonWriter> write) => "data: " + Write(write) + "\n\n";

    private static string Event(string type, int sequence, Action<Utf8JsonWriter> fields) => $"event: {type}\ndata: " + Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("type", type);
        w.WriteNumber("sequence_number", sequence);
        fields(w);
        w.WriteEndObject();
    }) + "\n\n";

    private static string Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
