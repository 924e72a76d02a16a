using Wharf.Core.Providers;

namespace Wharf.Providers.Local;

/// <summary>Wharf's own store: files kept only by Wharf. Always configured; it serves no model endpoint.</summary>
internal sealed class LocalProvider : IProvider
{
    public const string ProviderId = "local";

    public string Id => ProviderId;

    public string Type => ProviderId;

    public IReadOnlySet<ProviderCapability> Capabilities { get; } = new HashSet<ProviderCapability>();

    public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<ModelResponse>>(UpstreamFailure.Unsupported("The local store serves no model endpoint."));

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFile>>(UpstreamFailure.Unsupported("Files kept locally are not sent anywhere."));

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<bool>>(UpstreamFailure.Unsupported("The local store has no upstream copies."));

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFilePage>>(UpstreamFailure.Unsupported("The local store is listed by the catalog."));

    public Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) => NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) => NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) => NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) => NoBatches<UpstreamBatchPage>();

    public Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFileContent>>(UpstreamFailure.Unsupported("The local store's files are read from the store."));

    private static Task<UpstreamOutcome<T>> NoBatches<T>() =>
        Task.FromResult<UpstreamOutcome<T>>(UpstreamFailure.Unsupported("The local store has no batch API."));
}
