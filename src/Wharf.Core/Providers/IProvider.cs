namespace Wharf.Core.Providers;

/// <summary>
/// One upstream, as its adapter speaks to it. An adapter only speaks its provider's wire format: every answer,
/// error answers included, comes back as an outcome value (routing, retries, concurrency limits and telemetry
/// are decorators and services around it). An operation outside <see cref="Capabilities"/> answers
/// <see cref="UpstreamFailure.Unsupported"/>.
/// </summary>
public interface IProvider
{
    /// <summary>The id users name it by (<c>local</c>, <c>openai</c>, <c>groq</c>, ...).</summary>
    string Id { get; }

    /// <summary>The adapter: <c>local</c>, <c>openai</c>, <c>azure</c>, <c>mock</c>, ...</summary>
    string Type { get; }

    IReadOnlySet<ProviderCapability> Capabilities { get; }

    /// <summary>Sends a model request; a 2xx answer comes back unread, to be streamed on.</summary>
    Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken);

    Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken);

    /// <summary>Deletes the provider's copy; one the provider does not know (404) counts as deleted.</summary>
    Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken);

    Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// Whether the provider drops files on its own (Gemini, 48 hours after the upload): then a recorded copy is
    /// checked with <see cref="IsCopyUsableAsync"/> before it is named again. Every other provider keeps what it was
    /// given, and its copies' records are trusted without a call.
    /// </summary>
    bool DropsCopies => false;

    /// <summary>
    /// Whether a copy recorded earlier may still be named in a request (asked only of a provider that
    /// <see cref="DropsCopies"/>): false for one that is gone or about to go, so the file is copied there again.
    /// </summary>
    Task<UpstreamOutcome<bool>> IsCopyUsableAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<bool>>(true);

    // The native batch API (capability Batches). An adapter without one need not write these: they answer
    // Unsupported. Every decorator passes them on.

    /// <summary>Creates a batch with the provider's own batch API.</summary>
    Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamBatch>>(UpstreamFailure.Unsupported("This provider has no batch API."));

    /// <summary>The batch as the provider reports it now.</summary>
    Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamBatch>>(UpstreamFailure.Unsupported("This provider has no batch API."));

    /// <summary>Asks the provider to cancel the batch; answers the batch as it then is (usually <c>cancelling</c>).</summary>
    Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamBatch>>(UpstreamFailure.Unsupported("This provider has no batch API."));

    /// <summary>One page of the provider's batches, newest first.</summary>
    Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamBatchPage>>(UpstreamFailure.Unsupported("This provider has no batch API."));

    /// <summary>A file's content on the provider (a batch's output or error file), streamed as it arrives.</summary>
    Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFileContent>>(UpstreamFailure.Unsupported("This provider has no file downloads."));

    /// <summary>
    /// Whether the provider's batches carry the metadata given at create (and list it), so that a batch created just
    /// before a crash or a lost answer is found by Wharf's batch id instead of being created twice.
    /// </summary>
    bool BatchesCarryMetadata => true;

    /// <summary>How <see cref="CreateBatchAsync"/> takes a batch's input: OpenAI's way (a copy on the provider) unless the adapter says otherwise.</summary>
    BatchInputForm BatchInputForm => BatchInputForm.ProviderFile;

    /// <summary>
    /// An ended batch's output or error lines, as OpenAI's batch output JSONL (one <c>{id, custom_id, response,
    /// error}</c> object per line), streamed as they arrive: the provider's file as it is unless the adapter
    /// translates its own result format.
    /// </summary>
    Task<UpstreamOutcome<UpstreamFileContent>> OpenBatchResultsAsync(UpstreamBatchResults results, CancellationToken cancellationToken) =>
        DownloadFileAsync(results.FileId, cancellationToken);
}

/// <summary>A configured provider: its adapter (decorated) and what routing needs to know of it.</summary>
/// <param name="Models">The only models a model-routed request may send there; null for any.</param>
public sealed record RegisteredProvider(IProvider Provider, bool Enabled, IReadOnlySet<string>? Models)
{
    public string Id => Provider.Id;
}

/// <summary>The providers this node knows, by id, in configuration order (<c>local</c> first).</summary>
public interface IProviderRegistry
{
    IReadOnlyList<RegisteredProvider> All { get; }

    bool TryGet(string id, out RegisteredProvider provider);
}
