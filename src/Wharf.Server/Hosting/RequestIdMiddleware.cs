namespace Wharf.Server.Hosting;

/// <summary>Gives every request an id (<c>req_</c> + 32 hex), sent back as <c>x-request-id</c> on every response.</summary>
/// <remarks>
/// The id is also a logging scope (<c>request_id</c>) around the rest of the request, so every line logged for it
/// carries it (the framework's own scope holds the connection's trace id, taken before this id is set).
/// </remarks>
internal sealed class RequestIdMiddleware(RequestDelegate next, ILogger<RequestIdMiddleware> logger)
{
    public const string Header = "x-request-id";

    /// <summary>A new request id.</summary>
    public static string NewId()
    {
        // Unique, not secret: 128 bits from the thread's fast generator rather than a call into the system's random
        // source (OpenSSL) on every request. Nothing in the id counts requests, so it tells a client nothing.
        Span<byte> bits = stackalloc byte[16];
        Random.Shared.NextBytes(bits);
        return "req_" + Convert.ToHexStringLower(bits);
    }

    public async Task InvokeAsync(HttpContext context)
    {
        context.TraceIdentifier = NewId();
        // Set when the response starts, so that nothing clearing the response on the way (the exception handler
        // does) can lose it.
        context.Response.OnStarting(static state =>
        {
            var http = (HttpContext)state;
            http.Response.Headers[Header] = http.TraceIdentifier;
            return Task.CompletedTask;
        }, context);
        using (logger.BeginScope(new RequestIdScope(context.TraceIdentifier)))
        {
            await next(context);
        }
    }

    /// <summary>The scope's one value, named as the header is.</summary>
    private sealed class RequestIdScope(string requestId) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public KeyValuePair<string, object?> this[int index] =>
            index == 0 ? new("request_id", requestId) : throw new ArgumentOutOfRangeException(nameof(index));

        public int Count => 1;

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            yield return this[0];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => "request_id:" + requestId;
    }
}
