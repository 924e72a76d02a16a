using Microsoft.AspNetCore.Http.Metadata;
using Wharf.Core.Errors;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace Wharf.Server.Errors;

/// <summary>The one place a <see cref="WharfError"/> becomes an HTTP response.</summary>
/// <remarks>The statuses a route may answer with it are described by <see cref="Hosting.ErrorResponses"/>.</remarks>
internal sealed class ErrorResult(WharfError error) : IResult, IStatusCodeHttpResult
{
    public WharfError Error => error;

    public int? StatusCode => error.Status;

    public Task ExecuteAsync(HttpContext httpContext) => WriteAsync(httpContext, error);

    public static Task WriteAsync(HttpContext httpContext, WharfError error)
    {
        var response = httpContext.Response;
        response.StatusCode = error.Status;
        if ((error.Status == StatusCodes.Status429TooManyRequests || (error.Status == StatusCodes.Status503ServiceUnavailable && error.Code == "storage_unavailable")) && !response.Headers.ContainsKey("Retry-After"))
        {
            response.Headers.RetryAfter = "1";
        }
        var json = httpContext.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
        return response.WriteAsJsonAsync(
            ErrorEnvelope.From(error, httpContext.TraceIdentifier),
            json,
            contentType: "application/json",
            cancellationToken: httpContext.RequestAborted);
    }
}

internal static class ErrorResults
{
    public static ErrorResult ToResult(this WharfError error) => new(error);
}
