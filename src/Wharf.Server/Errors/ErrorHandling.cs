using Microsoft.AspNetCore.Diagnostics;
using Wharf.Core.Errors;
using Wharf.Core.Ports;

namespace Wharf.Server.Errors;

/// <summary>
/// Turns what escapes a handler into the error envelope: the server's own request errors (body too large,
/// malformed request) keep their 4xx; a store that fails is a 503 <c>storage_unavailable</c> with <c>Retry-After</c>;
/// anything else is a bug, logged and answered with a 500.
/// </summary>
internal sealed partial class EnvelopeExceptionHandler(ILogger<EnvelopeExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        WharfError error;
        if (exception is BadHttpRequestException bad)
        {
            error = RequestBodyErrors.From(bad, null);
        }
        else if (exception is InsufficientStorageException)
        {
            NoRoomLeft(logger, exception, httpContext.TraceIdentifier);
            error = WharfErrors.InsufficientStorage();
        }
        else if (exception is BlobStoreException)
        {
            BlobStoreFailed(logger, exception, httpContext.TraceIdentifier);
            error = WharfErrors.StorageUnavailable();
        }
        else if (exception is CatalogUnavailableException)
        {
            CatalogUnavailable(logger, exception, httpContext.TraceIdentifier);
            error = WharfErrors.StorageUnavailable();
        }
        else if (exception is OperationCanceledException && httpContext.RequestAborted.IsCancellationRequested)
        {
            return true; // the client went away; nobody is left to answer
        }
        else
        {
            logger.LogError(exception, "Unhandled error in request {RequestId}.", httpContext.TraceIdentifier);
            error = WharfErrors.Internal();
        }
        if (httpContext.Response.HasStarted)
        {
            // Part of a body is sent (a download whose content failed): the connection is reset, so the client sees
            // an error, never a shorter body that ends cleanly and looks complete.
            httpContext.Abort();
            return true;
        }
        httpContext.Response.Clear();
        await ErrorResult.WriteAsync(httpContext, error);
        return true;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The blob store failed in request {RequestId}.")]
    private static partial void BlobStoreFailed(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The catalog is unavailable for request {RequestId}.")]
    private static partial void CatalogUnavailable(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No room left to store request {RequestId}.")]
    private static partial void NoRoomLeft(ILogger logger, Exception exception, string requestId);
}

internal static class ErrorHandlingExtensions
{
    /// <summary>
    /// Envelope for everything the framework answers without a body: the routing layer (unknown URL, wrong method) and
    /// the file results' 416.
    /// </summary>
    public static IApplicationBuilder UseEnvelopeForBareStatusCodes(this IApplicationBuilder app)
    {
        app.UseStatusCodePages(async context =>
        {
            var http = context.HttpContext;
            var error = http.Response.StatusCode switch
            {
                404 => WharfErrors.NotFoundRoute(http.Request.Path.ToUriComponent()),
                405 => WharfErrors.MethodNotAllowed(http.Request.Method, http.Request.Path.ToUriComponent()),
                416 => new WharfError(416,
                    $"The requested range is not satisfiable ({http.Response.Headers.ContentRange}): it lies outside the file.", "range", "range_not_satisfiable"),
                int status => new WharfError(status, "The request could not be served.", null, null),
            };
            await ErrorResult.WriteAsync(http, error);
        });
        // The status code pages leave alone an answer that has a Content-Type or a Content-Length; the file results
        // set both on their empty 416. An error answer that is still empty gets the envelope all the same.
        return app.Use(static async (context, next) =>
        {
            await next(context);
            var response = context.Response;
            if (response.StatusCode >= 400 && !response.HasStarted && response.ContentLength == 0)
            {
                response.ContentLength = null;
                response.ContentType = null;
                // What described the file (a 416 keeps its Content-Range) does not describe the envelope.
                response.Headers.ContentDisposition = default;
                response.Headers.ETag = default;
                response.Headers.LastModified = default;
            }
        });
    }
}
