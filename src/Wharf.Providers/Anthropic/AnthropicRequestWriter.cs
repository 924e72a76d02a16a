using System.Text.Json;
using static Wharf.Providers.Anthropic.AnthropicJson;
using Wharf.Core.Providers;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// Writes one OpenAI chat completion request as an Anthropic Messages request: system and developer messages become
/// <c>system</c>; user, assistant and tool messages become alternating turns (consecutive ones of a role merged, tool
/// results in a user turn); images, tools, <c>tool_choice</c>, <c>stop</c>, the token limit, sampling and <c>user</c>
/// are mapped. The first parameter that cannot be translated ends the writing with a refusal naming it.
/// </summary>
internal sealed class AnthropicRequestWriter(Utf8JsonWriter writer, int defaultMaxTokens)
{
    /// <summary>What Anthropic takes as a base64 image's <c>media_type</c>.</summary>
    private static readonly HashSet<string> ImageTypes = new(StringComparer.OrdinalIgnoreCase) { "image/jpeg", "image/png", "image/gif", "image/webp" };

    /// <summary>Parameters read here, or harmless when they ask for nothing (checked in <see cref="NoEquivalent"/>).</summary>
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream", "stream_options",
        "tools", "tool_choice", "parallel_tool_calls", "user", "n", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty",
        "response_format", "modalities",
    };

    public bool IncludeUsage { get; private set; }

    private abstract record Block;

    private sealed record TextBlock(string Text) : Block;

    private sealed record ImageBlock(string? Url, string? MediaType, string? Data) : Block;

    /// <summary>A file on Anthropic's Files API (Wharf's id already rewritten to its copy there), as a document or an image.</summary>
    private sealed record FileBlock(string FileId, bool Image) : Block;

    private sealed record ToolUseBlock(string Id, string Name, JsonElement Input) : Block;

    private sealed record ToolResultBlock(string ToolUseId, string Content) : Block;

    private sealed record Turn(string Role, List<Block> Blocks);

    /// <summary>Writes the request; null when it was written, else the refusal (and the writer's output is to be dropped).</summary>
    public UpstreamFailure? Write(JsonElement request, string model)
    {
        foreach (var property in request.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.Null && (!Known.Contains(property.Name) || NoEquivalent(property)))
            {
                return UpstreamFailure.Untranslatable(property.Name, $"'{property.Name}' has no equivalent in Anthropic's Messages API.");
            }
        }
        if (!request.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            return UpstreamFailure.Untranslatable("messages", "'messages' must be an array of messages.");
        }
        var system = new List<string>();
        var turns = new List<Turn>();
        int index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (ReadMessage(message, $"messages[{index}]", system, turns) is { } refusal)
            {
                return refusal;
            }
            index++;
        }
        if (turns.Count == 0)
        {
            return UpstreamFailure.Untranslatable("messages", "'messages' must hold at least one user or assistant message.");
        }
        if (MaxTokens(request) is not { } maxTokens)
        {
            string name = request.TryGetProperty("max_completion_tokens", out var given) && given.ValueKind != JsonValueKind.Null ? "max_completion_tokens" : "max_tokens";
            return UpstreamFailure.Untranslatable(name, $"'{name}' must be a positive integer.");
        }
        writer.WriteStartObject();
        writer.WriteString("model", model);
        writer.WriteNumber("max_tokens", maxTokens);
        if (system.Count > 0)
        {
            writer.WriteStartArray("system");
            foreach (string text in system)
            {
                writer.WriteStartObject();
                writer.WriteString("type", "text");
                writer.WriteString("text", text);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        WriteTurns(turns);
        return WriteParameters(request);
    }

    /// <summary>Whether a known parameter asks for something Anthropic cannot do.</summary>
    private static bool NoEquivalent(JsonProperty property) => property.Name switch
    {
        "n" => !(property.Value.ValueKind == JsonValueKind.Number && property.Value.TryGetInt32(out int n) && n == 1),
        "logprobs" => property.Value.ValueKind != JsonValueKind.False,
        "top_logprobs" => !(property.Value.ValueKind == JsonValueKind.Number && property.Value.TryGetInt32(out int top) && top == 0),
        "presence_penalty" or "frequency_penalty" => !(property.Value.ValueKind == JsonValueKind.Number && property.Value.GetDouble() == 0),
        "response_format" => !(property.Value.ValueKind == JsonValueKind.Object && Text(property.Value, "type") == "text"),
        "modalities" => !(property.Value.ValueKind == JsonValueKind.Array && property.Value.EnumerateArray().All(m => m.ValueKind == JsonValueKind.String && m.GetString() == "text")),
        _ => false,
    };

    private long? MaxTokens(JsonElement request)
    {
        foreach (string name in (string[])["max_completion_tokens", "max_tokens"])
        {
            if (request.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long tokens) && tokens >= 1 ? tokens : null;
            }
        }
        return defaultMaxTokens;
    }

    private static UpstreamFailure? ReadMessage(JsonElement message, string path, List<string> system, List<Turn> turns)
    {
        if (message.ValueKind != JsonValueKind.Object)
        {
            return UpstreamFailure.Untranslatable(path, $"'{path}' must be a message object.");
        }
        if (Text(message, "role") is not ("system" or "developer" or "user" or "assistant" or "tool"))
        {
            return UpstreamFailure.Untranslatable($"{path}.role", $"'{path}.role' must be system, developer, user, assistant or tool.");
        }
        if (message.TryGetProperty("name", out var name) && name.ValueKind != JsonValueKind.Null)
        {
            return UpstreamFailure.Untranslatable($"{path}.name", $"'{path}.name' has no equivalent in Anthropic's Messages API.");
        }
        var blocks = new List<Block>();
        string role;
        switch (Text(message, "role"))
        {
            case "system" or "developer":
                if (ReadContent(message, path, blocks, imagesAllowed: false) is { } systemRefusal)
                {
                    return systemRefusal;
                }
                system.AddRange(blocks.OfType<TextBlock>().Select(b => b.Text));
                return null;
            case "user":
                role = "user";
                if (ReadContent(message, path, blocks, imagesAllowed: true) is { } userRefusal)
                {
                    return userRefusal;
                }
                break;
            case "assistant":
                role = "assistant";
                if (ReadContent(message, path, blocks, imagesAllowed: false) is { } assistantRefusal)
                {
                    return assistantRefusal;
                }
                if (ReadToolCalls(message, path, blocks) is { } toolRefusal)
                {
                    return toolRefusal;
                }
                break;
            case "tool":
                role = "user";
                if (Text(message, "tool_call_id") is not { Length: > 0 } toolCallId)
                {
                    return UpstreamFailure.Untranslatable($"{path}.tool_call_id", $"'{path}.tool_call_id' is required in a tool message.");
                }
                var contents = new List<Block>();
                if (ReadContent(message, path, contents, imagesAllowed: false) is { } resultRefusal)
                {
                    return resultRefusal;
                }
                blocks.Add(new ToolResultBlock(toolCallId, string.Concat(contents.OfType<TextBlock>().Select(b => b.Text))));
                break;
            default:
                return UpstreamFailure.Untranslatable($"{path}.role", $"'{path}.role' must be system, developer, user, assistant or tool.");
        }
        blocks.RemoveAll(b => b is TextBlock { Text.Length: 0 });
        if (blocks.Count == 0)
        {
            return null; // an empty message says nothing; Anthropic refuses empty text
        }
        if (turns.Count > 0 && turns[^1].Role == role)
        {
            turns[^1].Blocks.AddRange(blocks);
        }
        else
        {
            turns.Add(new Turn(role, blocks));
        }
        return null;
    }

    private static UpstreamFailure? ReadContent(JsonElement message, string path, List<Block> blocks, bool imagesAllowed)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            blocks.Add(new TextBlock(content.GetString()!));
            return null;
        }
        if (content.ValueKind != JsonValueKind.Array)
        {
            return UpstreamFailure.Untranslatable($"{path}.content", $"'{path}.content' must be a string or an array of parts.");
        }
        int index = 0;
        foreach (var part in content.EnumerateArray())
        {
            string partPath = $"{path}.content[{index++}]";
            switch (Text(part, "type"))
            {
                case "text" when Text(part, "text") is { } text:
                    blocks.Add(new TextBlock(text));
                    break;
                case "image_url" when imagesAllowed:
                    if (ReadImage(part, partPath) is not { } image)
                    {
                        return UpstreamFailure.Untranslatable($"{partPath}.image_url.url",
                            $"'{partPath}.image_url.url' must be an http(s) URL or a base64 data URL of a JPEG, PNG, GIF or WebP image.");
                    }
                    blocks.Add(image);
                    break;
                case "file" when imagesAllowed:
                    if (!part.TryGetProperty("file", out var file) || Text(file, "file_id") is not { Length: > 0 } fileId)
                    {
                        return UpstreamFailure.Untranslatable($"{partPath}.file.file_id",
                            $"'{partPath}.file' must name a file by its 'file_id' (inline 'file_data' is not translated for Anthropic).");
                    }
                    blocks.Add(new FileBlock(fileId, IsImageName(Text(file, "filename"))));
                    break;
                default:
                    return UpstreamFailure.Untranslatable($"{partPath}.type", $"A '{Text(part, "type")}' part in '{path}' has no equivalent in Anthropic's Messages API.");
            }
        }
        return null;
    }

    /// <summary>Whether a file part's <c>filename</c> names an image (then it is sent as an image block, else as a document).</summary>
    private static bool IsImageName(string? filename) =>
        Path.GetExtension(filename ?? "").ToLowerInvariant() is ".jpg" or ".jpeg" or ".png" or ".gif" or ".webp";

    /// <summary>An image part: a base64 data URL (<c>data:image/png;base64,...</c>) or an http(s) URL.</summary>
    private static ImageBlock? ReadImage(JsonElement part, string path)
    {
        if (!part.TryGetProperty("image_url", out var imageUrl) || Text(imageUrl, "url") is not { } url)
        {
            return null;
        }
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            int comma = url.IndexOf(',');
            const string Base64Marker = ";base64";
            if (comma < 0 || !url.AsSpan(0, comma).EndsWith(Base64Marker, StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }
            string mediaType = url["data:".Length..(comma - Base64Marker.Length)];
            return ImageTypes.Contains(mediaType) ? new ImageBlock(null, mediaType.ToLowerInvariant(), url[(comma + 1)..]) : null;
        }
        return Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" ? new ImageBlock(url, null, null) : null;
    }

    private static UpstreamFailure? ReadToolCalls(JsonElement message, string path, List<Block> blocks)
    {
        if (!message.TryGetProperty("tool_calls", out var calls) || calls.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (calls.ValueKind != JsonValueKind.Array)
        {
            return UpstreamFailure.Untranslatable($"{path}.tool_calls", $"'{path}.tool_calls' must be an array.");
        }
        int index = 0;
        foreach (var call in calls.EnumerateArray())
        {
            string callPath = $"{path}.tool_calls[{index++}]";
            if (Text(call, "type") is not (null or "function") || !call.TryGetProperty("function", out var function)
                || Text(call, "id") is not { Length: > 0 } id || Text(function, "name") is not { Length: > 0 } name)
            {
                return UpstreamFailure.Untranslatable(callPath, $"'{callPath}' must be a function call with an id and a name.");
            }
            string arguments = Text(function, "arguments") is { Length: > 0 } given ? given : "{}";
            JsonElement input;
            try
            {
                using var parsed = JsonDocument.Parse(arguments);
                input = parsed.RootElement.Clone();
            }
            catch (JsonException)
            {
                input = default;
            }
            if (input.ValueKind != JsonValueKind.Object)
            {
                return UpstreamFailure.Untranslatable($"{callPath}.function.arguments", $"'{callPath}.function.arguments' must be a JSON object (Anthropic's tool input).");
            }
            blocks.Add(new ToolUseBlock(id, name, input));
        }
        return null;
    }

    private void WriteTurns(List<Turn> turns)
    {
        writer.WriteStartArray("messages");
        foreach (var turn in turns)
        {
            writer.WriteStartObject();
            writer.WriteString("role", turn.Role);
            writer.WriteStartArray("content");
            foreach (var block in turn.Blocks)
            {
                WriteBlock(block);
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    private void WriteBlock(Block block)
    {
        writer.WriteStartObject();
        switch (block)
        {
            case TextBlock text:
                writer.WriteString("type", "text");
                writer.WriteString("text", text.Text);
                break;
            case ImageBlock image:
                writer.WriteString("type", "image");
                writer.WriteStartObject("source");
                if (image.Url is not null)
                {
                    writer.WriteString("type", "url");
                    writer.WriteString("url", image.Url);
                }
                else
                {
                    writer.WriteString("type", "base64");
                    writer.WriteString("media_type", image.MediaType);
                    writer.WriteString("data", image.Data);
                }
                writer.WriteEndObject();
                break;
            case FileBlock file:
                writer.WriteString("type", file.Image ? "image" : "document");
                writer.WriteStartObject("source");
                writer.WriteString("type", "file");
                writer.WriteString("file_id", file.FileId);
                writer.WriteEndObject();
                break;
            case ToolUseBlock toolUse:
                writer.WriteString("type", "tool_use");
                writer.WriteString("id", toolUse.Id);
                writer.WriteString("name", toolUse.Name);
                writer.WritePropertyName("input");
                toolUse.Input.WriteTo(writer);
                break;
            case ToolResultBlock result:
                writer.WriteString("type", "tool_result");
                writer.WriteString("tool_use_id", result.ToolUseId);
                writer.WriteString("content", result.Content);
                break;
        }
        writer.WriteEndObject();
    }

    /// <summary>Everything after the messages: stop sequences, sampling, metadata, tools, stream.</summary>
    private UpstreamFailure? WriteParameters(JsonElement request)
    {
        if (request.TryGetProperty("stop", out var stop) && stop.ValueKind != JsonValueKind.Null)
        {
            if (stop.ValueKind == JsonValueKind.String)
            {
                writer.WriteStartArray("stop_sequences");
                writer.WriteStringValue(stop.GetString());
                writer.WriteEndArray();
            }
            else if (stop.ValueKind == JsonValueKind.Array && stop.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String))
            {
                writer.WritePropertyName("stop_sequences");
                stop.WriteTo(writer);
            }
            else
            {
                return UpstreamFailure.Untranslatable("stop", "'stop' must be a string or an array of strings.");
            }
        }
        if (request.TryGetProperty("temperature", out var temperature) && temperature.ValueKind != JsonValueKind.Null)
        {
            if (temperature.ValueKind != JsonValueKind.Number || temperature.GetDouble() is < 0 or > 1)
            {
                return UpstreamFailure.Untranslatable("temperature", "'temperature' must be between 0 and 1 for Anthropic (it has no equivalent of OpenAI's values above 1).");
            }
            writer.WritePropertyName("temperature");
            temperature.WriteTo(writer);
        }
        if (request.TryGetProperty("top_p", out var topP) && topP.ValueKind != JsonValueKind.Null)
        {
            if (topP.ValueKind != JsonValueKind.Number)
            {
                return UpstreamFailure.Untranslatable("top_p", "'top_p' must be a number.");
            }
            writer.WritePropertyName("top_p");
            topP.WriteTo(writer);
        }
        if (Text(request, "user") is { } user)
        {
            writer.WriteStartObject("metadata");
            writer.WriteString("user_id", user);
            writer.WriteEndObject();
        }
        if (WriteTools(request) is { } refusal)
        {
            return refusal;
        }
        bool stream = request.TryGetProperty("stream", out var streamFlag) && streamFlag.ValueKind == JsonValueKind.True;
        if (stream)
        {
            writer.WriteBoolean("stream", true);
            IncludeUsage = request.TryGetProperty("stream_options", out var options) && options.ValueKind == JsonValueKind.Object
                && options.TryGetProperty("include_usage", out var include) && include.ValueKind == JsonValueKind.True;
        }
        writer.WriteEndObject();
        return null;
    }

    private UpstreamFailure? WriteTools(JsonElement request)
    {
        if (request.TryGetProperty("tools", out var tools) && tools.ValueKind != JsonValueKind.Null)
        {
            if (tools.ValueKind != JsonValueKind.Array)
            {
                return UpstreamFailure.Untranslatable("tools", "'tools' must be an array.");
            }
            writer.WriteStartArray("tools");
            int index = 0;
            foreach (var tool in tools.EnumerateArray())
            {
                string path = $"tools[{index++}]";
                if (Text(tool, "type") != "function" || !tool.TryGetProperty("function", out var function) || Text(function, "name") is not { Length: > 0 } name)
                {
                    return UpstreamFailure.Untranslatable(path, $"'{path}' must be a function tool with a name (Anthropic has no equivalent of other tools).");
                }
                if (function.TryGetProperty("strict", out var strict) && strict.ValueKind == JsonValueKind.True)
                {
                    return UpstreamFailure.Untranslatable($"{path}.function.strict", $"'{path}.function.strict' has no equivalent in Anthropic's Messages API.");
                }
                writer.WriteStartObject();
                writer.WriteString("name", name);
                if (Text(function, "description") is { } description)
                {
                    writer.WriteString("description", description);
                }
                writer.WritePropertyName("input_schema");
                if (function.TryGetProperty("parameters", out var parameters) && parameters.ValueKind == JsonValueKind.Object)
                {
                    parameters.WriteTo(writer);
                }
                else
                {
                    writer.WriteStartObject();
                    writer.WriteString("type", "object");
                    writer.WriteEndObject();
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        bool serial = request.TryGetProperty("parallel_tool_calls", out var parallel) && parallel.ValueKind == JsonValueKind.False;
        string? choiceType = null;
        string? toolName = null;
        if (request.TryGetProperty("tool_choice", out var choice) && choice.ValueKind != JsonValueKind.Null)
        {
            (choiceType, toolName) = choice.ValueKind switch
            {
                JsonValueKind.String => choice.GetString() switch
                {
                    "none" => ("none", null),
                    "auto" => ("auto", null),
                    "required" => ("any", null),
                    _ => (null, null),
                },
                JsonValueKind.Object when Text(choice, "type") == "function" && choice.TryGetProperty("function", out var named)
                    && Text(named, "name") is { Length: > 0 } chosen => ("tool", chosen),
                _ => (null, null),
            };
            if (choiceType is null)
            {
                return UpstreamFailure.Untranslatable("tool_choice", "'tool_choice' must be none, auto, required or a named function.");
            }
        }
        else if (serial)
        {
            choiceType = "auto";
        }
        if (choiceType is not null)
        {
            writer.WriteStartObject("tool_choice");
            writer.WriteString("type", choiceType);
            if (toolName is not null)
            {
                writer.WriteString("name", toolName);
            }
            if (serial && choiceType != "none")
            {
                writer.WriteBoolean("disable_parallel_tool_use", true);
            }
            writer.WriteEndObject();
        }
        return null;
    }
}
