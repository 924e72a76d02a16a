using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Wharf.Simulators;

/// <summary>
/// OpenAI's API (and every server that copies it): <c>/v1/chat/completions</c>, <c>/v1/completions</c>,
/// <c>/v1/embeddings</c>, <c>/v1/responses</c>, <c>/v1/files</c>, <c>/v1/batches</c>; <c>Authorization: Bearer</c>; errors as
/// <c>{"error":{"message","type","param","code"}}</c>.
/// </summary>
public sealed class OpenAISimulator : UpstreamSimulator
{
    private OpenAISimulator(string apiKey) : base(apiKey)
    {
    }

    public static async Task<OpenAISimulator> StartAsync(string apiKey = "sk-sim-openai-0123456789abcdef")
    {
        var simulator = new OpenAISimulator(apiKey);
        await simulator.ListenAsync();
        return simulator;
    }

    public override Uri BaseUrl => new(Origin, "/v1");

    protected override SimulatedRoute? Resolve(HttpRequest request) => Routes.Resolve(request.Method, request.Path.Value ?? "", "/v1");

    protected override (int Status, string Body)? CheckKey(HttpRequest request)
    {
        string authorization = request.Headers.Authorization.ToString();
        if (!authorization.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return (401, ErrorBody(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", null, null));
        }
        string key = authorization["Bearer ".Length..];
        return key == ApiKey ? null : (401, ErrorBody(401, $"Incorrect API key provided: {Masked(key)}. You can find your API key at https://platform.openai.com/account/api-keys.", null, "invalid_api_key"));
    }

    /// <summary>As OpenAI quotes a wrong key: its first and last characters around stars.</summary>
    private static string Masked(string key) => key.Length < 8 ? "***" : key[..3] + new string('*', key.Length - 7) + key[^4..];

    protected override string ErrorBody(int status, string message, string? param = null, string? code = null)
    {
        string type = status switch
        {
            400 or 401 or 404 => "invalid_request_error",
            402 => "insufficient_quota",
            403 => "permission_error",
            429 => "requests",
            _ => "server_error",
        };
        return JsonSerializer.Serialize(new { error = new { message, type, param, code = code ?? (status == 429 ? "rate_limit_exceeded" : null) } }, SimulatedAnswers.JsonOptions);
    }

    protected override (int Status, string Body) NotFound() => (404, ErrorBody(404, "Invalid URL.", null, null));
}

/// <summary>The OpenAI-style paths below a prefix (<c>/v1</c>, <c>/openai</c>, <c>/openai/v1</c>).</summary>
internal static class Routes
{
    public static SimulatedRoute? Resolve(string method, string path, string prefix)
    {
        if (!path.StartsWith(prefix + "/", StringComparison.Ordinal))
        {
            return null;
        }
        string[] parts = path[(prefix.Length + 1)..].Split('/');
        return (method, parts) switch
        {
            ("POST", ["chat", "completions"]) => new(SimulatedOperation.ChatCompletions),
            ("POST", ["completions"]) => new(SimulatedOperation.Completions),
            ("POST", ["embeddings"]) => new(SimulatedOperation.Embeddings),
            ("POST", ["responses"]) => new(SimulatedOperation.Responses),
            ("POST", ["files"]) => new(SimulatedOperation.FileUpload),
            ("GET", ["files"]) => new(SimulatedOperation.FileList),
            ("GET", ["files", var id]) => new(SimulatedOperation.FileGet, Uri.UnescapeDataString(id)),
            ("DELETE", ["files", var id]) => new(SimulatedOperation.FileDelete, Uri.UnescapeDataString(id)),
            ("GET", ["files", var id, "content"]) => new(SimulatedOperation.FileContent, Uri.UnescapeDataString(id)),
            ("POST", ["batches"]) => new(SimulatedOperation.BatchCreate),
            ("GET", ["batches"]) => new(SimulatedOperation.BatchList),
            ("GET", ["batches", var id]) => new(SimulatedOperation.BatchGet, Uri.UnescapeDataString(id)),
            ("POST", ["batches", var id, "cancel"]) => new(SimulatedOperation.BatchCancel, Uri.UnescapeDataString(id)),
            _ => null,
        };
    }
}
