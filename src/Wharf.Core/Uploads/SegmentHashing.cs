using System.Buffers;
using System.Security.Cryptography;
using Wharf.Core.Ports;

namespace Wharf.Core.Uploads;

/// <summary>One sequential pass over a file's segments computing its SHA-256 and, when asked, its MD5.</summary>
internal static class SegmentHashing
{
    private const int BufferSize = 1024 * 1024;

    public static async Task<(string Sha256, string? Md5)> HashAsync(
        IBlobStore blobs, IReadOnlyList<BlobSegment> segments, bool withMd5, CancellationToken cancellationToken)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
#pragma warning disable CA5351 // MD5 only checks the client's own checksum, as the OpenAI API defines it.
        using var md5 = withMd5 ? IncrementalHash.CreateHash(HashAlgorithmName.MD5) : null;
#pragma warning restore CA5351
        byte[][] buffers = [ArrayPool<byte>.Shared.Rent(BufferSize), ArrayPool<byte>.Shared.Rent(BufferSize)];
        // Tasks, not ValueTasks: the one in flight when the loop ends may be awaited a second time, below.
        Task<int> reading = Task.FromResult(0);
        try
        {
            // Double-buffered: the next chunk is read while this one is hashed (SHA-256 and MD5 on two cores).
            await using var stream = new SegmentedStream(segments, blobs.OpenReadAsync);
            int current = 0;
            reading = stream.ReadAsync(buffers[current].AsMemory(0, BufferSize), cancellationToken).AsTask();
            int read;
            while ((read = await reading) > 0)
            {
                byte[] chunk = buffers[current];
                current = 1 - current;
                reading = stream.ReadAsync(buffers[current].AsMemory(0, BufferSize), cancellationToken).AsTask();
                var md5Task = md5 is null ? Task.CompletedTask : Task.Run(() => md5.AppendData(chunk, 0, read), CancellationToken.None);
                sha.AppendData(chunk, 0, read);
                await md5Task;
            }
        }
        finally
        {
            // A read may still be writing into a buffer (the loop left by an exception): wait for it before the
            // buffers go back to the shared pool.
            await DrainAsync(reading);
            ArrayPool<byte>.Shared.Return(buffers[0]);
            ArrayPool<byte>.Shared.Return(buffers[1]);
        }
        return (Convert.ToHexStringLower(sha.GetHashAndReset()), md5 is null ? null : Convert.ToHexStringLower(md5.GetHashAndReset()));
    }

    private static async Task DrainAsync(Task<int> reading)
    {
        try
        {
            await reading;
        }
        catch (Exception)
        {
            // Its failure was (or will be) reported by the loop; only its end matters here.
        }
    }
}
