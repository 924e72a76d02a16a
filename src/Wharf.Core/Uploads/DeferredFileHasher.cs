using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Wharf.Core.Ports;

namespace Wharf.Core.Uploads;

/// <summary>
/// Computes, after completion, the SHA-256 of files assembled from uploads whose parts could not be hashed in order
/// while they streamed (parts sent in parallel start in any order, and SHA-256 cannot be combined from its parts).
/// Completing such an upload therefore costs no pass over its bytes; the file is served at once, with
/// <c>sha256</c> null until this pass sets it. The catalog is the queue's durable copy: files still without a
/// SHA-256 after a restart are found there again (<see cref="EnqueueUnhashedAsync"/>).
/// </summary>
public sealed class DeferredFileHasher(IFileCatalog files, IUploadCatalog uploads, IBlobStore blobs, ILogger<DeferredFileHasher> logger)
{
    private const int ScanBatch = 1000;

    private readonly Channel<(string WorkspaceId, string FileId)> _queue =
        Channel.CreateUnbounded<(string, string)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, byte> _queued = new(StringComparer.Ordinal);

    /// <summary>Queues a file for hashing (once: a file already waiting is not queued again).</summary>
    public void Enqueue(string workspaceId, string fileId)
    {
        if (_queued.TryAdd(fileId, 0))
        {
            _queue.Writer.TryWrite((workspaceId, fileId));
        }
    }

    /// <summary>Queues files the catalog holds without a SHA-256 (left by a restart or a failed pass); returns how many.</summary>
    public async Task<int> EnqueueUnhashedAsync(CancellationToken cancellationToken)
    {
        var unhashed = await files.ListUnhashedAsync(ScanBatch, cancellationToken);
        int added = 0;
        foreach (var file in unhashed)
        {
            if (!_queued.ContainsKey(file.Id))
            {
                Enqueue(file.WorkspaceId, file.Id);
                added++;
            }
        }
        return added;
    }

    /// <summary>Hashes queued files one at a time until cancelled, starting with those the catalog left unhashed.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await EnqueueUnhashedAsync(cancellationToken);
        await foreach (var (workspaceId, fileId) in _queue.Reader.ReadAllAsync(cancellationToken))
        {
            try
            {
                await HashAsync(workspaceId, fileId, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                if (await files.GetAsync(workspaceId, fileId, cancellationToken) is not null)
                {
                    logger.LogWarning(ex, "Computing the SHA-256 of file {FileId} failed; the next sweep tries again.", fileId);
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
}
