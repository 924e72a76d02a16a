using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.OpenAICompatible;

/// <summary>
/// Type <c>openai</c>: OpenAI and every server that speaks its API (Groq, Mistral, Together, Fireworks, xAI,
/// OpenRouter, vLLM, SGLang, Ollama, ...). <c>BaseUrl</c> is what OpenAI's SDK takes as base URL (it ends in
/// <c>/v1</c> for most); the key goes in <c>Authorization: Bearer</c>.
/// </summary>
internal sealed class OpenAICompatibleAdapter(UpstreamHttpClients clients) : IProviderAdapter
{
    public const string DefaultBaseUrl = "https://api.openai.com/v1";

    public string Type => "openai";

    public IEnumerable<string> Validate(string key, ProviderOptions options)
    {
        if (string.IsNullOrEmpty(options.ApiKey))
        {
            yield return $"{key}:ApiKey is missing: type 'openai' sends it as 'Authorization: Bearer' (for a server that takes no key, set any value).";
        }
        if (!string.IsNullOrEmpty(options.ApiVersion))
        {
            yield return $"{key}:ApiVersion is not used by type 'openai' (put the version in BaseUrl).";
        }
    }

    public IProvider Create(ProviderContext context) =>
        new OpenAICompatibleProvider(context.Id, new OpenAIWire(context, clients.Create(),
            new OpenAICompatibleDialect(new Uri(string.IsNullOrEmpty(context.Options.BaseUrl) ? DefaultBaseUrl : context.Options.BaseUrl), context.Options.ApiKey!)),
            nativeBatches: context.Options.NativeBatches ?? true);
}

/// <summary><c>{BaseUrl}/chat/completions</c>, <c>{BaseUrl}/files</c>, ...; <c>Authorization: Bearer</c>.</summary>
internal sealed class OpenAICompatibleDialect(Uri baseUrl, string apiKey) : IOpenAIDialect
{
    private readonly string _base = baseUrl.AbsoluteUri.TrimEnd('/');

    /// <summary>The model endpoints' URLs, parsed once (they do not depend on the model), by capability.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ProviderCapability, Uri> _modelUris = new();

    /// <summary>The <c>Authorization</c> value, put together once.</summary>
    private readonly string _authorization = "Bearer " + apiKey;

    public Uri ModelUri(ProviderCapability endpoint, string model) =>
        _modelUris.GetOrAdd(endpoint, static (capability, root) => new Uri($"{root}/{capability.ModelPath()}"), _base);

    public Uri FilesUri(string? fileId, string query) =>
        new($"{_base}/files{(fileId is null ? "" : "/" + Uri.EscapeDataString(fileId))}{(query.Length == 0 ? "" : "?" + query)}");

    public Uri FileContentUri(string fileId) => new($"{_base}/files/{Uri.EscapeDataString(fileId)}/content");

    public Uri BatchesUri(string? batchId, string? action, string query) =>
        new($"{_base}/batches{(batchId is null ? "" : "/" + Uri.EscapeDataString(batchId))}{(action is null ? "" : "/" + action)}{(query.Length == 0 ? "" : "?" + query)}");

    /// <summary>OpenAI names the endpoint with its version, as the lines' <c>url</c> does.</summary>
    public string BatchEndpoint(string endpoint) => endpoint;

    public void Authorize(HttpRequestMessage request) => request.Headers.TryAddWithoutValidation("Authorization", _authorization);
}

internal sealed class OpenAICompatibleProvider(string id, OpenAIWire wire, bool nativeBatches) : OpenAIWireProvider(id, wire)
{
    public override string Type => "openai";

    /// <summary>Files, the four model endpoints and, unless configured without it (<c>NativeBatches: false</c>), the batch API.</summary>
    public override IReadOnlySet<ProviderCapability> Capabilities { get; } = new HashSet<ProviderCapability>(
        nativeBatches ? [ProviderCapability.Files, ProviderCapability.Batches, .. ProviderCapabilities.ModelEndpoints]
                      : [ProviderCapability.Files, .. ProviderCapabilities.ModelEndpoints]);

    public override Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) =>
        Wire.SendModelRequestAsync(call, cancellationToken);
}
