using Wharf.Core.Files;
using Wharf.Core.Uploads;

namespace Wharf.Core.Ports;

/// <summary>Uploads and their parts. Every call is scoped to one workspace, except the sweeper's.</summary>
public interface IUploadCatalog
{
    Task InsertUploadAsync(UploadRecord upload, CancellationToken cancellationToken);

    Task<UploadRecord?> GetUploadAsync(string workspaceId, string uploadId, CancellationToken cancellationToken);

    /// <summary>
    /// Adds a part; false (writing nothing) when the upload is no longer pending, has expired, or its parts would
    /// exceed twice its announced size (or its size plus one part: room for re-sent parts, not for unbounded ones).
    /// </summary>
    Task<bool> InsertPartAsync(UploadPartRecord part, long nowUnixSeconds, CancellationToken cancellationToken);

    /// <summary>The parts received so far, in the order they arrived.</summary>
    Task<IReadOnlyList<UploadPartRecord>> ListPartsAsync(string workspaceId, string uploadId, CancellationToken cancellationToken);

    /// <summary>
    /// In one transaction: checks the upload is still pending, inserts the file row (with the quota check), makes the
    /// listed parts the file's segments in order, drops the upload's other parts and marks the upload completed.
    /// Returns the outcome and the ids of the dropped parts, whose blobs the caller removes.
    /// </summary>
    Task<(CompleteOutcome Outcome, IReadOnlyList<string> DroppedParts)> CompleteAsync(
        string uploadId, FileRecord file, IReadOnlyList<string> partIds, CancellationToken cancellationToken);

    /// <summary>
    /// Marks a pending upload <paramref name="status"/> (cancelled or expired) and drops its parts; returns the dropped
    /// part ids, or null when the upload was not pending.
    /// </summary>
    Task<IReadOnlyList<string>?> EndAsync(string workspaceId, string uploadId, string status, CancellationToken cancellationToken);

    /// <summary>Pending uploads whose <c>expires_at</c> has passed.</summary>
    Task<IReadOnlyList<UploadRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken);

    /// <summary>The segments of a file made from an upload, in order; empty for a file stored as one blob.</summary>
    Task<IReadOnlyList<BlobSegment>> GetSegmentsAsync(string fileId, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="partIds"/> have a row (pending, or a segment of a file).</summary>
    Task<IReadOnlySet<string>> FindExistingPartsAsync(IReadOnlyCollection<string> partIds, CancellationToken cancellationToken);
}
