using Microsoft.AspNetCore.Http.HttpResults;
using Wharf.Core.Errors;
using Wharf.Core.Providers;
using Wharf.Server.Auth;
using Wharf.Server.Errors;

namespace Wharf.Server.Api;

/// <summary>
/// <c>GET /v1/providers</c>: the providers the caller's key may use, never a secret; and
/// <c>GET /v1/providers/{id}/outcomes</c>: their recent upstream outcomes on this node.
/// </summary>
internal static class ProvidersApi
{
    public static RouteGroupBuilder MapProvidersApi(this RouteGroupBuilder api)
    {
        api.MapGet("/providers", List).WithMetadata(RouteAccess.AnyWorkspaceKey).WithTags("Providers")
            .WithSummary("The providers this key may use, with their capabilities");
        api.MapGet("/providers/{id}/outcomes", Outcomes).WithMetadata(RouteAccess.AnyWorkspaceKey).WithTags("Providers")
            .WithSummary("This node's most recent upstream calls to a provider this key may use, newest first (extension)");
        return api;
    }

    private static Ok<ProviderList> List(HttpContext context, IProviderRegistry providers)
    {
        var workspace = context.WorkspaceOf();
        return TypedResults.Ok(new ProviderList([.. providers.All.Where(p => p.IsUsableBy(workspace)).Select(ProviderObject.From)]));
    }

    /// <summary>
    /// What the console's providers page shows: the provider's last calls on this node (operation, outcome, status,
    /// duration; never a request or an answer). A provider the key may not use is not found, as an unknown one is.
    /// </summary>
    private static Results<Ok<ProviderOutcomeList>, ErrorResult> Outcomes(
        string id, HttpContext context, IProviderRegistry providers, RecentUpstreamOutcomes recent)
    {
        if (!providers.TryGet(id, out var provider) || !provider.IsUsableBy(context.WorkspaceOf()))
        {
            return new WharfError(404, $"No such Provider object: {id}", "id").ToResult();
        }
        return TypedResults.Ok(new ProviderOutcomeList(id, [.. recent.Of(id).Select(ProviderOutcomeObject.From)]));
    }
}
