using System.Buffers;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Wharf.Core.Batches;
using Wharf.Core.Errors;
using Wharf.Core.Ids;
using Wharf.Core.Providers;
using Wharf.Providers.Http;
using Wharf.Core.Streams;

namespace Wharf.Providers.Gemini;

/// <summary>
/// Gemini's batch mode for OpenAI batches of chat completions. The input is Wharf's own OpenAI batch JSONL, read twice
/// forward (never held): once to translate every line (each <c>body</c> through the same translation as a chat
/// request, the <c>custom_id</c> as <c>key</c>) and count the bytes, once more to stream the same lines into a
/// resumable upload of that length; the batch is then created on the lines' one model with Wharf's batch id as its
/// <c>display_name</c>. Its <c>BATCH_STATE_*</c> is mapped to OpenAI's statuses and <c>batchStats</c> to the request
/// counts; the responses file (one <c>{key, response}</c> or <c>{key, error}</c> line per request) is read back line by
/// line into OpenAI's output lines (the answer through the same translation as a chat answer) or error lines (in the
/// shape the gateway writes for an upstream's error).
/// </summary>
internal sealed class GeminiBatches(string providerId, GeminiWire wire, GeminiFiles files)
{
    /// <summary>Where Wharf's batch id is reported back (Gemini has no metadata: it is the batch's display name).</summary>
    public const string WharfBatchIdKey = "wharf_batch_id";

    /// <summary>Where the batch's model is carried to the reading of its results (their answers name it).</summary>
    public const string ModelKey = "gemini_model";

    private const string JsonlType = "application/jsonl";

    private static readonly MediaTypeHeaderValue Json = new("application/json");

    public async Task<UpstreamOutcome<UpstreamBatch>> CreateAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken)
    {
        if (!BatchEndpoints.TryParse(batch.Endpoint, out var endpoint) || endpoint != ProviderCapability.ChatCompletions)
        {
            return UpstreamFailure.Untranslatable("endpoint",
                $"Gemini's batch mode runs chat completions only here; a batch of '{batch.Endpoint}' runs through Wharf's gateway (leave out \"execution\": \"native\").");
        }
        if (batch.Input is null)
        {
            return UpstreamFailure.Unsupported("A Gemini batch takes Wharf's input file itself.");
        }
        // First pass: every line translated (the first one that cannot be is the user's), the model and the length.
        string? model = null;
        long length = 0;
        int lines = 0;
        await using (var input = await batch.Input(cancellationToken))
        {
            if (input is null)
            {
                return InputGone();
            }
            using var reader = new BoundedLineReader(input.Content);
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }
                lines++;
                var translated = TranslateLine(line, lines);
                if (!translated.IsOk)
                {
                    return translated.Failure;
                }
                if (model is null)
                {
                    model = translated.Value.Model;
                }
                else if (model != translated.Value.Model)
                {
                    return UpstreamFailure.Untranslatable($"line {lines}: body.model",
                        $"Gemini runs a batch on one model: line {lines} names '{translated.Value.Model}', an earlier line '{model}'.");
                }
                length += translated.Value.Bytes.Length;
            }
        }
        if (model is null)
        {
            return UpstreamFailure.Untranslatable("input_file_id", "The batch's input file has no request lines.");
        }
        // Second pass: the same lines, streamed into the upload as they are translated.
        string displayName = batch.Metadata.TryGetValue(WharfBatchIdKey, out string? wharfId) ? wharfId : "wharf-batch";
        UpstreamOutcome<GeminiFileWire> uploaded;
        await using (var input = await batch.Input(cancellationToken))
        {
            if (input is null)
            {
                return InputGone();
            }
            await using var lineStream = new JsonlTransformStream(input.Content, (line, number) =>
                TranslateLine(line, number) is { IsOk: true } ok ? ok.Value.Bytes : throw new InvalidDataException($"Line {number} no longer translates."));
            uploaded = await files.UploadAsync(displayName + "-input.jsonl", JsonlType, length, lineStream, cancellationToken);
        }
        if (!uploaded.IsOk)
        {
            return uploaded.Failure;
        }
        var body = new MemoryStream();
        using (var json = new Utf8JsonWriter(body))
        {
            json.WriteStartObject();
            json.WriteStartObject("batch");
            json.WriteString("display_name", displayName);
            json.WriteStartObject("input_config");
            json.WriteString("file_name", uploaded.Value.Name);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndObject();
        }
        var sent = await wire.PostAsync(wire.ModelUri(model, "batchGenerateContent"), body.ToArray(), eventStream: false, cancellationToken);
        if (!sent.IsOk)
        {
            await files.DeleteAsync(uploaded.Value.Name!, CancellationToken.None);
            return sent.Failure;
        }
        return await ReadOperationAsync(sent.Value, cancellationToken);
    }

    private static UpstreamFailure InputGone() => UpstreamFailure.Untranslatable("input_file_id", "The batch's input file is gone.");

    /// <summary>One translated input line: <c>{"key": custom_id, "request": generateContent body}</c> and a newline, and its model.</summary>
    private readonly record struct TranslatedLine(byte[] Bytes, string Model);

    private UpstreamOutcome<TranslatedLine> TranslateLine(string line, int number)
    {
        using var document = JsonDocument.Parse(line);
        var root = document.RootElement;
        string key = root.GetProperty("custom_id").GetString()!;
        var body = root.GetProperty("body");
        string? model = body.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        if (string.IsNullOrEmpty(model))
        {
            return UpstreamFailure.Untranslatable($"line {number}: body.model", $"Line {number} names no model.");
        }
        // A model routed by its provider's prefix (gem/gemini-2.0-flash) is sent without it, as a gateway call is.
        if (model.StartsWith(providerId + "/", StringComparison.Ordinal))
        {
            model = model[(providerId.Length + 1)..];
        }
        if (body.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
        {
            return UpstreamFailure.Untranslatable($"line {number}: body.stream", $"Line {number} asks for a stream, which a batch cannot answer.");
        }
        var request = GeminiChatRequest.Translate(Encoding.UTF8.GetBytes(body.GetRawText()));
        if (!request.IsOk)
        {
            var error = request.Failure.Error;
            return UpstreamFailure.Untranslatable($"line {number}: body.{error?.Param}", $"Line {number} (custom_id '{key}'): {error?.Message}");
        }
        var buffer = new ArrayBufferWriter<byte>(request.Value.Body.Length + key.Length + 32);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("key", key);
            json.WritePropertyName("request");
            json.WriteRawValue(request.Value.Body, skipInputValidation: true);
            json.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return new TranslatedLine(buffer.WrittenSpan.ToArray(), model);
    }

    public async Task<UpstreamOutcome<UpstreamBatch>> GetAsync(string name, CancellationToken cancellationToken)
    {
        if (!IsBatchName(name))
        {
            return UpstreamFailure.Untranslatable("id", "Not a Gemini batch name.");
        }
        var sent = await wire.SendWithinTimeoutAsync(wire.NewRequest(HttpMethod.Get, wire.ResourceUri(name)), cancellationToken);
        return sent.IsOk ? await ReadOperationAsync(sent.Value, cancellationToken) : sent.Failure;
    }

    /// <summary>Asks Gemini to cancel (its answer is empty), then reports the batch as it then is.</summary>
    public async Task<UpstreamOutcome<UpstreamBatch>> CancelAsync(string name, CancellationToken cancellationToken)
    {
        if (!IsBatchName(name))
        {
            return UpstreamFailure.Untranslatable("id", "Not a Gemini batch name.");
        }
        var request = wire.NewRequest(HttpMethod.Post, wire.ResourceUri(name + ":cancel"));
        request.Content = new ByteArrayContent("{}"u8.ToArray()) { Headers = { ContentType = Json } };
        var sent = await wire.SendWithinTimeoutAsync(request, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        sent.Value.Dispose();
        return await GetAsync(name, cancellationToken);
    }

    /// <summary>One page of Gemini's batches (operations), newest first; the cursor is Gemini's page token.</summary>
    public async Task<UpstreamOutcome<UpstreamBatchPage>> ListAsync(UpstreamBatchQuery query, CancellationToken cancellationToken)
    {
        var parameters = new StringBuilder();
        if (query.Limit is { } limit)
        {
            parameters.Append("pageSize=").Append(Math.Clamp(limit, 1, 100).ToString(CultureInfo.InvariantCulture));
        }
        if (query.After is { Length: > 0 } token)
        {
            parameters.Append(parameters.Length == 0 ? "" : "&").Append("pageToken=").Append(Uri.EscapeDataString(token));
        }
        var sent = await wire.SendWithinTimeoutAsync(wire.NewRequest(HttpMethod.Get, wire.ResourceUri("batches", parameters.ToString())), cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        var read = await wire.ReadJsonAsync(sent.Value, cancellationToken);
        if (!read.IsOk)
        {
            return read.Failure;
        }
        using var document = read.Value;
        var root = document.RootElement;
        var batches = new List<UpstreamBatch>();
        if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("operations", out var operations) && operations.ValueKind == JsonValueKind.Array)
        {
            foreach (var operation in operations.EnumerateArray())
            {
                if (ToBatch(operation) is not { } batch)
                {
                    return UpstreamFailure.Malformed(200, "Gemini's batch list holds a batch without a name or state.");
                }
                batches.Add(batch);
            }
        }
        string? next = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("nextPageToken", out var n) && n.ValueKind == JsonValueKind.String
            && n.GetString() is { Length: > 0 } text ? text : null;
        return new UpstreamBatchPage(batches, next is not null) { Cursor = next };
    }

    /// <summary>A file's bytes (<c>/download/{version}/{file}:download?alt=media</c>), streamed; each read within the timeout.</summary>
    public async Task<UpstreamOutcome<UpstreamFileContent>> DownloadAsync(string fileName, CancellationToken cancellationToken)
    {
        if (!GeminiFiles.IsFileName(fileName))
        {
            return UpstreamFailure.Untranslatable("file_id", "Not a Gemini file name.");
        }
        var sent = await wire.SendWithinTimeoutAsync(wire.NewRequest(HttpMethod.Get, wire.DownloadUri(fileName)), cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        var response = sent.Value;
        try
        {
            var body = await wire.ReadStreamAsync(response, cancellationToken);
            return new UpstreamFileContent(body, response.Content.Headers.ContentLength, new DisposeOnce(response));
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            response.Dispose();
            return UpstreamFailure.ConnectionFailed("The upstream closed the connection before its answer began.");
        }
    }

    /// <summary>
    /// The responses file as OpenAI batch output: its <c>{key, response}</c> lines for the output kind, its
    /// <c>{key, error}</c> lines for the error kind, each translated as it is read.
    /// </summary>
    public async Task<UpstreamOutcome<UpstreamFileContent>> OpenResultsAsync(UpstreamBatchResults results, CancellationToken cancellationToken)
    {
        var download = await DownloadAsync(results.FileId, cancellationToken);
        if (!download.IsOk)
        {
            return download.Failure;
        }
        string model = results.Batch.Metadata is { } metadata && metadata.TryGetValue(ModelKey, out string? m) ? m : "";
        bool output = results.Kind == BatchFileKind.Output;
        long created = wire.Time.GetUtcNow().ToUnixTimeSeconds();
        var translated = new JsonlTransformStream(download.Value.Content, (line, number) => TranslateResult(line, number, output, model, created));
        return new UpstreamFileContent(translated, null, download.Value);
    }

    /// <summary>One line of the responses file as an OpenAI output or error line, or null when it is of the other kind.</summary>
    internal static byte[]? TranslateResult(string line, int number, bool output, string model, long created)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException)
        {
            throw new InvalidDataException($"Line {number} of Gemini's responses file is not JSON.");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("key", out var keyElement) || keyElement.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"Line {number} of Gemini's responses file has no key.");
            }
            bool isResponse = root.TryGetProperty("response", out var response) && response.ValueKind == JsonValueKind.Object;
            bool isError = root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object;
            if (!isResponse && !isError)
            {
                throw new InvalidDataException($"Line {number} of Gemini's responses file has neither a response nor an error.");
            }
            if (isResponse != output)
            {
                return null;
            }
            var buffer = new ArrayBufferWriter<byte>();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WriteString("id", WharfIds.Hex(WharfIds.BatchRequestPrefix, NewId()));
                json.WriteString("custom_id", keyElement.GetString());
                json.WriteStartObject("response");
                if (isResponse)
                {
                    byte[] completion = GeminiChatAnswer.Translate(response, model, created)
                        ?? throw new InvalidDataException($"Line {number} of Gemini's responses file holds no GenerateContentResponse.");
                    json.WriteNumber("status_code", 200);
                    json.WriteString("request_id", WharfIds.Hex("req_", NewId()));
                    json.WritePropertyName("body");
                    json.WriteRawValue(completion, skipInputValidation: true);
                }
                else
                {
                    // As the gateway writes an upstream's error: its status, OpenAI's error body, the status name as code.
                    var google = GeminiErrors.ReadError(error);
                    int status = error.TryGetProperty("code", out var c) && c.TryGetInt32(out int code) && code is >= 400 and <= 599 ? code : 500;
                    json.WriteNumber("status_code", status);
                    json.WriteString("request_id", WharfIds.Hex("req_", NewId()));
                    json.WriteStartObject("body");
                    json.WriteStartObject("error");
                    json.WriteString("message", google.Message ?? $"Gemini answered line {number} with an error.");
                    json.WriteString("type", WharfError.TypeOf(status));
                    json.WriteNull("param");
                    if ((google.Reason ?? google.Status) is { } name)
                    {
                        json.WriteString("code", name);
                    }
                    else
                    {
                        json.WriteNull("code");
                    }
                    json.WriteEndObject();
                    json.WriteEndObject();
                }
                json.WriteEndObject();
                json.WriteNull("error");
                json.WriteEndObject();
            }
            buffer.Write("\n"u8);
            return buffer.WrittenSpan.ToArray();
        }
    }

    private static UInt128 NewId()
    {
        Span<byte> bytes = stackalloc byte[16];
        Guid.CreateVersion7().TryWriteBytes(bytes, bigEndian: true, out _);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    private static bool IsBatchName(string name) =>
        name.StartsWith("batches/", StringComparison.Ordinal) && name.Length is > 8 and <= 200 && name.AsSpan(8).IndexOfAny("/?#:%") < 0;

    private async Task<UpstreamOutcome<UpstreamBatch>> ReadOperationAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var read = await wire.ReadJsonAsync(response, cancellationToken);
        response.Dispose();
        if (!read.IsOk)
        {
            return read.Failure;
        }
        using var document = read.Value;
        // Gemini reports no tokens for a batch: the native execution sums them from the output lines it copies in.
        return ToBatch(document.RootElement) is { } batch ? batch : UpstreamFailure.Malformed(200, "Gemini's batch has no name or state.");
    }

    /// <summary>
    /// A batch operation (<c>{name, metadata: GenerateContentBatch, done, response, error}</c>) as OpenAI's batch:
    /// <c>PENDING</c>/<c>RUNNING</c> in progress, <c>SUCCEEDED</c> completed, <c>FAILED</c> failed, <c>CANCELLED</c>
    /// cancelled, <c>EXPIRED</c> expired; the responses file as the output file when some request succeeded and as the
    /// error file when some failed (both when Gemini gave no counts).
    /// </summary>
    internal static UpstreamBatch? ToBatch(JsonElement operation)
    {
        if (operation.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var batch = operation.TryGetProperty("metadata", out var m) && m.ValueKind == JsonValueKind.Object ? m : operation;
        string? name = Text(operation, "name") ?? Text(batch, "name");
        string? state = Text(batch, "state");
        if (name is null || state is null)
        {
            return null;
        }
        string status = state switch
        {
            "BATCH_STATE_PENDING" or "BATCH_STATE_RUNNING" => BatchStatus.InProgress,
            "BATCH_STATE_SUCCEEDED" => BatchStatus.Completed,
            "BATCH_STATE_FAILED" => BatchStatus.Failed,
            "BATCH_STATE_CANCELLED" => BatchStatus.Cancelled,
            "BATCH_STATE_EXPIRED" => BatchStatus.Expired,
            _ => BatchStatus.InProgress, // unspecified: not ended
        };
        BatchRequestCounts? counts = null;
        if (batch.TryGetProperty("batchStats", out var stats) && stats.ValueKind == JsonValueKind.Object)
        {
            counts = new BatchRequestCounts(Count(stats, "requestCount"), Count(stats, "successfulRequestCount"), Count(stats, "failedRequestCount"));
        }
        string? responses = (operation.TryGetProperty("response", out var r) && r.ValueKind == JsonValueKind.Object ? Text(r, "responsesFile") : null)
            ?? (batch.TryGetProperty("output", out var o) && o.ValueKind == JsonValueKind.Object ? Text(o, "responsesFile") : null);
        var errors = new List<BatchError>();
        if (status == BatchStatus.Failed && operation.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
        {
            errors.Add(new BatchError("upstream_failed", GeminiErrors.ReadError(error).Message ?? "Gemini failed the batch.", null, null));
        }
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Text(batch, "displayName") is { } displayName)
        {
            metadata[WharfBatchIdKey] = displayName;
        }
        if (Text(batch, "model") is { } model)
        {
            metadata[ModelKey] = model.StartsWith("models/", StringComparison.Ordinal) ? model["models/".Length..] : model;
        }
        long created = DateTimeOffset.TryParse(Text(batch, "createTime"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at.ToUnixTimeSeconds() : 0;
        return new UpstreamBatch
        {
            Id = name,
            Status = status,
            CreatedAt = created,
            RequestCounts = counts,
            OutputFileId = responses is not null && (counts is null || counts.Completed > 0) ? responses : null,
            ErrorFileId = responses is not null && (counts is null || counts.Failed > 0) ? responses : null,
            Errors = errors,
            Metadata = metadata,
        };
    }

    /// <summary>An int64 count (a string on the wire, a number accepted too); 0 when absent.</summary>
    private static int Count(JsonElement stats, string name)
    {
        if (!stats.TryGetProperty(name, out var value))
        {
            return 0;
        }
        long count = value.ValueKind switch
        {
            JsonValueKind.String when long.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out long parsed) => parsed,
            JsonValueKind.Number when value.TryGetInt64(out long number) => number,
            _ => 0,
        };
        return (int)Math.Clamp(count, 0, int.MaxValue);
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>
    /// The lines of a UTF-8 stream as text, read forward by Core's <see cref="JsonlLineReader"/> (one pooled buffer, the
    /// same lines every reader of a batch file sees): a line longer than <see cref="MaxLineBytes"/> (more than one
    /// answer or request can be) fails the read with <see cref="InvalidDataException"/>. Disposing it disposes the stream.
    /// </summary>
    private sealed class BoundedLineReader(Stream source) : IDisposable
    {
        public const int MaxLineBytes = GeminiWire.MaxAnswerBytes + 1024 * 1024;

        private readonly JsonlLineReader _lines = new(source, MaxLineBytes);

        public async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken)
        {
            if (!await _lines.ReadAsync(cancellationToken))
            {
                return null;
            }
            if (_lines.TooLong)
            {
                throw new InvalidDataException($"Line {_lines.Number} is longer than {MaxLineBytes} bytes.");
            }
            // A line of spaces, tabs or carriage returns is blank, as Wharf's input check and the other readers take it.
            return _lines.IsBlank ? "" : Encoding.UTF8.GetString(_lines.Line.Span);
        }

        public void Dispose()
        {
            _lines.Dispose();
            source.Dispose();
        }
    }

    /// <summary>
    /// A JSONL stream read forward and translated line by line as it is read (memory: one line). A line the
    /// translation skips (null) is left out; one it cannot read fails the read with <see cref="InvalidDataException"/>.
    /// </summary>
    private sealed class JsonlTransformStream(Stream source, Func<string, int, byte[]?> translate) : ForwardReadStream
    {
        private readonly BoundedLineReader _reader = new(source);
        private byte[] _pending = [];
        private int _offset;
        private int _number;
        private bool _ended;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_offset == _pending.Length)
            {
                if (_ended)
                {
                    return 0;
                }
                string? line = await _reader.ReadLineAsync(cancellationToken);
                if (line is null)
                {
                    _ended = true;
                    return 0;
                }
                if (line.Length == 0)
                {
                    continue;
                }
                _number++;
                if (translate(line, _number) is { } bytes)
                {
                    _pending = bytes;
                    _offset = 0;
                }
            }
            int count = Math.Min(buffer.Length, _pending.Length - _offset);
            _pending.AsMemory(_offset, count).CopyTo(buffer);
            _offset += count;
            return count;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _reader.Dispose();
            }
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            _reader.Dispose();
            await base.DisposeAsync();
        }
    }
}
