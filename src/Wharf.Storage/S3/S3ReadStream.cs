using Amazon.S3;
using Amazon.S3.Model;

namespace Wharf.Storage.S3;

/// <summary>
/// A committed object read as a seekable, read-only stream: its length is the object's size (known when it was
/// opened); a read issues a ranged GET from the position to the end and streams its body, and a seek elsewhere drops
/// that body so that the next read starts a new ranged GET there. Nothing is buffered beyond the caller's buffer.
/// </summary>
internal sealed class S3ReadStream(IAmazonS3 s3, string bucket, string key, long length, string? etag) : Stream
{
    private GetObjectResponse? _body;
    private long _position;
    private bool _disposed;

    public override bool CanRead => !_disposed;
    public override bool CanSeek => !_disposed;
    public override bool CanWrite => false;
    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        ArgumentOutOfRangeException.ThrowIfNegative(target, nameof(offset));
        if (target != _position)
        {
            DropBody();
            _position = target;
        }
        return _position;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (buffer.IsEmpty || _position >= length)
        {
            return 0;
        }
        var body = _body ??= await OpenBodyAsync(cancellationToken);
        int read;
        try
        {
            int wanted = (int)Math.Min(buffer.Length, length - _position);
            read = await body.ResponseStream.ReadAsync(buffer[..wanted], cancellationToken);
        }
        catch (Exception ex)
        {
            // A body cut or cancelled midway is dropped: the next read asks again from the position reached.
            DropBody();
            if (S3Failures.IsStoreFailure(ex, cancellationToken))
            {
                throw S3Failures.Wrap(ex, "read a blob");
            }
            throw;
        }
        if (read == 0)
        {
            DropBody();
            throw S3Failures.Wrap(new IOException($"The object ended at byte {_position} of {length}."), "read a blob");
        }
        _position += read;
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        // The port's callers read asynchronously; a synchronous reader still gets the bytes.
        byte[] rented = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            int read = ReadAsync(rented.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, read).CopyTo(buffer);
            return read;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private Task<GetObjectResponse> OpenBodyAsync(CancellationToken cancellationToken) => S3Failures.CallAsync(
        () => s3.GetObjectAsync(
            new GetObjectRequest
            {
                BucketName = bucket,
                Key = key,
                ByteRange = new ByteRange($"bytes={_position}-{length - 1}"),
                // The object read is the one that was opened, never another written under the same key since.
                EtagToMatch = etag,
            },
            cancellationToken),
        "read a blob",
        cancellationToken);

    private void DropBody()
    {
        _body?.Dispose();
        _body = null;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            DropBody();
        }
        base.Dispose(disposing);
    }
}
