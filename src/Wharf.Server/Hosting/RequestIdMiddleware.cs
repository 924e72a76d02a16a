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
        context.Response.Headers[Header] = id;
        return next(context);
    }
}
