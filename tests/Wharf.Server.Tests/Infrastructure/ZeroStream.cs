namespace Wharf.Server.Tests.Infrastructure;

/// <summary>
/// Zeros produced on demand (nothing held in memory). With <c>holdAt</c>, reading stops there until
/// <see cref="Release"/> or until the read is cancelled; <see cref="Held"/> completes when the stream gets there.
/// </summary>
public sealed class ZeroStream(long length, long holdAt = long.MaxValue) : Stream
{
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _position;

    /// <summary>Completes once everything before the hold has been read.</summary>
    public Task Held => _held.Task;

    /// <summary>Lets the rest be read.</summary>
    public void Release() => _released.TrySetResult();

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_position == holdAt)
        {
            _held.TrySetResult();
            await _released.Task.WaitAsync(cancellationToken);
        }
        long end = _position < holdAt ? Math.Min(holdAt, length) : length;
        int n = (int)Math.Min(buffer.Length, end - _position);
        buffer.Span[..n].Clear();
        _position += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
