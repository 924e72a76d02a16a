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
