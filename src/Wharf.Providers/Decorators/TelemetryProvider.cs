using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Wharf.Core.Providers;

namespace Wharf.Providers.Decorators;

/// <summary>
/// Measures and logs every call to the provider it wraps: an activity, a count and a duration by outcome (<c>ok</c>,
/// a failure category, or <c>cancelled</c>), and one log line per failed call with its kind and status. Nothing from
/// the request or the upstream's body is recorded.
/// </summary>
internal sealed partial class TelemetryProvider(IProvider inner, ProviderTelemetry telemetry, TimeProvider time, ILogger logger) : IProvider
{
    public string Id => inner.Id;

    public string Type => inner.Type;

    public IReadOnlySet<ProviderCapability> Capabilities => inner.Capabilities;

    public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) =>
        MeasureAsync(call.Endpoint.WireName(), ct => inner.SendModelRequestAsync(call, ct), r => r.Status, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        MeasureAsync("files.upload", ct => inner.UploadFileAsync(upload, ct), _ => 200, cancellationToken);

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        MeasureAsync("files.delete", ct => inner.DeleteFileAsync(upstreamFileId, ct), _ => 200, cancellationToken);

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        MeasureAsync("files.list", ct => inner.ListFilesAsync(query, ct), _ => 200, cancellationToken);

    private async Task<UpstreamOutcome<T>> MeasureAsync<T>(string operation, Func<CancellationToken, Task<UpstreamOutcome<T>>> call, Func<T, int> statusOf, CancellationToken cancellationToken)
    {
        using var activity = ProviderTelemetry.Source.StartActivity("provider " + operation, ActivityKind.Client);
        activity?.SetTag("wharf.provider.id", Id);
        activity?.SetTag("wharf.provider.type", Type);
        activity?.SetTag("wharf.provider.operation", operation);
        long started = time.GetTimestamp();
        string outcome = "cancelled";
        int? status = null;
        try
        {
            var result = await call(cancellationToken);
            if (result.IsOk)
            {
                outcome = "ok";
                status = statusOf(result.Value);
            }
            else
            {
                outcome = OutcomeName(result.Failure.Category);
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
                activity?.SetTag("http.response.status_code", code);
            }
            activity?.SetTag("wharf.provider.outcome", outcome);
            telemetry.Calls.Add(1, tags);
            telemetry.Duration.Record(time.GetElapsedTime(started).TotalSeconds, tags);
        }
    }

    /// <summary>Seed 001's category names (snake case), also used as the metric's outcome tag.</summary>
    public static string OutcomeName(FailureCategory category) => category switch
    {
        FailureCategory.CredentialsNotConfigured => "credentials_not_configured",
        FailureCategory.CredentialsInvalidOrForbidden => "credentials_invalid_or_forbidden",
        FailureCategory.ProviderAccessMissing => "provider_access_missing",
        FailureCategory.RegionOrProjectRestriction => "region_or_project_restriction",
        FailureCategory.ModelUnavailableForEndpoint => "model_unavailable_for_endpoint",
        FailureCategory.RateLimited => "rate_limited",
        FailureCategory.ServerError => "server_error",
        FailureCategory.RequestRejected => "request_rejected",
        FailureCategory.Unsupported => "unsupported",
        _ => "failed",
    };

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Provider {ProviderId} {Operation} failed: {Kind}, status {Status}, {Outcome}")]
    private static partial void LogFailure(ILogger logger, string providerId, string operation, UpstreamFailureKind kind, int? status, string outcome);
}
