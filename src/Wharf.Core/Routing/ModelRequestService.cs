using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Providers;

namespace Wharf.Core.Routing;

/// <summary>A model request from a client, start to answer: read, routed, dispatched.</summary>
public sealed class ModelRequestService(ModelRouter router, ModelDispatcher dispatcher)
{
    /// <param name="body">The request's JSON body as received.</param>
    /// <param name="requestedProvider">The provider named outside the body (query or header), if any.</param>
    public async Task<Result<ModelAnswer>> SendAsync(
        Workspace workspace, ProviderCapability endpoint, ReadOnlyMemory<byte> body, string? requestedProvider, CancellationToken cancellationToken)
    {
        var parsed = ModelRequest.Parse(endpoint, body);
        if (!parsed.IsOk)
        {
            return parsed.Error;
        }
        using var request = parsed.Value;
        var plan = router.Route(request, requestedProvider, workspace);
        if (!plan.IsOk)
        {
            return plan.Error;
        }
        return await dispatcher.DispatchAsync(workspace.Id, request, plan.Value, cancellationToken);
    }
}

public static class RoutingServiceCollectionExtensions
{
    /// <summary>
    /// The router, the dispatcher and the request service; the body rewriter is the no-op one unless another is
    /// registered. Options are bound by the host.
    /// </summary>
    public static IServiceCollection AddModelRouting(this IServiceCollection services)
    {
        services.TryAddSingleton<IModelBodyRewriter, UnchangedModelBody>();
        services.AddSingleton<IValidateOptions<RoutingOptions>, RoutingOptionsValidation>();
        services.AddSingleton<ModelRouter>();
        services.AddSingleton<ModelDispatcher>();
        services.AddSingleton<ModelRequestService>();
        return services;
    }
}
