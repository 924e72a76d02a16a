using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Wharf.Core.Ports;

namespace Wharf.Core.Uploads;

/// <summary>
/// Computes, after completion, the SHA-256 of files assembled from uploads whose parts could not be hashed in order
/// while they streamed (parts sent in parallel start in any order, and SHA-256 cannot be combined from its parts).
/// Completing such an upload therefore costs no pass over its bytes; the file is served at once, with
/// <c>sha256</c> null until this pass sets it. Files are hashed one at a time. The catalog is the queue's durable
/// copy: files still without a SHA-256 after a restart, or after a failed pass, are found there again
/// (<see cref="EnqueueUnhashedAsync"/>, at start and on every sweep).
/// </summary>
public sealed class DeferredFileHasher(
    IFileCatalog files, IUploadCatalog uploads, IBlobStore blobs, TimeProvider time, ILogger<DeferredFileHasher> logger)
{
    /// <summary>How long a file whose pass failed is left out of the sweeps' queueing before it is tried again.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromMinutes(10);

    private const int ScanBatch = 1000;

    private readonly Channel<(string WorkspaceId, string FileId)> _queue =
        Channel.CreateUnbounded<(string, string)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, byte> _queued = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _failed = new(StringComparer.Ordinal);

    /// <summary>Queues a file for hashing; false when it is already waiting.</summary>
    public bool Enqueue(string workspaceId, string fileId) =>
        _queued.TryAdd(fileId, 0) && _queue.Writer.TryWrite((workspaceId, fileId));

    /// <summary>
    /// Queues every file the catalog holds without a SHA-256, except those already waiting and those whose pass
    /// failed less than <see cref="RetryAfter"/> ago; returns how many were queued.
    /// </summary>
    public async Task<int> EnqueueUnhashedAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        int added = 0;
        string? after = null;
        while (true)
        {
            var page = await files.ListUnhashedAsync(after, ScanBatch, cancellationToken);
            foreach (var file in page)
            {
                bool resting = _failed.TryGetValue(file.Id, out var failedAt) && now - failedAt < RetryAfter;
                if (!resting && Enqueue(file.WorkspaceId, file.Id))
                {
                    added++;
                }
            }
            if (page.Count < ScanBatch)
            {
                return added;
            }
            after = page[^1].Id;
        }
    }

    /// <summary>
    /// Hashes queued files one at a time until cancelled, starting with those the catalog left unhashed. A failure
    /// (of the catalog or of a blob) is logged and never ends the loop.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await EnqueueUnhashedAsync(cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Listing the files still without a SHA-256 failed; the next sweep lists them again.");
        }
        await foreach (var (workspaceId, fileId) in _queue.Reader.ReadAllAsync(cancellationToken))
        {
            try
            {
                await HashAsync(workspaceId, fileId, cancellationToken);
                _failed.TryRemove(fileId, out _);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                if (await StillExistsAsync(workspaceId, fileId, cancellationToken))
                {
                    _failed[fileId] = time.GetUtcNow();
                    logger.LogWarning(ex, "Computing the SHA-256 of file {FileId} failed; a sweep tries again after {RetryAfter}.", fileId, RetryAfter);
                }
            }
            finally
            {
                _queued.TryRemove(fileId, out _);
            }
        }
    }

    private async Task HashAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        var file = await files.GetAsync(workspaceId, fileId, cancellationToken);
        if (file is not { Sha256: null })
        {
            return; // deleted meanwhile, or already hashed
        }
        var segments = file.Segmented
            ? await uploads.GetSegmentsAsync(fileId, cancellationToken)
            : [new BlobSegment(fileId, file.Bytes)];
        (string sha256, _) = await SegmentHashing.HashAsync(blobs, segments, withMd5: false, cancellationToken);
        if (await files.SetSha256Async(workspaceId, fileId, sha256, cancellationToken))
        {
            logger.LogInformation("File {FileId} hashed after its upload completed.", fileId);
        }
    }

    /// <summary>Whether a file whose pass failed is still there (a file deleted while it was read fails quietly).</summary>
    private async Task<bool> StillExistsAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        try
        {
            return await files.GetAsync(workspaceId, fileId, cancellationToken) is not null;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            return true;
        }
    }
}
