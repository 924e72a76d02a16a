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
