using System.Diagnostics.CodeAnalysis;

namespace Wharf.Core.Errors;

/// <summary>An expected failure: carried as a value and turned into the error envelope in one place.</summary>
/// <param name="Status">HTTP status to answer with.</param>
/// <param name="Message">Human-readable message (never holds file content or secrets).</param>
/// <param name="Param">The request parameter at fault, if any.</param>
/// <param name="Code">A stable machine-readable code, if any.</param>
public sealed record WharfError(int Status, string Message, string? Param = null, string? Code = null)
{
    /// <summary>What happened at the upstreams, when any was tried or routed to: written into the envelope.</summary>
    public UpstreamDiagnostics? Upstream { get; init; }

    /// <summary>
    /// The upstream's own verdict on the request (its 400, 404 or 422), passed back: the user's fault
    /// (<c>error_type: user</c>) found upstream (<c>error_origin: upstream</c>).
    /// </summary>
    public bool FromUpstream { get; init; }

    /// <summary>OpenAI's <c>error.type</c> for this error.</summary>
    public string Type => IsAboutWharfItself ? "server_error" : TypeOf(Status);

    /// <summary>
    /// A 503 about Wharf's own storage or readiness rather than a provider: a <c>server_error</c> of the gateway, though
    /// a 503 is otherwise a provider's.
    /// </summary>
    private bool IsAboutWharfItself => !FromUpstream && Code is "storage_unavailable" or "not_ready" or "insufficient_storage";

    /// <summary>OpenAI's <c>error.type</c> for an error answered with <paramref name="status"/>.</summary>
    public static string TypeOf(int status) => status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        502 or 503 or 504 => "upstream_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    /// <summary><c>user</c> when the request was at fault, else <c>system</c>.</summary>
    public string ErrorType => Status < 500 ? "user" : "system";

    /// <summary><c>user</c>, <c>gateway</c> or <c>upstream</c>.</summary>
    public string Origin => Status switch
    {
        _ when FromUpstream => "upstream",
        < 500 => "user",
        _ when IsAboutWharfItself => "gateway",
        502 or 503 or 504 => "upstream",
        _ => "gateway",
    };

    /// <summary>The envelope's <c>reason</c>: the code when there is one, else a word for the status.</summary>
    public string Reason => Code ?? Status switch
    {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        502 => "upstream_error",
        503 => "unavailable",
        504 => "upstream_timeout",
        507 => "insufficient_storage",
        _ => "internal_error",
    };
}

/// <summary>Either a value or a <see cref="WharfError"/>.</summary>
public readonly struct Result<T>
{
    private readonly T? _value;

    private Result(T? value, WharfError? error)
    {
        _value = value;
        Error = error;
    }

    /// <summary>The error: non-null exactly when <see cref="IsOk"/> is false (the compiler checks callers by it).</summary>
    public WharfError? Error { get; }

    [MemberNotNullWhen(false, nameof(Error))]
    public bool IsOk => Error is null;

    public T Value => Error is null ? _value! : throw new InvalidOperationException("The result is an error: " + Error.Message);

    public static Result<T> From(T value) => new(value, null);

    public static implicit operator Result<T>(T value) => new(value, null);

    /// <summary>An error result; a null error is refused, so an error result always carries its error.</summary>
    public static implicit operator Result<T>(WharfError error) =>
        new(default, error ?? throw new ArgumentNullException(nameof(error), "An error result needs its error."));
}

/// <summary>The errors Wharf answers with, written once.</summary>
public static class WharfErrors
{
    public static WharfError NoSuchFile(string id) => new(404, $"No such File object: {id}", "id");

    public static WharfError Invalid(string param, string message, string? code = null) => new(400, message, param, code);

    public static WharfError Missing(string param) =>
        new(400, $"Missing required parameter: '{param}'.", param, "missing_required_parameter");

    public static WharfError FileTooLarge(long maxBytes) =>
        new(413, $"The file is larger than the maximum of {maxBytes} bytes.", "file", "file_too_large");

    /// <summary>403 (SDKs retry 409 and 429, and waiting does not free space): the bytes do not fit in the free quota.</summary>
    public static WharfError QuotaExceeded(string param) =>
        new(403, "This upload would exceed the workspace's storage quota.", param, "storage_quota_exceeded");

    public static WharfError TooManyPendingUploads(int max) =>
        new(403, $"This workspace already has {max} pending uploads, the most allowed: complete or cancel one first.", null, "too_many_pending_uploads");

    /// <summary>The workspace of the request's key was deleted while the request ran: as for its next request, 401.</summary>
    public static WharfError WorkspaceDeleted() =>
        new(401, "The API key's workspace was deleted while this request ran; nothing was kept.", null, "invalid_api_key");

    public static WharfError NotMultipart() =>
        new(415, "The request must be multipart/form-data.", null, "unsupported_media_type");

    public static WharfError MalformedMultipart(string detail) =>
        new(400, "The multipart/form-data body could not be read: " + detail, null, "invalid_multipart");

    /// <summary>The request body arrived more slowly than the server's minimum data rate, and it stopped waiting.</summary>
    public static WharfError RequestTimeout() =>
        new(408, "The request body arrived too slowly; the server stopped waiting for it. Send it again at a steady rate.", null, "request_timeout");

    public static WharfError Unauthorized() =>
        new(401, "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.", null, "invalid_api_key");

    public static WharfError NotFoundRoute(string path) =>
        new(404, $"Unknown request URL: {path}.", null, "unknown_url");

    public static WharfError MethodNotAllowed(string method, string path) =>
        new(405, $"Method {method} is not allowed on {path}.", null, "method_not_allowed");

    public static WharfError InsufficientStorage() =>
        new(507, "The server has no room left to store this request; nothing of it was kept. Delete files or try again later.", null, "insufficient_storage");

    /// <summary>The catalog or the blob store cannot be reached for now: 503, to be retried after a pause.</summary>
    public static WharfError StorageUnavailable() =>
        new(503, "The storage is unavailable for now; nothing of this request was kept. Try again shortly.", null, "storage_unavailable");

    public static WharfError Internal() =>
        new(500, "The server had an error while processing your request.", null, "internal_error");
}
