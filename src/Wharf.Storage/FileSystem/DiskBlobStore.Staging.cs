using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Wharf.Storage.FileSystem;

internal sealed partial class DiskBlobStore
{
    /// <summary>
    /// Hashes and writes one staged file's chunks, each in order on its own chain of thread-pool work, while the
    /// caller reads the next chunk: reading, SHA-256 (the slowest step, about 0.8 s per GiB on one core) and writing
    /// run at once instead of one after the other. At most <see cref="Depth"/> chunk buffers are in flight, so memory
    /// does not grow with the content (the reader waits for the oldest); what is written goes to the disk every
    /// <see cref="WriteBackBytes"/> while the rest arrives, so the flush that makes the whole file durable (always
    /// last, before the file may be committed) has only the tail left to write.
    /// </summary>
    internal sealed class StagingWriter(SafeFileHandle file) : IAsyncDisposable
    {
        public const int ChunkBytes = 1024 * 1024;
        public const int Depth = 4;
        public const long WriteBackBytes = 32L * 1024 * 1024;

        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly Queue<(byte[] Buffer, Task Done)> _inFlight = new(Depth);
        private byte[]? _held;
        private Task _hashing = Task.CompletedTask;
        private Task _writing = Task.CompletedTask;
        // Both touched only by the writing chain, and read after it has ended.
        private Task _writingBack = Task.CompletedTask;
        private long _writtenBackTo;

        /// <summary>Bytes added so far.</summary>
        public long Length { get; private set; }

        /// <summary>
        /// The buffer for the next chunk: a new one while fewer than <see cref="Depth"/> are in flight, else the
        /// oldest once it is hashed and written (a failed write is thrown here).
        /// </summary>
        public async ValueTask<Memory<byte>> NextBufferAsync()
        {
            if (_held is null)
            {
                if (_inFlight.Count < Depth)
                {
                    _held = ArrayPool<byte>.Shared.Rent(ChunkBytes);
                }
                else
                {
                    var (buffer, done) = _inFlight.Peek();
                    await done;
                    _inFlight.Dequeue();
                    _held = buffer;
                }
            }
            return _held.AsMemory(0, ChunkBytes);
        }

        /// <summary>
        /// Hands over the first <paramref name="count"/> bytes of the buffer from <see cref="NextBufferAsync"/>. A
        /// full chunk is hashed and written in the background; a short one (the last) in place, after the others.
        /// </summary>
        public async ValueTask AddAsync(int count)
        {
            byte[] chunk = _held ?? throw new InvalidOperationException("No buffer was taken.");
            if (count == 0)
            {
                return;
            }
            long offset = Length;
            Length += count;
            if (count < ChunkBytes)
            {
                await _hashing;
                await _writing;
                _hash.AppendData(chunk, 0, count);
                Write(chunk, count, offset);
                return;
            }
            if (_writing.IsFaulted)
            {
                await _writing;
            }
            _hashing = Then(_hashing, () => _hash.AppendData(chunk, 0, count));
            _writing = Then(_writing, () => Write(chunk, count, offset));
            _inFlight.Enqueue((chunk, Task.WhenAll(_hashing, _writing)));
            _held = null;
        }

        /// <summary>Waits for every chunk, makes the file durable and returns its lowercase hex SHA-256.</summary>
        public async Task<string> CompleteAsync()
        {
            await _hashing;
            await _writing;
            await _writingBack;
            Store(() => RandomAccess.FlushToDisk(file));
            return Convert.ToHexStringLower(_hash.GetHashAndReset());
        }

        public async ValueTask DisposeAsync()
        {
            // Work may still be using the buffers and the file (staging left by an exception or a refusal): wait
            // for it before they go back to the shared pool and the file is closed.
            await DrainAsync(_hashing);
            await DrainAsync(_writing);
            await DrainAsync(_writingBack);
            file.Dispose();
            _hash.Dispose();
            if (_held is not null)
            {
                ArrayPool<byte>.Shared.Return(_held);
                _held = null;
            }
            while (_inFlight.TryDequeue(out var entry))
            {
                ArrayPool<byte>.Shared.Return(entry.Buffer);
            }
        }

        private void Write(byte[] chunk, int count, long offset)
        {
            Store(() => RandomAccess.Write(file, chunk.AsSpan(0, count), offset));
            long end = offset + count;
            if (end - _writtenBackTo >= WriteBackBytes && _writingBack.IsCompleted)
            {
                _writingBack.GetAwaiter().GetResult(); // a failed write-back fails the staging
                _writtenBackTo = end;
                _writingBack = Task.Run(() => Store(() => RandomAccess.FlushToDisk(file)), CancellationToken.None);
            }
        }

        /// <summary>Runs <paramref name="next"/> on the thread pool once <paramref name="previous"/> has ended, or fails as it did.</summary>
        private static Task Then(Task previous, Action next) =>
            previous.ContinueWith(
                p =>
                {
                    p.GetAwaiter().GetResult();
                    next();
                },
                CancellationToken.None,
                TaskContinuationOptions.DenyChildAttach,
                TaskScheduler.Default);

        private static async Task DrainAsync(Task task)
        {
            try
            {
                await task;
            }
            catch (Exception)
            {
                // Its failure was (or will be) reported where it was awaited; only its end matters here.
            }
        }
    }

    /// <summary>Runs a file-system operation that returns nothing, failing as the store (see the other overload).</summary>
    private static void Store(Action operation) => Store(() =>
    {
        operation();
        return true;
    });
}
