using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Azure;

/// <summary>
/// Type <c>azure</c>: Azure OpenAI. <c>BaseUrl</c> is the resource's endpoint (<c>https://RESOURCE.openai.azure.com</c>),
/// the key goes in the <c>api-key</c> header. <c>ApiVersion</c> picks the path style: a dated version (default
/// <see cref="DefaultApiVersion"/>, the latest GA of the dated data-plane API) sends to
/// <c>/openai/deployments/{model}/...?api-version=</c>, the model being the deployment's name; <c>v1</c> sends to the
/// <c>/openai/v1/</c> paths with the model in the body, as OpenAI's API does (Azure's v1 API needs no api-version).
/// </summary>
internal sealed class AzureOpenAIAdapter(UpstreamHttpClients clients) : IProviderAdapter
{
    public const string DefaultApiVersion = "2024-10-21";
    public const string V1 = "v1";

    public string Type => "azure";

    public IEnumerable<string> Validate(string key, ProviderOptions options)
    {
        if (string.IsNullOrEmpty(options.BaseUrl))
        {
            yield return $"{key}:BaseUrl is missing: type 'azure' needs the resource's endpoint, e.g. https://RESOURCE.openai.azure.com.";
        }
        if (string.IsNullOrEmpty(options.ApiKey))
        {
            yield return $"{key}:ApiKey is missing: type 'azure' sends it as the 'api-key' header.";
        }
        if (options.ApiVersion is { Length: > 0 } version && version != V1 && !System.Text.RegularExpressions.Regex.IsMatch(version, "^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$"))
        {
            yield return $"{key}:ApiVersion '{version}' is neither 'v1' nor a dated api-version such as {DefaultApiVersion}.";
        }
    }

    public IProvider Create(ProviderContext context)
    {
        string version = string.IsNullOrEmpty(context.Options.ApiVersion) ? DefaultApiVersion : context.Options.ApiVersion;
        var dialect = new AzureOpenAIDialect(new Uri(context.Options.BaseUrl!), context.Options.ApiKey!, version);
        return new AzureOpenAIProvider(context.Id, new OpenAIWire(context, clients.Create(), dialect), dialect.IsV1, context.Options.NativeBatches ?? true);
    }
}

/// <summary>Azure's two path styles (see <see cref="AzureOpenAIAdapter"/>); the <c>api-key</c> header.</summary>
internal sealed class AzureOpenAIDialect(Uri baseUrl, string apiKey, string apiVersion) : IOpenAIDialect
{
    private readonly string _openai = baseUrl.AbsoluteUri.TrimEnd('/') + "/openai";

    public bool IsV1 => apiVersion == AzureOpenAIAdapter.V1;

    public Uri ModelUri(ProviderCapability endpoint, string model) => IsV1
        ? new($"{_openai}/v1/{endpoint.ModelPath()}")
        : new($"{_openai}/deployments/{Uri.EscapeDataString(model)}/{endpoint.ModelPath()}?api-version={Uri.EscapeDataString(apiVersion)}");

    public Uri FilesUri(string? fileId, string query)
    {
        string path = $"{_openai}{(IsV1 ? "/v1" : "")}/files{(fileId is null ? "" : "/" + Uri.EscapeDataString(fileId))}";
        string version = IsV1 ? "" : "api-version=" + Uri.EscapeDataString(apiVersion);
        string all = string.Join('&', new[] { version, query }.Where(q => q.Length > 0));
        return new(all.Length == 0 ? path : path + "?" + all);
    }

    public Uri FileContentUri(string fileId) => WithVersion($"{_openai}{(IsV1 ? "/v1" : "")}/files/{Uri.EscapeDataString(fileId)}/content", "");

    public Uri BatchesUri(string? batchId, string? action, string query) => WithVersion(
        $"{_openai}{(IsV1 ? "/v1" : "")}/batches{(batchId is null ? "" : "/" + Uri.EscapeDataString(batchId))}{(action is null ? "" : "/" + action)}", query);

    /// <summary>
    /// The v1 API takes OpenAI's names (<c>/v1/chat/completions</c>); the dated API names the endpoint without the
    /// version (<c>/chat/completions</c>), as its batch reference shows.
    /// </summary>
    public string BatchEndpoint(string endpoint) =>
        !IsV1 && endpoint.StartsWith("/v1/", StringComparison.Ordinal) ? endpoint["/v1".Length..] : endpoint;

    /// <summary>The path with the api-version (dated versions) and <paramref name="query"/>.</summary>
    private Uri WithVersion(string path, string query)
    {
        string version = IsV1 ? "" : "api-version=" + Uri.EscapeDataString(apiVersion);
        string all = version.Length == 0 ? query : query.Length == 0 ? version : version + "&" + query;
        return new(all.Length == 0 ? path : path + "?" + all);
    }

    public void Authorize(HttpRequestMessage request) => request.Headers.TryAddWithoutValidation("api-key", apiKey);
}

internal sealed class AzureOpenAIProvider(string id, OpenAIWire wire, bool v1, bool nativeBatches) : OpenAIWireProvider(id, wire)
{
    public override string Type => "azure";

    /// <summary>
    /// Files, the batch API (unless configured without it), chat completions, completions and embeddings on both
    /// path styles; the Responses API only on the v1 paths (the dated GA API has none).
    /// </summary>
    public override IReadOnlySet<ProviderCapability> Capabilities { get; } = Build(v1, nativeBatches);

    private static HashSet<ProviderCapability> Build(bool v1, bool nativeBatches)
    {
        var capabilities = new HashSet<ProviderCapability>(
            v1 ? [ProviderCapability.Files, .. ProviderCapabilities.ModelEndpoints]
               : [ProviderCapability.Files, ProviderCapability.ChatCompletions, ProviderCapability.Completions, ProviderCapability.Embeddings]);
        if (nativeBatches)
        {
            capabilities.Add(ProviderCapability.Batches);
        }
        return capabilities;
    }

    public override Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) =>
        Capabilities.Contains(call.Endpoint)
            ? Wire.SendModelRequestAsync(call, cancellationToken)
            : Task.FromResult<UpstreamOutcome<ModelResponse>>(UpstreamFailure.Unsupported($"Azure's dated api-version has no {call.Endpoint.WireName()} endpoint; ApiVersion 'v1' has."));
}
