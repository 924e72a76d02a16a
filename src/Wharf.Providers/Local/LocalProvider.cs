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
}
