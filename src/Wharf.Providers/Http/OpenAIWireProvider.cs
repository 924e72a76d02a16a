using Wharf.Core.Providers;

namespace Wharf.Providers.Http;

/// <summary>
/// What the providers that speak OpenAI's wire share (types <c>openai</c> and <c>azure</c>): files and, when its
/// <see cref="IProvider.Capabilities"/> hold <see cref="ProviderCapability.Batches"/>, the batch API, each sent
/// through the <see cref="OpenAIWire"/> (whose dialect builds each type's own URLs). A provider configured without a
/// batch API (<c>NativeBatches: false</c>) answers every batch call as unsupported, without a request.
/// </summary>
internal abstract class OpenAIWireProvider(string id, OpenAIWire wire) : IProvider
{
    public string Id => id;

    public abstract string Type { get; }

    public abstract IReadOnlySet<ProviderCapability> Capabilities { get; }

    protected OpenAIWire Wire => wire;

    public abstract Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken);

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        wire.UploadFileAsync(upload, cancellationToken);

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        wire.DeleteFileAsync(upstreamFileId, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        wire.ListFilesAsync(query, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        wire.DownloadFileAsync(upstreamFileId, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) =>
        HasBatches ? wire.CreateBatchAsync(batch, cancellationToken) : NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        HasBatches ? wire.GetBatchAsync(upstreamBatchId, cancellationToken) : NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        HasBatches ? wire.CancelBatchAsync(upstreamBatchId, cancellationToken) : NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) =>
        HasBatches ? wire.ListBatchesAsync(query, cancellationToken) : NoBatches<UpstreamBatchPage>();

    private bool HasBatches => Capabilities.Contains(ProviderCapability.Batches);

    private static Task<UpstreamOutcome<T>> NoBatches<T>() =>
        Task.FromResult<UpstreamOutcome<T>>(UpstreamFailure.Unsupported("The provider is configured without a native batch API (NativeBatches: false)."));
}
