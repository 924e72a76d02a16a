using Microsoft.Extensions.Options;
using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Uploads;

namespace Wharf.Server.Hosting;

/// <summary>
/// Periodically deletes expired files, the files of deleted workspaces, expired uploads, blobs that have no catalog
/// row (after a grace period) and the bytes of deleted files whose grace ended (on a shared store), and queues again
/// files still waiting for their SHA-256. With several nodes on
/// one catalog, one node at a time runs these rounds: the holder of the <see cref="LeaseName"/> lease
/// (<see cref="SweepLeases"/>). Blobs in a store of this node's own (its data directory) are the exception: no other
/// node sees them, so every node sweeps its own orphans.
/// </summary>
internal sealed partial class StorageSweeper(
    FileService files,
    UploadService uploads,
    DeferredFileHasher hashes,
    IBlobStore blobs,
    SweepLeases leases,
    IOptions<WharfOptions> options,
    TimeProvider time,
    ILogger<StorageSweeper> logger) : BackgroundService
{
    /// <summary>The lease that decides which node sweeps the catalog (and a shared blob store).</summary>
    public const string LeaseName = "storage-sweep";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the start-up path: the host waits for the synchronous start of every ExecuteAsync before it listens.
        await Task.Yield();
        await leases.RunRoundsAsync(
            LeaseName,
            TimeSpan.FromSeconds(options.Value.Sweeper.IntervalSeconds),
            SweepSharedAsync,
            blobs.SharedByNodes ? null : SweepOwnBlobsAsync,
            ex => LogSweepFailed(logger, ex),
            stoppingToken);
    }

    /// <summary>One round of what all nodes share, on the node that holds the lease.</summary>
    private async Task SweepSharedAsync(CancellationToken cancellationToken)
    {
        int expired = await files.DeleteExpiredAsync(cancellationToken);
        int ofDeleted = await files.PurgeDeletedWorkspacesAsync(cancellationToken);
        int uploadsExpired = await uploads.ExpirePendingAsync(cancellationToken);
        int orphans = blobs.SharedByNodes ? await SweepOrphansAsync(cancellationToken) : 0;
        // Bytes of files deleted on any node, kept for the downloads that had started (a shared store's only).
        int deletedBytes = await files.RemoveDeferredBlobsAsync(cancellationToken);
        // Files whose background SHA-256 pass failed (or was cut by a stop, here or on another node) are queued again.
        await hashes.EnqueueUnhashedAsync(cancellationToken);
        if (expired + ofDeleted + uploadsExpired + orphans + deletedBytes > 0)
        {
            LogSwept(logger, expired, ofDeleted, uploadsExpired, orphans, deletedBytes);
        }
    }

    /// <summary>The orphans of a blob store only this node uses: every node sweeps its own, lease or not.</summary>
    private async Task SweepOwnBlobsAsync(CancellationToken cancellationToken)
    {
        int orphans = await SweepOrphansAsync(cancellationToken);
        if (orphans > 0)
        {
            LogOrphansSwept(logger, orphans);
        }
    }

    private Task<int> SweepOrphansAsync(CancellationToken cancellationToken) =>
        files.SweepOrphansAsync(time.GetUtcNow().AddSeconds(-options.Value.Sweeper.OrphanGraceSeconds), cancellationToken);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Sweep removed {Expired} expired file(s), {OfDeleted} file(s) of deleted workspaces, {Uploads} expired upload(s), {Orphans} orphaned blob(s) and {Deferred} blob(s) of deleted files whose grace ended.")]
    private static partial void LogSwept(ILogger logger, int expired, int ofDeleted, int uploads, int orphans, int deferred);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sweep removed {Orphans} orphaned blob(s) of this node's store.")]
    private static partial void LogOrphansSwept(ILogger logger, int orphans);

    [LoggerMessage(Level = LogLevel.Error, Message = "Sweep failed; it will run again.")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
