using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Server.Errors;
using Wharf.Server.Hosting;

namespace Wharf.Server.Auth;

/// <summary>
/// The one gate in front of every route that takes a key (<see cref="RouteAccess"/>): it authenticates the key,
/// applies its rate limit, checks the route's scope and sets the caller's workspace as the request's user (the
/// one claim handlers read).
/// Failures are the error envelope: 401 for a missing or unknown key (429 once the client's address has failed too
/// often: <see cref="FailedAuthenticationLimiter"/>), 429 over the key's rate, 403 for a key without the scope.
/// Neither a key nor its hash is ever logged; failures are counted in one log line per interval.
/// </summary>
/// <remarks>
/// One middleware rather than the framework's authentication and authorization: those ran a handler, a policy and
/// its requirements per request for what is a hash, a lookup and a set membership, about a tenth of a file list
/// request's CPU (docs/benchmarks.md).
/// </remarks>
internal sealed class KeyGate(
    KeyService keys,
    KeyRateLimiter limiter,
    FailedAuthenticationLimiter failures,
    AuthenticationFailureLog failureLog,
    IOptions<WharfOptions> options)
{
    private const string AuthenticationType = "WharfKey";
    private readonly byte[]? _adminKeyHash = options.Value.Auth.AdminKey is { Length: > 0 } adminKey ? Hash(adminKey) : null;
    private readonly int _defaultRpm = options.Value.RateLimits.DefaultRpm;

    public Task InvokeAsync(HttpContext context, RequestDelegate next) =>
        context.GetEndpoint()?.Metadata.GetMetadata<RouteAccess>() switch
        {
            null => next(context),
            { Scope: null } => AdminAsync(context, next),
            { Scope: { } scope } => WorkspaceAsync(context, scope, next),
        };

    private async Task WorkspaceAsync(HttpContext context, string scope, RequestDelegate next)
    {
        string? secret = KeyHeaders.Read(context.Request.Headers);
        var found = secret is null ? null : await keys.AuthenticateAsync(secret, context.RequestAborted);
        if (found is null)
        {
            await FailAsync(context, WharfErrors.Unauthorized());
            return;
        }
        int rpm = found.Key.RateLimitRpm ?? found.Workspace.RateLimitRpm ?? _defaultRpm;
        if (!await limiter.AcquireAsync(context, found.Key.Id, rpm))
        {
            return;
        }
        if (scope.Length > 0 && !ApiScopes.Allows(found.Key.Scopes, scope))
        {
            await ErrorResult.WriteAsync(context, new WharfError(403, "This API key lacks the scope this route needs.", null, "insufficient_scope"));
            return;
        }
        context.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(WharfClaims.WorkspaceId, found.Workspace.Id)], AuthenticationType));
        context.Features.Set(found.Workspace);
        await next(context);
    }

    private Task AdminAsync(HttpContext context, RequestDelegate next)
    {
        string? secret = KeyHeaders.Read(context.Request.Headers);
        // Hashes are compared, so the comparison takes the same time whatever the lengths.
        if (secret is null || _adminKeyHash is null || !CryptographicOperations.FixedTimeEquals(Hash(secret), _adminKeyHash))
        {
            return FailAsync(context, new WharfError(401, "The admin API needs the admin key: 'Authorization: Bearer <admin key>'.", null, "invalid_admin_key"));
        }
        return next(context); // the admin handlers act on the workspace or key in their route, not on a caller
    }

    /// <summary>
    /// A missing or wrong key: 401, or 429 once the client's address is over its allowance of failures. Counted for
    /// the aggregated log line, never logged one by one.
    /// </summary>
    private Task FailAsync(HttpContext context, WharfError unauthorized)
    {
        bool withinAllowance = failures.TryCount(context, out TimeSpan retryAfter);
        failureLog.Add(context.TraceIdentifier, refused: !withinAllowance);
        return withinAllowance ? ErrorResult.WriteAsync(context, unauthorized) : FailedAuthenticationLimiter.RefuseAsync(context, retryAfter);
    }

    private static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));
}

internal static class KeyHeaders
{
    /// <summary>The key from <c>Authorization: Bearer</c>, else <c>api-key</c>, else <c>x-api-key</c>.</summary>
    public static string? Read(IHeaderDictionary headers)
    {
        string? authorization = headers.Authorization;
        if (!string.IsNullOrEmpty(authorization))
        {
            const string bearer = "Bearer ";
            return authorization.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)
                ? NonEmpty(authorization[bearer.Length..])
                : null;
        }
        return NonEmpty(headers["api-key"].ToString()) ?? NonEmpty(headers["x-api-key"].ToString());
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}

internal static class WharfClaims
{
    public const string WorkspaceId = "wharf:workspace";

    /// <summary>The authenticated caller's workspace. Every route behind a workspace key has one.</summary>
    public static string WorkspaceIdOf(this ClaimsPrincipal user) =>
        user.FindFirst(WorkspaceId)?.Value ?? throw new InvalidOperationException("The request is not authenticated.");

    /// <summary>
    /// The authenticated caller's workspace as its key was checked (its settings, e.g. allowed providers, as of the
    /// key check: admin changes reach it within the key cache's time).
    /// </summary>
    public static Workspace WorkspaceOf(this HttpContext context) =>
        context.Features.Get<Workspace>() ?? throw new InvalidOperationException("The request is not authenticated.");
}
