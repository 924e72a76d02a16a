using Wharf.Core.Errors;

namespace Wharf.Server.Errors;

/// <summary>
/// What the server reports while a request body is read (too large, arriving too slowly, cut short), as the error
/// Wharf answers with: the same answer on every endpoint that reads a body, JSON or multipart.
/// </summary>
internal static class RequestBodyErrors
{
    /// <param name="exception">What the server threw while the body was read.</param>
    /// <param name="param">The request parameter a too-large body is reported on, if any.</param>
    public static WharfError From(BadHttpRequestException exception, string? param) => exception.StatusCode switch
    {
        StatusCodes.Status413PayloadTooLarge => new WharfError(413, "The request body is larger than this endpoint accepts.", param, "request_too_large"),
        StatusCodes.Status408RequestTimeout => WharfErrors.RequestTimeout(),
        int status => new WharfError(status, "The request body could not be read: " + exception.Message, null, "invalid_request"),
    };
}
