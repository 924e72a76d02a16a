using Microsoft.Extensions.DependencyInjection;
using Wharf.Core.Ports;
using Wharf.Providers.Local;

namespace Wharf.Providers;

public static class ProviderServiceCollectionExtensions
{
    /// <summary>Registers the providers and their registry. Today: <c>local</c> only.</summary>
    public static IServiceCollection AddWharfProviders(this IServiceCollection services)
    {
        services.AddSingleton<IProvider, LocalProvider>();
        services.AddSingleton<IProviderRegistry, ProviderRegistry>();
        return services;
    }
}
