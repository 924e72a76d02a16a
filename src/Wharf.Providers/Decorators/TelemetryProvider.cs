using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Wharf.Core.Providers;

namespace Wharf.Providers.Decorators;

/// <summary>
/// Measures and logs every call to the provider it wraps: an activity, a count and a duration by outcome (<c>ok</c>,
/// a failure category, or <c>cancelled</c>), one log line per failed call with its kind and status, and the call's
/// outcome among the provider's recent ones (<see cref="RecentUpstreamOutcomes"/>). Nothing from
/// the request or the upstream's body is recorded.
/// </summary>
internal sealed partial class TelemetryProvider(IProvider inner, ProviderTelemetry telemetry, TimeProvider time, ILogger logger) : IProvider
{
    public string Id => inner.Id;

    public string Type => inner.Type;

    public IReadOnlySet<ProviderCapability> Capabilities => inner.Capabilities;

    public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) =>
        MeasureAsync(call.Endpoint.WireName(), (inner, call), static (s, ct) => s.inner.SendModelRequestAsync(s.call, ct), static r => r.Status, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        MeasureAsync("files.upload", (inner, upload), static (s, ct) => s.inner.UploadFileAsync(s.upload, ct), static _ => 200, cancellationToken);

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        MeasureAsync("files.delete", (inner, upstreamFileId), static (s, ct) => s.inner.DeleteFileAsync(s.upstreamFileId, ct), static _ => 200, cancellationToken);

    public bool DropsCopies => inner.DropsCopies;

    public Task<UpstreamOutcome<bool>> IsCopyUsableAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        MeasureAsync("files.check", (inner, upstreamFileId), static (s, ct) => s.inner.IsCopyUsableAsync(s.upstreamFileId, ct), static _ => 200, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        MeasureAsync("files.list", (inner, query), static (s, ct) => s.inner.ListFilesAsync(s.query, ct), static _ => 200, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) =>
        MeasureAsync("batches.create", (inner, batch), static (s, ct) => s.inner.CreateBatchAsync(s.batch, ct), static _ => 200, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        MeasureAsync("batches.get", (inner, upstreamBatchId), static (s, ct) => s.inner.GetBatchAsync(s.upstreamBatchId, ct), static _ => 200, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        MeasureAsync("batches.cancel", (inner, upstreamBatchId), static (s, ct) => s.inner.CancelBatchAsync(s.upstreamBatchId, ct), static _ => 200, cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) =>
        MeasureAsync("batches.list", (inner, query), static (s, ct) => s.inner.ListBatchesAsync(s.query, ct), static _ => 200, cancellationToken);

    /// <summary>Measured up to the answer's headers, as a streamed model answer is.</summary>
    public Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        MeasureAsync("files.content", (inner, upstreamFileId), static (s, ct) => s.inner.DownloadFileAsync(s.upstreamFileId, ct), static _ => 200, cancellationToken);

    public BatchInputForm BatchInputForm => inner.BatchInputForm;

    public bool BatchesCarryMetadata => inner.BatchesCarryMetadata;

    /// <summary>Measured up to the answer's headers, as a file's content is.</summary>
    public Task<UpstreamOutcome<UpstreamFileContent>> OpenBatchResultsAsync(UpstreamBatchResults results, CancellationToken cancellationToken) =>
        MeasureAsync("batches.results", (inner, results), static (s, ct) => s.inner.OpenBatchResultsAsync(s.results, ct), static _ => 200, cancellationToken);

    /// <remarks>
    /// The call takes its state as an argument, and the activity's name and the metrics' tags are only made when
    /// something listens: an unobserved call allocates nothing here beyond its own state machine (its recent outcome
    /// is a value written in place).
    /// </remarks>
    private async Task<UpstreamOutcome<T>> MeasureAsync<T, TState>(
        string operation, TState state, Func<TState, CancellationToken, Task<UpstreamOutcome<T>>> call, Func<T, int> statusOf, CancellationToken cancellationToken)
    {
        using var activity = ProviderTelemetry.Source.HasListeners() ? ProviderTelemetry.Source.StartActivity("provider " + operation, ActivityKind.Client) : null;
        activity?.SetTag("wharf.provider.id", Id);
        activity?.SetTag("wharf.provider.type", Type);
        activity?.SetTag("wharf.provider.operation", operation);
        long started = time.GetTimestamp();
        string outcome = "cancelled";
        int? status = null;
        try
        {
            var result = await call(state, cancellationToken);
            if (result.IsOk)
            {
                outcome = "ok";
                status = statusOf(result.Value);
            }
            else
            {
                outcome = UpstreamFailureNames.WireName(result.Failure.Category);
                status = result.Failure.Status;
                activity?.SetStatus(ActivityStatusCode.Error, outcome);
                LogFailure(logger, Id, operation, result.Failure.Kind, status, outcome);
            }
            return result;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            outcome = "exception";
            activity?.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
            throw;
        }
        finally
        {
            if (status is { } answered)
            {
                activity?.SetTag("http.response.status_code", answered);
            }
            activity?.SetTag("wharf.provider.outcome", outcome);
            var elapsed = time.GetElapsedTime(started);
            telemetry.Recent.Add(Id, new RecentUpstreamOutcome(time.GetUtcNow().ToUnixTimeSeconds(), operation, outcome, status, (long)elapsed.TotalMilliseconds));
            if (telemetry.Calls.Enabled || telemetry.Duration.Enabled)
            {
                Record(operation, outcome, status, elapsed.TotalSeconds);
            }
        }
    }

    private void Record(string operation, string outcome, int? status, double seconds)
    {
        var tags = new TagList
        {
            { "wharf.provider.id", Id },
            { "wharf.provider.type", Type },
            { "wharf.provider.operation", operation },
            { "wharf.provider.outcome", outcome },
        };
        if (status is { } code)
        {
            tags.Add("http.response.status_code", code);
        }
        telemetry.Calls.Add(1, tags);
        telemetry.Duration.Record(seconds, tags);
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Provider {ProviderId} {Operation} failed: {Kind}, status {Status}, {Outcome}")]
    private static partial void LogFailure(ILogger logger, string providerId, string operation, UpstreamFailureKind kind, int? status, string outcome);
}
