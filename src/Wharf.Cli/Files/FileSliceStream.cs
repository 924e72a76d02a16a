using System.Security.Cryptography;

namespace Wharf.Cli.Files;

/// <summary>
/// A read-only window [offset, offset + length) of a local file, read as it is sent: each read counts towards a
/// progress callback and the SHA-256 of the window, so the bytes the server acknowledges can be checked without a
/// second pass. Its length is known, so a request carrying it has a <c>Content-Length</c>.
/// </summary>
internal sealed class FileSliceStream : Stream
{
    private readonly FileStream _file;
    private readonly long _length;
    private readonly Action<long> _onRead;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _position;
    private string? _sha256;

    public FileSliceStream(string path, long offset, long length, Action<long> onRead)
    {
        _file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Share = FileShare.Read,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            BufferSize = 0,
        });
        _file.Position = offset;
        _length = length;
        _onRead = onRead;
    }

    /// <summary>
    /// The SHA-256 (lowercase hex) of the window, taken when its last byte was read; still there after the request
    /// that sent it disposed the stream.
    /// </summary>
    public string Sha256Hex() => _sha256 ?? throw new InvalidOperationException("The slice was not read to its end.");

    public override bool CanRead => true;

    /// <summary>Seekable only in name, so that the content's length is known; it is read once, front to back.</summary>
    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => _length + offset,
        };
        return target == _position ? _position : throw new NotSupportedException("A file slice is read once, front to back.");
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int wanted = (int)Math.Min(buffer.Length, _length - _position);
        if (wanted <= 0)
        {
            return Finished();
        }
        int read = _file.Read(buffer[..wanted]);
        return Counted(buffer[..read]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int wanted = (int)Math.Min(buffer.Length, _length - _position);
        if (wanted <= 0)
        {
            return Finished();
        }
        int read = await _file.ReadAsync(buffer[..wanted], cancellationToken);
        return Counted(buffer.Span[..read]);
    }

    /// <summary>The end of the window (an empty window is finished before any read).</summary>
    private int Finished()
    {
        _sha256 ??= Convert.ToHexStringLower(_hash.GetCurrentHash());
        return 0;
    }

    private int Counted(ReadOnlySpan<byte> read)
    {
        if (read.Length == 0 && _position < _length)
        {
            throw new IOException("The file became shorter while it was being sent.");
        }
        _hash.AppendData(read);
        _position += read.Length;
        if (_position == _length)
        {
            _sha256 = Convert.ToHexStringLower(_hash.GetCurrentHash());
        }
        _onRead(read.Length);
        return read.Length;
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
            _file.Dispose();
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _file.DisposeAsync();
        _hash.Dispose();
        await base.DisposeAsync();
    }
}
