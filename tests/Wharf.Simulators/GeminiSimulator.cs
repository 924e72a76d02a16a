using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Wharf.Simulators;

/// <summary>
/// Google's Gemini API on a real Kestrel server on 127.0.0.1, as its public reference describes it:
/// <c>POST /v1beta/models/{model}:generateContent</c>, <c>:streamGenerateContent?alt=sse</c> (one
/// <c>GenerateContentResponse</c> per event, word by word, usage in the last) and <c>:batchEmbedContents</c>; the key
/// in <c>x-goog-api-key</c> (missing: 403 <c>PERMISSION_DENIED</c>; wrong: 400 <c>INVALID_ARGUMENT</c> with reason
/// <c>API_KEY_INVALID</c>, as Google answers it); errors as <c>{"error":{code,message,status,details}}</c>. Bodies are
/// checked as Google checks them: unknown fields are refused, <c>contents</c> must hold turns of role
/// <c>user</c> or <c>model</c> with parts of one kind each, inline data must be base64, each embedding request must
/// name the model of the path. With <c>tools</c> (and calling not turned off), a user turn is answered with a
/// <c>functionCall</c> of the first function; a turn of function responses with text. Faults are scripted as for
/// the OpenAI simulators (<see cref="Fault"/>); every request is recorded.
/// </summary>
public sealed partial class GeminiSimulator : IAsyncDisposable
{
    private static readonly HashSet<string> RequestFields = new(StringComparer.Ordinal)
    {
        "contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent",
    };

    private static readonly HashSet<string> GenerationFields = new(StringComparer.Ordinal)
    {
        "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "responseMimeType", "responseSchema",
        "responseJsonSchema", "presencePenalty", "frequencyPenalty", "seed", "responseLogprobs", "logprobs", "thinkingConfig",
    };

    private static readonly HashSet<string> PartFields = new(StringComparer.Ordinal)
    {
        "text", "inlineData", "fileData", "functionCall", "functionResponse",
    };

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Fault> _queued = new();
    private readonly ConcurrentDictionary<string, Fault> _byModel = new(StringComparer.Ordinal);
    private readonly List<RecordedRequest> _requests = [];
    private readonly object _gate = new();

    private GeminiSimulator(string apiKey)
    {
        ApiKey = apiKey;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(1));
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        _app = builder.Build();
        _app.Run(HandleAsync);
    }

    public static async Task<GeminiSimulator> StartAsync(string apiKey = "AIzaSim-gemini-0123456789abcdefghijklmno")
    {
        var simulator = new GeminiSimulator(apiKey);
        await simulator._app.StartAsync();
        string address = simulator._app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        simulator.BaseUrl = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        return simulator;
    }

    public string ApiKey { get; }

    /// <summary><c>http://127.0.0.1:PORT</c>: what Google's SDKs take as base URL (the version is in the paths).</summary>
    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>The text of every answer (split at spaces into stream events).</summary>
    public string ReplyText { get; set; } = "Hello from Gemini, streamed word by word.";

    /// <summary>The fault for every request that no queued fault or model rule caught; null: answer normally.</summary>
    public Fault? Always { get; set; }

    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>The requests recorded for <paramref name="model"/> (named in the path).</summary>
    public IReadOnlyList<RecordedRequest> CallsFor(string model) =>
        [.. Requests.Where(r => r.Path.Contains($"/models/{model}:", StringComparison.Ordinal))];

    public void Enqueue(Fault fault) => _queued.Enqueue(fault);

    /// <summary>Every request for <paramref name="model"/> meets this fault.</summary>
    public void SetRule(string model, Fault fault) => _byModel[model] = fault;

    /// <summary>Google's error body for a status, with its canonical status name and optional details.</summary>
    public static string ErrorBody(int code, string message, string? reason = null, string? retryDelay = null)
    {
        var details = new JsonArray();
        if (reason is not null)
        {
            details.Add(new JsonObject
            {
                ["@type"] = "type.googleapis.com/google.rpc.ErrorInfo",
                ["reason"] = reason,
                ["domain"] = "googleapis.com",
                ["metadata"] = new JsonObject { ["service"] = "generativelanguage.googleapis.com" },
            });
        }
        if (retryDelay is not null)
        {
            details.Add(new JsonObject { ["@type"] = "type.googleapis.com/google.rpc.RetryInfo", ["retryDelay"] = retryDelay });
        }
        var error = new JsonObject { ["code"] = code, ["message"] = message, ["status"] = StatusName(code) };
        if (details.Count > 0)
        {
            error["details"] = details;
        }
        return new JsonObject { ["error"] = error }.ToJsonString();
    }

    /// <summary>429 <c>RESOURCE_EXHAUSTED</c> with a <c>RetryInfo</c> delay (e.g. <c>"2s"</c>).</summary>
    public static Fault RateLimited(string retryDelay) =>
        Fault.Status(429, ErrorBody(429, "You exceeded your current quota, please check your plan and billing details.", retryDelay: retryDelay));

    private static string StatusName(int code) => code switch
    {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    };

    private static string DefaultMessage(int code) => code switch
    {
        403 => "The caller does not have permission",
        404 => "models/unknown is not found for API version v1beta, or is not supported for generateContent.",
        429 => "Resource has been exhausted (e.g. check quota).",
        500 => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        503 => "The model is overloaded. Please try again later.",
        _ => $"Simulated error {code}.",
    };

    private async Task HandleAsync(HttpContext context)
    {
        try
        {
            if (await ServeAsync(context))
            {
                context.Abort();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException && context.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
    }

    /// <returns>Whether to cut the connection.</returns>
    private async Task<bool> ServeAsync(HttpContext context)
    {
        var request = context.Request;
        var aborted = context.RequestAborted;
        byte[] body;
        using (var copy = new MemoryStream())
        {
            await request.Body.CopyToAsync(copy, aborted);
            body = copy.ToArray();
        }
        Record(request, body);
        string path = request.Path.Value ?? "";
        if (IsFilesOrBatchesPath(path))
        {
            return await ServeFilesAndBatchesAsync(context, body);
        }
        // /{version}/models/{model}:{method}
        string[] segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (request.Method != "POST" || segments.Length != 3 || segments[0] != "v1beta" || segments[1] != "models" || !segments[2].Contains(':', StringComparison.Ordinal))
        {
            await WriteJsonAsync(context, 404, ErrorBody(404, $"Method not found: {request.Method} {path}"));
            return false;
        }
        string model = Uri.UnescapeDataString(segments[2][..segments[2].IndexOf(':', StringComparison.Ordinal)]);
        string method = segments[2][(segments[2].IndexOf(':', StringComparison.Ordinal) + 1)..];
        if (method == "batchGenerateContent")
        {
            return await ServeFilesAndBatchesAsync(context, body);
        }
        if (method is not ("generateContent" or "streamGenerateContent" or "batchEmbedContents"))
        {
            await WriteJsonAsync(context, 404, ErrorBody(404, $"Method not found: {method}"));
            return false;
        }
        string? key = request.Headers["x-goog-api-key"].FirstOrDefault();
        if (string.IsNullOrEmpty(key))
        {
            await WriteJsonAsync(context, 403, ErrorBody(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."));
            return false;
        }
        if (key != ApiKey)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, "API key not valid. Please pass a valid API key.", reason: "API_KEY_INVALID"));
            return false;
        }
        if (request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) != true)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, "Invalid JSON payload received: the content type must be application/json."));
            return false;
        }
        JsonElement json;
        try
        {
            using var document = JsonDocument.Parse(body);
            json = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, "Invalid JSON payload received. Unexpected token."));
            return false;
        }
        string? problem = method == "batchEmbedContents" ? CheckEmbedRequest(json, model) : CheckGenerateRequest(json) ?? CheckFileData(json);
        if (problem is null && method == "streamGenerateContent" && request.Query["alt"] != "sse")
        {
            problem = "This simulator streams only as server-sent events (alt=sse).";
        }
        if (problem is not null)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, problem));
            return false;
        }

        Fault? fault = _queued.TryDequeue(out var next) ? next : _byModel.TryGetValue(model, out var rule) ? rule : Always;
        switch (fault)
        {
            case StatusFault status:
                foreach (var (name, value) in status.Headers)
                {
                    context.Response.Headers[name] = value;
                }
                await WriteJsonAsync(context, status.Code, status.Body ?? ErrorBody(status.Code, DefaultMessage(status.Code)));
                return false;
            case DelayFault delay:
                await Task.Delay(delay.Duration, aborted);
                break;
            case HoldFault hold:
                await hold.Gate.Released.WaitAsync(aborted);
                break;
            case MalformedJsonFault:
                await WriteJsonAsync(context, 200, "{\"candidates\": [{\"content\": {\"parts\": [");
                return false;
            case CloseConnectionFault:
                return true;
        }

        if (method == "batchEmbedContents")
        {
            await WriteJsonAsync(context, 200, EmbedAnswer(json));
            return false;
        }
        var answers = Answers(json, model, stream: method == "streamGenerateContent");
        if (method == "generateContent")
        {
            await WriteJsonAsync(context, 200, answers.Single());
            return false;
        }
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream";
        int sent = 0;
        foreach (string answer in answers)
        {
            if (fault is DropStreamFault drop && sent == drop.Events)
            {
                if (drop.DropWhen is { } gate)
                {
                    await gate.Released.WaitAsync(aborted);
                }
                return true;
            }
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes($"data: {answer}\r\n\r\n"), aborted);
            await context.Response.Body.FlushAsync(aborted);
            sent++;
            if (fault is PauseStreamFault pause && sent == 1)
            {
                await pause.Gate.Released.WaitAsync(aborted);
            }
        }
        return false;
    }

    private static string? CheckGenerateRequest(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            return "Invalid JSON payload received. Expected an object.";
        }
        foreach (var property in body.EnumerateObject())
        {
            if (!RequestFields.Contains(property.Name))
            {
                return $"Invalid JSON payload received. Unknown name \"{property.Name}\": Cannot find field.";
            }
        }
        if (!body.TryGetProperty("contents", out var contents) || contents.ValueKind != JsonValueKind.Array || contents.GetArrayLength() == 0)
        {
            return "* GenerateContentRequest.contents: contents is not specified";
        }
        int index = 0;
        foreach (var content in contents.EnumerateArray())
        {
            if (content.ValueKind != JsonValueKind.Object)
            {
                return $"* GenerateContentRequest.contents[{index}]: must be an object";
            }
            if (content.TryGetProperty("role", out var role) && !(role.ValueEquals("user") || role.ValueEquals("model")))
            {
                return $"Please use a valid role: user, model.";
            }
            if (CheckParts(content, $"contents[{index}]") is { } partProblem)
            {
                return partProblem;
            }
            index++;
        }
        if (body.TryGetProperty("systemInstruction", out var system))
        {
            if (CheckParts(system, "systemInstruction") is { } systemProblem)
            {
                return systemProblem;
            }
            if (system.GetProperty("parts").EnumerateArray().Any(p => !p.TryGetProperty("text", out _)))
            {
                return "* GenerateContentRequest.system_instruction: only text parts are supported";
            }
        }
        if (body.TryGetProperty("generationConfig", out var config))
        {
            if (config.ValueKind != JsonValueKind.Object)
            {
                return "Invalid JSON payload received. Unknown name \"generationConfig\": expected an object.";
            }
            foreach (var property in config.EnumerateObject())
            {
                if (!GenerationFields.Contains(property.Name))
                {
                    return $"Invalid JSON payload received. Unknown name \"{property.Name}\" at 'generation_config': Cannot find field.";
                }
            }
        }
        if (body.TryGetProperty("tools", out var tools))
        {
            foreach (var tool in tools.EnumerateArray())
            {
                if (!tool.TryGetProperty("functionDeclarations", out var declarations) || declarations.EnumerateArray().Any(d => !d.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String))
                {
                    return "* GenerateContentRequest.tools[0].function_declarations: each declaration needs a name";
                }
            }
        }
        return null;
    }

    private static string? CheckParts(JsonElement content, string at)
    {
        if (!content.TryGetProperty("parts", out var parts) || parts.ValueKind != JsonValueKind.Array || parts.GetArrayLength() == 0)
        {
            return $"* GenerateContentRequest.{at}.parts: contents.parts must not be empty.";
        }
        foreach (var part in parts.EnumerateArray())
        {
            var kinds = part.ValueKind == JsonValueKind.Object ? part.EnumerateObject().Select(p => p.Name).Where(n => n != "thought" && n != "thoughtSignature").ToList() : [];
            if (kinds.Count != 1 || !PartFields.Contains(kinds[0]))
            {
                return $"* GenerateContentRequest.{at}.parts: a part must hold exactly one of text, inlineData, fileData, functionCall, functionResponse.";
            }
            var value = part.GetProperty(kinds[0]);
            switch (kinds[0])
            {
                case "text" when value.ValueKind != JsonValueKind.String:
                    return $"* GenerateContentRequest.{at}.parts.text: must be a string.";
                case "inlineData" when !value.TryGetProperty("mimeType", out _) || !value.TryGetProperty("data", out var data) || !IsBase64(data.GetString()):
                    return $"* GenerateContentRequest.{at}.parts.inline_data: mimeType and base64 data are required.";
                case "functionCall" when !value.TryGetProperty("name", out _) || value.TryGetProperty("args", out var args) && args.ValueKind != JsonValueKind.Object:
                    return $"* GenerateContentRequest.{at}.parts.function_call: a name and object args are required.";
                case "functionResponse" when !value.TryGetProperty("name", out _) || !value.TryGetProperty("response", out var response) || response.ValueKind != JsonValueKind.Object:
                    return $"* GenerateContentRequest.{at}.parts.function_response: a name and an object response are required.";
            }
        }
        return null;
    }

    private static bool IsBase64(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        var bytes = new byte[text.Length];
        return Convert.TryFromBase64String(text, bytes, out _);
    }

    private static string? CheckEmbedRequest(JsonElement body, string model)
    {
        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("requests", out var requests) || requests.ValueKind != JsonValueKind.Array || requests.GetArrayLength() == 0)
        {
            return "* BatchEmbedContentsRequest.requests: requests is not specified";
        }
        if (requests.GetArrayLength() > 100)
        {
            return "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch";
        }
        foreach (var item in requests.EnumerateArray())
        {
            if (!item.TryGetProperty("model", out var named) || named.GetString() != "models/" + model)
            {
                return $"Model names must match: each request's model must be models/{model}.";
            }
            if (!item.TryGetProperty("content", out var content) || CheckParts(content, "requests.content") is { } problem)
            {
                return "* BatchEmbedContentsRequest.requests.content: content is not specified";
            }
        }
        return null;
    }

    /// <summary>The answer's events (one for a plain answer): text word by word, or a function call.</summary>
    private List<string> Answers(JsonElement body, string model, bool stream)
    {
        var contents = body.GetProperty("contents");
        var last = contents[contents.GetArrayLength() - 1];
        bool answeringFunctions = last.GetProperty("parts").EnumerateArray().Any(p => p.TryGetProperty("functionResponse", out _));
        string? function = null;
        if (!answeringFunctions && body.TryGetProperty("tools", out var tools)
            && !(body.TryGetProperty("toolConfig", out var toolConfig) && toolConfig.GetProperty("functionCallingConfig").TryGetProperty("mode", out var mode) && mode.ValueEquals("NONE")))
        {
            function = tools[0].GetProperty("functionDeclarations")[0].GetProperty("name").GetString();
        }
        var config = body.TryGetProperty("generationConfig", out var c) ? c : default;
        int candidates = config.ValueKind == JsonValueKind.Object && config.TryGetProperty("candidateCount", out var n) ? n.GetInt32() : 1;
        int? maxTokens = config.ValueKind == JsonValueKind.Object && config.TryGetProperty("maxOutputTokens", out var m) ? m.GetInt32() : null;
        int promptTokens = Math.Max(1, body.GetRawText().Length / 4);
        string responseId = "sim" + Guid.NewGuid().ToString("N")[..12];

        string[] words = ReplyText.Split(' ');
        string finish = "STOP";
        if (maxTokens is { } max && max < words.Length)
        {
            words = words[..max];
            finish = "MAX_TOKENS";
        }
        string lastUserText = string.Concat(last.GetProperty("parts").EnumerateArray().Where(p => p.TryGetProperty("text", out _)).Select(p => p.GetProperty("text").GetString()));
        var events = new List<string>();
        if (function is not null)
        {
            var call = new JsonObject { ["functionCall"] = new JsonObject { ["name"] = function, ["args"] = new JsonObject { ["query"] = lastUserText } } };
            events.Add(Answer(responseId, model, candidates, _ => [call.DeepClone()], "STOP", new(promptTokens, 5)));
            return events;
        }
        if (!stream)
        {
            events.Add(Answer(responseId, model, candidates, _ => [new JsonObject { ["text"] = string.Join(' ', words) }], finish, new(promptTokens, words.Length)));
            return events;
        }
        for (int i = 0; i < words.Length; i++)
        {
            string piece = i == 0 ? words[i] : " " + words[i];
            bool end = i == words.Length - 1;
            events.Add(Answer(responseId, model, candidates, _ => [new JsonObject { ["text"] = piece }], end ? finish : null, new(promptTokens, i + 1)));
        }
        return events;
    }

    private readonly record struct Usage(int Prompt, int Candidates);

    private static string Answer(string responseId, string model, int candidates, Func<int, JsonNode[]> parts, string? finish, Usage usage)
    {
        var list = new JsonArray();
        for (int i = 0; i < candidates; i++)
        {
            var candidate = new JsonObject
            {
                ["content"] = new JsonObject { ["parts"] = new JsonArray(parts(i)), ["role"] = "model" },
                ["index"] = i,
            };
            if (finish is not null)
            {
                candidate["finishReason"] = finish;
            }
            list.Add(candidate);
        }
        return new JsonObject
        {
            ["candidates"] = list,
            ["usageMetadata"] = new JsonObject
            {
                ["promptTokenCount"] = usage.Prompt,
                ["candidatesTokenCount"] = usage.Candidates * candidates,
                ["totalTokenCount"] = usage.Prompt + usage.Candidates * candidates,
            },
            ["modelVersion"] = model,
            ["responseId"] = responseId,
        }.ToJsonString();
    }

    /// <summary>Each text's embedding: its dimensions (default 8) derived from its bytes, so that it is the same every time.</summary>
    private static string EmbedAnswer(JsonElement body)
    {
        var embeddings = new JsonArray();
        foreach (var item in body.GetProperty("requests").EnumerateArray())
        {
            string text = item.GetProperty("content").GetProperty("parts")[0].GetProperty("text").GetString() ?? "";
            int dimensions = item.TryGetProperty("outputDimensionality", out var d) ? d.GetInt32() : 8;
            byte[] hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text));
            var values = new JsonArray();
            for (int i = 0; i < dimensions; i++)
            {
                values.Add(Math.Round((hash[i % hash.Length] - 128) / 128.0, 4));
            }
            embeddings.Add(new JsonObject { ["values"] = values });
        }
        return new JsonObject { ["embeddings"] = embeddings }.ToJsonString();
    }

    private void Record(HttpRequest request, byte[] body)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in request.Headers)
        {
            headers[name] = values.ToString();
        }
        lock (_gate)
        {
            _requests.Add(new RecordedRequest(request.Method, request.Path.Value ?? "", request.QueryString.Value ?? "", headers, body, null));
        }
    }

    internal static async Task WriteJsonAsync(HttpContext context, int status, string body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=UTF-8";
        await context.Response.WriteAsync(body, context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
