using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Leases;
using Wharf.Core.Routing;
using Wharf.Core.Tenancy;
using Wharf.Core.Uploads;
using Wharf.Core.Webhooks;

namespace Wharf.Core;

public static class CoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers Wharf's services (files, uploads, keys, workspaces, model-request routing and dispatch) with <c>TryAdd</c>, so a host may register its own
    /// of any of them first (a clock, a hasher) and a second host composes the same services without copying them.
    /// The ports they need (catalogs, blob store, providers) come from the storage and provider registrations.
    /// </summary>
    public static IServiceCollection AddWharfCore(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IdGenerator>();
        // This process as the owner of its leases and claims in the catalog (sweeps, hashing, batches).
        services.TryAddSingleton<NodeIdentity>();
        services.TryAddSingleton<FilePurposes>();
        services.TryAddSingleton<FileService>();
        services.TryAddSingleton<KeyService>();
        services.TryAddSingleton<KeyUsageTracker>();
        services.TryAddSingleton<WorkspaceService>();
        services.TryAddSingleton<UploadService>();
        services.TryAddSingleton<UploadHasher>();
        services.TryAddSingleton<DeferredFileHasher>();
        services.TryAddSingleton<UpstreamDeletions>();
        services.TryAddSingleton<ProviderFileCopies>();
        // Model requests: Wharf file ids in their bodies become the candidate provider's copies.
        services.TryAddSingleton<IModelBodyRewriter, FileIdRewriter>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RoutingOptions>, RoutingOptionsValidation>());
        services.TryAddSingleton<ModelRouter>();
        services.TryAddSingleton<ModelDispatcher>();
        services.TryAddSingleton<ModelRequestService>();
        services.TryAddSingleton<BatchSignals>();
        services.TryAddSingleton<BatchService>();
        services.TryAddSingleton<BatchFinalizer>();
        // The executions the batch engine picks from by the batch's execution name.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IBatchExecution, GatewayBatchExecution>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IBatchExecution, NativeBatchExecution>());
        services.TryAddSingleton<WebhookSignals>();
        return services;
    }
}
