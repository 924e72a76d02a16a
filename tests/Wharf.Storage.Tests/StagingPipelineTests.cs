using System.Security.Cryptography;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Storage.FileSystem;
using StagingWriter = Wharf.Storage.FileSystem.DiskBlobStore.StagingWriter;

namespace Wharf.Storage.Tests;

/// <summary>
/// The disk store's staging pipeline (chunks read, hashed and written at once, with early write-back): whatever the
/// length and however the content arrives, the staged bytes and their SHA-256 are exact, and every way out (a
/// refusal, the sender's failure, the store's failure) keeps nothing.
/// </summary>
public sealed class StagingPipelineTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly DiskBlobStore _store;
    private readonly IdGenerator _ids = new(TimeProvider.System);

    public StagingPipelineTests() => _store = new DiskBlobStore(Path.Combine(_dir.Path, "blobs"));

    public void Dispose() => _dir.Dispose();

    private string StagingDir => Path.Combine(_dir.Path, "blobs", ".staging");

    private const int Chunk = StagingWriter.ChunkBytes;

    [Theory]
    [InlineData(Chunk - 1)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 1)]
    [InlineData(StagingWriter.Depth * Chunk)]
    [InlineData((StagingWriter.Depth + 1) * Chunk + 17)]
    [InlineData((int)StagingWriter.WriteBackBytes + 3 * Chunk + 5)]
    public async Task Content_across_chunks_buffer_reuse_and_write_backs_is_staged_byte_exact(int length)
    {
        byte[] bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        await using var source = new TrickleStream(bytes, seed: length, maxChunk: 300_000);

        await using var staged = await _store.StageAsync(source, length, CancellationToken.None);

        Assert.NotNull(staged);
        Assert.Equal(length, staged.Length);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), staged.Sha256);
        string id = WharfIds.File(_ids.Next());
        await staged.CommitAsync(id, CancellationToken.None);
        await using var read = await _store.OpenReadAsync(id, CancellationToken.None);
        Assert.NotNull(read);
        Assert.Equal(bytes, await ReadAllAsync(read));
    }

    [Fact]
    public async Task A_refusal_with_chunks_in_flight_keeps_nothing()
    {
        await using var source = new TrickleStream(new byte[3 * StagingWriter.Depth * Chunk], seed: 1, maxChunk: 300_000);

        Assert.Null(await _store.StageAsync(source, 2L * StagingWriter.Depth * Chunk + 1, CancellationToken.None));

        Assert.Empty(Directory.GetFiles(StagingDir));
    }

    [Fact]
    public async Task A_failure_of_the_sender_with_chunks_in_flight_stays_the_senders_and_keeps_nothing()
    {
        await using var source = new FailingStream(failAfter: (StagingWriter.Depth + 2) * Chunk + 1000);

        var error = await Assert.ThrowsAsync<IOException>(() => _store.StageAsync(source, long.MaxValue, CancellationToken.None));

        Assert.Equal(FailingStream.Message, error.Message);
        Assert.Empty(Directory.GetFiles(StagingDir));
    }

    [Fact]
    public async Task Cancellation_with_chunks_in_flight_keeps_nothing()
    {
        using var cancel = new CancellationTokenSource();
        await using var source = new FailingStream(failAfter: long.MaxValue, cancelAfter: (StagingWriter.Depth + 2) * Chunk, cancel);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _store.StageAsync(source, long.MaxValue, cancel.Token));

        Assert.Empty(Directory.GetFiles(StagingDir));
    }

    [Fact]
    public async Task A_write_failing_in_the_background_fails_as_the_store()
    {
        // A file opened for reading only: every write to it fails, on the writer's own thread.
        string path = Path.Combine(_dir.Path, "read-only");
        await File.WriteAllBytesAsync(path, []);
        var writer = new StagingWriter(File.OpenHandle(path, FileMode.Open, FileAccess.Read));
        await using (writer)
        {
            var failure = await Assert.ThrowsAsync<BlobStoreException>(async () =>
            {
                for (int i = 0; i < 2 * StagingWriter.Depth; i++)
                {
                    (await writer.NextBufferAsync()).Span.Fill((byte)i);
                    await writer.AddAsync(Chunk);
                }
                await writer.CompleteAsync();
            });
            Assert.NotNull(failure.InnerException);
        }
        Assert.Equal(0, new FileInfo(path).Length);
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    /// <summary>Yields bytes in 64 KiB reads, then fails as a dropped connection does, or cancels its token.</summary>
    private sealed class FailingStream(long failAfter, long cancelAfter = long.MaxValue, CancellationTokenSource? cancel = null) : Stream
    {
        public const string Message = "The connection was reset.";
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_position >= failAfter)
            {
                throw new IOException(Message);
            }
            if (_position >= cancelAfter)
            {
                cancel!.Cancel();
            }
            int n = (int)Math.Min(Math.Min(buffer.Length, 64 * 1024), failAfter - _position);
            buffer[..n].Fill(7);
            _position += n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            int n = Read(buffer.Span);
            cancellationToken.ThrowIfCancellationRequested();
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
