using System.Text.Json;
using Wharf.Core.Providers;

namespace Wharf.Providers.Gemini;

/// <summary>
/// A Gemini upstream: chat completions through <c>models/{model}:generateContent</c> (streamed:
/// <c>:streamGenerateContent?alt=sse</c>), embeddings through <c>:batchEmbedContents</c>, each request translated
/// from OpenAI's format before it is sent and the answer back to it (a streamed one event by event). What cannot be
/// translated is the user's 400 before any call. Files through the Files API (<see cref="GeminiFiles"/>); a file part
/// naming a copy becomes <c>fileData</c>. Native batches of chat completions through batch mode (<see cref="GeminiBatches"/>).
/// </summary>
internal sealed class GeminiProvider(string id, GeminiWire wire, TimeProvider time, bool nativeBatches = true) : IProvider
{
    private const string JsonType = "application/json";

    private readonly GeminiFiles _files = new(wire);
    private GeminiBatches? _batches;

    private GeminiBatches Batches => _batches ??= new GeminiBatches(id, wire, _files);

    public string Id => id;

    public string Type => "gemini";

    /// <summary>Files, chat completions and embeddings; batch mode unless configured without it (<c>NativeBatches: false</c>).</summary>
    public IReadOnlySet<ProviderCapability> Capabilities { get; } = nativeBatches
        ? new HashSet<ProviderCapability>([ProviderCapability.Files, ProviderCapability.Batches, ProviderCapability.ChatCompletions, ProviderCapability.Embeddings])
        : new HashSet<ProviderCapability>([ProviderCapability.Files, ProviderCapability.ChatCompletions, ProviderCapability.Embeddings]);

    public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) => call.Endpoint switch
    {
        ProviderCapability.ChatCompletions => ChatAsync(call, cancellationToken),
        ProviderCapability.Embeddings => EmbedAsync(call, cancellationToken),
        _ => Task.FromResult<UpstreamOutcome<ModelResponse>>(UpstreamFailure.Unsupported($"Gemini has no {call.Endpoint.WireName()} endpoint.")),
    };

    private async Task<UpstreamOutcome<ModelResponse>> ChatAsync(ModelCall call, CancellationToken cancellationToken)
    {
        // A file part names its copy on Gemini by now; fileData needs its URI and media type, looked up first.
        IReadOnlyDictionary<string, GeminiFileRef>? files = null;
        if (GeminiChatRequest.FileIds(call.Body) is { Count: > 0 } named)
        {
            var resolved = await _files.ResolveAsync(named, cancellationToken);
            if (!resolved.IsOk)
            {
                return resolved.Failure;
            }
            files = resolved.Value;
        }
        var translated = GeminiChatRequest.Translate(call.Body, files);
        if (!translated.IsOk)
        {
            return translated.Failure;
        }
        var request = translated.Value;
        var sent = await wire.PostAsync(wire.ModelUri(call.Model, call.Stream ? "streamGenerateContent" : "generateContent", sse: call.Stream),
            request.Body, call.Stream, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        var response = sent.Value;
        long created = time.GetUtcNow().ToUnixTimeSeconds();
        if (call.Stream)
        {
            if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
            {
                response.Dispose();
                return UpstreamFailure.Malformed((int)response.StatusCode, "The upstream answered a streamed request without an event stream.");
            }
            try
            {
                var body = await wire.ReadStreamAsync(response, cancellationToken);
                return new ModelResponse(200, "text/event-stream; charset=utf-8",
                    new GeminiChunkStream(body, call.Model, created, request.IncludeUsage), new Http.DisposeOnce(response));
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                response.Dispose();
                return UpstreamFailure.ConnectionFailed("The upstream closed the connection before its answer began.");
            }
        }
        return await TranslateJsonAsync(response, answer => GeminiChatAnswer.Translate(answer, call.Model, created),
            "The upstream's answer is not a GenerateContentResponse.", cancellationToken);
    }

    private async Task<UpstreamOutcome<ModelResponse>> EmbedAsync(ModelCall call, CancellationToken cancellationToken)
    {
        var translated = GeminiEmbeddings.Translate(call.Body, call.Model);
        if (!translated.IsOk)
        {
            return translated.Failure;
        }
        var sent = await wire.PostAsync(wire.ModelUri(call.Model, "batchEmbedContents"), translated.Value.Body, eventStream: false, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        return await TranslateJsonAsync(sent.Value, answer => GeminiEmbeddings.TranslateAnswer(answer, call.Model, translated.Value.Base64),
            "The upstream's answer is not a BatchEmbedContentsResponse.", cancellationToken);
    }

    /// <summary>A 2xx JSON answer read whole, translated; an answer that cannot be is the upstream's fault (502).</summary>
    private async Task<UpstreamOutcome<ModelResponse>> TranslateJsonAsync(
        HttpResponseMessage response, Func<JsonElement, byte[]?> translate, string notTheShape, CancellationToken cancellationToken)
    {
        using (response)
        {
            int status = (int)response.StatusCode;
            var read = await wire.ReadJsonAsync(response, cancellationToken);
            if (!read.IsOk)
            {
                return read.Failure;
            }
            using var document = read.Value;
            return translate(document.RootElement) is { } body
                ? new ModelResponse(status, JsonType, new MemoryStream(body, writable: false))
                : UpstreamFailure.Malformed(status, notTheShape);
        }
    }

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        _files.UploadAsync(upload, cancellationToken);

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        _files.DeleteAsync(upstreamFileId, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        _files.ListAsync(query, cancellationToken);

    /// <summary>Gemini drops a file 48 hours after its upload: a copy is looked up before it is named again.</summary>
    public bool DropsCopies => true;

    public Task<UpstreamOutcome<bool>> IsCopyUsableAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        _files.IsUsableAsync(upstreamFileId, cancellationToken);

    /// <summary>A Gemini batch is made from Wharf's input file, translated line by line on its way to the upload.</summary>
    public BatchInputForm BatchInputForm => BatchInputForm.WharfFile;

    public Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) => nativeBatches
        ? Batches.CreateAsync(batch, cancellationToken)
        : Task.FromResult<UpstreamOutcome<UpstreamBatch>>(UpstreamFailure.Unsupported("The provider is configured without batch mode (NativeBatches: false)."));

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        Batches.GetAsync(upstreamBatchId, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        Batches.CancelAsync(upstreamBatchId, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) =>
        Batches.ListAsync(query, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Batches.DownloadAsync(upstreamFileId, cancellationToken);

    /// <summary>Gemini's responses file, translated into OpenAI's output or error lines as it is read.</summary>
    public Task<UpstreamOutcome<UpstreamFileContent>> OpenBatchResultsAsync(UpstreamBatchResults results, CancellationToken cancellationToken) =>
        Batches.OpenResultsAsync(results, cancellationToken);
}
