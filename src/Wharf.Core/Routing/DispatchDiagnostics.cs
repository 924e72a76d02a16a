using Wharf.Core.Errors;
using Wharf.Core.Json;
using Wharf.Core.Providers;

namespace Wharf.Core.Routing;

/// <summary>One failed upstream call (or a candidate that could not be called), in the order they happened.</summary>
internal sealed record FailedCall(string Provider, UpstreamFailure Failure);

/// <summary>
/// Turns what happened at the upstreams into seed 001's diagnostics: the one place its fields are filled for
/// model requests (the error envelope, and the error event that ends a broken stream).
/// </summary>
internal static class DispatchDiagnostics
{
    /// <summary>At most this many calls are sampled in <c>failure_sample</c> (the latest ones).</summary>
    public const int MaxFailureSamples = 10;

    /// <summary>An upstream payload preview is cut to this many characters (adapters cut and redact it first).</summary>
    public const int MaxPreviewChars = 512;

    public static UpstreamDiagnostics Build(UpstreamDiagnostics routing, IReadOnlyList<FailedCall> failures, int attempts, ExtraFields extraFields)
    {
        var last = failures.Count > 0 ? failures[^1] : null;
        var paymentRequired = failures.LastOrDefault(f => f.Failure.Category == FailureCategory.ProviderAccessMissing);
        return routing with
        {
            AttemptCount = attempts,
            FailedProviders = [.. failures.Select(f => f.Provider).Distinct(StringComparer.Ordinal)],
            FailedStatuses = [.. failures.Where(f => f.Failure.Kind != UpstreamFailureKind.NotAttempted).Select(f => StatusOf(f.Failure))],
            UpstreamError = last?.Failure.Error is { } error ? new UpstreamErrorFields(error.Code, error.Message, error.Description, error.Param) : null,
            FailureSample = [.. failures.TakeLast(MaxFailureSamples).Select(Sample)],
            ProviderFailureDiagnostics = last is null ? null : new ProviderFailureDiagnostics(
                CategoryName(last.Failure.Category), Hint(last, extraFields, failures), last.Provider),
            ProviderPaymentRequiredProvider = paymentRequired?.Provider,
            ProviderPaymentRequiredSupportNotice = paymentRequired is null ? null
                : $"The billing of provider '{paymentRequired.Provider}' appears to be unavailable (it answered 402 Payment Required). If this persists, contact the operator of this gateway.",
            ExtraFields = extraFields,
        };
    }

    /// <summary>
    /// The status a failed call is counted with in <c>failed_statuses</c>: the upstream's own, else what the gateway
    /// answers for it (504 for a timeout, 502 for a connection that failed or an answer that could not be read).
    /// </summary>
    public static int StatusOf(UpstreamFailure failure) => failure.Kind switch
    {
        UpstreamFailureKind.Answered when failure.Status is { } status => status,
        UpstreamFailureKind.Timeout => 504,
        _ => 502,
    };

    /// <summary>Seed 001's name of a category (the two that are not upstream failures map to their nearest).</summary>
    public static string CategoryName(FailureCategory category) => category switch
    {
        FailureCategory.CredentialsNotConfigured => "credentials_not_configured",
        FailureCategory.CredentialsInvalidOrForbidden => "credentials_invalid_or_forbidden",
        FailureCategory.ProviderAccessMissing => "provider_access_missing",
        FailureCategory.RegionOrProjectRestriction => "region_or_project_restriction",
        FailureCategory.ModelUnavailableForEndpoint or FailureCategory.Unsupported => "model_unavailable_for_endpoint",
        FailureCategory.RateLimited => "rate_limited",
        _ => "server_error",
    };

    private static string KindName(UpstreamFailureKind kind) => kind switch
    {
        UpstreamFailureKind.Answered => "upstream_error",
        UpstreamFailureKind.Timeout => "timeout",
        UpstreamFailureKind.ConnectionFailed => "connection_error",
        UpstreamFailureKind.Malformed => "malformed_response",
        _ => "not_attempted",
    };

    private static FailureSample Sample(FailedCall call)
    {
        var failure = call.Failure;
        return new FailureSample(
            call.Provider,
            KindName(failure.Kind),
            failure.Kind == UpstreamFailureKind.NotAttempted ? null : StatusOf(failure),
            failure.Error?.Code,
            failure.Error?.Message,
            failure.Error?.Description,
            failure.Error?.Param,
            failure.PayloadPreview is { } preview ? ClientJson.Printable(preview, MaxPreviewChars) : null,
            failure.Retryable);
    }

    private static string Hint(FailedCall last, ExtraFields request, IReadOnlyList<FailedCall> failures)
    {
        string provider = last.Provider;
        int calls = failures.Count(f => f.Provider == provider && f.Failure.Kind != UpstreamFailureKind.NotAttempted);
        return last.Failure.Category switch
        {
            FailureCategory.CredentialsNotConfigured =>
                $"No API key is configured for provider '{provider}': set Wharf:Providers:{provider}:ApiKey.",
            FailureCategory.CredentialsInvalidOrForbidden =>
                $"Provider '{provider}' refused the gateway's credential ({last.Failure.Status}): check Wharf:Providers:{provider}:ApiKey and what that key may use at the provider.",
            FailureCategory.ProviderAccessMissing =>
                $"Provider '{provider}' answered 402 Payment Required: the account behind the gateway's key needs billing or credits there.",
            FailureCategory.RegionOrProjectRestriction =>
                $"Provider '{provider}' refused the request for a region or project restriction of the gateway's account.",
            FailureCategory.ModelUnavailableForEndpoint or FailureCategory.Unsupported =>
                $"Provider '{provider}' does not serve model '{Echo.Safe(request.ModelDeployment ?? request.ModelRequested)}' on {request.RequestType}: check the model name, or route it elsewhere (Wharf:Routing:Models).",
            FailureCategory.RateLimited =>
                $"Provider '{provider}' rate-limited the request (429) on each of {calls} call(s), Retry-After honoured between them: send less, try later, or add a fallback provider (Wharf:Routing).",
            _ when last.Failure.Kind == UpstreamFailureKind.Timeout =>
                $"Provider '{provider}' did not answer in time on {calls} call(s): it may be overloaded; Wharf:Providers:{provider}:TimeoutSeconds sets the wait.",
            _ when last.Failure.Kind == UpstreamFailureKind.ConnectionFailed =>
                $"Wharf could not reach provider '{provider}' ({calls} call(s)): check that it is up and Wharf:Providers:{provider}:BaseUrl.",
            _ when last.Failure.Kind == UpstreamFailureKind.Malformed =>
                $"Provider '{provider}' answered with a body that could not be read ({calls} call(s)): check that Wharf:Providers:{provider}:BaseUrl points at an OpenAI-compatible API.",
            _ =>
                $"Provider '{provider}' failed with a server error ({calls} call(s)): the provider has a problem; try later or add a fallback provider (Wharf:Routing).",
        };
    }
}
