using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Wharf.Core.Ports;

namespace Wharf.Storage.FileSystem;

/// <summary>
/// Blobs on local disk, named by id (never by anything a client sent). Bytes are staged to a temporary file,
/// fsynced, then renamed into place and the directory fsynced, so a committed blob is whole after a crash.
/// The store knows what requests in flight hold: staged files being written or waiting for their commit, and blobs
/// committed by a staged blob not yet disposed (the request may not have written the blob's catalog row yet). The
/// sweeps never see them, whatever their age. A full file system is an <see cref="InsufficientStorageException"/>.
/// </summary>
internal sealed partial class DiskBlobStore : IBlobStore
{
    private const string StagingDirectoryName = ".staging";
    private const string StagingSuffix = ".tmp";

    private readonly string _root;
    private readonly string _staging;
    private readonly ConcurrentDictionary<string, bool> _knownDirectories = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _stagedInFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _unrecorded = new(StringComparer.Ordinal);
    private readonly SpaceReserve? _reserve;

    /// <param name="root">The blob directory.</param>
    /// <param name="reserve">The room kept for deletes on this file system: while it is given up, nothing is staged.</param>
    public DiskBlobStore(string root, SpaceReserve? reserve = null)
    {
        _reserve = reserve;
        _root = Path.GetFullPath(root);
        _staging = Path.Combine(_root, StagingDirectoryName);
        Directory.CreateDirectory(_staging);
    }

    public async Task<StagedBlob?> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        if (_reserve is { } reserve && !reserve.TryTake())
        {
            throw new InsufficientStorageException("The disk is full: the room kept for deletes is in use, so nothing new is stored.");
        }
        string path = Path.Combine(_staging, Guid.NewGuid().ToString("N") + StagingSuffix);
        _stagedInFlight.TryAdd(path, true);
        bool keep = false;
        try
        {
            await using var writer = new StagingWriter(Store(() => File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.None)));
            while (true)
            {
                Memory<byte> buffer = await writer.NextBufferAsync();
                // A failure reading the content is the sender's; a failure writing it is the store's.
                int filled = await FillAsync(content, buffer, cancellationToken);
                if (writer.Length + filled > maxBytes)
                {
                    return null;
                }
                await writer.AddAsync(filled);
                if (filled < StagingWriter.ChunkBytes)
                {
                    break; // a short fill: the content ended
                }
            }
            string sha256 = await writer.CompleteAsync();
            keep = true;
            return new DiskStagedBlob(this, path) { Length = writer.Length, Sha256 = sha256 };
        }
        finally
        {
            if (!keep)
            {
                TryDelete(path);
                _stagedInFlight.TryRemove(path, out _);
            }
        }
    }

    public Task<Stream?> OpenReadAsync(string blobId, CancellationToken cancellationToken)
    {
        try
        {
            Stream stream = new FileStream(PathOf(blobId), new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read | FileShare.Delete,
                BufferSize = 0,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            });
            return Task.FromResult<Stream?>(stream);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<Stream?>(null);
        }
    }

    public Task DeleteAsync(string blobId, CancellationToken cancellationToken)
    {
        TryDelete(PathOf(blobId));
        // The room kept for deletes is taken again as soon as a removal leaves enough.
        _reserve?.TryTake();
        return Task.CompletedTask;
    }

    public async IAsyncEnumerable<BlobEntry> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var directory in new DirectoryInfo(_root).EnumerateDirectories())
        {
            if (directory.Name == StagingDirectoryName)
            {
                continue;
            }
            foreach (var file in directory.EnumerateFiles())
            {
                cancellationToken.ThrowIfCancellationRequested();
                // Checked after the file was seen: it is marked before its rename, so one whose request may still be
                // writing its row is never listed, and one listed was left by a request that has ended.
                if (!_unrecorded.ContainsKey(file.Name))
                {
                    yield return new BlobEntry(file.Name, file.LastWriteTimeUtc);
                }
            }
            await Task.Yield();
        }
    }

    public Task<int> SweepStagingAsync(DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        int removed = 0;
        foreach (var file in new DirectoryInfo(_staging).EnumerateFiles("*" + StagingSuffix))
        {
            cancellationToken.ThrowIfCancellationRequested();
            // A staged file a request is writing (or about to commit) is left alone, however long it has been idle.
            if (file.LastWriteTimeUtc < olderThan && !_stagedInFlight.ContainsKey(file.FullName) && TryDelete(file.FullName))
            {
                removed++;
            }
        }
        return Task.FromResult(removed);
    }

    /// <summary>
    /// Ready when the blob directory is there and a small write succeeds, with at least <see cref="MinFreeBytes"/>
    /// free and the room kept for deletes held: else an <see cref="InsufficientStorageException"/>.
    /// </summary>
    public Task CheckAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_staging))
        {
            throw new IOException("The blob directory is missing.");
        }
        if (_reserve is { } reserve && !reserve.TryTake())
        {
            throw new InsufficientStorageException("The disk is full: the room kept for deletes is in use.");
        }
        if (DiskSpace.AvailableBytes(_root) is { } free && free < MinFreeBytes)
        {
            throw new InsufficientStorageException($"The disk is full: {free} bytes are free.");
        }
        // Named as a staged file, so one left by a crash is removed at the next start like any other.
        string probe = Path.Combine(_staging, Guid.NewGuid().ToString("N") + StagingSuffix);
        _stagedInFlight.TryAdd(probe, true);
        try
        {
            Store(() =>
            {
                using var file = File.OpenHandle(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                RandomAccess.Write(file, new byte[ProbeBytes], 0);
            });
        }
        finally
        {
            TryDelete(probe);
            _stagedInFlight.TryRemove(probe, out _);
        }
        return Task.CompletedTask;
    }

    /// <summary>Free bytes below which the store reports itself not ready.</summary>
    internal const long MinFreeBytes = 1024 * 1024;

    private const int ProbeBytes = 4096;

    /// <summary>The blob's path: <c>root/&lt;last two characters of the id&gt;/&lt;id&gt;</c>.</summary>
    internal string PathOf(string blobId)
    {
        if (blobId.Length < 3 || blobId.AsSpan().ContainsAnyExcept(SafeIdChars))
        {
            throw new ArgumentException("Not a blob id.", nameof(blobId));
        }
        return Path.Combine(_root, blobId[^2..], blobId);
    }

    private static readonly SearchValues<char> SafeIdChars =
        SearchValues.Create("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_");

    private void Commit(string stagedPath, string blobId)
    {
        string target = PathOf(blobId);
        string directory = Path.GetDirectoryName(target)!;
        if (!_knownDirectories.ContainsKey(directory))
        {
            Directory.CreateDirectory(directory);
            DirectorySync.Flush(_root);
            _knownDirectories.TryAdd(directory, true);
        }
        File.Move(stagedPath, target, overwrite: false);
        DirectorySync.Flush(directory);
    }

    /// <summary>Runs a file-system operation, turning its I/O failure into a <see cref="BlobStoreException"/>.</summary>
    private static T Store<T>(Func<T> operation)
    {
        try
        {
            return operation();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw WriteFailure(ex);
        }
    }

    private static Exception WriteFailure(Exception ex) => ex is IOException io && DiskSpace.IsFull(io)
        ? new InsufficientStorageException("The disk blob store is full.", ex)
        : new BlobStoreException("The disk blob store could not write.", ex);

    /// <summary>Fills the buffer as far as the stream allows, so disk writes are large.</summary>
    private static async ValueTask<int> FillAsync(Stream content, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int filled = 0;
        while (filled < buffer.Length)
        {
            int read = await content.ReadAsync(buffer[filled..], cancellationToken);
            if (read == 0)
            {
                break;
            }
            filled += read;
        }
        return filled;
    }

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Staged bytes, held by the request that staged them until it disposes them: while staged (the store's staging
    /// sweep skips them) and once committed (the listing skips the blob: its catalog row may still be on its way).
    /// </summary>
    private sealed class DiskStagedBlob(DiskBlobStore store, string path) : StagedBlob
    {
        private bool _committed;
        private string? _blobId;

        public override Task CommitAsync(string blobId, CancellationToken cancellationToken)
        {
            // Marked before the rename, so the sweep can never list the blob unmarked while the request runs.
            _blobId = blobId;
            store._unrecorded.TryAdd(blobId, true);
            Store(() => { store.Commit(path, blobId); return true; });
            _committed = true;
            store._stagedInFlight.TryRemove(path, out _);
            return Task.CompletedTask;
        }

        public override ValueTask DisposeAsync()
        {
            if (!_committed)
            {
                TryDelete(path);
                store._stagedInFlight.TryRemove(path, out _);
            }
            if (_blobId is { } blobId)
            {
                store._unrecorded.TryRemove(blobId, out _);
            }
            return ValueTask.CompletedTask;
        }
    }
}
