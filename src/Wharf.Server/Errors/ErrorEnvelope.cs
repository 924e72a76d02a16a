using System.Text.Json.Serialization;
using Wharf.Core.Errors;

namespace Wharf.Server.Errors;

/// <summary>OpenAI's <c>error</c> object plus the routing diagnostics fields every Wharf error carries.</summary>
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
    public static ErrorEnvelope From(WharfError error, string requestId) => new(
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
}

internal sealed record ErrorBody(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);
