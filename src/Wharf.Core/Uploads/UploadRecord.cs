using Wharf.Core.Files;

namespace Wharf.Core.Uploads;

/// <summary>An upload: a file that arrives in parts and becomes a normal file when completed.</summary>
public sealed record UploadRecord
{
    public required string Id { get; init; }
    public required string WorkspaceId { get; init; }
    public required string Filename { get; init; }
    public required string Purpose { get; init; }
    /// <summary>The size the client announced; the parts must add up to it.</summary>
    public required long Bytes { get; init; }
    public string? MimeType { get; init; }
    public required long CreatedAt { get; init; }
    public required long ExpiresAt { get; init; }
    public required string Status { get; init; }
    /// <summary>The file made by completing it, once completed.</summary>
    public string? FileId { get; init; }
    /// <summary>The resulting file's expiry, from <c>expires_after</c>; null for the purpose's default.</summary>
    public long? FileExpiresAfterSeconds { get; init; }
    /// <summary>The resulting file's <c>metadata</c> (Wharf's extension, checked as for <c>POST /v1/files</c>).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = FileRecord.EmptyMetadata;
    /// <summary>The resulting file's <c>collection</c>, if any.</summary>
    public string? Collection { get; init; }
    /// <summary>Where the resulting file is kept: <c>local</c>, or a provider it is copied to when the upload completes.</summary>
    public string Provider { get; init; } = FileService.LocalProvider;
}

/// <summary>A part of an upload, kept as its own blob (named by the part id) with its hashes.</summary>
public sealed record UploadPartRecord
{
    public required string Id { get; init; }
    public required string UploadId { get; init; }
    public required string WorkspaceId { get; init; }
    public required long Bytes { get; init; }
    public required string Sha256 { get; init; }
    public required long CreatedAt { get; init; }
}

public static class UploadStatus
{
    public const string Pending = "pending";
    public const string Completed = "completed";
    public const string Cancelled = "cancelled";
    public const string Expired = "expired";
}

/// <summary>One piece of a file's content: a blob and its length, in file order.</summary>
public sealed record BlobSegment(string BlobId, long Bytes);

/// <summary>How completing an upload ended in the catalog.</summary>
public enum CompleteOutcome
{
    Completed,
    NotPending,
    QuotaExceeded,
    WorkspaceDeleted,
}

/// <summary>How creating an upload ended in the catalog.</summary>
public enum UploadInsertOutcome
{
    Inserted,

    /// <summary>Its announced size does not fit in the workspace's free quota.</summary>
    QuotaExceeded,

    /// <summary>The workspace already has as many pending uploads as allowed.</summary>
    TooManyPending,

    WorkspaceDeleted,
}

/// <summary>How adding a part ended in the catalog.</summary>
public enum PartInsertOutcome
{
    Inserted,

    /// <summary>The upload is unknown, of another workspace, no longer pending or past its expiry.</summary>
    NotPending,

    /// <summary>The upload's parts would add up to more than it may hold.</summary>
    OverAllowance,

    /// <summary>The usage the part adds (beyond the upload's announced size) would pass the quota.</summary>
    QuotaExceeded,

    WorkspaceDeleted,
}
