using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Wharf.Storage.FileSystem;
using Wharf.Storage.S3;

namespace Wharf.Storage.MoveUp;

/// <summary>
/// Copies every committed blob of the disk store into the S3 store under the key the S3 store gives that blob id, and
/// checks it. A blob is sent through the S3 store's own staging and commit (a multipart upload for a large one, a few
/// parts in memory, then a server-side copy to its key), unless the bucket already holds an object of its length
/// there (an earlier run sent it). Either way the object is then read back and its SHA-256 compared with the disk
/// blob's, so a run ends with every blob checked, whatever an earlier run did.
/// </summary>
internal sealed class BlobTransfer(DiskBlobStore disk, S3BlobStore s3, int concurrency)
{
    private const int HashBufferBytes = 1024 * 1024;

    /// <summary>How many blobs the disk store holds and their bytes (a pass over the directory, no content read).</summary>
    public async Task<(long Blobs, long Bytes)> MeasureAsync(CancellationToken cancellationToken)
    {
        long blobs = 0, bytes = 0;
        await foreach (var entry in disk.ListAsync(cancellationToken))
        {
            blobs++;
            bytes += new FileInfo(disk.PathOf(entry.BlobId)).Length;
        }
        return (blobs, bytes);
    }

    /// <summary>Copies and checks every blob; a blob that differs is added to <paramref name="problems"/>, naming it.</summary>
    public async Task<(long Blobs, long Copied, long Bytes, long BytesCopied)> CopyAsync(
        IMoveUpProgress progress, ConcurrentQueue<string> problems, CancellationToken cancellationToken)
    {
        long blobs = 0, copied = 0, bytes = 0, bytesCopied = 0;
        await Parallel.ForEachAsync(
            disk.ListAsync(cancellationToken),
            new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
            async (entry, token) =>
            {
                var (length, sent, problem) = await CopyOneAsync(entry.BlobId, token);
                Interlocked.Increment(ref blobs);
                Interlocked.Add(ref bytes, length);
                if (sent)
                {
                    Interlocked.Increment(ref copied);
                    Interlocked.Add(ref bytesCopied, length);
                }
                if (problem is not null)
                {
                    problems.Enqueue(problem);
                }
                progress.BlobDone(entry.BlobId, length, sent);
            });
        return (blobs, copied, bytes, bytesCopied);
    }

    private async Task<(long Length, bool Sent, string? Problem)> CopyOneAsync(string blobId, CancellationToken cancellationToken)
    {
        await using var source = await disk.OpenReadAsync(blobId, cancellationToken);
        if (source is null)
        {
            return (0, false, $"blob {blobId}: listed in the data directory but gone when it was opened");
        }
        long length = source.Length;
        bool present;
        await using (var existing = await s3.OpenReadAsync(blobId, cancellationToken))
        {
            present = existing?.Length == length;
        }
        string sourceSha256;
        if (present)
        {
            sourceSha256 = await HashAsync(source, cancellationToken);
        }
        else
        {
            await using var staged = await s3.StageAsync(source, long.MaxValue, cancellationToken)
                ?? throw new InvalidOperationException("The S3 store refused a blob under no size limit.");
            if (staged.Length != length)
            {
                return (length, false, $"blob {blobId}: {staged.Length} bytes were read from the disk blob of {length} bytes");
            }
            await staged.CommitAsync(blobId, cancellationToken);
            sourceSha256 = staged.Sha256;
        }
        await using var copy = await s3.OpenReadAsync(blobId, cancellationToken);
        if (copy is null)
        {
            return (length, !present, $"blob {blobId}: no object at its key in the bucket after it was sent");
        }
        string copySha256 = await HashAsync(copy, cancellationToken);
        return copySha256 == sourceSha256
            ? (length, !present, null)
            : (length, !present, $"blob {blobId}: the object in the bucket ({copy.Length} bytes, SHA-256 {copySha256}) differs from the disk blob ({length} bytes, SHA-256 {sourceSha256})");
    }

    /// <summary>Lowercase hex SHA-256 of the rest of <paramref name="content"/>, read in 1 MiB pieces.</summary>
    private static async Task<string> HashAsync(Stream content, CancellationToken cancellationToken)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(HashBufferBytes);
        try
        {
            int read;
            while ((read = await content.ReadAsync(buffer.AsMemory(0, HashBufferBytes), cancellationToken)) > 0)
            {
                sha.AppendData(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
