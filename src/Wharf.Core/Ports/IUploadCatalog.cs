using Wharf.Core.Files;
using Wharf.Core.Uploads;

namespace Wharf.Core.Ports;

/// <summary>Uploads and their parts. Every call is scoped to one workspace, except the sweeper's.</summary>
public interface IUploadCatalog
{
    /// <summary>
    /// Inserts a pending upload and reserves its announced size in the workspace's usage, in one transaction; writes
    /// nothing when that would pass the storage quota, when the workspace already has
    /// <paramref name="maxPending"/> pending uploads (expired ones not yet swept included: they still hold their
    /// parts), or when the workspace is deleted.
    /// </summary>
    Task<UploadInsertOutcome> InsertUploadAsync(UploadRecord upload, int maxPending, CancellationToken cancellationToken);

    Task<UploadRecord?> GetUploadAsync(string workspaceId, string uploadId, CancellationToken cancellationToken);

    /// <summary>
    /// Adds a part, in one transaction with the usage it adds: a pending upload counts in its workspace's usage for
    /// the larger of its announced size and the bytes of the parts it holds. Writes nothing when the upload is no
    /// longer pending or has expired, when its parts would add up to more than <paramref name="maxHeldBytes"/>, when
    /// the usage it adds would pass the quota, or when the workspace is deleted.
    /// </summary>
    Task<PartInsertOutcome> InsertPartAsync(UploadPartRecord part, long nowUnixSeconds, long maxHeldBytes, CancellationToken cancellationToken);

    /// <summary>The parts received so far, in the order they arrived.</summary>
    Task<IReadOnlyList<UploadPartRecord>> ListPartsAsync(string workspaceId, string uploadId, CancellationToken cancellationToken);

    /// <summary>
    /// In one transaction: checks the upload is still pending, inserts the file row in place of what the upload counted
    /// in the usage (so only bytes beyond that meet the quota check), makes the listed parts the file's segments in
    /// order, drops the upload's other parts and marks the upload completed.
    /// Returns the outcome and the ids of the dropped parts, whose blobs the caller removes.
    /// </summary>
    Task<(CompleteOutcome Outcome, IReadOnlyList<string> DroppedParts)> CompleteAsync(
        string uploadId, FileRecord file, IReadOnlyList<string> partIds, CancellationToken cancellationToken);

    /// <summary>
    /// Marks a pending upload <paramref name="status"/> (cancelled or expired), drops its parts and takes what it counted
    /// out of the workspace's usage; returns the dropped part ids, or null when the upload was not pending.
    /// </summary>
    Task<IReadOnlyList<string>?> EndAsync(string workspaceId, string uploadId, string status, CancellationToken cancellationToken);

    /// <summary>Pending uploads whose <c>expires_at</c> has passed.</summary>
    Task<IReadOnlyList<UploadRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken);

    /// <summary>The segments of a file made from an upload, in order; empty for a file stored as one blob.</summary>
    Task<IReadOnlyList<BlobSegment>> GetSegmentsAsync(string fileId, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="partIds"/> have a row (pending, or a segment of a file).</summary>
    Task<IReadOnlySet<string>> FindExistingPartsAsync(IReadOnlyCollection<string> partIds, CancellationToken cancellationToken);
}
