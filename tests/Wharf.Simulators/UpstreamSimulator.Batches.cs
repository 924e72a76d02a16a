using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Wharf.Simulators;

/// <summary>How the simulator ends the next batch created, instead of running it to <c>completed</c>.</summary>
public enum SimulatedBatchEnd
{
    /// <summary>Runs every line and completes.</summary>
    Completed,

    /// <summary>Fails after validation, with an error in <c>errors.data</c> (as a batch over a limit does).</summary>
    Failed,

    /// <summary>Runs the first half of its lines, then expires with those results (its window ran out).</summary>
    Expired,
}

/// <summary>
/// The batch API, as OpenAI's reference describes it (Azure's is the same shape): create from an uploaded input file
/// of <c>purpose: batch</c>, retrieve, cancel, list newest first. The simulator RUNS each batch itself, in the
/// background: it validates the input lines, then answers each one as its endpoint answers a request (faults set per
/// model included: such a line ends in the error file with the status and error body), moving
/// <c>validating → in_progress → finalizing → completed</c> with its request counts and usage, and writes the output
/// and error files (<c>purpose: batch_output</c>), which <c>/files/{id}/content</c> serves. A cancel stops it between
/// two lines (<c>cancelling → cancelled</c>, with the results so far).
/// </summary>
public abstract partial class UpstreamSimulator
{
    private readonly ConcurrentDictionary<string, SimulatedBatch> _batches = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(SimulatedBatchEnd End, string? Code, string? Message)> _batchEnds = new();
    private long _batchCounter;
    private long _requestCounter;

    /// <summary>
    /// While set, a batch created stays <c>in_progress</c> (after validation, before its line number
    /// <see cref="HoldAfterLines"/> + 1) until this is released or it is cancelled: for tests that watch it run, poll it
    /// or cancel it mid-run.
    /// </summary>
    public Hold? HoldBatchesInProgress { get; set; }

    /// <summary>How many lines a held batch runs before it waits for <see cref="HoldBatchesInProgress"/> (0: before its first).</summary>
    public int HoldAfterLines { get; set; }

    /// <summary>Every batch created, in creation order.</summary>
    public IReadOnlyList<SimulatedBatch> Batches => [.. _batches.Values.OrderBy(b => b.Sequence)];

    /// <summary>The next batch created ends this way (then the next one, for several calls).</summary>
    public void EndNextBatch(SimulatedBatchEnd end, string? code = null, string? message = null) => _batchEnds.Enqueue((end, code, message));

    /// <summary>Waits (up to 10 s of real time) for the batch to reach a final status.</summary>
    public async Task<SimulatedBatch> WaitForBatchEndAsync(string batchId)
    {
        var batch = _batches[batchId];
        await batch.Ended.WaitAsync(TimeSpan.FromSeconds(10));
        return batch;
    }

    /// <summary>The operation a batch's <c>endpoint</c> names here, or null when it names none.</summary>
    protected virtual SimulatedOperation? BatchOperation(string endpoint) => endpoint switch
    {
        "/v1/chat/completions" => SimulatedOperation.ChatCompletions,
        "/v1/completions" => SimulatedOperation.Completions,
        "/v1/embeddings" => SimulatedOperation.Embeddings,
        "/v1/responses" => SimulatedOperation.Responses,
        _ => null,
    };

    /// <summary>The operation of a batch created through this request's path style (Azure's dated paths name endpoints otherwise).</summary>
    protected virtual SimulatedOperation? BatchOperation(HttpRequest request, string endpoint) => BatchOperation(endpoint);

    /// <summary>Whether an input line's <c>url</c> names the batch's endpoint.</summary>
    protected virtual bool LineUrlMatches(string url, string endpoint) => url == endpoint;

    /// <summary>A batch API request (authenticated, past its faults): OpenAI's batch API unless the dialect has its own.</summary>
    protected virtual async Task ServeBatchesAsync(HttpContext context, SimulatedRoute route, byte[] body)
    {
        switch (route.Operation)
        {
            case SimulatedOperation.BatchCreate:
                await CreateBatchAsync(context, body);
                return;
            case SimulatedOperation.BatchList:
                await WriteJsonAsync(context, 200, ListBatches(context.Request.Query));
                return;
            case SimulatedOperation.BatchGet when _batches.TryGetValue(route.FileId!, out var found):
                await WriteJsonAsync(context, 200, found.ToJson());
                return;
            case SimulatedOperation.BatchCancel when _batches.TryGetValue(route.FileId!, out var found):
                if (!found.RequestCancel())
                {
                    await WriteJsonAsync(context, 400, ErrorBody(400, $"Cannot cancel a batch with status '{found.Status}'.", null, null));
                    return;
                }
                await WriteJsonAsync(context, 200, found.ToJson());
                return;
            default:
                await WriteJsonAsync(context, 404, ErrorBody(404, $"No batch found with id '{route.FileId}'.", "batch_id", null));
                return;
        }
    }

    private async Task CreateBatchAsync(HttpContext context, byte[] body)
    {
        string? inputFileId, endpoint, window;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            inputFileId = Text(root, "input_file_id");
            endpoint = Text(root, "endpoint");
            window = Text(root, "completion_window");
            if (root.TryGetProperty("metadata", out var given) && given.ValueKind == JsonValueKind.Object)
            {
                foreach (var pair in given.EnumerateObject())
                {
                    metadata[pair.Name] = pair.Value.GetString() ?? "";
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, "We could not parse the JSON body of your request.", null, null));
            return;
        }
        string? problem = null, param = null;
        SimulatedOperation? operation = endpoint is null ? null : BatchOperation(context.Request, endpoint);
        if (inputFileId is null || !_files.TryGetValue(inputFileId, out var input))
        {
            (problem, param) = ($"Invalid 'input_file_id': '{inputFileId}'. No such file.", "input_file_id");
        }
        else if (input.Purpose != "batch")
        {
            (problem, param) = ($"The input file must have purpose 'batch', not '{input.Purpose}'.", "input_file_id");
        }
        else if (operation is null)
        {
            (problem, param) = ($"Invalid 'endpoint': '{endpoint}'.", "endpoint");
        }
        else if (window != "24h")
        {
            (problem, param) = ("Invalid 'completion_window': only '24h' is supported.", "completion_window");
        }
        else if (metadata.Count > 16)
        {
            (problem, param) = ("Invalid 'metadata': at most 16 pairs.", "metadata");
        }
        if (problem is not null)
        {
            await WriteJsonAsync(context, 400, ErrorBody(400, problem, param, null));
            return;
        }
        var batch = StartBatch(inputFileId!, endpoint!, operation!.Value, metadata);
        await WriteJsonAsync(context, 200, batch.ToJson());
    }

    private SimulatedBatch StartBatch(string inputFileId, string endpoint, SimulatedOperation operation, IReadOnlyDictionary<string, string> metadata)
    {
        long sequence = Interlocked.Increment(ref _batchCounter);
        var end = _batchEnds.TryDequeue(out var scripted) ? scripted : (SimulatedBatchEnd.Completed, null, null);
        var batch = new SimulatedBatch($"batch_sim{sequence:D16}", sequence, inputFileId, endpoint, metadata, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        _batches[batch.Id] = batch;
        var hold = HoldBatchesInProgress;
        int holdAfter = HoldAfterLines;
        _ = Task.Run(() => RunBatchAsync(batch, operation, end, hold, holdAfter));
        return batch;
    }

    /// <summary>Runs a batch to its end: validation, each line answered, the result files written.</summary>
    private async Task RunBatchAsync(SimulatedBatch batch, SimulatedOperation operation, (SimulatedBatchEnd End, string? Code, string? Message) end, Hold? hold, int holdAfter)
    {
        try
        {
            await Task.Yield();
            var lines = new List<(int Line, string CustomId, JsonElement Body)>();
            var errors = new List<SimulatedBatchError>();
            byte[] content = _files.TryGetValue(batch.InputFileId, out var input) ? input.Content : [];
            int number = 0;
            foreach (string text in Encoding.UTF8.GetString(content).Split('\n'))
            {
                number++;
                if (text.Trim().Length == 0)
                {
                    continue;
                }
                if (ParseLine(text, batch.Endpoint) is { } problem)
                {
                    errors.Add(new SimulatedBatchError("invalid_request", problem.Message, problem.Param, number));
                    continue;
                }
                using var document = JsonDocument.Parse(text);
                lines.Add((number, document.RootElement.GetProperty("custom_id").GetString()!, document.RootElement.GetProperty("body").Clone()));
            }
            if (errors.Count == 0 && lines.Count == 0)
            {
                errors.Add(new SimulatedBatchError("empty_file", "The input file holds no request.", null, null));
            }
            if (end.End == SimulatedBatchEnd.Failed)
            {
                errors.Add(new SimulatedBatchError(end.Code ?? "token_limit_exceeded", end.Message ?? "Enqueued token limit reached for this model.", null, null));
            }
            if (errors.Count > 0)
            {
                batch.Fail(errors);
                return;
            }
            batch.Start(lines.Count);
            int limit = end.End == SimulatedBatchEnd.Expired ? lines.Count / 2 : lines.Count;
            var output = new StringBuilder();
            var failed = new StringBuilder();
            int done = 0;
            foreach (var (line, customId, body) in lines.Take(limit))
            {
                if (hold is not null && done == holdAfter)
                {
                    await Task.WhenAny(hold.Released, batch.CancelAsked);
                }
                if (batch.CancelAsked.IsCompleted)
                {
                    break;
                }
                done++;
                var (status, answer, usage) = AnswerLine(operation, body);
                string resultLine = ResultLine(customId, status, answer);
                (status == 200 ? output : failed).Append(resultLine).Append('\n');
                batch.Done(status == 200, usage);
            }
            batch.Finalizing();
            string? outputId = output.Length > 0 ? AddFile($"{batch.Id}_output.jsonl", "batch_output", Encoding.UTF8.GetBytes(output.ToString())).Id : null;
            string? errorId = failed.Length > 0 ? AddFile($"{batch.Id}_error.jsonl", "batch_output", Encoding.UTF8.GetBytes(failed.ToString())).Id : null;
            batch.End(batch.CancelAsked.IsCompleted ? "cancelled" : end.End == SimulatedBatchEnd.Expired ? "expired" : "completed", outputId, errorId);
        }
        catch (Exception e)
        {
            batch.Fail([new SimulatedBatchError("simulator_error", e.Message, null, null)]);
        }
    }

    /// <summary>What is wrong with an input line, or null.</summary>
    private (string Message, string? Param)? ParseLine(string text, string endpoint)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ("Each line must be a JSON object.", null);
            }
            if (Text(root, "custom_id") is not { Length: > 0 })
            {
                return ("Missing 'custom_id'.", "custom_id");
            }
            if (Text(root, "method") != "POST")
            {
                return ("'method' must be POST.", "method");
            }
            if (Text(root, "url") is not { } url || !LineUrlMatches(url, endpoint))
            {
                return ($"'url' must match the batch's endpoint '{endpoint}'.", "url");
            }
            if (!root.TryGetProperty("body", out var body) || body.ValueKind != JsonValueKind.Object)
            {
                return ("Missing 'body'.", "body");
            }
            return null;
        }
        catch (JsonException)
        {
            return ("The line is not valid JSON.", null);
        }
    }

    /// <summary>A line answered as its endpoint answers a request: status, body, and the tokens it used.</summary>
    private (int Status, string Body, (long Input, long Output) Usage) AnswerLine(SimulatedOperation operation, JsonElement body)
    {
        string? model = body.TryGetProperty("model", out var named) && named.ValueKind == JsonValueKind.String ? named.GetString() : null;
        if (model is null)
        {
            return (400, ErrorBody(400, "you must provide a model parameter", null, null), (0, 0));
        }
        if (CheckModel(model) is { } modelProblem)
        {
            return (modelProblem.Status, modelProblem.Body, (0, 0));
        }
        if (_byModel.TryGetValue(model, out var rule) && rule is StatusFault fault)
        {
            return (fault.Code, fault.Body ?? ErrorBody(fault.Code, DefaultMessage(fault.Code), null, null), (0, 0));
        }
        string answer = SimulatedAnswers.Json(operation, model, body, ReplyText);
        using var document = JsonDocument.Parse(answer);
        long input = 0, output = 0;
        if (document.RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            input = Number(usage, "prompt_tokens") + Number(usage, "input_tokens");
            output = Number(usage, "completion_tokens") + Number(usage, "output_tokens");
        }
        return (200, answer, (input, output));
    }

    private string ResultLine(string customId, int status, string body)
    {
        long n = Interlocked.Increment(ref _requestCounter);
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("id", $"batch_req_sim{n:D16}");
            w.WriteString("custom_id", customId);
            w.WriteStartObject("response");
            w.WriteNumber("status_code", status);
            w.WriteString("request_id", $"req_sim{n:D16}");
            w.WritePropertyName("body");
            using (var parsed = JsonDocument.Parse(body))
            {
                parsed.RootElement.WriteTo(w);
            }
            w.WriteEndObject();
            w.WriteNull("error");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>OpenAI's batch list: newest first, <c>limit</c> (1–100, default 20) and <c>after</c>.</summary>
    private string ListBatches(IQueryCollection query)
    {
        int limit = int.TryParse(query["limit"], out int l) && l is >= 1 and <= 100 ? l : 20;
        string? after = query["after"];
        var ordered = _batches.Values.OrderByDescending(b => b.Sequence).ToList();
        if (!string.IsNullOrEmpty(after))
        {
            int index = ordered.FindIndex(b => b.Id == after);
            ordered = index < 0 ? [] : ordered.Skip(index + 1).ToList();
        }
        var page = ordered.Take(limit).ToList();
        var buffer = new StringBuilder();
        buffer.Append("{\"object\":\"list\",\"data\":[").AppendJoin(',', page.Select(b => b.ToJson())).Append("],");
        buffer.Append("\"first_id\":").Append(page.Count > 0 ? JsonSerializer.Serialize(page[0].Id) : "null").Append(',');
        buffer.Append("\"last_id\":").Append(page.Count > 0 ? JsonSerializer.Serialize(page[^1].Id) : "null").Append(',');
        buffer.Append("\"has_more\":").Append(ordered.Count > limit ? "true" : "false").Append('}');
        return buffer.ToString();
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static long Number(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.TryGetInt64(out long n) ? n : 0;
}

/// <summary>An entry of a simulated batch's <c>errors.data</c>.</summary>
public sealed record SimulatedBatchError(string Code, string Message, string? Param, int? Line);

/// <summary>A batch the simulator runs: its state, changed by its runner and by cancel, read as OpenAI's batch object.</summary>
public sealed class SimulatedBatch(string id, long sequence, string inputFileId, string endpoint, IReadOnlyDictionary<string, string> metadata, long createdAt)
{
    private readonly object _gate = new();
    private readonly TaskCompletionSource _cancelAsked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _history = ["validating"];
    private readonly Dictionary<string, long> _times = new(StringComparer.Ordinal);
    private IReadOnlyList<SimulatedBatchError> _errors = [];
    private int _total, _completed, _failed;
    private long _inputTokens, _outputTokens;
    private string? _outputFileId, _errorFileId;

    public string Id => id;

    public long Sequence => sequence;

    public string InputFileId => inputFileId;

    public string Endpoint => endpoint;

    public IReadOnlyDictionary<string, string> Metadata => metadata;

    public string Status
    {
        get
        {
            lock (_gate)
            {
                return _history[^1];
            }
        }
    }

    /// <summary>Every status it has had, in order.</summary>
    public IReadOnlyList<string> History
    {
        get
        {
            lock (_gate)
            {
                return [.. _history];
            }
        }
    }

    public string? OutputFileId => _outputFileId;

    public string? ErrorFileId => _errorFileId;

    public Task CancelAsked => _cancelAsked.Task;

    public Task Ended => _ended.Task;

    public (int Total, int Completed, int Failed) Counts
    {
        get
        {
            lock (_gate)
            {
                return (_total, _completed, _failed);
            }
        }
    }

    /// <summary>Asks for the batch to stop; false when it has already ended.</summary>
    public bool RequestCancel()
    {
        lock (_gate)
        {
            string status = _history[^1];
            if (status is "completed" or "failed" or "expired" or "cancelled")
            {
                return false;
            }
            if (status != "cancelling")
            {
                Move("cancelling");
            }
        }
        _cancelAsked.TrySetResult();
        return true;
    }

    internal void Start(int total)
    {
        lock (_gate)
        {
            _total = total;
            if (_history[^1] != "cancelling")
            {
                Move("in_progress");
            }
            else
            {
                _times.TryAdd("in_progress_at", Now);
            }
        }
    }

    internal void Done(bool succeeded, (long Input, long Output) usage)
    {
        lock (_gate)
        {
            if (succeeded)
            {
                _completed++;
            }
            else
            {
                _failed++;
            }
            _inputTokens += usage.Input;
            _outputTokens += usage.Output;
        }
    }

    internal void Finalizing()
    {
        lock (_gate)
        {
            if (_history[^1] != "cancelling")
            {
                Move("finalizing");
            }
        }
    }

    internal void End(string status, string? outputFileId, string? errorFileId)
    {
        lock (_gate)
        {
            _outputFileId = outputFileId;
            _errorFileId = errorFileId;
            Move(status);
        }
        _ended.TrySetResult();
    }

    internal void Fail(IReadOnlyList<SimulatedBatchError> errors)
    {
        lock (_gate)
        {
            _errors = errors;
            Move("failed");
        }
        _ended.TrySetResult();
    }

    private void Move(string status)
    {
        _history.Add(status);
        _times[status + "_at"] = Now;
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>OpenAI's batch object, every key present.</summary>
    public string ToJson()
    {
        lock (_gate)
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("id", id);
                w.WriteString("object", "batch");
                w.WriteString("endpoint", endpoint);
                if (_errors.Count == 0)
                {
                    w.WriteNull("errors");
                }
                else
                {
                    w.WriteStartObject("errors");
                    w.WriteString("object", "list");
                    w.WriteStartArray("data");
                    foreach (var error in _errors)
                    {
                        w.WriteStartObject();
                        w.WriteString("code", error.Code);
                        w.WriteString("message", error.Message);
                        w.WriteString("param", error.Param);
                        if (error.Line is { } line)
                        {
                            w.WriteNumber("line", line);
                        }
                        else
                        {
                            w.WriteNull("line");
                        }
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteString("input_file_id", inputFileId);
                w.WriteString("completion_window", "24h");
                w.WriteString("status", _history[^1]);
                w.WriteString("output_file_id", _outputFileId);
                w.WriteString("error_file_id", _errorFileId);
                w.WriteNumber("created_at", createdAt);
                foreach (string name in new[] { "in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at" })
                {
                    long? value = name == "expires_at" ? createdAt + 86_400 : _times.TryGetValue(name, out long at) ? at : null;
                    if (value is { } v)
                    {
                        w.WriteNumber(name, v);
                    }
                    else
                    {
                        w.WriteNull(name);
                    }
                }
                w.WriteStartObject("request_counts");
                w.WriteNumber("total", _total);
                w.WriteNumber("completed", _completed);
                w.WriteNumber("failed", _failed);
                w.WriteEndObject();
                w.WriteStartObject("usage");
                w.WriteNumber("input_tokens", _inputTokens);
                w.WriteStartObject("input_tokens_details");
                w.WriteNumber("cached_tokens", 0);
                w.WriteEndObject();
                w.WriteNumber("output_tokens", _outputTokens);
                w.WriteStartObject("output_tokens_details");
                w.WriteNumber("reasoning_tokens", 0);
                w.WriteEndObject();
                w.WriteNumber("total_tokens", _inputTokens + _outputTokens);
                w.WriteEndObject();
                w.WriteStartObject("metadata");
                foreach (var (key, value) in metadata)
                {
                    w.WriteString(key, value);
                }
                w.WriteEndObject();
                w.WriteEndObject();
            }
            return Encoding.UTF8.GetString(buffer.ToArray());
        }
    }
}
