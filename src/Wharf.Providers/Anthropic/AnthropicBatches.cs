using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Wharf.Core.Batches;
using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Anthropic;

/// <summary>
/// Anthropic's Message Batches API behind Wharf's native batches. The batch takes its requests inline
/// (<c>{"requests":[{custom_id, params}]}</c>), so the adapter reads Wharf's own input file
/// (<see cref="BatchInputForm.WharfFile"/>): once to translate every line (a line Anthropic cannot take refuses the
/// batch before anything is sent, naming its line), then again while the create's body is written, line by line
/// (nothing of the file is held but the line being written). The batch object is mapped to OpenAI's (its
/// <c>ended</c> told apart from the counts and the cancel); its results (JSONL in any order, read by the batch's id) are
/// translated line by line into OpenAI's batch output and error lines as they arrive.
/// </summary>
internal sealed class AnthropicBatches(OpenAIWire wire, AnthropicDialect dialect, AnthropicTranslation translation, ProviderContext context)
{
    /// <summary>The most requests one Message Batch takes.</summary>
    public const int MaxRequests = 100_000;

    /// <summary>
    /// The longest line of the results read: one Messages answer (as long as Wharf checks one whole,
    /// <see cref="OpenAIWire.MaxCheckedAnswerBytes"/>) and its envelope. The input's lines are bounded by
    /// <c>Wharf:Batches:MaxLineBytes</c>, as its validation read them.
    /// </summary>
    public const int MaxResultLineBytes = OpenAIWire.MaxCheckedAnswerBytes + 1024 * 1024;

    /// <summary>
    /// The most UTF-8 bytes the hashed <c>custom_id</c>s of one batch may hold together. Mapping them back keeps each
    /// one whole while the results are read, so their total is bounded (ids of up to 45 bytes travel in the request
    /// and cost nothing).
    /// </summary>
    public const int MaxHashedIdBytes = 16 * 1024 * 1024;

    /// <summary>
    /// The hashed ids of an ended batch, kept for as long as the caller holds that <see cref="UpstreamBatch"/>: its output
    /// and its error lines are read one after the other from the same poll, and the input is read once for both.
    /// </summary>
    private readonly ConditionalWeakTable<UpstreamBatch, Dictionary<string, string>> _hashedIds = new();

    /// <summary>The only endpoint a Message Batch's requests call.</summary>
    public const string ChatEndpoint = "/v1/chat/completions";

    public async Task<UpstreamOutcome<UpstreamBatch>> CreateAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken)
    {
        if (batch.Endpoint != ChatEndpoint)
        {
            return UpstreamFailure.Untranslatable("endpoint", $"Anthropic's Message Batches only run chat completions ({ChatEndpoint}), not '{batch.Endpoint}'.");
        }
        if (batch.Input is not { } input)
        {
            return InputGone();
        }
        // First pass: every line must translate before anything is sent.
        await using (var opened = await input(cancellationToken))
        {
            if (opened is null)
            {
                return InputGone();
            }
            int requests = 0;
            long hashedBytes = 0;
            await foreach (var line in ReadRequestsAsync(opened.Content, cancellationToken))
            {
                if (line.Refusal is { } refusal)
                {
                    return refusal;
                }
                if (++requests > MaxRequests)
                {
                    return UpstreamFailure.Untranslatable("input_file_id", $"Anthropic's Message Batches take at most {MaxRequests:N0} requests; line {line.Number} is one too many.");
                }
                if ((hashedBytes += line.HashedIdBytes) > MaxHashedIdBytes)
                {
                    return HashedIdsTooLong($"Line {line.Number} of the input file: the custom_ids longer than Anthropic takes hold more than "
                        + $"{MaxHashedIdBytes:N0} bytes together, the most a native batch on Anthropic maps back. Use shorter custom_ids, or \"execution\": \"gateway\".");
                }
            }
            if (requests == 0)
            {
                return UpstreamFailure.Untranslatable("input_file_id", "The input file holds no requests.");
            }
        }
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        var request = wire.NewRequest(HttpMethod.Post, dialect.BatchesUri(null, null, ""));
        request.Content = new MessageBatchContent(this, input, deadline);
        deadline.Arm();
        return ToOutcome(await wire.SendForJsonAsync(request, deadline, AnthropicBatchWireJson.Default.MessageBatchWire, cancellationToken));
    }

    public async Task<UpstreamOutcome<UpstreamBatch>> GetAsync(string batchId, CancellationToken cancellationToken) =>
        await SendForBatchAsync(wire.NewRequest(HttpMethod.Get, dialect.BatchesUri(batchId, null, "")), cancellationToken);

    public async Task<UpstreamOutcome<UpstreamBatch>> CancelAsync(string batchId, CancellationToken cancellationToken) =>
        await SendForBatchAsync(wire.NewRequest(HttpMethod.Post, dialect.BatchesUri(batchId, "cancel", "")), cancellationToken);

    /// <summary>A page of Anthropic's batches, newest first: <c>limit</c> (1–1000) and <c>after_id</c>, the last id of the page before.</summary>
    public async Task<UpstreamOutcome<UpstreamBatchPage>> ListAsync(UpstreamBatchQuery query, CancellationToken cancellationToken)
    {
        string parameters = AnthropicFiles.PageQuery(query.Limit, query.After);
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        var answer = await wire.SendForJsonAsync(wire.NewRequest(HttpMethod.Get, dialect.BatchesUri(null, null, parameters)), deadline,
            AnthropicBatchWireJson.Default.MessageBatchListWire, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        var batches = new List<UpstreamBatch>();
        foreach (var item in answer.Value.Data ?? [])
        {
            var batch = item.ToUpstreamBatch();
            if (!batch.IsOk)
            {
                return batch.Failure;
            }
            batches.Add(batch.Value);
        }
        return new UpstreamBatchPage(batches, answer.Value.HasMore ?? false);
    }

    /// <summary>
    /// The ended batch's results as OpenAI's lines of <paramref name="results"/>' kind, translated as they arrive. They
    /// are read at the documented <c>GET /v1/messages/batches/{id}/results</c> on the configured base, not at the
    /// batch's <c>results_url</c>: behind a proxy <c>BaseUrl</c> that still names Anthropic's own host, and the key never
    /// goes anywhere but the base. The ids Wharf hashed are mapped back through one read of the input per batch.
    /// </summary>
    public async Task<UpstreamOutcome<UpstreamFileContent>> OpenResultsAsync(UpstreamBatchResults results, CancellationToken cancellationToken)
    {
        var hashed = await HashedIdsAsync(results, cancellationToken);
        if (!hashed.IsOk)
        {
            return hashed.Failure;
        }
        UpstreamOutcome<HttpResponseMessage> sent;
        using (var deadline = new UpstreamDeadline(context.Time, context.Timeout))
        {
            deadline.Arm();
            sent = await wire.SendAsync(wire.NewRequest(HttpMethod.Get, dialect.BatchesUri(results.Batch.Id, "results", "")), deadline, cancellationToken);
        }
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        var response = sent.Value;
        try
        {
            var body = new UpstreamBodyStream(await response.Content.ReadAsStreamAsync(cancellationToken), new UpstreamDeadline(context.Time, context.Timeout));
            return new UpstreamFileContent(new AnthropicResultLines(body, results.Kind, hashed.Value, translation), null, new DisposeOnce(response));
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            response.Dispose();
            return UpstreamFailure.ConnectionFailed("The upstream closed the connection before its answer ended.");
        }
    }

    /// <summary>One request line of the input: its number, its id as sent, and its Messages request (or why it has none).</summary>
    /// <remarks><paramref name="HashedIdBytes"/>: the UTF-8 length of the original id when it is sent hashed, else 0.</remarks>
    internal readonly record struct RequestLine(int Number, string CustomId, ReadOnlyMemory<byte> Params, UpstreamFailure? Refusal, int HashedIdBytes = 0);

    /// <summary>The input's request lines, translated one at a time (each line's bytes valid until the next).</summary>
    internal async IAsyncEnumerable<RequestLine> ReadRequestsAsync(Stream input, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var lines = new JsonlLineReader(input, context.MaxBatchLineBytes);
        while (await lines.ReadAsync(cancellationToken))
        {
            if (lines.TooLong)
            {
                yield return new RequestLine(lines.Number, "", default, UpstreamFailure.Untranslatable("input_file_id", $"Line {lines.Number} of the input file is too long to send."));
                yield break;
            }
            if (!lines.IsBlank)
            {
                yield return Translate(lines.Number, lines.Line);
            }
        }
    }

    private RequestLine Translate(int number, ReadOnlyMemory<byte> line)
    {
        string where = $"Line {number} of the input file";
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || AnthropicJson.Text(root, "custom_id") is not { } customId
                || !root.TryGetProperty("body", out var body) || body.ValueKind != JsonValueKind.Object
                || AnthropicJson.Text(body, "model") is not { Length: > 0 } model)
            {
                return new RequestLine(number, "", default, UpstreamFailure.Untranslatable("input_file_id", $"{where} is not a batch request with a custom_id and a body naming its model."));
            }
            if (body.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
            {
                return new RequestLine(number, customId, default, UpstreamFailure.Untranslatable("body.stream", $"{where}: a batch request's answer cannot be streamed."));
            }
            var translated = translation.ToMessagesRequest(JsonMarshal.GetRawUtf8Value(body).ToArray(), model);
            if (!translated.IsOk)
            {
                var error = translated.Failure.Error;
                return new RequestLine(number, customId, default, UpstreamFailure.Untranslatable(
                    "body." + (error?.Param ?? "messages"), $"{where}: {error?.Message ?? "it cannot be put into Anthropic's Messages API."}"));
            }
            string sent = AnthropicCustomIds.ToAnthropic(customId);
            return new RequestLine(number, sent, translated.Value.Body, null, AnthropicCustomIds.IsHashed(sent) ? Encoding.UTF8.GetByteCount(customId) : 0);
        }
        catch (JsonException)
        {
            return new RequestLine(number, "", default, UpstreamFailure.Untranslatable("input_file_id", $"{where} is not valid JSON."));
        }
    }

    /// <summary>
    /// The input's ids that are sent hashed, by their hash: the only ones kept while the input is read, at most
    /// <see cref="MaxHashedIdBytes"/> of them (the create refused more). Read once for the batch's output and error lines.
    /// </summary>
    private async Task<UpstreamOutcome<Dictionary<string, string>>> HashedIdsAsync(UpstreamBatchResults results, CancellationToken cancellationToken)
    {
        if (_hashedIds.TryGetValue(results.Batch, out var known))
        {
            return known;
        }
        var hashed = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var opened = await results.Input(cancellationToken))
        {
            if (opened is null)
            {
                return InputGone();
            }
            long bytes = 0;
            using var lines = new JsonlLineReader(opened.Content, context.MaxBatchLineBytes);
            while (await lines.ReadAsync(cancellationToken))
            {
                if (!lines.TooLong && CustomIdOf(lines.Line.Span) is { } customId && AnthropicCustomIds.ToAnthropic(customId) is var sent && AnthropicCustomIds.IsHashed(sent))
                {
                    if ((bytes += Encoding.UTF8.GetByteCount(customId)) > MaxHashedIdBytes)
                    {
                        return HashedIdsTooLong($"The input's custom_ids longer than Anthropic takes hold more than {MaxHashedIdBytes:N0} bytes together: they cannot be mapped back.");
                    }
                    hashed[sent] = customId;
                }
            }
        }
        _hashedIds.AddOrUpdate(results.Batch, hashed);
        return hashed;
    }

    /// <summary>A line's top-level <c>custom_id</c>, read without building the line's document.</summary>
    private static string? CustomIdOf(ReadOnlySpan<byte> line)
    {
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isId = reader.ValueTextEquals("custom_id"u8);
                reader.Read();
                if (isId)
                {
                    return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    private async Task<UpstreamOutcome<UpstreamBatch>> SendForBatchAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        return ToOutcome(await wire.SendForJsonAsync(request, deadline, AnthropicBatchWireJson.Default.MessageBatchWire, cancellationToken));
    }

    private static UpstreamOutcome<UpstreamBatch> ToOutcome(UpstreamOutcome<MessageBatchWire> answer) =>
        answer.IsOk ? answer.Value.ToUpstreamBatch() : answer.Failure;

    /// <summary>Wharf's own input file is gone: nothing can be sent (or mapped back), and asking again will not help.</summary>
    private static UpstreamFailure InputGone() =>
        new(UpstreamFailureKind.NotAttempted, FailureCategory.RequestRejected, 400, false,
            Error: new("input_file_unavailable", "The batch's input file no longer exists.", null, "input_file_id"));

    /// <summary>The batch's long custom_ids hold more than <see cref="MaxHashedIdBytes"/>: asking again will not help.</summary>
    private static UpstreamFailure HashedIdsTooLong(string message) =>
        new(UpstreamFailureKind.NotAttempted, FailureCategory.RequestRejected, 400, false, Error: new("custom_ids_too_long", message, null, "custom_id"));

    /// <summary>
    /// The create's body, written as the input is read: <c>{"requests":[</c>, one <c>{custom_id, params}</c> per line,
    /// <c>]}</c>. Each write must end within the provider's timeout (as a file upload's, <see cref="MultipartFileContent"/>);
    /// reading Wharf's own file is not the upstream's time.
    /// </summary>
    private sealed class MessageBatchContent : HttpContent
    {
        private readonly AnthropicBatches _owner;
        private readonly BatchInputOpener _input;
        private readonly UpstreamDeadline _progress;

        public MessageBatchContent(AnthropicBatches owner, BatchInputOpener input, UpstreamDeadline progress)
        {
            _owner = owner;
            _input = input;
            _progress = progress;
            Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await using var opened = await _input(cancellationToken) ?? throw new IOException("The batch's input file is gone.");
            var buffer = new ArrayBufferWriter<byte>(64 * 1024);
            buffer.Write("{\"requests\":["u8);
            bool first = true;
            _progress.Disarm();
            await foreach (var line in _owner.ReadRequestsAsync(opened.Content, cancellationToken))
            {
                if (line.Refusal is not null)
                {
                    // The first pass found none: the file changed under the batch. The body is cut, so nothing is created.
                    throw new IOException($"Line {line.Number} of the input file could not be translated on the second read.");
                }
                buffer.Write(first ? "{\"custom_id\":\""u8 : ",{\"custom_id\":\""u8);
                first = false;
                Encoding.ASCII.GetBytes(line.CustomId, buffer); // [A-Za-z0-9_-] only: nothing to escape
                buffer.Write("\",\"params\":"u8);
                buffer.Write(line.Params.Span);
                buffer.Write("}"u8);
                if (buffer.WrittenCount >= 32 * 1024)
                {
                    await WriteAsync(stream, buffer, cancellationToken);
                }
            }
            buffer.Write("]}"u8);
            await WriteAsync(stream, buffer, cancellationToken);
            await stream.FlushAsync(cancellationToken);
            // From the last byte sent, the wait for the answer.
            _progress.Arm();
        }

        private async Task WriteAsync(Stream stream, ArrayBufferWriter<byte> buffer, CancellationToken cancellationToken)
        {
            _progress.Arm();
            await stream.WriteAsync(buffer.WrittenMemory, cancellationToken);
            _progress.Disarm();
            buffer.ResetWrittenCount();
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}

/// <summary>Anthropic's request counts: every request is in exactly one of them.</summary>
internal sealed record MessageBatchCountsWire(int Processing, int Succeeded, int Errored, int Canceled, int Expired)
{
    public int Total => Processing + Succeeded + Errored + Canceled + Expired;

    /// <summary>What goes to the error file: the errored, and those never run (canceled or expired).</summary>
    public int Failed => Errored + Canceled + Expired;
}

/// <summary>Anthropic's Message Batch object (what Wharf reads of it).</summary>
internal sealed record MessageBatchWire(
    string? Id, string? ProcessingStatus, MessageBatchCountsWire? RequestCounts, DateTimeOffset? CreatedAt, DateTimeOffset? CancelInitiatedAt, string? ResultsUrl)
{
    /// <summary>
    /// OpenAI's view of it. <c>in_progress</c> stays, <c>canceling</c> is <c>cancelling</c>, and <c>ended</c> (Anthropic
    /// ends a cancelled or expired batch as it ends a finished one) is <c>cancelled</c> when a cancel was asked or a
    /// request was canceled, else <c>expired</c> when a request expired, else <c>completed</c>. Both result files are the
    /// one <c>results_url</c>, read once per kind; a kind no request ended in has none.
    /// </summary>
    public UpstreamOutcome<UpstreamBatch> ToUpstreamBatch()
    {
        if (string.IsNullOrEmpty(Id) || string.IsNullOrEmpty(ProcessingStatus))
        {
            return UpstreamFailure.Malformed(200, "Anthropic's batch object has no id or processing_status.");
        }
        var counts = RequestCounts ?? new MessageBatchCountsWire(0, 0, 0, 0, 0);
        string status = ProcessingStatus switch
        {
            "in_progress" => BatchStatus.InProgress,
            "canceling" => BatchStatus.Cancelling,
            "ended" when CancelInitiatedAt is not null || counts.Canceled > 0 => BatchStatus.Cancelled,
            "ended" when counts.Expired > 0 => BatchStatus.Expired,
            "ended" => BatchStatus.Completed,
            _ => ProcessingStatus,
        };
        bool ended = ProcessingStatus == "ended";
        if (ended && counts.Total > 0 && string.IsNullOrEmpty(ResultsUrl))
        {
            return UpstreamFailure.Malformed(200, "Anthropic's ended batch has no results_url.");
        }
        return new UpstreamBatch
        {
            Id = Id,
            Status = status,
            CreatedAt = CreatedAt?.ToUnixTimeSeconds() ?? 0,
            RequestCounts = RequestCounts is null ? null : new BatchRequestCounts(counts.Total, counts.Succeeded, counts.Failed),
            OutputFileId = ended && counts.Succeeded > 0 ? ResultsUrl : null,
            ErrorFileId = ended && counts.Failed > 0 ? ResultsUrl : null,
        };
    }
}

internal sealed record MessageBatchListWire(List<MessageBatchWire>? Data, bool? HasMore, string? FirstId, string? LastId);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(MessageBatchWire))]
[JsonSerializable(typeof(MessageBatchListWire))]
internal sealed partial class AnthropicBatchWireJson : JsonSerializerContext;
