using System.Buffers;
using System.Text.Json;
using Wharf.Core.Providers;

namespace Wharf.Providers.Gemini;

/// <summary>What a chat request becomes for Gemini, and what its answer must carry back.</summary>
/// <param name="Body">The <c>generateContent</c> body.</param>
/// <param name="IncludeUsage">A streamed answer ends with a usage chunk (<c>stream_options.include_usage</c>).</param>
internal sealed record GeminiChatCall(byte[] Body, bool IncludeUsage);

/// <summary>
/// An OpenAI chat completion request as a Gemini <c>generateContent</c> body: system and developer messages become
/// <c>systemInstruction</c>; user and assistant turns <c>contents</c> with roles <c>user</c> and <c>model</c>; text,
/// images and files as data URLs (<c>inlineData</c>), audio; assistant <c>tool_calls</c> become <c>functionCall</c>
/// parts and tool messages <c>functionResponse</c> parts (named after the call they answer); <c>tools</c> become
/// <c>functionDeclarations</c>, <c>tool_choice</c> a <c>functionCallingConfig</c>; sampling parameters
/// <c>generationConfig</c>. A parameter or part Gemini has no equivalent for is a 400 naming it (a value that asks
/// for nothing, such as <c>null</c> or <c>n: 1</c>, is accepted), never dropped in silence. An image by http(s)
/// URL is refused too: Wharf does not fetch URLs on a user's behalf.
/// </summary>
internal static class GeminiChatRequest
{
    /// <param name="files">What each file named by a <c>file_id</c> is on Gemini (<see cref="FileIds"/> finds them); null when none is named.</param>
    public static UpstreamOutcome<GeminiChatCall> Translate(ReadOnlyMemory<byte> body, IReadOnlyDictionary<string, GeminiFileRef>? files = null)
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
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return UpstreamFailure.Untranslatable("messages", "The request body must be a JSON object.");
            }
            var buffer = new ArrayBufferWriter<byte>();
            using var writer = new Utf8JsonWriter(buffer);
            var problem = Write(root, writer, files, out bool includeUsage);
            if (problem is not null)
            {
                return problem;
            }
            writer.Flush();
            return new GeminiChatCall(buffer.WrittenSpan.ToArray(), includeUsage);
        }
    }

    private static UpstreamFailure? Write(JsonElement root, Utf8JsonWriter writer, IReadOnlyDictionary<string, GeminiFileRef>? files, out bool includeUsage)
    {
        includeUsage = false;
        foreach (var property in root.EnumerateObject())
        {
            if (!Accepted(property, ref includeUsage))
            {
                return UpstreamFailure.Untranslatable(property.Name,
                    $"'{property.Name}' has no equivalent in the Gemini API, so the provider cannot honour it; leave it out or send the request to another provider.");
            }
        }
        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            return UpstreamFailure.Untranslatable("messages", "'messages' must be an array of messages.");
        }
        writer.WriteStartObject();
        if (WriteContents(messages, writer, files) is { } contentsProblem)
        {
            return contentsProblem;
        }
        if (WriteTools(root, writer) is { } toolsProblem)
        {
            return toolsProblem;
        }
        if (WriteGenerationConfig(root, writer) is { } configProblem)
        {
            return configProblem;
        }
        writer.WriteEndObject();
        return null;
    }

    /// <summary>Whether a top-level parameter is translated (or asks for nothing Gemini would not do anyway).</summary>
    private static bool Accepted(JsonProperty property, ref bool includeUsage)
    {
        var value = property.Value;
        if (value.ValueKind == JsonValueKind.Null)
        {
            return true;
        }
        switch (property.Name)
        {
            case "model" or "messages" or "stream" or "temperature" or "top_p" or "max_tokens" or "max_completion_tokens" or "stop"
                or "n" or "response_format" or "tools" or "tool_choice" or "presence_penalty" or "frequency_penalty" or "seed":
                return true;
            case "stream_options":
                includeUsage = value.ValueKind == JsonValueKind.Object && value.TryGetProperty("include_usage", out var usage) && usage.ValueKind == JsonValueKind.True;
                return true;
            case "logprobs" or "store":
                return value.ValueKind == JsonValueKind.False;
            case "parallel_tool_calls":
                // Gemini may answer several calls at once; it cannot be held to one.
                return value.ValueKind == JsonValueKind.True;
            case "logit_bias" or "metadata":
                return value.ValueKind == JsonValueKind.Object && !value.EnumerateObject().Any();
            default:
                return false;
        }
    }

    private static UpstreamFailure? WriteContents(JsonElement messages, Utf8JsonWriter writer, IReadOnlyDictionary<string, GeminiFileRef>? files)
    {
        // Tool calls by id, so that a tool message can name the function it answers.
        var callNames = new Dictionary<string, string>(StringComparer.Ordinal);
        var system = new List<(int Index, JsonElement Content)>();
        writer.WritePropertyName("contents");
        writer.WriteStartArray();
        bool inToolTurn = false;
        int index = -1;
        foreach (var message in messages.EnumerateArray())
        {
            index++;
            string at = $"messages[{index}]";
            if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("role", out var roleValue) || roleValue.ValueKind != JsonValueKind.String)
            {
                return UpstreamFailure.Untranslatable(at, $"'{at}' must be an object with a 'role'.");
            }
            string role = roleValue.GetString()!;
            if (UnknownField(message, role) is { } field)
            {
                return UpstreamFailure.Untranslatable($"{at}.{field}", $"'{at}.{field}' has no equivalent in the Gemini API.");
            }
            message.TryGetProperty("content", out var content);
            if (role != "tool" && inToolTurn)
            {
                writer.WriteEndArray();
                writer.WriteEndObject();
                inToolTurn = false;
            }
            switch (role)
            {
                case "system" or "developer":
                    system.Add((index, content));
                    break;
                case "user":
                    writer.WriteStartObject();
                    writer.WriteString("role", "user");
                    writer.WriteStartArray("parts");
                    if (WriteParts(content, $"{at}.content", writer, allowMedia: true, files) is { } userProblem)
                    {
                        return userProblem;
                    }
                    writer.WriteEndArray();
                    writer.WriteEndObject();
                    break;
                case "assistant":
                    writer.WriteStartObject();
                    writer.WriteString("role", "model");
                    writer.WriteStartArray("parts");
                    if (content.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null)
                        && WriteParts(content, $"{at}.content", writer, allowMedia: false) is { } assistantProblem)
                    {
                        return assistantProblem;
                    }
                    if (message.TryGetProperty("refusal", out var refusal) && refusal.ValueKind == JsonValueKind.String)
                    {
                        // What the model said when it refused: Gemini has no refusal field, so it is the turn's text.
                        writer.WriteStartObject();
                        writer.WriteString("text", refusal.GetString());
                        writer.WriteEndObject();
                    }
                    if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array
                        && WriteFunctionCalls(calls, $"{at}.tool_calls", writer, callNames) is { } callsProblem)
                    {
                        return callsProblem;
                    }
                    writer.WriteEndArray();
                    writer.WriteEndObject();
                    break;
                case "tool":
                    if (!inToolTurn)
                    {
                        // Consecutive tool messages answer one turn of calls: one user turn of function responses.
                        writer.WriteStartObject();
                        writer.WriteString("role", "user");
                        writer.WriteStartArray("parts");
                        inToolTurn = true;
                    }
                    if (WriteFunctionResponse(message, content, at, writer, callNames) is { } toolProblem)
                    {
                        return toolProblem;
                    }
                    break;
                default:
                    return UpstreamFailure.Untranslatable($"{at}.role", $"'{at}.role' '{role}' has no equivalent in the Gemini API.");
            }
        }
        if (inToolTurn)
        {
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        if (system.Count > 0)
        {
            writer.WritePropertyName("systemInstruction");
            writer.WriteStartObject();
            writer.WriteStartArray("parts");
            foreach (var (systemIndex, systemContent) in system)
            {
                if (WriteParts(systemContent, $"messages[{systemIndex}].content", writer, allowMedia: false) is { } systemProblem)
                {
                    return systemProblem;
                }
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return null;
    }

    /// <summary>A field of a message that Gemini cannot carry (a <c>name</c>, <c>audio</c>, ...), unless it is null.</summary>
    private static string? UnknownField(JsonElement message, string role)
    {
        foreach (var field in message.EnumerateObject())
        {
            bool known = field.Name switch
            {
                "role" or "content" => true,
                "tool_calls" or "refusal" => role == "assistant",
                "tool_call_id" => role == "tool",
                _ => false,
            };
            if (!known && field.Value.ValueKind != JsonValueKind.Null)
            {
                return field.Name;
            }
        }
        return null;
    }

    /// <summary>A message's content (a string or an array of parts) as Gemini parts.</summary>
    private static UpstreamFailure? WriteParts(JsonElement content, string at, Utf8JsonWriter writer, bool allowMedia, IReadOnlyDictionary<string, GeminiFileRef>? files = null)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            writer.WriteStartObject();
            writer.WriteString("text", content.GetString());
            writer.WriteEndObject();
            return null;
        }
        if (content.ValueKind != JsonValueKind.Array)
        {
            return UpstreamFailure.Untranslatable(at, $"'{at}' must be a string or an array of content parts.");
        }
        int index = -1;
        foreach (var part in content.EnumerateArray())
        {
            index++;
            string partAt = $"{at}[{index}]";
            string? type = part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            switch (type)
            {
                case "text" when part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String:
                    writer.WriteStartObject();
                    writer.WriteString("text", text.GetString());
                    writer.WriteEndObject();
                    break;
                case "image_url" when allowMedia:
                    string? url = part.TryGetProperty("image_url", out var image) && image.ValueKind == JsonValueKind.Object
                        && image.TryGetProperty("url", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
                    if (url is null || !DataUrl.TryParse(url, out string mimeType, out string data))
                    {
                        return UpstreamFailure.Untranslatable($"{partAt}.image_url",
                            $"'{partAt}.image_url' must be a base64 data URL (data:<type>;base64,...) for Gemini: Wharf does not fetch images by URL.");
                    }
                    WriteInlineData(writer, mimeType, data);
                    break;
                case "file" when allowMedia:
                    if (FileId(part) is { } fileId)
                    {
                        if (files is null || !files.TryGetValue(fileId, out var reference))
                        {
                            return UpstreamFailure.Untranslatable($"{partAt}.file.file_id", $"No such file on Gemini: '{partAt}.file.file_id'.");
                        }
                        writer.WriteStartObject();
                        writer.WriteStartObject("fileData");
                        writer.WriteString("mimeType", reference.MimeType);
                        writer.WriteString("fileUri", reference.Uri);
                        writer.WriteEndObject();
                        writer.WriteEndObject();
                        break;
                    }
                    string? fileData = part.TryGetProperty("file", out var file) && file.ValueKind == JsonValueKind.Object
                        && file.TryGetProperty("file_data", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
                    if (fileData is null || !DataUrl.TryParse(fileData, out string fileType, out string fileBase64))
                    {
                        return UpstreamFailure.Untranslatable($"{partAt}.file",
                            $"'{partAt}.file' must carry a 'file_id' (a Wharf file) or 'file_data' as a base64 data URL for Gemini.");
                    }
                    WriteInlineData(writer, fileType, fileBase64);
                    break;
                case "input_audio" when allowMedia:
                    string? audio = part.TryGetProperty("input_audio", out var input) && input.ValueKind == JsonValueKind.Object
                        && input.TryGetProperty("data", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
                    string? format = input.ValueKind == JsonValueKind.Object && input.TryGetProperty("format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
                    if (audio is null || format is not ("wav" or "mp3"))
                    {
                        return UpstreamFailure.Untranslatable($"{partAt}.input_audio", $"'{partAt}.input_audio' must hold base64 'data' and a 'format' of wav or mp3.");
                    }
                    WriteInlineData(writer, format == "wav" ? "audio/wav" : "audio/mp3", audio);
                    break;
                default:
                    return UpstreamFailure.Untranslatable(partAt, $"'{partAt}' of type '{type}' has no equivalent in a Gemini {(allowMedia ? "user" : "system or model")} turn.");
            }
        }
        return null;
    }

    /// <summary>A <c>file</c> part's <c>file_id</c> (by now the id of the file's copy on Gemini), if it names one.</summary>
    private static string? FileId(JsonElement part) =>
        part.TryGetProperty("file", out var file) && file.ValueKind == JsonValueKind.Object
        && file.TryGetProperty("file_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;

    /// <summary>
    /// Every file a request's user turns name by <c>file_id</c>, with the part's path: what must be looked up on
    /// Gemini (its URI and media type) before the request is translated. Empty for a body that names none.
    /// </summary>
    public static IReadOnlyList<(string Name, string Param)> FileIds(ReadOnlyMemory<byte> body)
    {
        if (body.Span.IndexOf("file_id"u8) < 0 && body.Span.IndexOf("\\u"u8) < 0)
        {
            return [];
        }
        var found = new List<(string, string)>();
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("messages", out var messages)
                || messages.ValueKind != JsonValueKind.Array)
            {
                return found;
            }
            int m = 0;
            foreach (var message in messages.EnumerateArray())
            {
                if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Array)
                {
                    int p = 0;
                    foreach (var part in content.EnumerateArray())
                    {
                        if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.ValueEquals("file") && FileId(part) is { } id)
                        {
                            found.Add((id, $"messages[{m}].content[{p}].file.file_id"));
                        }
                        p++;
                    }
                }
                m++;
            }
        }
        catch (JsonException)
        {
            // The translation reports a body that is not JSON.
        }
        return found;
    }

    private static void WriteInlineData(Utf8JsonWriter writer, string mimeType, string base64)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("inlineData");
        writer.WriteString("mimeType", mimeType);
        writer.WriteString("data", base64);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static UpstreamFailure? WriteFunctionCalls(JsonElement calls, string at, Utf8JsonWriter writer, Dictionary<string, string> callNames)
    {
        int index = -1;
        foreach (var call in calls.EnumerateArray())
        {
            index++;
            string callAt = $"{at}[{index}]";
            if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object
                || !function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
            {
                return UpstreamFailure.Untranslatable(callAt, $"'{callAt}' must be a function call with a name.");
            }
            if (call.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
            {
                callNames[id.GetString()!] = name.GetString()!;
            }
            writer.WriteStartObject();
            writer.WriteStartObject("functionCall");
            writer.WriteString("name", name.GetString());
            writer.WritePropertyName("args");
            string arguments = function.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : "{}";
            if (!TryWriteObject(arguments.Length == 0 ? "{}" : arguments, writer))
            {
                return UpstreamFailure.Untranslatable($"{callAt}.function.arguments", $"'{callAt}.function.arguments' must be a JSON object for Gemini.");
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return null;
    }

    private static UpstreamFailure? WriteFunctionResponse(JsonElement message, JsonElement content, string at, Utf8JsonWriter writer, Dictionary<string, string> callNames)
    {
        string? callId = message.TryGetProperty("tool_call_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
        if (callId is null || !callNames.TryGetValue(callId, out string? name))
        {
            return UpstreamFailure.Untranslatable($"{at}.tool_call_id",
                $"'{at}.tool_call_id' must name a tool call of an earlier assistant message: Gemini answers a call by its function's name.");
        }
        string text;
        if (content.ValueKind == JsonValueKind.String)
        {
            text = content.GetString()!;
        }
        else if (content.ValueKind == JsonValueKind.Array && content.EnumerateArray().All(p => p.ValueKind == JsonValueKind.Object
            && p.TryGetProperty("type", out var t) && t.ValueEquals("text") && p.TryGetProperty("text", out var x) && x.ValueKind == JsonValueKind.String))
        {
            text = string.Concat(content.EnumerateArray().Select(p => p.GetProperty("text").GetString()));
        }
        else
        {
            return UpstreamFailure.Untranslatable($"{at}.content", $"'{at}.content' must be text.");
        }
        writer.WriteStartObject();
        writer.WriteStartObject("functionResponse");
        writer.WriteString("name", name);
        writer.WritePropertyName("response");
        // Gemini takes an object: a result that is one is passed as it is, any other text as {"content": text}.
        if (!TryWriteObject(text, writer))
        {
            writer.WriteStartObject();
            writer.WriteString("content", text);
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        writer.WriteEndObject();
        return null;
    }

    /// <summary>Writes <paramref name="json"/> when it is one JSON object; writes nothing otherwise.</summary>
    private static bool TryWriteObject(string json, Utf8JsonWriter writer)
    {
        try
        {
            using var parsed = JsonDocument.Parse(json);
            if (parsed.RootElement.ValueKind != JsonValueKind.Object)
            {
                return false;
            }
            parsed.RootElement.WriteTo(writer);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static UpstreamFailure? WriteTools(JsonElement root, Utf8JsonWriter writer)
    {
        if (root.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0)
        {
            writer.WriteStartArray("tools");
            writer.WriteStartObject();
            writer.WriteStartArray("functionDeclarations");
            int index = -1;
            foreach (var tool in tools.EnumerateArray())
            {
                index++;
                if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("type", out var type) || !type.ValueEquals("function")
                    || !tool.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object
                    || !function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
                {
                    return UpstreamFailure.Untranslatable($"tools[{index}]", $"'tools[{index}]' must be a function tool with a name: Gemini takes function declarations only.");
                }
                writer.WriteStartObject();
                writer.WriteString("name", name.GetString());
                if (function.TryGetProperty("description", out var description) && description.ValueKind == JsonValueKind.String)
                {
                    writer.WriteString("description", description.GetString());
                }
                if (function.TryGetProperty("parameters", out var parameters) && parameters.ValueKind == JsonValueKind.Object)
                {
                    writer.WritePropertyName("parameters");
                    parameters.WriteTo(writer);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
            writer.WriteEndArray();
        }
        if (root.TryGetProperty("tool_choice", out var choice) && choice.ValueKind != JsonValueKind.Null)
        {
            string? mode = choice.ValueKind == JsonValueKind.String ? choice.GetString() switch
            {
                "auto" => "AUTO",
                "none" => "NONE",
                "required" => "ANY",
                _ => null,
            } : null;
            string? only = choice.ValueKind == JsonValueKind.Object && choice.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object
                && f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            if (mode is null && only is null)
            {
                return UpstreamFailure.Untranslatable("tool_choice", "'tool_choice' must be 'auto', 'none', 'required' or a named function for Gemini.");
            }
            writer.WriteStartObject("toolConfig");
            writer.WriteStartObject("functionCallingConfig");
            writer.WriteString("mode", mode ?? "ANY");
            if (only is not null)
            {
                writer.WriteStartArray("allowedFunctionNames");
                writer.WriteStringValue(only);
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return null;
    }

    private static UpstreamFailure? WriteGenerationConfig(JsonElement root, Utf8JsonWriter writer)
    {
        bool started = false;
        void Start()
        {
            if (!started)
            {
                writer.WriteStartObject("generationConfig");
                started = true;
            }
        }
        UpstreamFailure? Number(string from, string to, bool integer)
        {
            if (!root.TryGetProperty(from, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }
            if (value.ValueKind != JsonValueKind.Number || integer && !value.TryGetInt64(out _))
            {
                return UpstreamFailure.Untranslatable(from, $"'{from}' must be {(integer ? "an integer" : "a number")}.");
            }
            Start();
            writer.WritePropertyName(to);
            value.WriteTo(writer);
            return null;
        }
        var problem = Number("temperature", "temperature", false) ?? Number("top_p", "topP", false)
            ?? Number("presence_penalty", "presencePenalty", false) ?? Number("frequency_penalty", "frequencyPenalty", false)
            ?? Number("seed", "seed", true) ?? Number("n", "candidateCount", true)
            ?? Number(root.TryGetProperty("max_completion_tokens", out var mct) && mct.ValueKind != JsonValueKind.Null ? "max_completion_tokens" : "max_tokens", "maxOutputTokens", true);
        if (problem is not null)
        {
            return problem;
        }
        if (root.TryGetProperty("stop", out var stop) && stop.ValueKind != JsonValueKind.Null)
        {
            if (!(stop.ValueKind == JsonValueKind.String || stop.ValueKind == JsonValueKind.Array && stop.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String)))
            {
                return UpstreamFailure.Untranslatable("stop", "'stop' must be a string or an array of strings.");
            }
            Start();
            writer.WriteStartArray("stopSequences");
            if (stop.ValueKind == JsonValueKind.String)
            {
                writer.WriteStringValue(stop.GetString());
            }
            else
            {
                foreach (var sequence in stop.EnumerateArray())
                {
                    writer.WriteStringValue(sequence.GetString());
                }
            }
            writer.WriteEndArray();
        }
        if (root.TryGetProperty("response_format", out var format) && format.ValueKind != JsonValueKind.Null)
        {
            string? type = format.ValueKind == JsonValueKind.Object && format.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            switch (type)
            {
                case "text":
                    break;
                case "json_object":
                    Start();
                    writer.WriteString("responseMimeType", "application/json");
                    break;
                case "json_schema" when format.TryGetProperty("json_schema", out var jsonSchema) && jsonSchema.ValueKind == JsonValueKind.Object
                    && jsonSchema.TryGetProperty("schema", out var schema) && schema.ValueKind == JsonValueKind.Object:
                    Start();
                    writer.WriteString("responseMimeType", "application/json");
                    writer.WritePropertyName("responseSchema");
                    schema.WriteTo(writer);
                    break;
                default:
                    return UpstreamFailure.Untranslatable("response_format", "'response_format' must be of type text, json_object or json_schema (with a 'schema') for Gemini.");
            }
        }
        if (started)
        {
            writer.WriteEndObject();
        }
        return null;
    }
}

/// <summary>A <c>data:&lt;type&gt;;base64,&lt;data&gt;</c> URL, read without decoding its data.</summary>
internal static class DataUrl
{
    public static bool TryParse(string url, out string mimeType, out string base64)
    {
        mimeType = "";
        base64 = "";
        const string Marker = ";base64,";
        if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        int marker = url.IndexOf(Marker, StringComparison.OrdinalIgnoreCase);
        if (marker <= "data:".Length)
        {
            return false;
        }
        mimeType = url["data:".Length..marker];
        base64 = url[(marker + Marker.Length)..];
        return mimeType.Contains('/', StringComparison.Ordinal) && base64.Length > 0;
    }
}
