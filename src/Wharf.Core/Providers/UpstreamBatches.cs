using Wharf.Core.Batches;

namespace Wharf.Core.Providers;

/// <summary>
/// A batch to create with a provider's own batch API: its input file as the provider knows it (its copy's id), the
/// endpoint every line calls (OpenAI's name, <c>/v1/chat/completions</c>; the adapter writes it as its provider names
/// it), the completion window and the metadata to attach.
/// </summary>
public sealed record UpstreamBatchCreate(string InputFileId, string Endpoint, string CompletionWindow, IReadOnlyDictionary<string, string> Metadata);

/// <summary>
/// A batch as a provider reports it, mapped to OpenAI's batch object: its id and status (OpenAI's statuses), its
/// request counts and usage when the provider gives them, the ids of its output and error files (the provider's), and
/// the errors of a batch that failed.
/// </summary>
public sealed record UpstreamBatch
{
    public required string Id { get; init; }

    /// <summary>One of <see cref="BatchStatus"/>'s values (an unknown status is reported as it came).</summary>
    public required string Status { get; init; }

    /// <summary>Unix seconds; 0 when the provider did not say.</summary>
    public long CreatedAt { get; init; }

    public BatchRequestCounts? RequestCounts { get; init; }

    public BatchUsage? Usage { get; init; }

    public string? OutputFileId { get; init; }

    public string? ErrorFileId { get; init; }

    public IReadOnlyList<BatchError> Errors { get; init; } = [];

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    public bool IsFinal => BatchStatus.IsFinal(Status);
}

/// <summary>A page request to a provider's batch list (newest first); the cursor is the provider's, passed through.</summary>
public sealed record UpstreamBatchQuery(int? Limit, string? After);

public sealed record UpstreamBatchPage(IReadOnlyList<UpstreamBatch> Data, bool HasMore);

/// <summary>
/// A provider's file content as it arrives (never read whole): the owner reads it forward once and disposes it, which
/// releases the upstream connection.
/// </summary>
/// <param name="Length">The length the provider announced, if it did.</param>
public sealed class UpstreamFileContent(Stream content, long? length, IAsyncDisposable? owner = null) : IAsyncDisposable
{
    public Stream Content => content;

    public long? Length => length;

    public async ValueTask DisposeAsync()
    {
        await content.DisposeAsync();
        if (owner is not null)
        {
            await owner.DisposeAsync();
        }
    }
}
