using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// Type <c>anthropic</c>: Anthropic's Messages API. <c>BaseUrl</c> is what Anthropic's SDK takes as base URL (no
/// <c>/v1</c>); the key goes in <c>x-api-key</c>, with <c>anthropic-version: 2023-06-01</c>. Chat completions are
/// translated to <c>POST /v1/messages</c> and back; <c>DefaultMaxTokens</c> is the <c>max_tokens</c> of a request that
/// gives none. Native batches run on its Message Batches API unless the entry says <c>NativeBatches: false</c>.
/// </summary>
internal sealed class AnthropicAdapter(UpstreamHttpClients clients) : IProviderAdapter
{
    public const string DefaultBaseUrl = "https://api.anthropic.com";

    public const int DefaultMaxTokens = 4096;

    public string Type => "anthropic";

    public IEnumerable<string> Validate(string key, ProviderOptions options)
    {
        if (string.IsNullOrEmpty(options.ApiKey))
        {
            yield return $"{key}:ApiKey is missing: type 'anthropic' sends it as 'x-api-key'.";
        }
        if (!string.IsNullOrEmpty(options.ApiVersion))
        {
            yield return $"{key}:ApiVersion is not used by type 'anthropic' (Wharf speaks anthropic-version {AnthropicDialect.Version}).";
        }
        if (options.DefaultMaxTokens is < 1)
        {
            yield return $"{key}:DefaultMaxTokens must be at least 1 (leave it out for {DefaultMaxTokens}).";
        }
        foreach (string header in options.Headers.Keys)
        {
            if (header.Equals("x-api-key", StringComparison.OrdinalIgnoreCase) || header.Equals("anthropic-version", StringComparison.OrdinalIgnoreCase))
            {
                yield return $"{key}:Headers:{header} is set by Wharf for type 'anthropic' (the key comes from ApiKey).";
            }
        }
    }

    public IProvider Create(ProviderContext context)
    {
        var baseUrl = new Uri(string.IsNullOrEmpty(context.Options.BaseUrl) ? DefaultBaseUrl : context.Options.BaseUrl);
        var dialect = new AnthropicDialect(baseUrl, context.Options.ApiKey!);
        var wire = new OpenAIWire(context, clients.Create(), dialect);
        var translation = new AnthropicTranslation(context.Options.DefaultMaxTokens ?? DefaultMaxTokens, context.Time);
        return new AnthropicProvider(context.Id, wire, translation, new AnthropicFiles(wire, dialect, context),
            context.Options.NativeBatches == false ? null : new AnthropicBatches(wire, dialect, translation, context));
    }
}

/// <summary>
/// Where Anthropic takes each request (<c>{BaseUrl}/v1/messages</c>, ...) and how it is authenticated (<c>x-api-key</c>
/// and <c>anthropic-version</c>): what the shared HTTP transport needs of it.
/// </summary>
internal sealed class AnthropicDialect(Uri baseUrl, string apiKey) : IOpenAIDialect
{
    /// <summary>The API version Wharf's translation is written against.</summary>
    public const string Version = "2023-06-01";

    private readonly string _base = baseUrl.AbsoluteUri.TrimEnd('/');

    private readonly Uri _messages = new(baseUrl.AbsoluteUri.TrimEnd('/') + "/v1/messages");

    /// <summary>Only chat completions are sent (<see cref="AnthropicProvider"/> refuses the rest): <c>/v1/messages</c>.</summary>
    public Uri ModelUri(ProviderCapability endpoint, string model) => _messages;

    public Uri FilesUri(string? fileId, string query) =>
        new($"{_base}/v1/files{(fileId is null ? "" : "/" + Uri.EscapeDataString(fileId))}{(query.Length == 0 ? "" : "?" + query)}");

    public Uri FileContentUri(string fileId) => new($"{_base}/v1/files/{Uri.EscapeDataString(fileId)}/content");

    public Uri BatchesUri(string? batchId, string? action, string query) =>
        new($"{_base}/v1/messages/batches{(batchId is null ? "" : "/" + Uri.EscapeDataString(batchId))}{(action is null ? "" : "/" + action)}{(query.Length == 0 ? "" : "?" + query)}");

    public string BatchEndpoint(string endpoint) => endpoint;

    /// <summary>The beta that opens the Files API and file blocks in messages.</summary>
    public const string FilesBeta = "files-api-2025-04-14";

    /// <summary>
    /// The key and the version, and the Files API's beta added to <c>anthropic-beta</c> (after any betas the entry's
    /// <c>Headers</c> name): sent on every request, as a message may name an uploaded file.
    /// </summary>
    public void Authorize(HttpRequestMessage request)
    {
        request.Headers.TryAddWithoutValidation("x-api-key", apiKey);
        request.Headers.TryAddWithoutValidation("anthropic-version", Version);
        string betas = request.Headers.TryGetValues("anthropic-beta", out var configured) ? string.Join(",", configured) + "," + FilesBeta : FilesBeta;
        request.Headers.Remove("anthropic-beta");
        request.Headers.TryAddWithoutValidation("anthropic-beta", betas);
    }
}

/// <summary>
/// An Anthropic upstream: chat completions translated to the Messages API and back, plain and streamed, its Files
/// API (<see cref="AnthropicFiles"/>) and its Message Batches API (<see cref="AnthropicBatches"/>, unless configured
/// without it: then every batch call answers Unsupported without a request). Errors come
/// back through the shared transport, classified in one place (<see cref="UpstreamFailure.FromAnswer"/>): Anthropic's
/// <c>{"type":"error","error":{"type","message"}}</c> is read there, its <c>error.type</c> kept as the code.
/// </summary>
internal sealed class AnthropicProvider(string id, OpenAIWire wire, AnthropicTranslation translation, AnthropicFiles files, AnthropicBatches? batches) : IProvider
{
    public string Id => id;

    public string Type => "anthropic";

    public IReadOnlySet<ProviderCapability> Capabilities { get; } = batches is null
        ? new HashSet<ProviderCapability> { ProviderCapability.Files, ProviderCapability.ChatCompletions }
        : new HashSet<ProviderCapability> { ProviderCapability.Files, ProviderCapability.ChatCompletions, ProviderCapability.Batches };

    /// <summary>Message Batches take their requests inline: the adapter reads Wharf's input file and translates it.</summary>
    public BatchInputForm BatchInputForm => BatchInputForm.WharfFile;

    /// <summary>A Message Batch has no metadata, and its list shows nothing that tells Wharf's batches apart.</summary>
    public bool BatchesCarryMetadata => false;

    public async Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken)
    {
        if (call.Endpoint != ProviderCapability.ChatCompletions)
        {
            return UpstreamFailure.Unsupported($"Anthropic has no {call.Endpoint.WireName()} endpoint.");
        }
        var request = translation.ToMessagesRequest(call.Body, call.Model);
        if (!request.IsOk)
        {
            return request.Failure;
        }
        var sent = await wire.SendModelRequestAsync(call with { Body = request.Value.Body }, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        var answer = sent.Value;
        if (answer.IsEventStream)
        {
            return new ModelResponse(answer.Status, "text/event-stream; charset=utf-8",
                new AnthropicEventStream(answer.Content, translation.StreamState(request.Value.IncludeUsage)), answer);
        }
        await using (answer)
        {
            return await translation.ToChatCompletionAsync(answer.Status, answer.Content, cancellationToken);
        }
    }

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        files.UploadAsync(upload, cancellationToken);

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        files.DeleteAsync(upstreamFileId, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        files.ListAsync(query, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) =>
        batches?.CreateAsync(batch, cancellationToken) ?? NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        batches?.GetAsync(upstreamBatchId, cancellationToken) ?? NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        batches?.CancelAsync(upstreamBatchId, cancellationToken) ?? NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) =>
        batches?.ListAsync(query, cancellationToken) ?? NoBatches<UpstreamBatchPage>();

    public Task<UpstreamOutcome<UpstreamFileContent>> OpenBatchResultsAsync(UpstreamBatchResults results, CancellationToken cancellationToken) =>
        batches?.OpenResultsAsync(results, cancellationToken) ?? NoBatches<UpstreamFileContent>();

    private static Task<UpstreamOutcome<T>> NoBatches<T>() =>
        Task.FromResult<UpstreamOutcome<T>>(UpstreamFailure.Unsupported("The provider is configured without a native batch API (NativeBatches: false)."));
}
