namespace Wharf.Server.Hosting;

/// <summary>Gives every request an id (<c>req_</c> + 32 hex), sent back as <c>x-request-id</c> on every response.</summary>
internal sealed class RequestIdMiddleware(RequestDelegate next)
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

    public Task InvokeAsync(HttpContext context)
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
        return next(context);
    }
}
