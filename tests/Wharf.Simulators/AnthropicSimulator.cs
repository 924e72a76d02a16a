using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Wharf.Simulators;

/// <summary>
/// Anthropic's Messages API as its public reference describes it: <c>POST /v1/messages</c> with <c>x-api-key</c> and
/// <c>anthropic-version</c>; a body with <c>model</c>, <c>max_tokens</c> and <c>messages</c> (user and assistant turns
/// alternating, <c>system</c> only at the top level, no unknown fields); answers as a message object or as its event
/// stream (<c>message_start</c>, <c>content_block_*</c>, <c>ping</c>, <c>message_delta</c>, <c>message_stop</c>);
/// errors as <c>{"type":"error","error":{"type","message"},"request_id"}</c>. With tools offered and no tool result
/// yet, the answer calls the first tool with <see cref="ToolInput"/>.
/// </summary>
public sealed partial class AnthropicSimulator : UpstreamSimulator
{
    private static readonly HashSet<string> TopLevel = new(StringComparer.Ordinal)
    {
        "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k", "metadata",
        "tools", "tool_choice", "thinking", "service_tier",
    };

    private static readonly HashSet<string> ImageTypes = new(StringComparer.Ordinal) { "image/jpeg", "image/png", "image/gif", "image/webp" };

    private AnthropicSimulator(string apiKey) : base(apiKey)
    {
    }

    public static async Task<AnthropicSimulator> StartAsync(string apiKey = "sk-ant-sim-0123456789abcdef")
    {
        var simulator = new AnthropicSimulator(apiKey);
        await simulator.ListenAsync();
        return simulator;
    }

    /// <summary>Anthropic's SDK takes the origin as its base URL (the paths start with <c>/v1</c>).</summary>
    public override Uri BaseUrl => Origin;

    /// <summary>The input of a tool call the simulator makes.</summary>
    public string ToolInput { get; set; } = """{"city":"Paris","unit":"celsius"}""";

    /// <summary>Tokens reported as read from the prompt cache (<c>cache_read_input_tokens</c>).</summary>
    public int CacheReadTokens { get; set; }

    /// <summary>Tokens reported as written to the prompt cache (<c>cache_creation_input_tokens</c>).</summary>
    public int CacheCreationTokens { get; set; }

    /// <summary>When set, a stream sends this many events, then an <c>error</c> event (<c>overloaded_error</c>) and ends.</summary>
    public int? ErrorEventAfter { get; set; }

    /// <summary>The beta the Files API needs, in <c>anthropic-beta</c> (a comma-separated list).</summary>
    public const string FilesBeta = "files-api-2025-04-14";

    protected override SimulatedRoute? Resolve(HttpRequest request)
    {
        string path = request.Path.Value ?? "";
        string[] parts = path.StartsWith("/v1/", StringComparison.Ordinal) ? path["/v1/".Length..].Split('/') : [];
        return (request.Method, parts) switch
        {
            ("POST", ["messages"]) => new(SimulatedOperation.ChatCompletions),
            ("POST", ["files"]) => new(SimulatedOperation.FileUpload),
            ("GET", ["files"]) => new(SimulatedOperation.FileList),
            ("GET", ["files", var id]) => new(SimulatedOperation.FileGet, Uri.UnescapeDataString(id)),
            ("DELETE", ["files", var id]) => new(SimulatedOperation.FileDelete, Uri.UnescapeDataString(id)),
            ("POST", ["messages", "batches"]) => new(SimulatedOperation.BatchCreate),
            ("GET", ["messages", "batches"]) => new(SimulatedOperation.BatchList),
            ("GET", ["messages", "batches", var id]) => new(SimulatedOperation.BatchGet, Uri.UnescapeDataString(id)),
            ("POST", ["messages", "batches", var id, "cancel"]) => new(SimulatedOperation.BatchCancel, Uri.UnescapeDataString(id)),
            ("GET", ["messages", "batches", var id, "results"]) => new(SimulatedOperation.BatchResults, Uri.UnescapeDataString(id)),
            _ => null,
        };
    }

    protected override bool UploadNeedsPurpose => false;

    /// <summary>The Files API's file object: <c>size_bytes</c>, <c>mime_type</c>, <c>created_at</c> as RFC 3339.</summary>
    protected override string FileObjectJson(SimulatedFile file) => FileNode(file).ToJsonString(SimulatedAnswers.JsonOptions);

    private static JsonObject FileNode(SimulatedFile file) => new()
    {
        ["id"] = file.Id,
        ["type"] = "file",
        ["filename"] = file.Filename,
        ["mime_type"] = "application/pdf",
        ["size_bytes"] = file.Content.Length,
        ["created_at"] = DateTimeOffset.FromUnixTimeSeconds(file.CreatedAt).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        ["downloadable"] = false,
    };

    /// <summary>The Files API's list: newest first, <c>limit</c> (1–1000, default 20), <c>after_id</c>, <c>before_id</c>.</summary>
    protected override string ListFiles(IQueryCollection query)
    {
        int limit = int.TryParse(query["limit"], out int l) && l is >= 1 and <= 1000 ? l : 20;
        var ordered = Files.OrderByDescending(f => f.Id, StringComparer.Ordinal).ToList();
        if (query["after_id"].ToString() is { Length: > 0 } after)
        {
            int index = ordered.FindIndex(f => f.Id == after);
            ordered = index < 0 ? [] : ordered.Skip(index + 1).ToList();
        }
        var page = ordered.Take(limit).ToList();
        var data = new JsonArray([.. page.Select(f => (JsonNode)FileNode(f))]);
        return new JsonObject
        {
            ["data"] = data,
            ["has_more"] = ordered.Count > limit,
            ["first_id"] = page.FirstOrDefault()?.Id,
            ["last_id"] = page.LastOrDefault()?.Id,
        }.ToJsonString(SimulatedAnswers.JsonOptions);
    }

    protected override (int Status, string Body)? CheckProtocol(HttpRequest request, SimulatedRoute route)
    {
        if (route.Operation is SimulatedOperation.FileUpload or SimulatedOperation.FileList or SimulatedOperation.FileGet or SimulatedOperation.FileDelete
            && !request.Headers["anthropic-beta"].ToString().Split(',').Select(b => b.Trim()).Contains(FilesBeta))
        {
            return (400, ErrorBody(400, $"The Files API is in beta: the anthropic-beta header must include {FilesBeta}."));
        }
        string version = request.Headers["anthropic-version"].ToString();
        if (version.Length == 0)
        {
            return (400, ErrorBody(400, "anthropic-version: header is required"));
        }
        return version is "2023-06-01" or "2023-01-01" ? null : (400, ErrorBody(400, $"anthropic-version: invalid version '{version}'"));
    }

    protected override (int Status, string Body)? CheckKey(HttpRequest request)
    {
        string key = request.Headers["x-api-key"].ToString();
        if (key.Length == 0)
        {
            return (401, ErrorBody(401, "x-api-key header is required"));
        }
        return key == ApiKey ? null : (401, ErrorBody(401, "invalid x-api-key"));
    }

    protected override string ErrorBody(int status, string message, string? param = null, string? code = null)
    {
        string type = status switch
        {
            400 => "invalid_request_error",
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        return JsonSerializer.Serialize(new { type = "error", error = new { type, message }, request_id = "req_sim0001" }, SimulatedAnswers.JsonOptions);
    }

    protected override (int Status, string Body) NotFound() => (404, ErrorBody(404, "Not found"));

    protected override (int Status, string Body)? CheckModelRequest(SimulatedRoute route, JsonElement body)
    {
        if (Problem(body) is { } problem)
        {
            return (400, ErrorBody(400, problem));
        }
        var known = Files.Select(f => f.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var message in body.GetProperty("messages").EnumerateArray())
        {
            if (message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Array)
            {
                foreach (var block in content.EnumerateArray())
                {
                    if (block.TryGetProperty("source", out var source) && Text(source, "type") == "file" && !known.Contains(Text(source, "file_id")!))
                    {
                        return (404, ErrorBody(404, $"File not found: {Text(source, "file_id")}"));
                    }
                }
            }
        }
        return null;
    }

    /// <summary>What the Messages API would refuse in this body, or null.</summary>
    private static string? Problem(JsonElement body)
    {
        foreach (var property in body.EnumerateObject())
        {
            if (!TopLevel.Contains(property.Name))
            {
                return $"{property.Name}: Extra inputs are not permitted";
            }
        }
        if (!body.TryGetProperty("max_tokens", out var maxTokens) || maxTokens.ValueKind != JsonValueKind.Number || !maxTokens.TryGetInt32(out int max) || max < 1)
        {
            return "max_tokens: Field required";
        }
        if (!body.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            return "messages: Field required";
        }
        if (body.TryGetProperty("system", out var system) && system.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
        {
            return "system: Input should be a valid string or list of text blocks";
        }
        if (body.TryGetProperty("temperature", out var temperature) && (temperature.ValueKind != JsonValueKind.Number || temperature.GetDouble() is < 0 or > 1))
        {
            return "temperature: Input should be less than or equal to 1";
        }
        if (body.TryGetProperty("stop_sequences", out var stops) && (stops.ValueKind != JsonValueKind.Array || stops.EnumerateArray().Any(s => s.ValueKind != JsonValueKind.String)))
        {
            return "stop_sequences: Input should be a valid list of strings";
        }
        if (body.TryGetProperty("metadata", out var metadata) && (metadata.ValueKind != JsonValueKind.Object || metadata.EnumerateObject().Any(m => m.Name != "user_id")))
        {
            return "metadata: only user_id is permitted";
        }
        var toolNames = new HashSet<string>(StringComparer.Ordinal);
        if (body.TryGetProperty("tools", out var tools))
        {
            foreach (var tool in tools.EnumerateArray())
            {
                if (Text(tool, "name") is not { Length: > 0 } name || !tool.TryGetProperty("input_schema", out var schema) || schema.ValueKind != JsonValueKind.Object)
                {
                    return "tools: each tool needs a name and an input_schema object";
                }
                toolNames.Add(name);
            }
        }
        if (body.TryGetProperty("tool_choice", out var choice))
        {
            string? type = Text(choice, "type");
            if (type is not ("auto" or "any" or "tool" or "none") || type == "tool" && !toolNames.Contains(Text(choice, "name") ?? ""))
            {
                return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none' (or names no tool)";
            }
        }
        string? previousRole = null;
        var toolUses = new HashSet<string>(StringComparer.Ordinal);
        int index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            string? role = Text(message, "role");
            if (role is "system")
            {
                return $"messages.{index}.role: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.";
            }
            if (role is not ("user" or "assistant"))
            {
                return $"messages.{index}.role: Input should be 'user' or 'assistant'";
            }
            if (role == previousRole)
            {
                return $"messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row";
            }
            if (BlockProblem(message, role, index, toolUses) is { } problem)
            {
                return problem;
            }
            previousRole = role;
            index++;
        }
        return null;
    }

    private static string? BlockProblem(JsonElement message, string role, int index, HashSet<string> toolUses)
    {
        if (!message.TryGetProperty("content", out var content))
        {
            return $"messages.{index}.content: Field required";
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!.Length == 0 ? $"messages.{index}: text content blocks must be non-empty" : null;
        }
        if (content.ValueKind != JsonValueKind.Array || content.GetArrayLength() == 0)
        {
            return $"messages.{index}.content: Input should be a valid string or a non-empty list";
        }
        int blockIndex = 0;
        foreach (var block in content.EnumerateArray())
        {
            string where = $"messages.{index}.content.{blockIndex++}";
            switch (Text(block, "type"))
            {
                case "text" when Text(block, "text") is { Length: > 0 }:
                    break;
                case "text":
                    return $"{where}: text content blocks must be non-empty";
                case "image" when role == "user" && block.TryGetProperty("source", out var source):
                    bool valid = Text(source, "type") switch
                    {
                        "base64" => ImageTypes.Contains(Text(source, "media_type") ?? "") && IsBase64(Text(source, "data")),
                        "url" => Uri.TryCreate(Text(source, "url"), UriKind.Absolute, out _),
                        "file" => Text(source, "file_id") is { Length: > 0 },
                        _ => false,
                    };
                    if (!valid)
                    {
                        return $"{where}.source: Input tag does not match any of the expected tags or the image is not valid";
                    }
                    break;
                case "document" when role == "user" && block.TryGetProperty("source", out var document):
                    if (Text(document, "type") is not ("file" or "base64" or "text" or "url"))
                    {
                        return $"{where}.source: Input tag does not match any of the expected tags";
                    }
                    break;
                case "tool_use" when role == "assistant" && Text(block, "id") is { Length: > 0 } id && Text(block, "name") is { Length: > 0 }
                    && block.TryGetProperty("input", out var input) && input.ValueKind == JsonValueKind.Object:
                    toolUses.Add(id);
                    break;
                case "tool_result" when role == "user":
                    if (!toolUses.Contains(Text(block, "tool_use_id") ?? ""))
                    {
                        return $"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {Text(block, "tool_use_id")}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.";
                    }
                    break;
                default:
                    return $"{where}: Input tag '{Text(block, "type")}' is not a valid block for role '{role}'";
            }
        }
        return null;
    }

    private static bool IsBase64(string? data)
    {
        if (string.IsNullOrEmpty(data))
        {
            return false;
        }
        var buffer = new byte[data.Length];
        return Convert.TryFromBase64String(data, buffer, out _);
    }

    /// <summary>What the simulated model says to this request: text, cut by a stop sequence or the token limit, then maybe a tool call.</summary>
    private (List<string> Words, string StopReason, string? StopSequence, string? Tool) Reply(JsonElement body)
    {
        var words = ReplyText.Split(' ').Select((word, i) => i == 0 ? word : " " + word).ToList();
        int maxTokens = body.GetProperty("max_tokens").GetInt32();
        if (body.TryGetProperty("stop_sequences", out var stops))
        {
            foreach (var stop in stops.EnumerateArray())
            {
                int at = words.FindIndex(w => w.Trim() == stop.GetString());
                if (at >= 0)
                {
                    return (words.Take(at).ToList(), "stop_sequence", stop.GetString(), null);
                }
            }
        }
        if (words.Count > maxTokens)
        {
            return (words.Take(maxTokens).ToList(), "max_tokens", null, null);
        }
        var messages = body.GetProperty("messages");
        var last = messages[messages.GetArrayLength() - 1];
        bool answered = last.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Array
            && content.EnumerateArray().Any(b => Text(b, "type") == "tool_result");
        if (!answered && body.TryGetProperty("tools", out var tools) && tools.GetArrayLength() > 0
            && !(body.TryGetProperty("tool_choice", out var choice) && Text(choice, "type") == "none"))
        {
            string tool = body.TryGetProperty("tool_choice", out var named) && Text(named, "type") == "tool" ? Text(named, "name")! : Text(tools[0], "name")!;
            return (["Let me check."], "tool_use", null, tool);
        }
        return (words, "end_turn", null, null);
    }

    private JsonObject Usage(JsonElement body, int output) => new()
    {
        ["input_tokens"] = Math.Max(1, body.GetRawText().Length / 4),
        ["cache_creation_input_tokens"] = CacheCreationTokens,
        ["cache_read_input_tokens"] = CacheReadTokens,
        ["output_tokens"] = output,
    };

    protected override string ModelAnswer(SimulatedRoute route, string model, JsonElement body)
    {
        var (words, stopReason, stopSequence, tool) = Reply(body);
        var content = new JsonArray();
        if (words.Count > 0)
        {
            content.Add(new JsonObject { ["type"] = "text", ["text"] = string.Concat(words) });
        }
        if (tool is not null)
        {
            content.Add(new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_sim0001", ["name"] = tool, ["input"] = JsonNode.Parse(ToolInput) });
        }
        return new JsonObject
        {
            ["id"] = "msg_sim0001",
            ["type"] = "message",
            ["role"] = "assistant",
            ["model"] = model,
            ["content"] = content,
            ["stop_reason"] = stopReason,
            ["stop_sequence"] = stopSequence,
            ["usage"] = Usage(body, words.Count + (tool is null ? 0 : 10)),
        }.ToJsonString(SimulatedAnswers.JsonOptions);
    }

    protected override IEnumerable<string> ModelEvents(SimulatedRoute route, string model, JsonElement body)
    {
        var events = AllEvents(model, body);
        return ErrorEventAfter is { } after
            ? events.Take(after).Append(Event("error", new JsonObject { ["type"] = "error", ["error"] = new JsonObject { ["type"] = "overloaded_error", ["message"] = "Overloaded" } }))
            : events;
    }

    private IEnumerable<string> AllEvents(string model, JsonElement body)
    {
        var (words, stopReason, stopSequence, tool) = Reply(body);
        var startUsage = Usage(body, 1);
        yield return Event("message_start", new JsonObject
        {
            ["type"] = "message_start",
            ["message"] = new JsonObject
            {
                ["id"] = "msg_sim0001", ["type"] = "message", ["role"] = "assistant", ["model"] = model, ["content"] = new JsonArray(),
                ["stop_reason"] = null, ["stop_sequence"] = null, ["usage"] = startUsage,
            },
        });
        int index = 0;
        if (words.Count > 0)
        {
            yield return Event("content_block_start", new JsonObject { ["type"] = "content_block_start", ["index"] = index, ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" } });
            yield return Event("ping", new JsonObject { ["type"] = "ping" });
            foreach (string word in words)
            {
                yield return Event("content_block_delta", new JsonObject { ["type"] = "content_block_delta", ["index"] = index, ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = word } });
            }
            yield return Event("content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = index });
            index++;
        }
        if (tool is not null)
        {
            yield return Event("content_block_start", new JsonObject
            {
                ["type"] = "content_block_start", ["index"] = index,
                ["content_block"] = new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_sim0001", ["name"] = tool, ["input"] = new JsonObject() },
            });
            int half = ToolInput.Length / 2;
            foreach (string piece in (string[])["", ToolInput[..half], ToolInput[half..]])
            {
                yield return Event("content_block_delta", new JsonObject { ["type"] = "content_block_delta", ["index"] = index, ["delta"] = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = piece } });
            }
            yield return Event("content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = index });
        }
        yield return Event("message_delta", new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = stopReason, ["stop_sequence"] = stopSequence },
            ["usage"] = new JsonObject { ["output_tokens"] = words.Count + (tool is null ? 0 : 10) },
        });
        yield return Event("message_stop", new JsonObject { ["type"] = "message_stop" });
    }

    private static string Event(string name, JsonObject data) => $"event: {name}\ndata: {data.ToJsonString(SimulatedAnswers.JsonOptions)}\n\n";

    private static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
