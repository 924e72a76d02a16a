namespace Wharf.Core.Ports;

/// <summary>
/// Blobs of deleted files whose removal waits. On a blob store several nodes share, a node deleting a file cannot
/// know what the other nodes are reading: a download of a file made of parts opens each part as it reaches it. So the
/// delete records the file's blobs here, with the time they may go, before it removes the file's row; the sweep removes
/// each blob once its time has come, unless a row names it again (the delete did not happen), and the orphan sweep
/// leaves alone every blob recorded here.
/// </summary>
public interface IDeferredBlobDeletions
{
    /// <summary>Records blobs to remove at <paramref name="removeAtUnixSeconds"/>; a blob recorded already keeps the later time.</summary>
    Task DeferAsync(IReadOnlyCollection<string> blobIds, long removeAtUnixSeconds, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="max"/> blobs whose time has come at <paramref name="nowUnixSeconds"/>, soonest first.</summary>
    Task<IReadOnlyList<string>> ListDueAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken);

    /// <summary>Drops the records of blobs that were removed (or turned out to be still named by a row).</summary>
    Task ForgetAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="blobIds"/> are recorded, whatever their time.</summary>
    Task<IReadOnlySet<string>> FindDeferredAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken);
}
