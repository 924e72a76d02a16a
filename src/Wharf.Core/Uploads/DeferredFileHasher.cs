using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Wharf.Core.Leases;
using Wharf.Core.Ports;

namespace Wharf.Core.Uploads;

/// <summary>
/// Computes, after completion, the SHA-256 of files assembled from uploads whose parts could not be hashed in order
/// while they streamed (parts sent in parallel start in any order, and SHA-256 cannot be combined from its parts).
/// Completing such an upload therefore costs no pass over its bytes; the file is served at once, with
/// <c>sha256</c> null until this pass sets it. Files are hashed one at a time. The catalog is the queue's durable
/// copy: files still without a SHA-256 after a restart, or after a failed pass, are found there again
/// (<see cref="EnqueueUnhashedAsync"/>, at start and on every sweep).
/// Several nodes may queue the same file: each pass first claims the file in the catalog for this node
/// (<see cref="IFileCatalog.ClaimHashingAsync"/>, renewed while it reads), so that one node reads it at a time; a
/// claim left by a node that died runs out after <see cref="ClaimLength"/>, and the next sweep queues the file again.
/// A failed pass keeps its claim for <see cref="RetryAfter"/>: the file rests, on every node, before it is tried again.
/// </summary>
public sealed partial class DeferredFileHasher(
    IFileCatalog files, IUploadCatalog uploads, IBlobStore blobs, NodeIdentity node, TimeProvider time, ILogger<DeferredFileHasher> logger)
{
    /// <summary>How long a file whose pass failed is left alone (by every node) before it is tried again.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromMinutes(10);

    /// <summary>How long a claim outlives its last renewal (renewed every third of it while the file is read).</summary>
    public static readonly TimeSpan ClaimLength = TimeSpan.FromSeconds(60);

    private const int ScanBatch = 1000;

    private readonly Channel<(string WorkspaceId, string FileId)> _queue =
        Channel.CreateUnbounded<(string, string)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, byte> _queued = new(StringComparer.Ordinal);

    /// <summary>Queues a file for hashing; false when it is already waiting.</summary>
    public bool Enqueue(string workspaceId, string fileId) =>
        _queued.TryAdd(fileId, 0) && _queue.Writer.TryWrite((workspaceId, fileId));

    /// <summary>
    /// Queues every file the catalog holds without a SHA-256, except those already waiting here and those a claim
    /// holds (being hashed by a node, or resting after a failed pass); returns how many were queued.
    /// </summary>
    public async Task<int> EnqueueUnhashedAsync(CancellationToken cancellationToken)
    {
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        int added = 0;
        string? after = null;
        while (true)
        {
            var page = await files.ListUnhashedAsync(after, ScanBatch, now, cancellationToken);
            foreach (var file in page)
            {
                if (Enqueue(file.WorkspaceId, file.Id))
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
            LogListingFailed(logger, ex);
        }
        await foreach (var (workspaceId, fileId) in _queue.Reader.ReadAllAsync(cancellationToken))
        {
            try
            {
                await HashClaimedAsync(workspaceId, fileId, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                LogClaimFailed(logger, ex, fileId);
            }
            finally
            {
                _queued.TryRemove(fileId, out _);
            }
        }
    }

    /// <summary>
    /// Claims the file, hashes it while the claim is renewed, and then: nothing more on success (the file has its
    /// SHA-256, so no claim matters), the claim kept for <see cref="RetryAfter"/> on a failure, the claim given up
    /// when the node stops. A file another node holds, already hashed or gone is skipped.
    /// </summary>
    private async Task HashClaimedAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        if (!await ClaimAsync(workspaceId, fileId, ClaimLength, cancellationToken))
        {
            return;
        }
        using var work = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bool lost = false;
        var renewal = LeaseRenewal.KeepAsync(
            ct => ClaimAsync(workspaceId, fileId, ClaimLength, ct), ClaimLength / 3, time, work,
            ex => LogRenewalFailed(logger, ex, fileId),
            () => lost = true);
        Exception? failure = null;
        try
        {
            await HashAsync(workspaceId, fileId, work.Token);
        }
        catch (Exception ex) when (!work.IsCancellationRequested)
        {
            failure = ex;
        }
        catch (Exception) when (lost && !cancellationToken.IsCancellationRequested)
        {
            // The claim ran out and another node took the file (this one was paused): the pass is theirs now.
            LogClaimLost(logger, fileId);
        }
        finally
        {
            await work.CancelAsync();
            await renewal;
            if (cancellationToken.IsCancellationRequested)
            {
                await ReleaseQuietlyAsync(workspaceId, fileId);
            }
        }
        if (failure is not null && await StillExistsAsync(workspaceId, fileId, cancellationToken))
        {
            // The claim now ends after the rest, so that no node (this one included) tries the file before.
            await ClaimAsync(workspaceId, fileId, RetryAfter, cancellationToken);
            LogHashFailed(logger, failure, fileId, RetryAfter);
        }
    }

    private Task<bool> ClaimAsync(string workspaceId, string fileId, TimeSpan length, CancellationToken cancellationToken)
    {
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return files.ClaimHashingAsync(workspaceId, fileId, node.Id, now, now + (long)length.TotalMilliseconds, cancellationToken);
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
            LogHashed(logger, fileId, node.Id);
        }
    }

    private async Task ReleaseQuietlyAsync(string workspaceId, string fileId)
    {
        try
        {
            await files.ReleaseHashingAsync(workspaceId, fileId, node.Id, CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogReleaseFailed(logger, ex, fileId);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "File {FileId} hashed after its upload completed (node {Node}).")]
    private static partial void LogHashed(ILogger logger, string fileId, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Computing the SHA-256 of file {FileId} failed; it is tried again after {RetryAfter}.")]
    private static partial void LogHashFailed(ILogger logger, Exception exception, string fileId, TimeSpan retryAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Listing the files still without a SHA-256 failed; the next sweep lists them again.")]
    private static partial void LogListingFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Claiming file {FileId} for its SHA-256 failed; the next sweep queues it again.")]
    private static partial void LogClaimFailed(ILogger logger, Exception exception, string fileId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewing the claim on file {FileId} failed; trying again.")]
    private static partial void LogRenewalFailed(ILogger logger, Exception exception, string fileId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The claim on file {FileId} was taken over by another node; this node stops hashing it.")]
    private static partial void LogClaimLost(ILogger logger, string fileId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Giving up the claim on file {FileId} failed; it runs out by itself.")]
    private static partial void LogReleaseFailed(ILogger logger, Exception exception, string fileId);
}
