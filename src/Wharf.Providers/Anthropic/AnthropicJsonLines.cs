using System.Buffers;
using System.IO.Pipelines;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// JSON Lines read forward from a stream, one line at a time: only the line being read is held (at most
/// <c>maxLineBytes</c>; a longer one is <see cref="TooLong"/>), a CR before the LF and blank lines are dropped, and a
/// last line without its LF counts. Used for Wharf's batch input (already validated) and for Anthropic's results.
/// </summary>
internal sealed class AnthropicJsonLines(Stream stream, int maxLineBytes) : IAsyncDisposable
{
    private readonly PipeReader _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
    private byte[] _line = [];
    private bool _done;

    /// <summary>The line read last (without its end); valid until the next read.</summary>
    public ReadOnlyMemory<byte> Line { get; private set; }

    /// <summary>The 1-based number of <see cref="Line"/> in the stream, blank lines counted.</summary>
    public int Number { get; private set; }

    /// <summary>Set when a line was longer than the bound: reading stops there.</summary>
    public bool TooLong { get; private set; }

    /// <summary>The next non-blank line; false at the end (or at a line over the bound).</summary>
    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
    {
        while (!_done)
        {
            var read = await _reader.ReadAsync(cancellationToken);
            var buffer = read.Buffer;
            var end = buffer.PositionOf((byte)'\n');
            if (end is null && buffer.Length > maxLineBytes)
            {
                TooLong = true;
                _done = true;
                return false;
            }
            if (end is null && !read.IsCompleted)
            {
                _reader.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }
            var line = end is { } at ? buffer.Slice(0, at) : buffer;
            if (line.Length > maxLineBytes)
            {
                TooLong = true;
                _done = true;
                return false;
            }
            int length = (int)line.Length;
            if (_line.Length < length)
            {
                _line = new byte[Math.Max(length, _line.Length * 2)];
            }
            line.CopyTo(_line);
            if (end is { } next)
            {
                _reader.AdvanceTo(buffer.GetPosition(1, next));
            }
            else
            {
                _reader.AdvanceTo(buffer.End);
                _done = true;
            }
            Number++;
            var text = _line.AsMemory(0, length);
            if (Number == 1 && text.Span.StartsWith("\uFEFF"u8))
            {
                text = text[3..]; // a byte order mark
            }
            if (text.Span.EndsWith("\r"u8))
            {
                text = text[..^1];
            }
            if (text.Span.Trim(" \t"u8).IsEmpty)
            {
                continue;
            }
            Line = text;
            return true;
        }
        return false;
    }

    public async ValueTask DisposeAsync() => await _reader.CompleteAsync();
}
