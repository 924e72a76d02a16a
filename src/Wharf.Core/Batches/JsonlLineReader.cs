using System.Buffers;

namespace Wharf.Core.Batches;

/// <summary>
/// Reads a JSONL stream line by line in one pass, through one pooled buffer that holds at most one line (up to
/// <c>maxLineBytes</c>) and what was read after it: memory does not grow with the file. A line is its bytes without
/// the <c>\n</c> (and a <c>\r</c> before it); lines are numbered from 1. A line longer than the bound is reported as
/// <see cref="TooLong"/> (its bytes are skipped, not kept); the text after the last <c>\n</c>, when there is any, is
/// the last line. A UTF-8 byte order mark before the first line is not part of it. Shared by the batch executions and
/// the provider adapters that read JSONL (a native batch's input, its results), so that every reader of a file sees
/// the same lines.
/// </summary>
public sealed class JsonlLineReader : IDisposable
{
    private const int ReadSize = 64 * 1024;

    private readonly Stream _stream;
    private readonly int _maxLineBytes;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _ended;

    public JsonlLineReader(Stream stream, int maxLineBytes)
    {
        _stream = stream;
        _maxLineBytes = maxLineBytes;
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(ReadSize * 2, maxLineBytes + ReadSize));
    }

    /// <summary>The current line's bytes; valid until the next <see cref="ReadAsync"/>. Empty when <see cref="TooLong"/>.</summary>
    public ReadOnlyMemory<byte> Line { get; private set; }

    /// <summary>The current line's number, from 1.</summary>
    public int Number { get; private set; }

    /// <summary>The current line was longer than the bound: its bytes were skipped.</summary>
    public bool TooLong { get; private set; }

    /// <summary>The current line holds nothing but spaces and tabs: not a request (the input's validation skips it).</summary>
    public bool IsBlank => !TooLong && BatchInputLine.IsBlank(Line.Span);

    /// <summary>Bytes of the stream read so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Moves to the next line; false at the end of the stream.</summary>
    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
    {
        TooLong = false;
        Line = default;
        bool skipping = false;
        while (true)
        {
            int newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                int lineEnd = _start + newline;
                Number++;
                if (skipping)
                {
                    TooLong = true;
                }
                else
                {
                    int length = lineEnd - _start;
                    if (length > 0 && _buffer[lineEnd - 1] == (byte)'\r')
                    {
                        length--;
                    }
                    if (length > _maxLineBytes)
                    {
                        TooLong = true;
                    }
                    else
                    {
                        Line = WithoutByteOrderMark(_buffer.AsMemory(_start, length));
                    }
                }
                _start = lineEnd + 1;
                return true;
            }
            if (_ended)
            {
                if (_end == _start && !skipping)
                {
                    return false;
                }
                // The last line, without a newline after it.
                Number++;
                TooLong = skipping || _end - _start > _maxLineBytes;
                Line = TooLong ? default : WithoutByteOrderMark(_buffer.AsMemory(_start, _end - _start));
                _start = _end;
                return true;
            }
            if (_end - _start > _maxLineBytes + 1)
            {
                // Longer than any line may be (a '\r' may still come before its '\n'): drop what is held, find its end.
                skipping = true;
                _start = _end = 0;
            }
            else if (_start > 0 && _buffer.Length - _end < ReadSize)
            {
                // Room for the next read: move what is left of the line to the start.
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                _end -= _start;
                _start = 0;
            }
            if (_buffer.Length - _end < ReadSize / 4)
            {
                var larger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, _maxLineBytes + ReadSize + 2));
                if (larger.Length <= _buffer.Length)
                {
                    ArrayPool<byte>.Shared.Return(larger);
                }
                else
                {
                    _buffer.AsSpan(_start, _end - _start).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(_buffer);
                    _end -= _start;
                    _start = 0;
                    _buffer = larger;
                }
            }
            int read = await _stream.ReadAsync(_buffer.AsMemory(_end, Math.Min(ReadSize, _buffer.Length - _end)), cancellationToken);
            if (read == 0)
            {
                _ended = true;
            }
            _end += read;
            BytesRead += read;
        }
    }

    /// <summary>The first line without the UTF-8 byte order mark some editors write at the start of a file.</summary>
    private Memory<byte> WithoutByteOrderMark(Memory<byte> line) =>
        Number == 1 && line.Span.StartsWith("\uFEFF"u8) ? line[3..] : line;

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
