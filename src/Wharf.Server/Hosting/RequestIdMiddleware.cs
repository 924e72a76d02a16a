using System.Security.Cryptography;

namespace Wharf.Server.Hosting;

/// <summary>Gives every request an id (<c>req_</c> + 32 hex), sent back as <c>x-request-id</c> on every response.</summary>
internal sealed class RequestIdMiddleware(RequestDelegate next)
{
    public const string Header = "x-request-id";

    // An id must be unique, not secret: 64 random bits drawn once per process, then a counter, rather than a call
    // into the system's random source (OpenSSL) on every request.
    private static readonly ulong ProcessPart = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
    private static long _sequence;

    public Task InvokeAsync(HttpContext context)
    {
        string id = NextId();
        context.TraceIdentifier = id;
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

    private static string NextId() =>
        string.Create(36, (ProcessPart, (ulong)Interlocked.Increment(ref _sequence)), static (span, parts) =>
        {
            "req_".CopyTo(span);
            parts.ProcessPart.TryFormat(span[4..], out _, "x16");
            parts.Item2.TryFormat(span[20..], out _, "x16");
        });
}
