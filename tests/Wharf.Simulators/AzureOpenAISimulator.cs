using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Wharf.Simulators;

/// <summary>
/// Azure OpenAI, as its REST reference describes it: the deployment paths
/// <c>/openai/deployments/{deployment}/chat/completions?api-version=...</c> (also completions, embeddings) and
/// <c>/openai/files?api-version=...</c> and <c>/openai/batches?api-version=...</c>, which need an <c>api-version</c> it
/// supports; the v1 paths
/// <c>/openai/v1/...</c> with the deployment named in the body's <c>model</c> and no api-version; the key in the
/// <c>api-key</c> header; errors as <c>{"error":{"code","message"}}</c>.
/// </summary>
public sealed class AzureOpenAISimulator : UpstreamSimulator
{
    private AzureOpenAISimulator(string apiKey, IReadOnlySet<string>? deployments) : base(apiKey)
    {
        Deployments = deployments;
    }

    /// <param name="deployments">The deployments that exist; null for any name.</param>
    public static async Task<AzureOpenAISimulator> StartAsync(string apiKey = "0123456789abcdef0123456789abcdef", IReadOnlySet<string>? deployments = null)
    {
        var simulator = new AzureOpenAISimulator(apiKey, deployments);
        await simulator.ListenAsync();
        return simulator;
    }

    public IReadOnlySet<string>? Deployments { get; }

    /// <summary>The dated api-versions accepted on the deployment paths.</summary>
    public HashSet<string> ApiVersions { get; } = ["2024-06-01", "2024-10-21", "2025-04-01-preview"];

    /// <summary>The resource's endpoint (<c>https://RESOURCE.openai.azure.com</c> for the real one).</summary>
    public override Uri BaseUrl => Origin;

    protected override SimulatedRoute? Resolve(HttpRequest request)
    {
        string path = request.Path.Value ?? "";
        if (path.StartsWith("/openai/v1/", StringComparison.Ordinal))
        {
            return Routes.Resolve(request.Method, path, "/openai/v1");
        }
        string[] parts = path.Split('/');
        if (parts is ["", "openai", "deployments", var deployment, .. var rest] && request.Method == "POST")
        {
            var operation = rest switch
            {
                ["chat", "completions"] => SimulatedOperation.ChatCompletions,
                ["completions"] => SimulatedOperation.Completions,
                ["embeddings"] => SimulatedOperation.Embeddings,
                _ => (SimulatedOperation?)null,
            };
            return operation is { } known ? new SimulatedRoute(known, Deployment: Uri.UnescapeDataString(deployment)) : null;
        }
        return Routes.Resolve(request.Method, path, "/openai") is { IsModelRequest: false } files ? files : null;
    }

    private static bool IsV1(HttpRequest request) => request.Path.StartsWithSegments("/openai/v1", StringComparison.Ordinal);

    protected override (int Status, string Body)? CheckProtocol(HttpRequest request, SimulatedRoute route)
    {
        if (IsV1(request))
        {
            return null;
        }
        string? version = request.Query["api-version"];
        if (string.IsNullOrEmpty(version))
        {
            return (404, Error("404", "Resource not found"));
        }
        return ApiVersions.Contains(version) ? null : (400, Error("BadRequest", "API version not supported"));
    }

    protected override (int Status, string Body)? CheckKey(HttpRequest request) =>
        request.Headers["api-key"].ToString() == ApiKey ? null
            : (401, Error("401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."));

    protected override (int Status, string Body)? CheckModel(string? model) =>
        Deployments is null || model is not null && Deployments.Contains(model) ? null
            : (404, Error("DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."));

    protected override bool ModelRequired(SimulatedRoute route) => route.Deployment is null;

    /// <summary>
    /// The v1 API names a batch's endpoint as OpenAI does (<c>/v1/chat/completions</c>); the dated API without the
    /// version (<c>/chat/completions</c>), as its batch reference shows. Either way a line's deployment is its body's
    /// <c>model</c>.
    /// </summary>
    protected override SimulatedOperation? BatchOperation(HttpRequest request, string endpoint) => IsV1(request)
        ? BatchOperation(endpoint)
        : endpoint switch
        {
            "/chat/completions" => SimulatedOperation.ChatCompletions,
            "/completions" => SimulatedOperation.Completions,
            "/embeddings" => SimulatedOperation.Embeddings,
            _ => null,
        };

    /// <summary>A line's <c>url</c> may name the endpoint with or without <c>/v1</c>.</summary>
    protected override bool LineUrlMatches(string url, string endpoint) => WithoutVersion(url) == WithoutVersion(endpoint);

    private static string WithoutVersion(string path) => path.StartsWith("/v1/", StringComparison.Ordinal) ? path[3..] : path;

    protected override string ErrorBody(int status, string message, string? param = null, string? code = null) =>
        JsonSerializer.Serialize(new { error = new { code = code ?? status.ToString(System.Globalization.CultureInfo.InvariantCulture), message, param } }, SimulatedAnswers.JsonOptions);

    protected override (int Status, string Body) NotFound() => (404, Error("404", "Resource not found"));

    private static string Error(string code, string message) => JsonSerializer.Serialize(new { error = new { code, message } }, SimulatedAnswers.JsonOptions);
}
