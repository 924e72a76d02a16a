using Wharf.Core.Files;

namespace Wharf.Core.Ports;

/// <summary>
/// Provider copies of files, the copies being made, and the upstream deletions still to do. Deleting a file through
/// <see cref="IFileCatalog.DeleteAsync"/> turns its copies into deletions in the same transaction, so a copy is
/// always either recorded for a file or queued for deletion.
/// </summary>
public interface IFileCopyCatalog
{
    /// <summary>Records that a copy of the file is about to be made on the provider (replacing an older intent).</summary>
    Task RecordIntentAsync(CopyIntent intent, CancellationToken cancellationToken);

    /// <summary>Removes an intent: nothing was made upstream, or what was made is queued for deletion.</summary>
    Task RemoveIntentAsync(string fileId, string provider, CancellationToken cancellationToken);

    /// <summary>
    /// Writes the file's row (counting its bytes as <see cref="IFileCatalog.InsertAsync"/> does) and its copy, and
    /// removes the copy's intent, in one transaction. Writes nothing but says why when the row is refused.
    /// </summary>
    Task<FileInsertOutcome> InsertFileWithCopyAsync(FileRecord file, FileCopy copy, CancellationToken cancellationToken);

    /// <summary>
    /// Records a copy of an existing file and removes its intent, in one transaction; false (nothing recorded) when
    /// the file has no row any more or already has a copy on that provider.
    /// </summary>
    Task<bool> InsertCopyAsync(FileCopy copy, CancellationToken cancellationToken);

    Task<FileCopy?> GetCopyAsync(string workspaceId, string fileId, string provider, CancellationToken cancellationToken);

    /// <summary>
    /// Retires a copy the provider no longer keeps (or is about to drop): removes its record, when it still names
    /// <see cref="FileCopy.UpstreamId"/>, and queues that upstream id for deletion, in one transaction, so the file
    /// can be copied there again. False when the record names another copy (made again meanwhile) or is gone.
    /// </summary>
    Task<bool> RetireCopyAsync(FileCopy copy, long nowUnixSeconds, CancellationToken cancellationToken);

    /// <summary>Queues an upstream copy for deletion and removes its intent, in one transaction.</summary>
    Task QueueDeletionAsync(UpstreamDeletion deletion, CancellationToken cancellationToken);

    /// <summary>The deletions queued for a file's copies (by its delete).</summary>
    Task<IReadOnlyList<UpstreamDeletion>> ListDeletionsOfFileAsync(string fileId, CancellationToken cancellationToken);

    /// <summary>Deletions whose next attempt is due at <paramref name="nowUnixSeconds"/>, soonest first.</summary>
    Task<IReadOnlyList<UpstreamDeletion>> ListDueDeletionsAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken);

    /// <summary>The provider has the copy deleted: the deletion is done.</summary>
    Task CompleteDeletionAsync(string provider, string upstreamId, CancellationToken cancellationToken);

    /// <summary>Another attempt failed: counts it and sets when the next one is due.</summary>
    Task RescheduleDeletionAsync(string provider, string upstreamId, int attempts, long nextAttemptAt, CancellationToken cancellationToken);

    /// <summary>Intents recorded before <paramref name="startedBefore"/> that are still there, oldest first.</summary>
    Task<IReadOnlyList<CopyIntent>> ListStaleIntentsAsync(long startedBefore, int max, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="upstreamIds"/> a copy record or a queued deletion names on that provider.</summary>
    Task<IReadOnlySet<string>> FindKnownUpstreamIdsAsync(string provider, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="upstreamIds"/> are copies of the workspace's own files on that provider.</summary>
    Task<IReadOnlySet<string>> FindWorkspaceUpstreamIdsAsync(string workspaceId, string provider, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken);
}
