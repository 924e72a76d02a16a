namespace Wharf.Core.Uploads;

/// <summary>
/// A read-only, seekable stream over a file kept as several blobs: each segment is opened when the read position
/// reaches it, so a download (or a range of it) never holds more than one segment's stream. A read of a file that
/// may be deleted meanwhile passes a <c>lease</c> (disposed with the stream) that keeps the segments until it ends.
/// </summary>
internal sealed class SegmentedStream : Stream
{
    private readonly IReadOnlyList<BlobSegment> _segments;
    private readonly long[] _starts;
    private readonly Func<string, CancellationToken, Task<Stream?>> _open;
    private long _position;
    private int _current = -1;
    private Stream? _stream;
    private IAsyncDisposable? _lease;

    public SegmentedStream(IReadOnlyList<BlobSegment> segments, Func<string, CancellationToken, Task<Stream?>> open, IAsyncDisposable? lease = null)
    {
        _segments = segments;
        _open = open;
        _lease = lease;
        _starts = new long[segments.Count];
        long offset = 0;
        for (int i = 0; i < segments.Count; i++)
        {
            _starts[i] = offset;
            offset += segments[i].Bytes;
        }
        Length = offset;
    }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length { get; }

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_position < Length && buffer.Length > 0)
        {
            int index = SegmentAt(_position);
            if (index != _current)
            {
                await SwitchToAsync(index, cancellationToken);
            }
            long inSegment = _position - _starts[index];
            if (_stream!.Position != inSegment)
            {
                _stream.Position = inSegment;
            }
            int wanted = (int)Math.Min(buffer.Length, _segments[index].Bytes - inSegment);
            int read = await _stream.ReadAsync(buffer[..wanted], cancellationToken);
            if (read == 0)
            {
                throw new IOException($"Segment {index} of a file ended before its recorded length.");
            }
            _position += read;
            return read;
        }
        return 0;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override long Seek(long offset, SeekOrigin origin)
    {
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => Length + offset,
        };
        ArgumentOutOfRangeException.ThrowIfNegative(target, nameof(offset));
        _position = target;
        return _position;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stream?.Dispose();
            _stream = null;
            Interlocked.Exchange(ref _lease, null)?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_stream is not null)
        {
            await _stream.DisposeAsync();
            _stream = null;
        }
        if (Interlocked.Exchange(ref _lease, null) is { } lease)
        {
            await lease.DisposeAsync();
        }
        await base.DisposeAsync();
    }

    private int SegmentAt(long position)
    {
        int index = Array.BinarySearch(_starts, position);
        index = index >= 0 ? index : ~index - 1;
        // Skip empty segments that start at the same offset.
        while (index < _segments.Count - 1 && _segments[index].Bytes == 0)
        {
            index++;
        }
        return index;
    }

    private async Task SwitchToAsync(int index, CancellationToken cancellationToken)
    {
        if (_stream is not null)
        {
            await _stream.DisposeAsync();
            _stream = null;
        }
        _current = -1;
        _stream = await _open(_segments[index].BlobId, cancellationToken)
            ?? throw new IOException($"Segment {index} of a file is missing from the blob store.");
        _current = index;
    }
}
