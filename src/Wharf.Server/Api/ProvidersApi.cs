using Microsoft.AspNetCore.Http.HttpResults;
using Wharf.Core.Errors;
using Wharf.Core.Providers;
using Wharf.Server.Auth;
using Wharf.Server.Errors;

namespace Wharf.Server.Api;

/// <summary>
/// <c>GET /v1/providers</c>: the providers the caller's key may use, never a secret. For the operator, under the
/// admin API: <c>GET /admin/providers</c> (every configured provider) and <c>GET /admin/providers/{id}/outcomes</c>
/// (a provider's recent upstream outcomes on this node).
/// </summary>
internal static class ProvidersApi
{
    public static RouteGroupBuilder MapProvidersApi(this RouteGroupBuilder api)
    {
        api.MapGet("/providers", List).WithMetadata(RouteAccess.AnyWorkspaceKey).WithTags("Providers")
            .WithSummary("The providers this key may use, with their capabilities");
        return api;
    }

    /// <summary>
    /// The operator's view of the providers, mapped on the admin group (which takes the admin key alone). Recent
    /// outcomes are here and not beside <c>GET /v1/providers</c>: a provider's ring holds every workspace's calls to
    /// it, so a workspace key reading it would see other tenants' call timing, operations and failures.
    /// </summary>
    public static RouteGroupBuilder MapAdminProvidersApi(this RouteGroupBuilder admin)
    {
        admin.MapGet("/providers", ListAll).WithSummary("Every configured provider, with its capabilities");
        admin.MapGet("/providers/{id}/outcomes", Outcomes)
            .WithSummary("This node's most recent upstream calls to a provider, of every workspace, newest first (extension)");
        return admin;
    }

    private static Ok<ProviderList> List(HttpContext context, IProviderRegistry providers)
    {
        var workspace = context.WorkspaceOf();
        return TypedResults.Ok(new ProviderList([.. providers.All.Where(p => p.IsUsableBy(workspace)).Select(ProviderObject.From)]));
    }

    private static Ok<ProviderList> ListAll(IProviderRegistry providers) =>
        TypedResults.Ok(new ProviderList([.. providers.All.Select(ProviderObject.From)]));

    /// <summary>
    /// What the console's providers page shows the operator: the provider's last calls on this node (operation,
    /// outcome, status, duration; never a request, an answer or the workspace that made it).
    /// </summary>
    private static Results<Ok<ProviderOutcomeList>, ErrorResult> Outcomes(string id, IProviderRegistry providers, RecentUpstreamOutcomes recent)
    {
        if (!providers.TryGet(id, out _))
        {
            return new WharfError(404, $"No such Provider object: {id}", "id").ToResult();
        }
        return TypedResults.Ok(new ProviderOutcomeList(id, [.. recent.Of(id).Select(ProviderOutcomeObject.From)]));
    }
}
