using Wharf.Core.Batches;
using Wharf.Core.Files;

namespace Wharf.Core.Ports;

/// <summary>
/// Batches, their result chunks and their done lines. The engine's writes are fenced by its lease: each names the
/// lease's owner and writes nothing (answering false or null) when another node or a restart has taken the batch
/// over, so results are recorded by one owner only, exactly once per line.
/// </summary>
public interface IBatchCatalog
{
    /// <summary>Writes a new batch; false (nothing written) when the workspace is deleted.</summary>
    Task<bool> InsertAsync(BatchRecord batch, CancellationToken cancellationToken);

    Task<BatchRecord?> GetAsync(string workspaceId, string batchId, CancellationToken cancellationToken);

    /// <summary>Newest first: batches whose id is below <paramref name="after"/> (null: from the newest).</summary>
    Task<Page<BatchRecord>> ListAsync(string workspaceId, int limit, string? after, CancellationToken cancellationToken);

    /// <summary>
    /// Moves a <c>validating</c> or <c>in_progress</c> batch to <c>cancelling</c> (setting <c>cancelling_at</c>)
    /// and makes a native batch's next poll due at once (its <see cref="NativeBatchState.NextPollAt"/> 0), so that
    /// <see cref="ClaimAsync"/> hands it out and the cancel is passed upstream now; a batch already cancelling is left
    /// as it is. Returns the batch as it then is (null when unknown), whether this call or an earlier one asked for
    /// the cancel or not.
    /// </summary>
    Task<BatchRecord?> RequestCancelAsync(string workspaceId, string batchId, long nowUnixSeconds, CancellationToken cancellationToken);

    /// <summary>
    /// Claims one batch in an active status whose lease is free or has run out (<paramref name="nowUnixMilliseconds"/>)
    /// for <paramref name="owner"/> until <paramref name="leaseUntilUnixMilliseconds"/>, oldest first, skipping
    /// <paramref name="skip"/> (the owner's own batches in hand) and native batches whose next poll
    /// (<see cref="NativeBatchState.NextPollAt"/>, unix seconds) is still to come: a native batch holds no lease while
    /// it waits for its provider. Null when there is none.
    /// </summary>
    Task<BatchRecord?> ClaimAsync(string owner, long nowUnixMilliseconds, long leaseUntilUnixMilliseconds, IReadOnlyCollection<string> skip, CancellationToken cancellationToken);

    /// <summary>Extends the owner's lease; false when the owner no longer holds it.</summary>
    Task<bool> RenewLeaseAsync(string batchId, string owner, long leaseUntilUnixMilliseconds, CancellationToken cancellationToken);

    /// <summary>Gives the lease up (at shutdown), so another node may claim the batch at once.</summary>
    Task ReleaseLeaseAsync(string batchId, string owner, CancellationToken cancellationToken);

    /// <summary>
    /// Writes a batch's status, timestamps, errors, total line count and native state while the owner holds its
    /// lease; counts of done lines and usage are left as recorded (except for a native batch's, which
    /// <see cref="MirrorProgressAsync"/> writes). A batch that became <c>cancelling</c> meanwhile keeps that status
    /// unless the new status is final. Returns the batch as stored, or null when the lease is lost.
    /// </summary>
    Task<BatchRecord?> UpdateAsync(BatchRecord batch, string owner, CancellationToken cancellationToken);

    /// <summary>Writes the counts and usage a provider reports for a native batch; false when the lease is lost.</summary>
    Task<bool> MirrorProgressAsync(string batchId, string owner, BatchRequestCounts counts, BatchUsage usage, CancellationToken cancellationToken);

    /// <summary>
    /// Records a chunk in one transaction: its blob as a part of the batch (counted in the workspace's usage, with no
    /// quota check: Wharf wrote it), its lines as done, its counts and usage added to the batch's. False (nothing
    /// written) when the lease is lost; throws (nothing written) when one of its lines is already done.
    /// </summary>
    Task<bool> RecordChunkAsync(BatchChunk chunk, string owner, CancellationToken cancellationToken);

    /// <summary>
    /// How many chunks of <paramref name="kind"/> the batch has recorded: a native batch, whose copied result files
    /// are recorded without lines, learns from it which of them a run before a crash already copied.
    /// </summary>
    Task<int> CountChunksAsync(string batchId, BatchFileKind kind, CancellationToken cancellationToken);

    /// <summary>The batch's done lines (1-based), ascending.</summary>
    Task<IReadOnlyList<int>> ListDoneLinesAsync(string batchId, CancellationToken cancellationToken);

    /// <summary>
    /// Ends the batch in one transaction: the result files made of its chunks (purpose <c>batch_output</c>, kept by
    /// Wharf, already counted in the usage), its final status, and the event queued when the workspace has a
    /// webhook URL; the lease is released and the batch's done lines and chunk records are dropped (the files hold
    /// them now). Returns the batch as stored, or null when the lease is lost.
    /// </summary>
    Task<BatchRecord?> FinalizeAsync(BatchFinal final, string owner, CancellationToken cancellationToken);
}
