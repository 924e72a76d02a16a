using System.Buffers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Errors;
using Wharf.Core.Json;
using Wharf.Core.Providers;

namespace Wharf.Core.Routing;

/// <summary>
/// Sends a routed model request (the one dispatch of the request path and the batch engine): per candidate, in
/// order, the body is rewritten for it, then sent; a retryable failure is retried there up to
/// <c>Wharf:Routing:MaxRetries</c> times (exponential backoff with full jitter, at least the upstream's
/// <c>Retry-After</c> up to <c>Wharf:Routing:MaxRetryAfterSeconds</c>, waited on the injected clock), then the next
/// candidate is tried. An answer is accepted once its first bytes are read (the whole of a JSON answer within the
/// bound), so a failure before the first byte falls back too. The upstream's verdict on the request (400, 413,
/// 422, ...) is passed back at once; when every candidate failed: 504 if every failure was a timeout, the
/// upstreams' 404 if every one said the model is not there, else 502; each with all of seed 001's diagnostics.
/// </summary>
public sealed partial class ModelDispatcher
{
    private const int FirstReadBytes = 16 * 1024;

    private readonly IModelBodyRewriter _rewriter;
    private readonly IOptions<RoutingOptions> _routing;
    private readonly IOptions<ModelResponseOptions> _responses;
    private readonly TimeProvider _time;
    private readonly ILogger<ModelDispatcher> _logger;
    private readonly Func<double> _jitter;
    private readonly Telemetry.WharfMetrics? _metrics;

    /// <param name="metrics">Counts retries and fallbacks; none when the host measures nothing.</param>
    public ModelDispatcher(
        IModelBodyRewriter rewriter, IOptions<RoutingOptions> routing, IOptions<ModelResponseOptions> responses, TimeProvider time, ILogger<ModelDispatcher> logger,
        Telemetry.WharfMetrics? metrics = null)
        : this(rewriter, routing, responses, time, logger, Random.Shared.NextDouble, metrics)
    {
    }

    /// <param name="jitter">A number in [0, 1): the part of the backoff that is waited.</param>
    internal ModelDispatcher(
        IModelBodyRewriter rewriter, IOptions<RoutingOptions> routing, IOptions<ModelResponseOptions> responses, TimeProvider time,
        ILogger<ModelDispatcher> logger, Func<double> jitter, Telemetry.WharfMetrics? metrics = null)
    {
        _metrics = metrics;
        _rewriter = rewriter;
        _routing = routing;
        _responses = responses;
        _time = time;
        _logger = logger;
        _jitter = jitter;
    }

    /// <summary>
    /// The wait before retry number <paramref name="retry"/> + 1 (0-based): a random part of
    /// base × 2^retry (at most the configured maximum), and never less than the upstream's <c>Retry-After</c>
    /// (itself at most <c>MaxRetryAfterSeconds</c>).
    /// </summary>
    public TimeSpan Backoff(int retry, TimeSpan? retryAfter)
    {
        var options = _routing.Value;
        double ceiling = Math.Min(options.RetryMaxDelayMilliseconds, options.RetryBaseDelayMilliseconds * Math.Pow(2, Math.Min(retry, 30)));
        var jittered = TimeSpan.FromMilliseconds(Math.Floor(_jitter() * ceiling));
        if (retryAfter is not { } wanted)
        {
            return jittered;
        }
        var honoured = TimeSpan.FromTicks(Math.Clamp(wanted.Ticks, 0, TimeSpan.FromSeconds(options.MaxRetryAfterSeconds).Ticks));
        return honoured > jittered ? honoured : jittered;
    }

    public async Task<Result<ModelAnswer>> DispatchAsync(string workspaceId, ModelRequest request, RoutePlan plan, CancellationToken cancellationToken)
    {
        long started = _time.GetTimestamp();
        int maxRetries = _routing.Value.MaxRetries;
        var failures = new List<FailedCall>();
        int attempts = 0;
        string lastProvider = plan.Candidates[0].Id;
        var body = request.BodyFor(plan.Model);

        foreach (var candidate in plan.Candidates)
        {
            if (failures.Count > 0)
            {
                _metrics?.FellBack(candidate.Id, plan.Endpoint.WireName());
            }
            lastProvider = candidate.Id;
            var rewrite = await _rewriter.RewriteAsync(new ModelBodyContext(workspaceId, candidate, plan.Endpoint, request.Json, body), cancellationToken);
            if (rewrite.Refusal is { } refusal)
            {
                return refusal.Upstream is null ? refusal with { Upstream = Diagnostics(plan, failures, attempts, lastProvider, started) } : refusal;
            }
            if (rewrite.Failure is { } copyFailure)
            {
                failures.Add(new FailedCall(candidate.Id, copyFailure));
                CandidateSkipped(_logger, candidate.Id, copyFailure.Category);
                continue;
            }
            var call = new ModelCall(plan.Endpoint, plan.Model, rewrite.Body, request.Stream);
            for (int retry = 0; ; retry++)
            {
                var outcome = await candidate.Provider.SendModelRequestAsync(call, cancellationToken);
                UpstreamFailure failure;
                if (outcome.IsOk)
                {
                    attempts++;
                    var accepted = await AcceptAsync(outcome.Value, cancellationToken);
                    if (accepted.IsOk)
                    {
                        var answer = accepted.Value;
                        var extra = Extra(plan, candidate.Id, started);
                        return new ModelAnswer(answer.Response, answer.Buffer, answer.Length, answer.Complete, answer.JsonObjectEnd, answer.EmptyObject)
                        {
                            Provider = candidate.Id,
                            Model = plan.Model,
                            Attempts = attempts,
                            ExtraFields = extra,
                            Routing = plan.Diagnostics,
                            Failures = failures,
                        };
                    }
                    failure = accepted.Failure;
                }
                else
                {
                    failure = outcome.Failure;
                    if (failure.Kind != UpstreamFailureKind.NotAttempted)
                    {
                        attempts++;
                    }
                }
                cancellationToken.ThrowIfCancellationRequested();
                failures.Add(new FailedCall(candidate.Id, failure));
                if (failure.Category == FailureCategory.RequestRejected)
                {
                    return PassedBack(failure, Diagnostics(plan, failures, attempts, lastProvider, started));
                }
                if (!failure.Retryable || retry >= maxRetries)
                {
                    CandidateFailed(_logger, candidate.Id, failure.Kind, failure.Status, retry + 1);
                    break;
                }
                var delay = Backoff(retry, failure.RetryAfter);
                Retrying(_logger, candidate.Id, failure.Kind, failure.Status, (long)delay.TotalMilliseconds);
                _metrics?.Retried(candidate.Id, plan.Endpoint.WireName());
                await Task.Delay(delay, _time, cancellationToken);
            }
        }
        return AllFailed(plan, failures, Diagnostics(plan, failures, attempts, lastProvider, started));
    }

    private ExtraFields Extra(RoutePlan plan, string provider, long started) =>
        new(provider, plan.ModelRequested, plan.Model, plan.Endpoint.WireName(), (long)_time.GetElapsedTime(started).TotalMilliseconds);

    private UpstreamDiagnostics Diagnostics(RoutePlan plan, List<FailedCall> failures, int attempts, string lastProvider, long started) =>
        DispatchDiagnostics.Build(plan.Diagnostics, failures, attempts, Extra(plan, lastProvider, started));

    /// <summary>
    /// The upstream's own verdict on the request: its status and message, the user's fault found upstream (or, when
    /// no call was made, found by a translating adapter: then the user's, not the upstream's).
    /// </summary>
    private static WharfError PassedBack(UpstreamFailure failure, UpstreamDiagnostics diagnostics)
    {
        var error = failure.Error;
        return new WharfError(failure.Status ?? 400, error?.Message ?? "The upstream provider refused the request.", error?.Param, error?.Code)
        {
            // A request an adapter could not translate was refused before any call: not the upstream's verdict.
            FromUpstream = failure.Kind != UpstreamFailureKind.NotAttempted,
            Upstream = diagnostics,
        };
    }

    private WharfError AllFailed(RoutePlan plan, List<FailedCall> failures, UpstreamDiagnostics diagnostics)
    {
        if (failures.Count > 0 && failures.All(f => f.Failure.Kind == UpstreamFailureKind.Answered && f.Failure.Status == 404))
        {
            // Every provider said the model (or the endpoint) is not there: the request's fault, found upstream.
            return PassedBack(failures[^1].Failure, diagnostics);
        }
        bool allTimeouts = failures.Count > 0 && failures.All(f => f.Failure.Kind == UpstreamFailureKind.Timeout);
        string summary = string.Join("; ", failures
            .GroupBy(f => f.Provider, StringComparer.Ordinal)
            .Select(g => $"'{g.Key}' {Describe(g.Last().Failure)} ({g.Count(f => f.Failure.Kind != UpstreamFailureKind.NotAttempted)} call(s))"));
        AllCandidatesFailed(_logger, plan.Endpoint.WireName(), string.Join(",", diagnostics.FailedProviders), diagnostics.AttemptCount);
        return allTimeouts
            ? new WharfError(504, $"No upstream provider answered in time: {summary}.", null, "upstream_timeout") { Upstream = diagnostics }
            : new WharfError(502, $"Every upstream provider tried failed: {summary}.", null, "all_candidates_failed") { Upstream = diagnostics };
    }

    private static string Describe(UpstreamFailure failure) => failure.Kind switch
    {
        UpstreamFailureKind.Answered => $"answered {failure.Status}",
        UpstreamFailureKind.Timeout => "timed out",
        UpstreamFailureKind.ConnectionFailed => "could not be reached",
        UpstreamFailureKind.Malformed => "answered with an unreadable body",
        _ => failure.Category == FailureCategory.CredentialsNotConfigured ? "has no API key configured" : "could not be called",
    };

    private readonly record struct Accepted(ModelResponse Response, byte[] Buffer, int Length, bool Complete, int? JsonObjectEnd, bool EmptyObject);

    /// <summary>
    /// Reads the first bytes of a 2xx answer: one read of a stream or of an answer of another type; the whole of a
    /// JSON answer up to the bound, checked to be JSON. A failure here is the upstream's, and nothing is passed on yet.
    /// </summary>
    private async Task<UpstreamOutcome<Accepted>> AcceptAsync(ModelResponse response, CancellationToken cancellationToken)
    {
        bool json = !response.IsEventStream && IsJson(response.ContentType);
        int bound = _responses.Value.MaxBufferedJsonBytes;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(json ? Math.Min(FirstReadBytes, bound + 1) : FirstReadBytes);
        int length = 0;
        try
        {
            bool ended = false;
            if (!json)
            {
                length = await response.Content.ReadAsync(buffer, cancellationToken);
                ended = length == 0;
            }
            else
            {
                while (length <= bound)
                {
                    if (length == buffer.Length)
                    {
                        buffer = Grow(buffer, length, bound + 1);
                    }
                    int n = await response.Content.ReadAsync(buffer.AsMemory(length), cancellationToken);
                    if (n == 0)
                    {
                        ended = true;
                        break;
                    }
                    length += n;
                }
            }
            if (response.IsEventStream && length == 0)
            {
                return await FailAsync(response, buffer, UpstreamFailure.Malformed(response.Status, "The upstream's event stream ended before its first event."));
            }
            if (json && ended)
            {
                if (!TryReadJson(buffer.AsSpan(0, length), out int? objectEnd, out bool empty))
                {
                    return await FailAsync(response, buffer, UpstreamFailure.Malformed(response.Status, "The upstream answered with a body that is not valid JSON."));
                }
                return new Accepted(response, buffer, length, Complete: true, objectEnd, empty);
            }
            return new Accepted(response, buffer, length, Complete: ended, null, false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return await FailAsync(response, buffer, UpstreamFailure.Timeout());
        }
        catch (IOException ex) when (ex.InnerException is TimeoutException)
        {
            return await FailAsync(response, buffer, UpstreamFailure.Timeout()); // the adapter's wait for a read ran out
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or ObjectDisposedException)
        {
            return await FailAsync(response, buffer, UpstreamFailure.ConnectionFailed("The upstream connection broke before its answer could be read."));
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            await response.DisposeAsync();
            throw;
        }
    }

    private static async Task<UpstreamOutcome<Accepted>> FailAsync(ModelResponse response, byte[] buffer, UpstreamFailure failure)
    {
        ArrayPool<byte>.Shared.Return(buffer);
        await response.DisposeAsync();
        return failure;
    }

    private static byte[] Grow(byte[] buffer, int length, int max)
    {
        byte[] larger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, max));
        buffer.AsSpan(0, length).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(buffer);
        return larger;
    }

    /// <summary>Whether a media type is JSON (<c>application/json</c> or <c>+json</c>, parameters ignored).</summary>
    internal static bool IsJson(string? contentType)
    {
        if (contentType is null)
        {
            return false;
        }
        var mediaType = contentType.AsSpan();
        int semicolon = mediaType.IndexOf(';');
        mediaType = (semicolon >= 0 ? mediaType[..semicolon] : mediaType).Trim();
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Whether <paramref name="utf8"/> is one JSON value; when it is an object with no top-level
    /// <c>extra_fields</c>, where its closing brace is (and whether it is empty).
    /// </summary>
    internal static bool TryReadJson(ReadOnlySpan<byte> utf8, out int? objectEnd, out bool empty)
    {
        objectEnd = null;
        empty = false;
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            if (!reader.Read())
            {
                return false;
            }
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                return !reader.Read();
            }
            bool hasExtraFields = false;
            int members = 0;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                members++;
                hasExtraFields |= reader.ValueTextEquals("extra_fields"u8);
                reader.Read();
                reader.Skip();
            }
            // The reader stands on the object's closing brace.
            int end = (int)reader.TokenStartIndex;
            if (reader.Read())
            {
                return false; // something after the value
            }
            if (!hasExtraFields)
            {
                objectEnd = end;
                empty = members == 0;
            }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Upstream {Provider} failed ({Kind}, status {Status}); retrying in {DelayMs} ms.")]
    private static partial void Retrying(ILogger logger, string provider, UpstreamFailureKind kind, int? status, long delayMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "Upstream {Provider} failed ({Kind}, status {Status}) after {Calls} call(s); trying the next candidate, if any.")]
    private static partial void CandidateFailed(ILogger logger, string provider, UpstreamFailureKind kind, int? status, int calls);

    [LoggerMessage(Level = LogLevel.Information, Message = "Upstream {Provider} skipped: its request body could not be prepared ({Category}).")]
    private static partial void CandidateSkipped(ILogger logger, string provider, FailureCategory category);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Every candidate failed for a {Endpoint} request: {Providers}, {Attempts} upstream call(s).")]
    private static partial void AllCandidatesFailed(ILogger logger, string endpoint, string providers, int attempts);
}
