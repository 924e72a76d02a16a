using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Wharf.Core.Ports;

namespace Wharf.Storage.FileSystem;

/// <summary>
/// Blobs on local disk, named by id (never by anything a client sent). Bytes are staged to a temporary file,
/// fsynced, then renamed into place and the directory fsynced, so a committed blob is whole after a crash.
/// </summary>
internal sealed partial class DiskBlobStore : IBlobStore
{
    private const string StagingDirectoryName = ".staging";
    private const string StagingSuffix = ".tmp";

    private readonly string _root;
    private readonly string _staging;
    private readonly ConcurrentDictionary<string, bool> _knownDirectories = new(StringComparer.Ordinal);

    public DiskBlobStore(string root)
    {
        _root = Path.GetFullPath(root);
        _staging = Path.Combine(_root, StagingDirectoryName);
        Directory.CreateDirectory(_staging);
    }

    public async Task<StagedBlob?> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        string path = Path.Combine(_staging, Guid.NewGuid().ToString("N") + StagingSuffix);
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
                yield return new BlobEntry(file.Name, file.LastWriteTimeUtc);
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
            if (file.LastWriteTimeUtc < olderThan && TryDelete(file.FullName))
            {
                removed++;
            }
        }
        return Task.FromResult(removed);
    }

    public Task CheckAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_staging))
        {
            throw new IOException("The blob directory is missing.");
        }
        return Task.CompletedTask;
    }

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
            throw new BlobStoreException("The disk blob store could not write.", ex);
        }
    }

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

    private sealed class DiskStagedBlob(DiskBlobStore store, string path) : StagedBlob
    {
        private bool _committed;

        public override Task CommitAsync(string blobId, CancellationToken cancellationToken)
        {
            Store(() => { store.Commit(path, blobId); return true; });
            _committed = true;
            return Task.CompletedTask;
        }

        public override ValueTask DisposeAsync()
        {
            if (!_committed)
            {
                TryDelete(path);
            }
            return ValueTask.CompletedTask;
        }
    }
}
