using Microsoft.Extensions.Options;
using Wharf.Core.Routing;
using Wharf.Server.Api;

namespace Wharf.Server.Hosting;

/// <summary>Composition of the model requests: routing options, validated at start, and the routes.</summary>
internal static class ModelRequestsHosting
{
    public static IServiceCollection AddWharfModelRequests(this IServiceCollection services)
    {
        services.AddOptions<RoutingOptions>().BindConfiguration(RoutingOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ModelRequestOptions>().BindConfiguration(ModelRequestOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ModelResponseOptions>().BindConfiguration(ModelResponseOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddModelRouting();
        return services;
    }

    public static RouteGroupBuilder MapModelRequests(this RouteGroupBuilder api, IServiceProvider services) =>
        api.MapModelsApi(services.GetRequiredService<IOptions<ModelRequestOptions>>());
}
