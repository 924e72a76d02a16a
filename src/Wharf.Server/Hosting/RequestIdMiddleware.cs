using System.Security.Cryptography;

namespace Wharf.Server.Hosting;

/// <summary>Gives every request an id (<c>req_</c> + 32 hex), sent back as <c>x-request-id</c> on every response.</summary>
internal sealed class RequestIdMiddleware(RequestDelegate next)
{
    public const string Header = "x-request-id";

    public Task InvokeAsync(HttpContext context)
    {
        string id = "req_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
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
}
