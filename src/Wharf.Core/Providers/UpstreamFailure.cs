namespace Wharf.Core.Providers;

/// <summary>Seed 001's failure categories, and how Wharf tells them apart.</summary>
public enum FailureCategory
{
    /// <summary>No key is configured for a provider that needs one.</summary>
    CredentialsNotConfigured,

    /// <summary>401 or 403: the upstream refused Wharf's credential.</summary>
    CredentialsInvalidOrForbidden,

    /// <summary>402: the account has no access (billing).</summary>
    ProviderAccessMissing,

    /// <summary>The upstream refused for a region or project restriction.</summary>
    RegionOrProjectRestriction,

    /// <summary>404: the model (or the endpoint) is not served there.</summary>
    ModelUnavailableForEndpoint,

    /// <summary>429.</summary>
    RateLimited,

    /// <summary>5xx, 408/409 from the upstream, timeouts, refused or reset connections, malformed answers.</summary>
    ServerError,

    /// <summary>400, 413, 422: the upstream's verdict on the request itself; passed back, never retried.</summary>
    RequestRejected,

    /// <summary>The provider does not have what was asked (its adapter declares no such capability).</summary>
    Unsupported,
}

/// <summary>How an upstream call failed.</summary>
public enum UpstreamFailureKind
{
    /// <summary>The upstream answered with an error status.</summary>
    Answered,

    /// <summary>No answer within the provider's timeout.</summary>
    Timeout,

    /// <summary>The connection was refused, reset or dropped.</summary>
    ConnectionFailed,

    /// <summary>The upstream answered 2xx with a body that could not be read as promised.</summary>
    Malformed,

    /// <summary>Not attempted: the provider cannot do this, or has no credential.</summary>
    NotAttempted,
}

/// <summary>The error an upstream reported in its own body, as far as it could be read.</summary>
public sealed record UpstreamErrorDetail(string? Code, string? Message, string? Description, string? Param);

/// <summary>
/// A failed upstream call as a value: adapters return it, never throw it. <see cref="PayloadPreview"/> is a
/// truncated quote of the upstream's error body with anything that looks like a credential removed.
/// </summary>
public sealed record UpstreamFailure(
    UpstreamFailureKind Kind,
    FailureCategory Category,
    int? Status,
    bool Retryable,
    TimeSpan? RetryAfter = null,
    UpstreamErrorDetail? Error = null,
    string? PayloadPreview = null)
{
    /// <summary>
    /// An error answer, classified in one place for every adapter: 401/403 credentials, 402 access, 404 model,
    /// 408/409/429/5xx retryable, 400/413/422 the upstream's verdict on the request (passed back), anything else
    /// (a redirect, 405, 415, ...) the upstream's fault, not retried.
    /// </summary>
    public static UpstreamFailure FromAnswer(int status, TimeSpan? retryAfter, UpstreamErrorDetail? error, string? payloadPreview)
    {
        var (category, retryable) = status switch
        {
            401 or 403 => (FailureCategory.CredentialsInvalidOrForbidden, false),
            402 => (FailureCategory.ProviderAccessMissing, false),
            404 => (FailureCategory.ModelUnavailableForEndpoint, false),
            408 or 409 => (FailureCategory.ServerError, true),
            429 => (FailureCategory.RateLimited, true),
            >= 500 => (FailureCategory.ServerError, true),
            400 or 413 or 422 => (FailureCategory.RequestRejected, false),
            // A redirect (not followed), 405, 415, 421, ...: the upstream or its configuration is at fault, not the request.
            _ => (FailureCategory.ServerError, false),
        };
        return new(UpstreamFailureKind.Answered, category, status, retryable, retryAfter, error, payloadPreview);
    }

    public static UpstreamFailure CredentialsNotConfigured() =>
        new(UpstreamFailureKind.NotAttempted, FailureCategory.CredentialsNotConfigured, null, false,
            Error: new(null, "No API key is configured for this provider.", null, null));

    public static UpstreamFailure Unsupported(string what) =>
        new(UpstreamFailureKind.NotAttempted, FailureCategory.Unsupported, null, false, Error: new(null, what, null, null));

    /// <summary>
    /// A request a translating adapter cannot put into its provider's wire format (a parameter with no equivalent
    /// there): the user's request at fault, found before any call, so passed back as a 400 naming the parameter.
    /// </summary>
    public static UpstreamFailure Untranslatable(string param, string message) =>
        new(UpstreamFailureKind.NotAttempted, FailureCategory.RequestRejected, 400, false, Error: new("unsupported_parameter", message, null, param));

    public static UpstreamFailure Timeout() =>
        new(UpstreamFailureKind.Timeout, FailureCategory.ServerError, null, true, Error: new(null, "The upstream did not answer in time.", null, null));

    public static UpstreamFailure ConnectionFailed(string what) =>
        new(UpstreamFailureKind.ConnectionFailed, FailureCategory.ServerError, null, true, Error: new(null, what, null, null));

    public static UpstreamFailure Malformed(int status, string what) =>
        new(UpstreamFailureKind.Malformed, FailureCategory.ServerError, status, true, Error: new(null, what, null, null));
}

/// <summary>The names of failure categories and kinds on the wire, in metrics and in logs: written once.</summary>
public static class UpstreamFailureNames
{
    /// <summary>The category in snake case (seed 001's names, and <c>request_rejected</c> / <c>unsupported</c>).</summary>
    public static string WireName(this FailureCategory category) => category switch
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
        _ => throw new ArgumentOutOfRangeException(nameof(category)),
    };

    /// <summary>
    /// One of seed 001's seven categories, for <c>provider_failure_diagnostics</c>: a capability the provider lacks is
    /// its nearest, <c>model_unavailable_for_endpoint</c>; a rejected request, <c>server_error</c>.
    /// </summary>
    public static string SeedCategory(this FailureCategory category) => category switch
    {
        FailureCategory.Unsupported => "model_unavailable_for_endpoint",
        FailureCategory.RequestRejected => "server_error",
        _ => category.WireName(),
    };

    /// <summary>The kind as a failure sample's <c>type</c>.</summary>
    public static string WireName(this UpstreamFailureKind kind) => kind switch
    {
        UpstreamFailureKind.Answered => "upstream_error",
        UpstreamFailureKind.Timeout => "timeout",
        UpstreamFailureKind.ConnectionFailed => "connection_error",
        UpstreamFailureKind.Malformed => "malformed_response",
        _ => "not_attempted",
    };
}
