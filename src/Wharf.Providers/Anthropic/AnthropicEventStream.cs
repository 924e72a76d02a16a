using System.Buffers;
using System.Text.Json;
using Wharf.Providers.Http;
using Wharf.Core.Streams;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// Anthropic's event stream read as it arrives and handed on as OpenAI's: each event is translated when its blank
/// line arrives (nothing is held beyond the event being read and the chunks it gave). The stream ends with
/// <c>data: [DONE]</c> after <c>message_stop</c>; an <c>error</c> event, or an end before <c>message_stop</c>, fails
/// the read with an <see cref="IOException"/>, as a dropped connection does (the caller ends its answer with an error).
/// The upstream body is its owner's to dispose.
/// </summary>
internal sealed class AnthropicEventStream(Stream upstream, AnthropicStreamTranslator translator) : ForwardReadStream
{
    /// <summary>The longest event accepted; a longer one is not Anthropic's.</summary>
    public const int MaxEventBytes = 4 * 1024 * 1024;

    private readonly ArrayBufferWriter<byte> _output = new(4096);
    private byte[] _input = ArrayPool<byte>.Shared.Rent(16 * 1024);
    private int _inputLength;
    private int _outputRead;
    private bool _ended;

    /// <summary>The <c>data:</c> lines of the event being read, joined.</summary>
    private readonly ArrayBufferWriter<byte> _data = new(1024);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_outputRead == _output.WrittenCount)
        {
            if (_ended)
            {
                return 0;
            }
            _output.ResetWrittenCount();
            _outputRead = 0;
            await FillAsync(cancellationToken);
        }
        int count = Math.Min(buffer.Length, _output.WrittenCount - _outputRead);
        _output.WrittenSpan.Slice(_outputRead, count).CopyTo(buffer.Span);
        _outputRead += count;
        return count;
    }

    /// <summary>Reads from the upstream until at least one event was translated (or the stream ended).</summary>
    private async Task FillAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TakeLines())
            {
                return;
            }
            if (_inputLength == _input.Length)
            {
                if (_input.Length >= MaxEventBytes)
                {
                    throw new IOException("Anthropic sent a line longer than any event it sends.");
                }
                byte[] larger = ArrayPool<byte>.Shared.Rent(_input.Length * 2);
                _input.AsSpan(0, _inputLength).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_input);
                _input = larger;
            }
            int read = await upstream.ReadAsync(_input.AsMemory(_inputLength), cancellationToken);
            if (read == 0)
            {
                if (!translator.Finished)
                {
                    throw new IOException("Anthropic's event stream ended before message_stop.");
                }
                _ended = true;
                return;
            }
            _inputLength += read;
        }
    }

    /// <summary>Takes the complete lines read so far; true once an event gave output or ended the stream.</summary>
    private bool TakeLines()
    {
        int start = 0;
        bool produced = false;
        while (!produced && !_ended)
        {
            int newline = _input.AsSpan(start, _inputLength - start).IndexOf((byte)'\n');
            if (newline < 0)
            {
                break;
            }
            var line = _input.AsSpan(start, newline);
            start += newline + 1;
            if (line.EndsWith("\r"u8))
            {
                line = line[..^1];
            }
            if (line.IsEmpty)
            {
                if (_data.WrittenCount > 0)
                {
                    produced = Dispatch();
                }
            }
            else if (line.StartsWith("data:"u8))
            {
                var data = line["data:".Length..];
                if (data.StartsWith(" "u8))
                {
                    data = data[1..];
                }
                if (_data.WrittenCount + data.Length > MaxEventBytes)
                {
                    throw new IOException("Anthropic sent an event larger than any it sends.");
                }
                if (_data.WrittenCount > 0)
                {
                    _data.Write("\n"u8);
                }
                _data.Write(data);
            }
            // "event:" lines name what the data's "type" says too; comments and other fields are skipped.
        }
        _input.AsSpan(start, _inputLength - start).CopyTo(_input);
        _inputLength -= start;
        return produced;
    }

    private bool Dispatch()
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(_data.WrittenMemory);
        }
        catch (JsonException e)
        {
            throw new IOException("Anthropic sent an event that is not JSON.", e);
        }
        finally
        {
            _data.ResetWrittenCount();
        }
        using (document)
        {
            int before = _output.WrittenCount;
            translator.Translate(document.RootElement, _output);
            if (translator.Finished)
            {
                _ended = true;
            }
            return _output.WrittenCount > before || _ended;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _input, []) is { Length: > 0 } rented)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
        base.Dispose(disposing);
    }
}
