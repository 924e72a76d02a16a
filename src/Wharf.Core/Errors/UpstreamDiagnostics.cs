using System.Text.Json.Serialization;

namespace Wharf.Core.Errors;

/// <summary>
/// What happened on the way to the upstreams, for the error envelope (seed 001's <c>ErrorResponse</c> fields) and,
/// for a success, its <c>extra_fields</c>. Built in one place, the dispatcher; written by the envelope as top-level
/// fields. The nested diagnostics keep seed 001's camelCase names.
/// </summary>
public sealed record UpstreamDiagnostics
{
    public int AttemptCount { get; init; }

    public IReadOnlyList<string> FailedProviders { get; init; } = [];

    public IReadOnlyList<int> FailedStatuses { get; init; } = [];

    public UpstreamErrorFields? UpstreamError { get; init; }

    public IReadOnlyList<FailureSample> FailureSample { get; init; } = [];

    public ProviderFailureDiagnostics? ProviderFailureDiagnostics { get; init; }

    public RoutingDiagnostics? RoutingDiagnostics { get; init; }

    public ProviderCandidateDiagnostics? ProviderCandidateDiagnostics { get; init; }

    public ProviderEnablement? ProviderEnablement { get; init; }

    public string? ProviderPaymentRequiredProvider { get; init; }

    public string? ProviderPaymentRequiredSupportNotice { get; init; }

    public ExtraFields? ExtraFields { get; init; }
}

/// <summary>The last upstream error body, as far as it was read.</summary>
public sealed record UpstreamErrorFields(string? Code, string? Message, string? Description, string? Param);

public sealed record FailureSample(
    string? Provider,
    string? Type,
    int? Status,
    string? UpstreamErrorCode,
    string? UpstreamErrorMessage,
    string? UpstreamErrorDescription,
    string? UpstreamErrorParam,
    string? UpstreamPayloadPreview,
    bool? Retryable);

/// <summary>
/// <paramref name="Category"/> is one of <c>credentials_not_configured</c>, <c>credentials_invalid_or_forbidden</c>,
/// <c>provider_access_missing</c>, <c>region_or_project_restriction</c>, <c>model_unavailable_for_endpoint</c>,
/// <c>rate_limited</c>, <c>server_error</c>.
/// </summary>
public sealed record ProviderFailureDiagnostics(string Category, string Hint, string? Provider);

public sealed record RoutingDiagnostics(
    [property: JsonPropertyName("filterStages")] IReadOnlyList<FilterStage> FilterStages);

public sealed record FilterStage(
    [property: JsonPropertyName("stage")] string Stage,
    [property: JsonPropertyName("beforeCount")] int BeforeCount,
    [property: JsonPropertyName("afterCount")] int AfterCount,
    [property: JsonPropertyName("droppedProviders")] IReadOnlyList<DroppedProvider> DroppedProviders);

public sealed record DroppedProvider(
    [property: JsonPropertyName("providerId")] string ProviderId,
    [property: JsonPropertyName("reason")] string Reason);

public sealed record ProviderCandidateDiagnostics(
    [property: JsonPropertyName("totalProviders")] int TotalProviders,
    [property: JsonPropertyName("supportsEndpointCount")] int SupportsEndpointCount,
    [property: JsonPropertyName("candidateCount")] int CandidateCount,
    [property: JsonPropertyName("droppedUnsupportedEndpoint")] IReadOnlyList<string> DroppedUnsupportedEndpoint,
    [property: JsonPropertyName("droppedMissingAdapter")] IReadOnlyList<MissingAdapter> DroppedMissingAdapter);

public sealed record MissingAdapter(
    [property: JsonPropertyName("providerId")] string ProviderId,
    [property: JsonPropertyName("endpoint")] string Endpoint);

public sealed record ProviderEnablement(
    [property: JsonPropertyName("capability")] string Capability,
    [property: JsonPropertyName("providersBefore")] IReadOnlyList<string> ProvidersBefore,
    [property: JsonPropertyName("providersAfter")] IReadOnlyList<string> ProvidersAfter,
    [property: JsonPropertyName("dropped")] IReadOnlyList<DroppedProvider> Dropped);

/// <summary>
/// Bifrost's <c>extra_fields</c>: the provider that answered (or was tried last), the model as the client sent it
/// and as sent upstream, the request type and the latency in milliseconds.
/// </summary>
public sealed record ExtraFields(string? Provider, string ModelRequested, string? ModelDeployment, string RequestType, long Latency);
