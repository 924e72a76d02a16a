using System.Text.Json.Serialization;
using Wharf.Core.Errors;

namespace Wharf.Server.Errors;

/// <summary>
/// OpenAI's <c>error</c> object plus the fields every Wharf error carries, and, when upstreams were routed to or
/// tried, seed 001's diagnostics (absent otherwise).
/// </summary>
internal sealed record ErrorEnvelope(
    ErrorBody Error,
    bool Ok,
    int StatusCode,
    string Message,
    string Description,
    string ErrorType,
    string ErrorOrigin,
    string Reason,
    string GenerationId,
    string EventId)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? AttemptCount { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? FailedProviders { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? FailedStatuses { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public UpstreamErrorFields? UpstreamError { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<FailureSample>? FailureSample { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ProviderFailureDiagnostics? ProviderFailureDiagnostics { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RoutingDiagnostics? RoutingDiagnostics { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ProviderCandidateDiagnostics? ProviderCandidateDiagnostics { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ProviderEnablement? ProviderEnablement { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ProviderPaymentRequiredProvider { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ProviderPaymentRequiredSupportNotice { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ExtraFields? ExtraFields { get; init; }

    public static ErrorEnvelope From(WharfError error, string requestId)
    {
        var envelope = new ErrorEnvelope(
            new ErrorBody(error.Message, error.Type, error.Param, error.Code),
            Ok: false,
            error.Status,
            error.Message,
            error.Message,
            error.ErrorType,
            error.Origin,
            error.Reason,
            requestId,
            requestId);
        return error.Upstream is not { } upstream ? envelope : envelope with
        {
            AttemptCount = upstream.AttemptCount,
            FailedProviders = upstream.FailedProviders,
            FailedStatuses = upstream.FailedStatuses,
            UpstreamError = upstream.UpstreamError,
            FailureSample = upstream.FailureSample,
            ProviderFailureDiagnostics = upstream.ProviderFailureDiagnostics,
            RoutingDiagnostics = upstream.RoutingDiagnostics,
            ProviderCandidateDiagnostics = upstream.ProviderCandidateDiagnostics,
            ProviderEnablement = upstream.ProviderEnablement,
            ProviderPaymentRequiredProvider = upstream.ProviderPaymentRequiredProvider,
            ProviderPaymentRequiredSupportNotice = upstream.ProviderPaymentRequiredSupportNotice,
            ExtraFields = upstream.ExtraFields,
        };
    }
}

internal sealed record ErrorBody(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);
