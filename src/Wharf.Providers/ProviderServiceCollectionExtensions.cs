using Microsoft.Extensions.DependencyInjection;
using Wharf.Core.Providers;
using Wharf.Providers.Local;

namespace Wharf.Providers;

public static class ProviderServiceCollectionExtensions
{
    /// <summary>Registers the providers and their registry. Today: <c>local</c> only.</summary>
    public static IServiceCollection AddWharfProviders(this IServiceCollection services)
    {
        services.AddSingleton<IProviderRegistry>(_ => new ProviderRegistry([new RegisteredProvider(new LocalProvider(), Enabled: true, Models: null)]));
        return services;
    }
}
