using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace Wharf.Simulators;

/// <summary>
/// Anthropic's Message Batches API as its reference describes it: create (<c>{"requests":[{custom_id, params}]}</c>,
/// at most 100,000 requests, each <c>custom_id</c> matching <c>^[a-zA-Z0-9_-]{1,64}$</c> and unique; the params are
/// checked asynchronously, a bad one ends <c>errored</c>), retrieve, list newest first (<c>limit</c>, <c>after_id</c>,
/// <c>before_id</c>; <c>has_more</c>, <c>first_id</c>, <c>last_id</c>), cancel, and results as JSONL at the batch's
/// <c>results_url</c>, in an order other than the requests' (reversed). Each batch runs in the background through the
/// simulator's Messages logic after <see cref="BatchProcessingDelay"/> (or when <see cref="UpstreamSimulator.HoldBatchesInProgress"/>
/// is released or it is cancelled): <c>in_progress → ended</c>, or <c>canceling → ended</c> with the requests not run
/// <c>canceled</c>.
/// </summary>
public sealed partial class AnthropicSimulator
{
    public const int MaxBatchRequests = 100_000;

    private static readonly Regex CustomIdPattern = new("^[a-zA-Z0-9_-]{1,64}$", RegexOptions.CultureInvariant);

    private readonly ConcurrentDictionary<string, SimulatedMessageBatch> _messageBatches = new(StringComparer.Ordinal);
    private long _messageBatchCounter;

    /// <summary>How long a batch stays <c>in_progress</c> before it runs.</summary>
    public TimeSpan BatchProcessingDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>When set, the next batch's requests after the first this many expire instead of running.</summary>
    public int? ExpireNextBatchAfter { get; set; }

    /// <summary>When set, every results file has this line (verbatim) in its middle: a results line that is not Anthropic's.</summary>
    public string? BrokenResultsLine { get; set; }

    /// <summary>
    /// When set, a batch's <c>results_url</c> names this origin instead of the simulator's own, as Anthropic's names its
    /// own host when it is reached through a proxy (the results are still served at the simulator's path).
    /// </summary>
    public Uri? ResultsOrigin { get; set; }

    /// <summary>Every Message Batch created, in creation order.</summary>
    public IReadOnlyList<SimulatedMessageBatch> MessageBatches => [.. _messageBatches.Values.OrderBy(b => b.Sequence)];

    protected override async Task ServeBatchesAsync(HttpContext context, SimulatedRoute route, byte[] body)
    {
        switch (route.Operation)
        {
            case SimulatedOperation.BatchCreate:
                var (status, answer) = CreateMessageBatch(body);
                await WriteAsync(context, status, answer);
                return;
            case SimulatedOperation.BatchList:
                await WriteAsync(context, 200, ListMessageBatches(context.Request.Query));
                return;
            case SimulatedOperation.BatchGet when _messageBatches.TryGetValue(route.FileId!, out var found):
                await WriteAsync(context, 200, found.ToJson(ResultsOrigin ?? Origin).ToJsonString(SimulatedAnswers.JsonOptions));
                return;
            case SimulatedOperation.BatchCancel when _messageBatches.TryGetValue(route.FileId!, out var found):
                found.RequestCancel();
                await WriteAsync(context, 200, found.ToJson(ResultsOrigin ?? Origin).ToJsonString(SimulatedAnswers.JsonOptions));
                return;
            case SimulatedOperation.BatchResults when _messageBatches.TryGetValue(route.FileId!, out var found):
                if (found.Results is not { } results)
                {
                    await WriteAsync(context, 400, ErrorBody(400, $"Message Batch {found.Id} has not yet ended. Results are available once processing ends."));
                    return;
                }
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/binary";
                var lines = results.Select(r => r.ToJsonString(SimulatedAnswers.JsonOptions)).ToList();
                if (BrokenResultsLine is { } broken)
                {
                    lines.Insert(lines.Count / 2, broken);
                }
                foreach (string line in lines)
                {
                    await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), context.RequestAborted);
                }
                return;
            default:
                await WriteAsync(context, 404, ErrorBody(404, $"Message Batch not found: {route.FileId}"));
                return;
        }
    }

    private (int Status, string Body) CreateMessageBatch(byte[] body)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(body);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return (400, ErrorBody(400, "There was an issue with your request body: it is not valid JSON."));
        }
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("requests", out var requests) || requests.ValueKind != JsonValueKind.Array)
        {
            return (400, ErrorBody(400, "requests: Field required"));
        }
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name != "requests")
            {
                return (400, ErrorBody(400, $"{property.Name}: Extra inputs are not permitted"));
            }
        }
        int count = requests.GetArrayLength();
        if (count == 0)
        {
            return (400, ErrorBody(400, "requests: List should have at least 1 item after validation, not 0"));
        }
        if (count > MaxBatchRequests)
        {
            return (400, ErrorBody(400, $"requests: List should have at most {MaxBatchRequests} items after validation, not {count}"));
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var accepted = new List<(string CustomId, JsonElement Params)>();
        int index = 0;
        foreach (var request in requests.EnumerateArray())
        {
            string where = $"requests.{index++}";
            if (request.ValueKind != JsonValueKind.Object || request.EnumerateObject().Any(p => p.Name is not ("custom_id" or "params")))
            {
                return (400, ErrorBody(400, $"{where}: each request takes custom_id and params only"));
            }
            string? customId = request.TryGetProperty("custom_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
            if (customId is null || !CustomIdPattern.IsMatch(customId))
            {
                return (400, ErrorBody(400, $"{where}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"));
            }
            if (!seen.Add(customId))
            {
                return (400, ErrorBody(400, $"{where}.custom_id: custom_id '{customId}' is not unique within the batch"));
            }
            if (!request.TryGetProperty("params", out var parameters) || parameters.ValueKind != JsonValueKind.Object
                || !parameters.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.String)
            {
                return (400, ErrorBody(400, $"{where}.params: Field required (an object naming its model)"));
            }
            accepted.Add((customId, parameters));
        }
        long sequence = Interlocked.Increment(ref _messageBatchCounter);
        var batch = new SimulatedMessageBatch($"msgbatch_sim{sequence:D16}", sequence, DateTimeOffset.UtcNow, accepted);
        _messageBatches[batch.Id] = batch;
        int? expireAfter = ExpireNextBatchAfter;
        ExpireNextBatchAfter = null;
        var hold = HoldBatchesInProgress;
        _ = Task.Run(() => RunMessageBatchAsync(batch, hold, expireAfter));
        return (200, batch.ToJson(ResultsOrigin ?? Origin).ToJsonString(SimulatedAnswers.JsonOptions));
    }

    /// <summary>Runs the requests through the Messages logic, stopping at a cancel; the results are kept in reverse order.</summary>
    private async Task RunMessageBatchAsync(SimulatedMessageBatch batch, Hold? hold, int? expireAfter)
    {
        await Task.WhenAny(hold?.Released ?? Task.Delay(BatchProcessingDelay), batch.CancelAsked);
        var results = new List<JsonObject>();
        int index = 0;
        foreach (var (customId, parameters) in batch.Requests)
        {
            JsonObject result;
            if (batch.CancelAsked.IsCompleted)
            {
                result = new JsonObject { ["type"] = "canceled" };
            }
            else if (expireAfter is { } after && index >= after)
            {
                result = new JsonObject { ["type"] = "expired" };
            }
            else if (ParamsProblem(parameters) is { } problem)
            {
                result = new JsonObject
                {
                    ["type"] = "errored",
                    ["error"] = JsonNode.Parse(ErrorBody(400, problem)),
                };
            }
            else
            {
                var route = new SimulatedRoute(SimulatedOperation.ChatCompletions);
                result = new JsonObject
                {
                    ["type"] = "succeeded",
                    ["message"] = JsonNode.Parse(ModelAnswer(route, parameters.GetProperty("model").GetString()!, parameters)),
                };
            }
            results.Add(new JsonObject { ["custom_id"] = customId, ["result"] = result });
            index++;
        }
        results.Reverse();
        batch.End(results);
    }

    /// <summary>What the Messages API would refuse in a request's params (streaming included: a batch answers whole).</summary>
    private string? ParamsProblem(JsonElement parameters)
    {
        if (parameters.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
        {
            return "stream: streaming is not supported in Message Batches";
        }
        if (Problem(parameters) is { } problem)
        {
            return problem;
        }
        if (CheckModelRequest(new SimulatedRoute(SimulatedOperation.ChatCompletions), parameters) is not { } refused)
        {
            return null;
        }
        using var error = JsonDocument.Parse(refused.Body);
        return error.RootElement.GetProperty("error").GetProperty("message").GetString();
    }

    /// <summary>Newest first: <c>limit</c> (1–1000, default 20), <c>after_id</c> (the page after it), <c>before_id</c> (the page before it).</summary>
    private string ListMessageBatches(IQueryCollection query)
    {
        int limit = int.TryParse(query["limit"], out int l) && l is >= 1 and <= 1000 ? l : 20;
        var ordered = _messageBatches.Values.OrderByDescending(b => b.Sequence).ToList();
        List<SimulatedMessageBatch> page;
        bool hasMore;
        if (query["before_id"].ToString() is { Length: > 0 } before)
        {
            int at = ordered.FindIndex(b => b.Id == before);
            var newer = at < 0 ? [] : ordered.Take(at).ToList();
            page = newer.TakeLast(limit).ToList();
            hasMore = newer.Count > limit;
        }
        else
        {
            if (query["after_id"].ToString() is { Length: > 0 } after)
            {
                int at = ordered.FindIndex(b => b.Id == after);
                ordered = at < 0 ? [] : ordered.Skip(at + 1).ToList();
            }
            page = ordered.Take(limit).ToList();
            hasMore = ordered.Count > limit;
        }
        return new JsonObject
        {
            ["data"] = new JsonArray([.. page.Select(b => (JsonNode)b.ToJson(ResultsOrigin ?? Origin))]),
            ["has_more"] = hasMore,
            ["first_id"] = page.FirstOrDefault()?.Id,
            ["last_id"] = page.LastOrDefault()?.Id,
        }.ToJsonString(SimulatedAnswers.JsonOptions);
    }

    private static async Task WriteAsync(HttpContext context, int status, string body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body, context.RequestAborted);
    }
}

/// <summary>One Message Batch the simulator holds: its requests, its state, and its results once ended.</summary>
public sealed class SimulatedMessageBatch(string id, long sequence, DateTimeOffset createdAt, IReadOnlyList<(string CustomId, JsonElement Params)> requests)
{
    private readonly object _gate = new();
    private readonly TaskCompletionSource _cancelAsked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DateTimeOffset? _cancelInitiatedAt;
    private DateTimeOffset? _endedAt;

    public string Id => id;

    public long Sequence => sequence;

    public IReadOnlyList<(string CustomId, JsonElement Params)> Requests => requests;

    public Task CancelAsked => _cancelAsked.Task;

    public Task Ended => _ended.Task;

    /// <summary>The results lines once ended (in the order served), else null.</summary>
    public IReadOnlyList<JsonObject>? Results { get; private set; }

    public string ProcessingStatus
    {
        get
        {
            lock (_gate)
            {
                return _endedAt is not null ? "ended" : _cancelInitiatedAt is not null ? "canceling" : "in_progress";
            }
        }
    }

    /// <summary>Asks for a cancel (once; an ended batch stays as it is).</summary>
    public void RequestCancel()
    {
        lock (_gate)
        {
            if (_endedAt is null && _cancelInitiatedAt is null)
            {
                _cancelInitiatedAt = DateTimeOffset.UtcNow;
            }
        }
        _cancelAsked.TrySetResult();
    }

    internal void End(List<JsonObject> results)
    {
        lock (_gate)
        {
            Results = results;
            _endedAt = DateTimeOffset.UtcNow;
        }
        _ended.TrySetResult();
    }

    public JsonObject ToJson(Uri origin)
    {
        lock (_gate)
        {
            int Count(string type) => Results?.Count(r => r["result"]!["type"]!.GetValue<string>() == type) ?? 0;
            return new JsonObject
            {
                ["id"] = id,
                ["type"] = "message_batch",
                ["processing_status"] = _endedAt is not null ? "ended" : _cancelInitiatedAt is not null ? "canceling" : "in_progress",
                ["request_counts"] = new JsonObject
                {
                    ["processing"] = Results is null ? requests.Count : 0,
                    ["succeeded"] = Count("succeeded"),
                    ["errored"] = Count("errored"),
                    ["canceled"] = Count("canceled"),
                    ["expired"] = Count("expired"),
                },
                ["ended_at"] = Stamp(_endedAt),
                ["created_at"] = Stamp(createdAt),
                ["expires_at"] = Stamp(createdAt.AddDays(1)),
                ["archived_at"] = null,
                ["cancel_initiated_at"] = Stamp(_cancelInitiatedAt),
                ["results_url"] = _endedAt is null ? null : new Uri(origin, $"/v1/messages/batches/{id}/results").AbsoluteUri,
            };
        }
    }

    private static string? Stamp(DateTimeOffset? at) => at?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}
