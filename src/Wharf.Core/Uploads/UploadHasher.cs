using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Core.Uploads;

/// <summary>
/// Hashes an upload's parts while they arrive, so completing it needs no pass over its bytes. Each part takes a
/// sequence number when its request starts (clients send parts in file order, also when several are in flight);
/// finished parts are hashed (SHA-256 and MD5, reading the just-written part back from the page cache) strictly
/// in that order. At completion, when the listed parts are exactly the parts hashed, in that order, the digests
/// are ready; otherwise (parts listed in another order, a part re-sent, a restart) the caller hashes in one pass,
/// now or after completion (<see cref="DeferredFileHasher"/>).
/// State lives in memory on this node only: one entry per pending upload that received a part here, removed when the
/// upload ends. Each workspace may have at most <see cref="FilesOptions.MaxPendingUploadsPerWorkspace"/> entries (as
/// many as it may have pending uploads); past that its further uploads fall back to hashing at completion, and no
/// workspace's traffic can take another's place.
/// </summary>
public sealed class UploadHasher(IBlobStore blobs, IOptions<FilesOptions> options, ILogger<UploadHasher> logger)
{
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<UploadKey, Running> _uploads = new();

    // Entries per workspace; taken and changed under _gate only (adding and removing an entry, not the parts' path).
    private readonly Dictionary<string, int> _perWorkspace = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>
    /// Takes the next sequence number for a part whose request has just started, or -1 when the upload is not
    /// tracked (its workspace has as many tracked uploads as allowed). The caller must <see cref="Forget"/> the upload
    /// when it turns out not to be pending.
    /// </summary>
    public long Reserve(string workspaceId, string uploadId)
    {
        var key = new UploadKey(workspaceId, uploadId);
        if (!_uploads.TryGetValue(key, out var running))
        {
            lock (_gate)
            {
                if (!_uploads.TryGetValue(key, out running))
                {
                    int tracked = _perWorkspace.GetValueOrDefault(workspaceId);
                    if (tracked >= options.Value.MaxPendingUploadsPerWorkspace)
                    {
                        return -1;
                    }
                    running = new Running();
                    _uploads[key] = running;
                    _perWorkspace[workspaceId] = tracked + 1;
                }
            }
        }
        return running.Reserve();
    }

    /// <summary>The part of sequence <paramref name="seq"/> is kept (partId) or failed (null); hashing goes on.</summary>
    public void Finish(string workspaceId, string uploadId, long seq, string? partId)
    {
        if (seq < 0 || !_uploads.TryGetValue(new UploadKey(workspaceId, uploadId), out var running))
        {
            return;
        }
        logger.LogDebug("Part {PartId} finished in place {Sequence} of the running hash.", partId, seq);
        if (running.Finish(seq, partId))
        {
            _ = Task.Run(() => DrainAsync(running));
        }
    }

    /// <summary>
    /// The digests of exactly <paramref name="partIds"/> in that order, when that is what was hashed; else null.
    /// Waits for hashing that is still under way.
    /// </summary>
    public async Task<(string Sha256, string Md5)?> TryGetAsync(string workspaceId, string uploadId, IReadOnlyList<string> partIds, CancellationToken cancellationToken)
    {
        if (!_uploads.TryGetValue(new UploadKey(workspaceId, uploadId), out var running))
        {
            return null;
        }
        if (!running.CanStillMatch(partIds))
        {
            // Already hashed in another order: stop spending CPU on it and let the caller hash at once.
            running.Break();
            return null;
        }
        try
        {
            // A part still in flight (not listed, or very slow) must not hold the completion: fall back after a while.
            await running.Idle.WaitAsync(cancellationToken).WaitAsync(MaxWait, cancellationToken);
        }
        catch (TimeoutException)
        {
            return null;
        }
        return running.Result(partIds);
    }

    /// <summary>Forgets an upload: it ended (completed, cancelled, expired) or was never pending.</summary>
    public void Forget(string workspaceId, string uploadId)
    {
        Running? running;
        lock (_gate)
        {
            if (!_uploads.TryRemove(new UploadKey(workspaceId, uploadId), out running))
            {
                return;
            }
            int left = _perWorkspace[workspaceId] - 1;
            if (left == 0)
            {
                _perWorkspace.Remove(workspaceId);
            }
            else
            {
                _perWorkspace[workspaceId] = left;
            }
        }
        running.Dispose();
    }

    /// <summary>How many uploads of the workspace are tracked now.</summary>
    internal int Tracked(string workspaceId)
    {
        lock (_gate)
        {
            return _perWorkspace.GetValueOrDefault(workspaceId);
        }
    }

    /// <summary>How many uploads are tracked now, in every workspace.</summary>
    internal int Tracked() => _uploads.Count;

    private readonly record struct UploadKey(string WorkspaceId, string UploadId);

    private async Task DrainAsync(Running running)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1024 * 1024);
        string? current = null;
        try
        {
            while (running.NextReady() is { } partId)
            {
                current = partId;
                await using var stream = await blobs.OpenReadAsync(partId, CancellationToken.None)
                    ?? throw new IOException("The part's blob is missing.");
                int read;
                while ((read = await stream.ReadAsync(buffer, CancellationToken.None)) > 0)
                {
                    if (!running.Append(buffer.AsSpan(0, read)))
                    {
                        return; // given up (listed in another order) or forgotten (completed, cancelled): stop at once
                    }
                }
                running.Hashed(partId);
            }
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Hashing part {PartId} while it streamed failed; the upload will be hashed at completion.", current);
            running.Break();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One upload's running digests; every member takes the lock, so hashing and disposal never overlap.</summary>
    private sealed class Running : IDisposable
    {
        private readonly Lock _gate = new();
        private readonly SortedDictionary<long, string?> _ready = [];
        private readonly List<string> _hashed = [];
        private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
#pragma warning disable CA5351 // MD5 only checks the client's own checksum, as the OpenAI API defines it.
        private readonly IncrementalHash _md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
#pragma warning restore CA5351
        private long _reserved;
        private long _next;
        private bool _draining;
        private bool _broken;
        private bool _disposed;
        private int _unfinished;

        /// <summary>Open when no part is in flight and nothing is left to hash; waited on at completion.</summary>
        public AsyncGate Idle { get; } = new();

        public long Reserve()
        {
            lock (_gate)
            {
                _unfinished++;
                Idle.Close();
                return _reserved++;
            }
        }

        /// <summary>Records a finished part (null: it failed); true when the caller must start a drain.</summary>
        public bool Finish(long seq, string? partId)
        {
            lock (_gate)
            {
                _ready[seq] = partId;
                _unfinished--;
                if (!_draining && _ready.ContainsKey(_next))
                {
                    _draining = true;
                    return true;
                }
                OpenIfIdle();
                return false;
            }
        }

        /// <summary>The next part to hash in sequence (failed ones are passed over); null ends the drain.</summary>
        public string? NextReady()
        {
            lock (_gate)
            {
                while (!_broken && !_disposed && _ready.Remove(_next, out string? partId))
                {
                    _next++;
                    if (partId is not null)
                    {
                        return partId;
                    }
                }
                _draining = false;
                OpenIfIdle();
                return null;
            }
        }

        /// <summary>Feeds the digests; false, feeding nothing, once the hash was given up or disposed.</summary>
        public bool Append(ReadOnlySpan<byte> data)
        {
            lock (_gate)
            {
                if (_broken || _disposed)
                {
                    return false;
                }
                _sha.AppendData(data);
                _md5.AppendData(data);
                return true;
            }
        }

        public void Hashed(string partId)
        {
            lock (_gate)
            {
                _hashed.Add(partId);
            }
        }

        public void Break()
        {
            lock (_gate)
            {
                _broken = true;
                _draining = false;
                OpenIfIdle();
            }
        }

        /// <summary>Whether what was hashed so far is the start of <paramref name="partIds"/>.</summary>
        public bool CanStillMatch(IReadOnlyList<string> partIds)
        {
            lock (_gate)
            {
                return !_broken && _hashed.Count <= partIds.Count
                    && _hashed.SequenceEqual(partIds.Take(_hashed.Count), StringComparer.Ordinal);
            }
        }

        public (string Sha256, string Md5)? Result(IReadOnlyList<string> partIds)
        {
            lock (_gate)
            {
                if (_broken || _disposed || _draining || !partIds.SequenceEqual(_hashed, StringComparer.Ordinal))
                {
                    return null;
                }
                return (Convert.ToHexStringLower(_sha.GetCurrentHash()), Convert.ToHexStringLower(_md5.GetCurrentHash()));
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _disposed = true;
                _sha.Dispose();
                _md5.Dispose();
                Idle.Open();
            }
        }

        private void OpenIfIdle()
        {
            if (_unfinished == 0 && (_broken || !_ready.ContainsKey(_next)))
            {
                Idle.Open();
            }
        }
    }
}

/// <summary>A gate that can be awaited while open and closed again, many times.</summary>
internal sealed class AsyncGate
{
    private TaskCompletionSource _open = NewOpen();

    public Task WaitAsync(CancellationToken cancellationToken) => Volatile.Read(ref _open).Task.WaitAsync(cancellationToken);

    public void Open() => Volatile.Read(ref _open).TrySetResult();

    public void Close()
    {
        if (Volatile.Read(ref _open).Task.IsCompleted)
        {
            Volatile.Write(ref _open, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
    }

    private static TaskCompletionSource NewOpen()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.TrySetResult();
        return tcs;
    }
}
