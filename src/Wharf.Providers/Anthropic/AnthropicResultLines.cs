using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using Wharf.Core.Batches;
using Wharf.Core.Errors;
using Wharf.Core.Ids;
using Wharf.Providers.Http;
using static Wharf.Providers.Anthropic.AnthropicJson;
using Wharf.Core.Streams;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// A Message Batch's results (<c>{custom_id, result}</c> per line) read as OpenAI's batch output or error lines of one
/// kind, in the shapes the gateway execution writes (so a native and a gateway batch give the same lines):
/// <c>succeeded</c> is an output line whose body is the message as a <c>chat.completion</c>; <c>errored</c> an error
/// line with the upstream's status (from its error type) and OpenAI's error body (its type as the code, as a gateway
/// line keeps it); <c>canceled</c> and <c>expired</c> error lines with <c>response: null</c> and the codes
/// <c>batch_cancelled</c> and <c>batch_expired</c>. Each line is translated whole before any of it is handed on: a line
/// that is not one of these fails the read (an <see cref="IOException"/>, as a body that breaks off), never half
/// written.
/// </summary>
internal sealed class AnthropicResultLines(Stream results, BatchFileKind kind, IReadOnlyDictionary<string, string> hashedIds, AnthropicTranslation translation)
    : ForwardReadStream
{
    public const string CancelledCode = "batch_cancelled";

    public const string ExpiredCode = "batch_expired";

    public const string CancelledMessage = "This request was cancelled before it was executed.";

    /// <summary>The gateway execution's words for a line the window closed on.</summary>
    public const string ExpiredMessage = "This request could not be executed before the completion window expired.";

    private readonly JsonlLineReader _lines = new(results, AnthropicBatches.MaxResultLineBytes);
    private readonly ArrayBufferWriter<byte> _pending = new(16 * 1024);
    private int _offset;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_offset == _pending.WrittenCount)
        {
            _pending.ResetWrittenCount();
            _offset = 0;
            if (!await _lines.ReadAsync(cancellationToken))
            {
                return 0;
            }
            if (_lines.TooLong)
            {
                throw new IOException($"Line {_lines.Number} of Anthropic's batch results is too long to read.");
            }
            if (!_lines.IsBlank)
            {
                Translate(_lines.Number, _lines.Line);
            }
        }
        int count = Math.Min(buffer.Length, _pending.WrittenCount - _offset);
        _pending.WrittenSpan.Slice(_offset, count).CopyTo(buffer.Span);
        _offset += count;
        return count;
    }

    /// <summary>Appends the line's translation to what is pending, when it is of this kind.</summary>
    private void Translate(int number, ReadOnlyMemory<byte> line)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException)
        {
            throw Malformed(number, "is not JSON");
        }
        using (document)
        {
            var root = document.RootElement;
            if (Text(root, "custom_id") is not { } sent || !root.TryGetProperty("result", out var result) || Text(result, "type") is not { } type)
            {
                throw Malformed(number, "has no custom_id or result type");
            }
            string customId = AnthropicCustomIds.FromAnthropic(sent, hashedIds) ?? throw Malformed(number, "names a custom_id Wharf did not send");
            bool output = type == "succeeded";
            JsonElement message = default;
            if (type is not ("succeeded" or "errored" or "canceled" or "expired"))
            {
                throw Malformed(number, $"has a result of unknown type '{type}'");
            }
            JsonElement blocks = default;
            if (output && !(result.TryGetProperty("message", out message) && AnthropicTranslation.IsMessage(message, out blocks)))
            {
                throw Malformed(number, "succeeded without a message with content");
            }
            if (output != (kind == BatchFileKind.Output))
            {
                return;
            }
            using var writer = new Utf8JsonWriter(_pending, WriterOptions);
            writer.WriteStartObject();
            writer.WriteString("id", NewId(WharfIds.BatchRequestPrefix));
            writer.WriteString("custom_id", customId);
            switch (type)
            {
                case "succeeded":
                    writer.WriteStartObject("response");
                    writer.WriteNumber("status_code", 200);
                    writer.WriteString("request_id", NewId("req_"));
                    writer.WritePropertyName("body");
                    translation.WriteChatCompletion(writer, message, blocks);
                    writer.WriteEndObject();
                    break;
                case "errored":
                    WriteErrored(writer, result);
                    break;
                default:
                    writer.WriteNull("response");
                    writer.WriteStartObject("error");
                    writer.WriteString("code", type == "canceled" ? CancelledCode : ExpiredCode);
                    writer.WriteString("message", type == "canceled" ? CancelledMessage : ExpiredMessage);
                    writer.WriteEndObject();
                    break;
            }
            if (type != "canceled" && type != "expired")
            {
                writer.WriteNull("error");
            }
            writer.WriteEndObject();
            writer.Flush();
            _pending.Write("\n"u8);
        }
    }

    /// <summary>
    /// <c>response</c> with the status Anthropic's error type stands for and OpenAI's error body, as the gateway writes a
    /// request the upstream refused. The error is Anthropic's error response (<c>{"type":"error","error":{type,
    /// message}}</c>) or, read as leniently, its inner error alone.
    /// </summary>
    private static void WriteErrored(Utf8JsonWriter writer, JsonElement result)
    {
        var error = result.TryGetProperty("error", out var outer) ? outer : default;
        if (error.ValueKind == JsonValueKind.Object && error.TryGetProperty("error", out var inner) && inner.ValueKind == JsonValueKind.Object)
        {
            error = inner;
        }
        string type = Text(error, "type") ?? "api_error";
        int status = StatusOf(type);
        writer.WriteStartObject("response");
        writer.WriteNumber("status_code", status);
        writer.WriteString("request_id", NewId("req_"));
        writer.WriteStartObject("body");
        writer.WriteStartObject("error");
        writer.WriteString("message", Text(error, "message") ?? "Anthropic refused the request.");
        writer.WriteString("type", WharfError.TypeOf(status));
        writer.WriteNull("param");
        writer.WriteString("code", type);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>The HTTP status Anthropic answers its error types with (its errors reference).</summary>
    public static int StatusOf(string errorType) => errorType switch
    {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    };

    private static string NewId(string prefix)
    {
        Span<byte> random = stackalloc byte[16];
        RandomNumberGenerator.Fill(random);
        return prefix + Convert.ToHexStringLower(random);
    }

    private static IOException Malformed(int number, string what) => new($"Line {number} of Anthropic's batch results {what}.");

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _lines.Dispose();
            results.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        _lines.Dispose();
        await results.DisposeAsync();
        await base.DisposeAsync();
    }
}
