using Wharf.Core.Errors;
using Wharf.Core.Providers;

namespace Wharf.Core.Files;

/// <summary>
/// The errors of file operations on a provider, with the upstream diagnostics of the one call that failed. The
/// upstream's own verdict on the request (400, 413, 422) is passed back with its status and message; anything else
/// is the upstream's fault: 504 for a timeout, else 502.
/// </summary>
public static class ProviderFileErrors
{
    public static WharfError UnknownProvider(string provider) =>
        WharfErrors.Invalid("provider", $"Unknown provider '{Printable(provider)}'.", "unknown_provider");

    public static WharfError NoFilesApi(string provider) =>
        WharfErrors.Invalid("provider", $"The provider '{provider}' has no Files API: files can be kept on it only by Wharf ('local').", "provider_without_files");

    public static WharfError NotEnabled(string provider) =>
        WharfErrors.Invalid("provider", $"The provider '{provider}' is not enabled for this workspace.", "provider_not_enabled");

    /// <summary>The error for a failed call to <paramref name="provider"/> about a file (<paramref name="what"/>: "upload", ...).</summary>
    public static WharfError FromFailure(string provider, UpstreamFailure failure, string what)
    {
        var diagnostics = Diagnostics(provider, failure);
        string detail = failure.Error?.Message is { Length: > 0 } message ? message : failure.Kind.ToString();
        if (failure.Category == FailureCategory.RequestRejected && failure.Status is { } status)
        {
            return new WharfError(status, $"The provider '{provider}' refused the file {what}: {detail}", failure.Error?.Param, failure.Error?.Code)
            {
                Upstream = diagnostics,
                FromUpstream = true,
            };
        }
        if (failure.Kind == UpstreamFailureKind.Timeout)
        {
            return new WharfError(504, $"The provider '{provider}' did not answer the file {what} in time.", null, "upstream_timeout") { Upstream = diagnostics };
        }
        string code = failure.Category switch
        {
            FailureCategory.CredentialsNotConfigured or FailureCategory.CredentialsInvalidOrForbidden => "upstream_credentials",
            FailureCategory.ProviderAccessMissing => "upstream_payment_required",
            _ => "upstream_error",
        };
        string statusText = failure.Status is { } s ? $" ({s})" : "";
        return new WharfError(502, $"The provider '{provider}' failed the file {what}{statusText}: {detail}", null, code) { Upstream = diagnostics };
    }

    /// <summary>Seed 001's diagnostics of one failed call.</summary>
    public static UpstreamDiagnostics Diagnostics(string provider, UpstreamFailure failure)
    {
        bool attempted = failure.Kind != UpstreamFailureKind.NotAttempted;
        var error = failure.Error;
        return new UpstreamDiagnostics
        {
            AttemptCount = attempted ? 1 : 0,
            FailedProviders = [provider],
            FailedStatuses = failure.Status is { } status ? [status] : [],
            UpstreamError = error is null ? null : new UpstreamErrorFields(error.Code, error.Message, error.Description, error.Param),
            FailureSample =
            [
                new FailureSample(provider, failure.Kind.WireName(), failure.Status, error?.Code, error?.Message, error?.Description,
                    error?.Param, failure.PayloadPreview, failure.Retryable),
            ],
            ProviderFailureDiagnostics = failure.Category is FailureCategory.RequestRejected or FailureCategory.Unsupported
                ? null
                : new ProviderFailureDiagnostics(failure.Category.SeedCategory(), Hint(failure.Category), provider),
            ProviderPaymentRequiredProvider = failure.Category == FailureCategory.ProviderAccessMissing ? provider : null,
            ProviderPaymentRequiredSupportNotice = failure.Category == FailureCategory.ProviderAccessMissing
                ? $"The account Wharf uses at '{provider}' needs billing or access for this operation."
                : null,
        };
    }

    private static string Hint(FailureCategory category) => category switch
    {
        FailureCategory.CredentialsNotConfigured => "Configure an API key for this provider (Wharf:Providers:<id>:ApiKey).",
        FailureCategory.CredentialsInvalidOrForbidden => "The provider refused Wharf's API key: check Wharf:Providers:<id>:ApiKey.",
        FailureCategory.ProviderAccessMissing => "The provider's account needs billing or access.",
        FailureCategory.RegionOrProjectRestriction => "The provider refused for a region or project restriction.",
        FailureCategory.ModelUnavailableForEndpoint => "The provider does not serve this endpoint.",
        FailureCategory.RateLimited => "The provider is rate limiting Wharf; try again later.",
        _ => "The provider failed; try again later.",
    };

    private static string Printable(string value) => Json.ClientJson.Printable(value, 64);
}
