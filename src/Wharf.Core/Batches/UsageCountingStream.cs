using System.Buffers;
using System.Text.Json;
using Wharf.Core.Streams;

namespace Wharf.Core.Batches;

/// <summary>
/// A batch output file read forward, as it is copied in, summing the tokens of its lines: each line's
/// <c>response.body</c> is read by <see cref="AnswerUsage"/>. The bytes pass through unchanged. A line is held (in one
/// pooled buffer) only until its end; a line longer than <see cref="MaxLineBytes"/> is passed on but not counted, and
/// <see cref="Complete"/> says so. Disposing it leaves the inner stream to its owner.
/// </summary>
/// <remarks>
/// For a native batch whose provider reports no usage on the batch (Anthropic and Gemini put it on each result line
/// only): without it the batch's <c>usage</c> would say zero tokens for work that was done and billed.
/// </remarks>
public sealed class UsageCountingStream(Stream inner) : ForwardReadStream
{
    /// <summary>The longest line whose usage is read (OpenAI's own output lines are far shorter than this).</summary>
    public const int MaxLineBytes = 8 * 1024 * 1024;

    private byte[] _line = ArrayPool<byte>.Shared.Rent(16 * 1024);
    private int _length;
    private bool _overlong;

    /// <summary>The tokens of the lines read so far.</summary>
    public BatchUsage Usage { get; private set; } = BatchUsage.None;

    /// <summary>False when a line was too long to be read for its usage (the sum is then short of the truth).</summary>
    public bool Complete { get; private set; } = true;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int read = inner.Read(buffer);
        if (buffer.Length > 0)
        {
            Observe(buffer[..read]);
        }
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int read = await inner.ReadAsync(buffer, cancellationToken);
        if (buffer.Length > 0)
        {
            Observe(buffer.Span[..read]);
        }
        return read;
    }

    private void Observe(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            EndLine(); // the end of the file ends a last line without its newline
            return;
        }
        while (!bytes.IsEmpty)
        {
            int newline = bytes.IndexOf((byte)'\n');
            Append(newline < 0 ? bytes : bytes[..newline]);
            if (newline < 0)
            {
                return;
            }
            EndLine();
            bytes = bytes[(newline + 1)..];
        }
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_overlong || bytes.IsEmpty)
        {
            return;
        }
        if (_length + bytes.Length > MaxLineBytes)
        {
            _overlong = true;
            return;
        }
        if (_length + bytes.Length > _line.Length)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Min(MaxLineBytes, Math.Max(_line.Length * 2, _length + bytes.Length)));
            _line.AsSpan(0, _length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_line);
            _line = larger;
        }
        bytes.CopyTo(_line.AsSpan(_length));
        _length += bytes.Length;
    }

    private void EndLine()
    {
        if (_overlong)
        {
            Complete = false;
        }
        else if (_length > 0)
        {
            Usage = Usage.Add(ReadLine(_line.AsSpan(0, _length)));
        }
        _length = 0;
        _overlong = false;
    }

    /// <summary>The tokens of one output line's <c>response.body</c>; none when it has none or is not such a line.</summary>
    internal static BatchUsage ReadLine(ReadOnlySpan<byte> line)
    {
        var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            return Find(ref reader, "response"u8) && Find(ref reader, "body"u8)
                ? BodyUsage(ref reader, line)
                : BatchUsage.None;
        }
        catch (JsonException)
        {
            return BatchUsage.None;
        }
    }

    /// <summary>Reads into the object the reader is at (or, first, the line's object) up to the object-valued property <paramref name="name"/>.</summary>
    private static bool Find(ref Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        if (reader.TokenType == JsonTokenType.None && !reader.Read())
        {
            return false;
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return false;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            bool found = reader.ValueTextEquals(name);
            reader.Read();
            if (found)
            {
                return reader.TokenType == JsonTokenType.StartObject;
            }
            reader.Skip();
        }
        return false;
    }

    private static BatchUsage BodyUsage(ref Utf8JsonReader reader, ReadOnlySpan<byte> line)
    {
        int start = (int)reader.TokenStartIndex;
        reader.Skip();
        return AnswerUsage.Read(line[start..(int)reader.BytesConsumed]);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _line.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_line);
            _line = [];
        }
        base.Dispose(disposing);
    }
}
