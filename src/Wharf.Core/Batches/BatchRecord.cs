using Wharf.Core.Providers;

namespace Wharf.Core.Batches;

/// <summary>A batch as the catalog keeps it. Every batch belongs to exactly one workspace.</summary>
public sealed record BatchRecord
{
    public required string Id { get; init; }
    public required string WorkspaceId { get; init; }

    /// <summary>The endpoint every line calls, as OpenAI names it (<c>/v1/chat/completions</c>, ...).</summary>
    public required string Endpoint { get; init; }

    public required string InputFileId { get; init; }
    public string CompletionWindow { get; init; } = BatchEndpoints.CompletionWindow;

    /// <summary><see cref="BatchExecution.Gateway"/> (Wharf runs the lines) or <see cref="BatchExecution.Native"/>.</summary>
    public required string Execution { get; init; }

    /// <summary>The provider the client named for every line (Wharf's <c>provider</c>), if any.</summary>
    public string? Provider { get; init; }

    public required string Status { get; init; }

    /// <summary>Unix seconds, as every timestamp here.</summary>
    public required long CreatedAt { get; init; }
    public required long ExpiresAt { get; init; }
    public long? InProgressAt { get; init; }
    public long? FinalizingAt { get; init; }
    public long? CompletedAt { get; init; }
    public long? FailedAt { get; init; }
    public long? ExpiredAt { get; init; }
    public long? CancellingAt { get; init; }
    public long? CancelledAt { get; init; }

    public string? OutputFileId { get; init; }
    public string? ErrorFileId { get; init; }

    /// <summary>Why the batch failed (validation errors, with their 1-based lines); empty otherwise.</summary>
    public IReadOnlyList<BatchError> Errors { get; init; } = [];

    /// <summary>The client's metadata; null when it gave none.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Seconds from their creation after which the output and error files expire; null: they do not.</summary>
    public long? OutputExpiresAfterSeconds { get; init; }

    public BatchRequestCounts RequestCounts { get; init; } = BatchRequestCounts.None;
    public BatchUsage Usage { get; init; } = BatchUsage.None;

    /// <summary>Where a native batch runs: the provider and its batch id, once created there; null otherwise.</summary>
    public NativeBatchState? Native { get; init; }

    public bool IsFinal => BatchStatus.IsFinal(Status);
}

/// <summary>OpenAI's batch statuses.</summary>
public static class BatchStatus
{
    public const string Validating = "validating";
    public const string Failed = "failed";
    public const string InProgress = "in_progress";
    public const string Finalizing = "finalizing";
    public const string Completed = "completed";
    public const string Expired = "expired";
    public const string Cancelling = "cancelling";
    public const string Cancelled = "cancelled";

    /// <summary>Statuses in which the engine still has work: a lease on such a batch is claimed.</summary>
    public static readonly IReadOnlyList<string> Active = [Validating, InProgress, Finalizing, Cancelling];

    public static bool IsFinal(string status) => status is Completed or Failed or Expired or Cancelled;
}

public static class BatchExecution
{
    public const string Gateway = "gateway";
    public const string Native = "native";
}

/// <summary>The endpoints a batch may call and its one completion window.</summary>
public static class BatchEndpoints
{
    public const string CompletionWindow = "24h";
    public const long CompletionWindowSeconds = 24 * 3600;

    public static readonly IReadOnlyList<string> All = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"];

    /// <summary>The model endpoint a batch's <c>endpoint</c> names; false for anything else.</summary>
    public static bool TryParse(string? endpoint, out ProviderCapability capability)
    {
        capability = endpoint switch
        {
            "/v1/chat/completions" => ProviderCapability.ChatCompletions,
            "/v1/completions" => ProviderCapability.Completions,
            "/v1/embeddings" => ProviderCapability.Embeddings,
            "/v1/responses" => ProviderCapability.Responses,
            _ => ProviderCapability.Files,
        };
        return capability != ProviderCapability.Files;
    }
}

/// <summary>One entry of a batch's <c>errors.data</c>; <paramref name="Line"/> is 1-based.</summary>
public sealed record BatchError(string Code, string Message, string? Param, int? Line);

public sealed record BatchRequestCounts(int Total, int Completed, int Failed)
{
    public static readonly BatchRequestCounts None = new(0, 0, 0);
}

/// <summary>Tokens summed over the answers of a batch's lines, each line counted once.</summary>
public sealed record BatchUsage(long InputTokens, long CachedTokens, long OutputTokens, long ReasoningTokens, long TotalTokens)
{
    public static readonly BatchUsage None = new(0, 0, 0, 0, 0);

    public BatchUsage Add(BatchUsage other) => new(
        InputTokens + other.InputTokens, CachedTokens + other.CachedTokens, OutputTokens + other.OutputTokens,
        ReasoningTokens + other.ReasoningTokens, TotalTokens + other.TotalTokens);
}

/// <summary>A native batch's place upstream, and when it is next polled (unix seconds).</summary>
public sealed record NativeBatchState(string Provider, string? UpstreamBatchId, long NextPollAt, int Polls);

/// <summary>Which of a batch's two result files a chunk belongs to.</summary>
public enum BatchFileKind
{
    Output,
    Error,
}

/// <summary>The row of a batch's result file, made of its chunks by a catalog when the batch ends.</summary>
public static class BatchResultFile
{
    public static Files.FileRecord Record(BatchRecord batch, BatchFileKind kind, string fileId, long bytes, long createdAt, long? expiresAt) => new()
    {
        Id = fileId,
        WorkspaceId = batch.WorkspaceId,
        Bytes = bytes,
        CreatedAt = createdAt,
        Filename = $"{batch.Id}_{(kind == BatchFileKind.Output ? "output" : "error")}.jsonl",
        Purpose = Files.FilePurposes.BatchOutput,
        Status = Files.FileStatus.Processed,
        ExpiresAt = expiresAt,
        Provider = Files.FileService.LocalProvider,
        Sha256 = null, // computed from the segments by the deferred hasher
        ContentType = "application/jsonl",
        Segmented = true,
    };
}

/// <summary>
/// Result lines of a batch written to the blob store as one blob (named by <see cref="PartId"/>, a <c>part_</c> id),
/// recorded with the input lines whose results it holds. A result file is its chunks, in the order recorded.
/// </summary>
public sealed record BatchChunk
{
    public required string BatchId { get; init; }
    public required string WorkspaceId { get; init; }
    public required BatchFileKind Kind { get; init; }
    public required string PartId { get; init; }
    public required long Bytes { get; init; }
    public required string Sha256 { get; init; }
    public required long CreatedAt { get; init; }

    /// <summary>The 1-based input lines whose results the chunk holds; none for a native batch's copied results.</summary>
    public required IReadOnlyList<int> Lines { get; init; }

    /// <summary>How many of <see cref="Lines"/> succeeded and failed (added to the batch's counts).</summary>
    public int Completed { get; init; }
    public int Failed { get; init; }

    /// <summary>Tokens of the chunk's answers (added to the batch's usage).</summary>
    public BatchUsage Usage { get; init; } = BatchUsage.None;
}

/// <summary>
/// How a batch ends: its final status and timestamps, its result files (each made of its chunks, in the order they
/// were recorded, when it has any) and the webhook event reporting it, written in one transaction.
/// </summary>
public sealed record BatchFinal
{
    /// <summary>The batch with its final status and timestamps set (counts and usage are the catalog's own).</summary>
    public required BatchRecord Batch { get; init; }

    /// <summary>The id the output file gets, when the batch has output chunks.</summary>
    public required string OutputFileId { get; init; }

    /// <summary>The id the error file gets, when the batch has error chunks.</summary>
    public required string ErrorFileId { get; init; }

    /// <summary>The result files' <c>created_at</c> (unix seconds); they expire <c>output_expires_after</c> later.</summary>
    public required long FilesCreatedAt { get; init; }

    /// <summary>The webhook event to queue, when the workspace has a webhook URL.</summary>
    public WebhookEvent? Event { get; init; }
}

/// <summary>
/// An event for a workspace's webhook (OpenAI's event object): queued in the same transaction as what it reports,
/// delivered at least once, always with the same id.
/// </summary>
/// <param name="Payload">The JSON body, as it is signed and sent.</param>
public sealed record WebhookEvent(string Id, string WorkspaceId, string Type, long CreatedAt, string Payload);
