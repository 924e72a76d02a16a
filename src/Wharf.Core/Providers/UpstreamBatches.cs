using Wharf.Core.Batches;

namespace Wharf.Core.Providers;

/// <summary>
/// A batch to create with a provider's own batch API: the endpoint every line calls (OpenAI's name,
/// <c>/v1/chat/completions</c>; the adapter writes it as its provider names it), the completion window and the
/// metadata to attach (Wharf's batch id under <c>wharf_batch_id</c> first). Its input comes in the form the provider
/// asked for (<see cref="IProvider.BatchInputForm"/>): <see cref="InputFileId"/>, the id of the input file's copy on
/// the provider, for <see cref="BatchInputForm.ProviderFile"/>; <see cref="Input"/>, Wharf's own input file to read
/// and translate, for <see cref="BatchInputForm.WharfFile"/>.
/// </summary>
public sealed record UpstreamBatchCreate(string? InputFileId, string Endpoint, string CompletionWindow, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>Opens Wharf's input file (OpenAI's batch JSONL, already validated); set for <see cref="BatchInputForm.WharfFile"/>.</summary>
    public BatchInputOpener? Input { get; init; }
}

/// <summary>
/// Opens Wharf's copy of a native batch's input file, read forward once per open (the caller disposes what it gets);
/// null when the file is gone.
/// </summary>
public delegate Task<UpstreamFileContent?> BatchInputOpener(CancellationToken cancellationToken);

/// <summary>How a provider's batch API takes a batch's input.</summary>
public enum BatchInputForm
{
    /// <summary>OpenAI's way: the input file is copied to the provider as it is, and the batch names the copy.</summary>
    ProviderFile,

    /// <summary>The adapter reads Wharf's input file itself (to translate its lines into the provider's own form).</summary>
    WharfFile,
}

/// <summary>
/// The results of an ended upstream batch to read: which kind (output or error lines), the file the provider
/// reported for it (<see cref="UpstreamBatch.OutputFileId"/> or <see cref="UpstreamBatch.ErrorFileId"/>, whatever
/// the adapter put there), and Wharf's input file (an adapter that mapped the lines' <c>custom_id</c>s may need it to
/// map them back).
/// </summary>
public sealed record UpstreamBatchResults(UpstreamBatch Batch, Batches.BatchFileKind Kind, string FileId, BatchInputOpener Input);

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

public sealed record UpstreamBatchPage(IReadOnlyList<UpstreamBatch> Data, bool HasMore)
{
    /// <summary>What the next page starts after when it is not the last id of <see cref="Data"/>: a provider's own page token (Gemini's).</summary>
    public string? Cursor { get; init; }
}

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
