using Microsoft.Extensions.Options;
using Wharf.Core.Files;

namespace Wharf.Server.Hosting;

/// <summary>
/// Periodically deletes expired files, the files of deleted workspaces, and blobs that have no catalog row (after a
/// grace period), and queues again files still waiting for their SHA-256.
/// </summary>
internal sealed class StorageSweeper(
    FileService files,
    Wharf.Core.Uploads.UploadService uploads,
    Wharf.Core.Uploads.DeferredFileHasher hashes,
    IOptions<WharfOptions> options,
    TimeProvider time,
    ILogger<StorageSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the start-up path: the host waits for the synchronous start of every ExecuteAsync before it listens.
        await Task.Yield();
        var sweeper = options.Value.Sweeper;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(sweeper.IntervalSeconds), time);
        do
        {
            try
            {
                int expired = await files.DeleteExpiredAsync(stoppingToken);
                int ofDeleted = await files.PurgeDeletedWorkspacesAsync(stoppingToken);
                int uploadsExpired = await uploads.ExpirePendingAsync(stoppingToken);
                int orphans = await files.SweepOrphansAsync(time.GetUtcNow().AddSeconds(-sweeper.OrphanGraceSeconds), stoppingToken);
                // Files whose background SHA-256 pass failed (or was cut by a restart) are queued again.
                await hashes.EnqueueUnhashedAsync(stoppingToken);
                if (expired + ofDeleted + uploadsExpired + orphans > 0)
                {
                    logger.LogInformation(
                        "Sweep removed {Expired} expired file(s), {OfDeleted} file(s) of deleted workspaces, {Uploads} expired upload(s) and {Orphans} orphaned blob(s).",
                        expired, ofDeleted, uploadsExpired, orphans);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "Sweep failed; it will run again.");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
