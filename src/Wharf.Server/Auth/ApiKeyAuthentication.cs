using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Server.Errors;

namespace Wharf.Server.Auth;

/// <summary>
/// Authenticates a workspace API key sent as <c>Authorization: Bearer</c>, <c>api-key</c> or <c>x-api-key</c>.
/// The key is hashed and looked up once; neither it nor its hash is ever logged.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    KeyService keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "WharfApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? secret = ReadKey(Request.Headers);
        if (secret is null)
        {
            return AuthenticateResult.NoResult();
        }
        var key = await keys.AuthenticateAsync(secret, Context.RequestAborted);
        if (key is null)
        {
            Logger.LogInformation("Authentication failed for request {RequestId}.", Context.TraceIdentifier);
            return AuthenticateResult.Fail("Unknown API key.");
        }
        var identity = new ClaimsIdentity(
            [new Claim(WharfClaims.WorkspaceId, key.WorkspaceId), new Claim(WharfClaims.KeyId, key.Id)],
            SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        ErrorResult.WriteAsync(Context, WharfErrors.Unauthorized());

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ErrorResult.WriteAsync(Context, new WharfError(403, "This API key may not use this route.", null, "forbidden"));

    private static string? ReadKey(IHeaderDictionary headers)
    {
        string? authorization = headers.Authorization;
        if (!string.IsNullOrEmpty(authorization))
        {
            const string bearer = "Bearer ";
            return authorization.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)
                ? NonEmpty(authorization[bearer.Length..].Trim())
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

    /// <summary>The authenticated caller's workspace. Every route behind auth has one.</summary>
    public static string WorkspaceIdOf(this ClaimsPrincipal user) =>
        user.FindFirst(WorkspaceId)?.Value ?? throw new InvalidOperationException("The request is not authenticated.");
}
