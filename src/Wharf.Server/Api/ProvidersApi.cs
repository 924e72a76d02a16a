using Microsoft.AspNetCore.Http.HttpResults;
using Wharf.Core.Providers;
using Wharf.Server.Auth;

namespace Wharf.Server.Api;

/// <summary><c>GET /v1/providers</c>: the providers the caller's key may use, never a secret.</summary>
internal static class ProvidersApi
{
    public static RouteGroupBuilder MapProvidersApi(this RouteGroupBuilder api)
    {
        api.MapGet("/providers", List).WithMetadata(RouteAccess.AnyWorkspaceKey).WithTags("Providers")
            .WithSummary("The providers this key may use, with their capabilities");
        return api;
    }

    private static Ok<ProviderList> List(HttpContext context, IProviderRegistry providers)
    {
        var workspace = context.WorkspaceOf();
        return TypedResults.Ok(new ProviderList([.. providers.All.Where(p => p.IsUsableBy(workspace)).Select(ProviderObject.From)]));
    }
}
