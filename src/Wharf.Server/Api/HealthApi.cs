using Microsoft.AspNetCore.Http.HttpResults;
using Wharf.Core.Errors;
using Wharf.Core.Ports;
using Wharf.Server.Errors;

namespace Wharf.Server.Api;

/// <summary>
/// <c>/healthz</c>: the process answers. <c>/readyz</c>: the catalog and the blob store answer, and the store can
/// write (503 <c>insufficient_storage</c> on a full disk).
/// </summary>
internal static partial class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new HealthStatus("ok"))).WithTags("Health").WithSummary("The process answers");
        app.MapGet("/readyz", Ready).WithTags("Health").WithSummary("The catalog and the blob store answer")
            .Produces<ErrorEnvelope>(StatusCodes.Status503ServiceUnavailable, "application/json");
        return app;
    }

    private static async Task<Results<Ok<HealthStatus>, ErrorResult>> Ready(
        IFileCatalog catalog, IBlobStore blobs, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        try
        {
            await catalog.CheckAsync(cancellationToken);
            await blobs.CheckAsync(cancellationToken);
            return TypedResults.Ok(new HealthStatus("ready"));
        }
        catch (InsufficientStorageException ex)
        {
            NoRoomLeft(loggers.CreateLogger(typeof(HealthApi)), ex);
            return new WharfError(503, "The storage has no room left to write.", null, "insufficient_storage").ToResult();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            loggers.CreateLogger(typeof(HealthApi)).LogWarning(ex, "Readiness check failed.");
            return new WharfError(503, "The storage is not ready.", null, "not_ready").ToResult();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Readiness check failed: the store has no room left to write.")]
    private static partial void NoRoomLeft(ILogger logger, Exception exception);
}
