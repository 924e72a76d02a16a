using System.Buffers;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Wharf.Core.Streams;

namespace Wharf.Providers.Gemini;

/// <summary>
/// Gemini's <c>streamGenerateContent?alt=sse</c> answer read event by event and handed on as OpenAI's
/// <c>chat.completion.chunk</c> events, each as soon as its event arrived (nothing is held back but the event
/// being translated): the first delta of a choice carries the role, text parts become <c>content</c> deltas,
/// function calls <c>tool_calls</c> deltas (indexed per choice), <c>finishReason</c> the choice's
/// <c>finish_reason</c>. At the end: a chunk with <c>usage</c> and no choices when asked
/// (<c>stream_options.include_usage</c>), then <c>data: [DONE]</c>. An event that is not a
/// <c>GenerateContentResponse</c> (an error, broken JSON) or a stream that ends before any candidate finished
/// fails the read with an <see cref="IOException"/>: the answer broke off, and is never passed on as whole.
/// </summary>
internal sealed class GeminiChunkStream : ForwardReadStream
{
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    private readonly Stream _upstream;
    private readonly IAsyncEnumerator<SseItem<string>> _events;
    private readonly CancellationTokenSource _stop = new();
    private readonly string _model;
    private readonly long _created;
    private readonly bool _includeUsage;
    private readonly HashSet<int> _started = [];
    private readonly Dictionary<int, int> _calls = [];
    private string? _id;
    private string? _modelVersion;
    private byte[]? _usage;
    private bool _finished;
    private bool _ended;
    private byte[] _pending = [];
    private int _offset;
    private int _disposed;

    public GeminiChunkStream(Stream upstream, string model, long created, bool includeUsage)
    {
        _upstream = upstream;
        _model = model;
        _created = created;
        _includeUsage = includeUsage;
        _events = SseParser.Create(upstream).EnumerateAsync(_stop.Token).GetAsyncEnumerator(_stop.Token);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_offset == _pending.Length)
        {
            if (_ended)
            {
                return 0;
            }
            await using (cancellationToken.Register(static state => ((CancellationTokenSource)state!).Cancel(), _stop))
            {
                try
                {
                    _pending = await NextAsync();
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }
            _offset = 0;
        }
        int count = Math.Min(buffer.Length, _pending.Length - _offset);
        _pending.AsMemory(_offset, count).CopyTo(buffer);
        _offset += count;
        return count;
    }

    /// <summary>The next events to hand on: one chunk (or none, for an event that only counts), or the end.</summary>
    private async Task<byte[]> NextAsync()
    {
        if (!await _events.MoveNextAsync())
        {
            if (!_finished)
            {
                throw new IOException("The upstream's event stream ended before its answer finished.");
            }
            _ended = true;
            if (!_includeUsage || _usage is null)
            {
                return Done;
            }
            return [.. Event(writer =>
            {
                WriteHead(writer);
                writer.WriteStartArray("choices");
                writer.WriteEndArray();
                writer.WritePropertyName("usage");
                writer.WriteRawValue(_usage, skipInputValidation: true);
            }), .. Done];
        }
        string data = _events.Current.Data;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(data);
        }
        catch (JsonException)
        {
            throw new IOException("The upstream sent an event that is not valid JSON.");
        }
        using (document)
        {
            var answer = document.RootElement;
            if (answer.ValueKind != JsonValueKind.Object)
            {
                throw new IOException("The upstream sent an event that is not a GenerateContentResponse.");
            }
            if (answer.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
            {
                var google = GeminiErrors.ReadError(error);
                throw new IOException($"The upstream ended its answer with an error ({google.Status ?? "unknown status"}).");
            }
            _id ??= GeminiChatAnswer.CompletionId(answer);
            _modelVersion ??= GeminiChatAnswer.Text(answer, "modelVersion");
            if (answer.TryGetProperty("usageMetadata", out var usageMetadata) && usageMetadata.ValueKind == JsonValueKind.Object)
            {
                // Gemini counts so far in every event: the last one holds the totals.
                var usage = new ArrayBufferWriter<byte>();
                using (var usageWriter = new Utf8JsonWriter(usage))
                {
                    GeminiChatAnswer.WriteUsageObject(usageWriter, usageMetadata);
                }
                _usage = usage.WrittenSpan.ToArray();
            }
            bool anyCandidate = answer.TryGetProperty("candidates", out var candidates) && candidates.ValueKind == JsonValueKind.Array && candidates.GetArrayLength() > 0;
            if (!anyCandidate)
            {
                if (answer.TryGetProperty("promptFeedback", out var feedback) && feedback.ValueKind == JsonValueKind.Object
                    && feedback.TryGetProperty("blockReason", out _))
                {
                    _finished = true;
                    return Event(writer =>
                    {
                        WriteHead(writer);
                        writer.WriteStartArray("choices");
                        writer.WriteStartObject();
                        writer.WriteNumber("index", 0);
                        writer.WriteStartObject("delta");
                        writer.WriteString("role", "assistant");
                        writer.WriteEndObject();
                        writer.WriteNull("logprobs");
                        writer.WriteString("finish_reason", "content_filter");
                        writer.WriteEndObject();
                        writer.WriteEndArray();
                    });
                }
                return [];
            }
            return Event(writer =>
            {
                WriteHead(writer);
                writer.WriteStartArray("choices");
                int position = 0;
                foreach (var candidate in candidates.EnumerateArray())
                {
                    if (candidate.ValueKind != JsonValueKind.Object)
                    {
                        throw new IOException("The upstream sent a candidate that is not an object.");
                    }
                    WriteChoiceDelta(writer, candidate, GeminiChatAnswer.IndexOf(candidate, position++));
                }
                writer.WriteEndArray();
            });
        }
    }

    private void WriteChoiceDelta(Utf8JsonWriter writer, JsonElement candidate, int index)
    {
        writer.WriteStartObject();
        writer.WriteNumber("index", index);
        writer.WriteStartObject("delta");
        if (_started.Add(index))
        {
            writer.WriteString("role", "assistant");
        }
        var text = new StringBuilder();
        bool anyText = false;
        bool callsOpen = false;
        foreach (var part in GeminiChatAnswer.Parts(candidate))
        {
            if (GeminiChatAnswer.IsThought(part))
            {
                continue;
            }
            if (part.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
            {
                text.Append(t.GetString());
                anyText = true;
            }
        }
        if (anyText)
        {
            writer.WriteString("content", text.ToString());
        }
        foreach (var part in GeminiChatAnswer.Parts(candidate))
        {
            if (part.TryGetProperty("functionCall", out var call) && call.ValueKind == JsonValueKind.Object)
            {
                if (!callsOpen)
                {
                    writer.WriteStartArray("tool_calls");
                    callsOpen = true;
                }
                int number = _calls.GetValueOrDefault(index);
                _calls[index] = number + 1;
                writer.WriteStartObject();
                writer.WriteNumber("index", number);
                GeminiChatAnswer.WriteCall(writer, call);
                writer.WriteEndObject();
            }
        }
        if (callsOpen)
        {
            writer.WriteEndArray();
        }
        writer.WriteEndObject();
        writer.WriteNull("logprobs");
        if (GeminiChatAnswer.FinishReason(GeminiChatAnswer.Text(candidate, "finishReason"), _calls.GetValueOrDefault(index) > 0) is { } finish)
        {
            _finished = true;
            writer.WriteString("finish_reason", finish);
        }
        else
        {
            writer.WriteNull("finish_reason");
        }
        writer.WriteEndObject();
    }

    private void WriteHead(Utf8JsonWriter writer)
    {
        writer.WriteString("id", _id ?? "chatcmpl-" + Guid.NewGuid().ToString("N"));
        writer.WriteString("object", "chat.completion.chunk");
        writer.WriteNumber("created", _created);
        writer.WriteString("model", _modelVersion ?? _model);
    }

    /// <summary>One <c>data:</c> event holding the object the action writes the members of.</summary>
    private static byte[] Event(Action<Utf8JsonWriter> members)
    {
        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write("data: "u8);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            members(writer);
            writer.WriteEndObject();
        }
        buffer.Write("\n\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _stop.Cancel();
            _upstream.Dispose();
            _stop.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _stop.CancelAsync();
            await _events.DisposeAsync();
            await _upstream.DisposeAsync();
            _stop.Dispose();
        }
        await base.DisposeAsync();
    }
}
