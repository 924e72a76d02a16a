using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Server.Errors;
using Wharf.Server.Hosting;

namespace Wharf.Server.Auth;

/// <summary>
/// Authenticates a workspace API key sent as <c>Authorization: Bearer</c>, <c>api-key</c> or <c>x-api-key</c>.
/// The key is hashed and looked up once; neither it nor its hash is ever logged.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    KeyService keys,
    IOptions<WharfOptions> wharf)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "WharfApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? secret = KeyHeaders.Read(Request.Headers);
        if (secret is null)
        {
            return AuthenticateResult.NoResult();
        }
        var found = await keys.AuthenticateAsync(secret, Context.RequestAborted);
        if (found is null)
        {
            Logger.LogInformation("Authentication failed for request {RequestId}.", Context.TraceIdentifier);
            return AuthenticateResult.Fail("Unknown API key.");
        }
        int rpm = found.Key.RateLimitRpm ?? found.Workspace.RateLimitRpm ?? wharf.Value.RateLimits.DefaultRpm;
        var claims = new List<Claim>
        {
            new(WharfClaims.WorkspaceId, found.Workspace.Id),
            new(WharfClaims.KeyId, found.Key.Id),
            new(WharfClaims.RateLimitRpm, rpm.ToString(CultureInfo.InvariantCulture)),
        };
        claims.AddRange(found.Key.Scopes.Select(scope => new Claim(WharfClaims.Scope, scope)));
        var identity = new ClaimsIdentity(claims, SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        ErrorResult.WriteAsync(Context, WharfErrors.Unauthorized());

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ErrorResult.WriteAsync(Context, new WharfError(403, "This API key lacks the scope this route needs.", null, "insufficient_scope"));
}

/// <summary>
/// Authenticates the operator's admin key (<c>Wharf:Auth:AdminKey</c>), sent in the same headers as a workspace key.
/// A workspace key is not an admin key: it gets 401 here.
/// </summary>
internal sealed class AdminKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    IOptions<WharfOptions> wharf)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "WharfAdmin";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? secret = KeyHeaders.Read(Request.Headers);
        string? adminKey = wharf.Value.Auth.AdminKey;
        if (secret is null || string.IsNullOrEmpty(adminKey))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }
        // Compare hashes so the comparison takes the same time whatever the lengths.
        if (!CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), SHA256.HashData(Encoding.UTF8.GetBytes(adminKey))))
        {
            Logger.LogInformation("Admin authentication failed for request {RequestId}.", Context.TraceIdentifier);
            return Task.FromResult(AuthenticateResult.Fail("Not the admin key."));
        }
        var identity = new ClaimsIdentity([new Claim(WharfClaims.Admin, "true")], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        ErrorResult.WriteAsync(Context, new WharfError(401, "The admin API needs the admin key: 'Authorization: Bearer <admin key>'.", null, "invalid_admin_key"));

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ErrorResult.WriteAsync(Context, new WharfError(403, "Not allowed.", null, "forbidden"));
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
    public const string KeyId = "wharf:key";
    public const string Scope = "wharf:scope";
    public const string RateLimitRpm = "wharf:rpm";
    public const string Admin = "wharf:admin";

    /// <summary>The authenticated caller's workspace. Every route behind auth has one.</summary>
    public static string WorkspaceIdOf(this ClaimsPrincipal user) =>
        user.FindFirst(WorkspaceId)?.Value ?? throw new InvalidOperationException("The request is not authenticated.");
}

/// <summary>The authorization policies: one per scope, and the admin one.</summary>
internal static class WharfPolicies
{
    public const string Admin = "admin";

    public static void Add(Microsoft.AspNetCore.Authorization.AuthorizationOptions options)
    {
        foreach (string scope in ApiScopes.All)
        {
            options.AddPolicy(scope, policy => policy
                .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
                .RequireAuthenticatedUser()
                .RequireClaim(WharfClaims.Scope, scope));
        }
        options.AddPolicy(Admin, policy => policy
            .AddAuthenticationSchemes(AdminKeyAuthenticationHandler.SchemeName)
            .RequireAuthenticatedUser()
            .RequireClaim(WharfClaims.Admin));
    }
}
