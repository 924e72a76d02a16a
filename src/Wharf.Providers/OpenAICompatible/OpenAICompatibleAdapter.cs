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

internal sealed class OpenAICompatibleProvider(string id, OpenAIWire wire, bool nativeBatches) : IProvider
{
    public string Id => id;

    public string Type => "openai";

    /// <summary>Files, the four model endpoints and, unless configured without it (<c>NativeBatches: false</c>), the batch API.</summary>
    public IReadOnlySet<ProviderCapability> Capabilities { get; } = new HashSet<ProviderCapability>(
        nativeBatches ? [ProviderCapability.Files, ProviderCapability.Batches, .. ProviderCapabilities.ModelEndpoints]
                      : [ProviderCapability.Files, .. ProviderCapabilities.ModelEndpoints]);

    public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) =>
        wire.SendModelRequestAsync(call, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        wire.UploadFileAsync(upload, cancellationToken);

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        wire.DeleteFileAsync(upstreamFileId, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        wire.ListFilesAsync(query, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) =>
        Capabilities.Contains(ProviderCapability.Batches) ? wire.CreateBatchAsync(batch, cancellationToken) : NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        Capabilities.Contains(ProviderCapability.Batches) ? wire.GetBatchAsync(upstreamBatchId, cancellationToken) : NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        Capabilities.Contains(ProviderCapability.Batches) ? wire.CancelBatchAsync(upstreamBatchId, cancellationToken) : NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) =>
        Capabilities.Contains(ProviderCapability.Batches) ? wire.ListBatchesAsync(query, cancellationToken) : NoBatches<UpstreamBatchPage>();

    public Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        wire.DownloadFileAsync(upstreamFileId, cancellationToken);

    private static Task<UpstreamOutcome<T>> NoBatches<T>() =>
        Task.FromResult<UpstreamOutcome<T>>(UpstreamFailure.Unsupported("The provider is configured without a native batch API (NativeBatches: false)."));
}
