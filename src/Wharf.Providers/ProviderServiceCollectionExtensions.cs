using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Wharf.Core.Providers;
using Wharf.Providers.Anthropic;
using Wharf.Providers.Azure;
using Wharf.Providers.Decorators;
using Wharf.Providers.Gemini;
using Wharf.Providers.Http;
using Wharf.Providers.Mock;
using Wharf.Providers.OpenAICompatible;

namespace Wharf.Providers;

public static class ProviderServiceCollectionExtensions
{
    /// <summary>The name of the providers' activity source and meter (upstream calls), for a host to listen to.</summary>
    public const string TelemetryName = ProviderTelemetry.Name;

    /// <summary>
    /// Registers <c>Wharf:Providers</c> (validated at start: a bad entry stops the start with a message naming its
    /// key), the adapters and the registry built from them (<c>local</c> first).
    /// </summary>
    public static IServiceCollection AddWharfProviders(this IServiceCollection services)
    {
        services.AddOptions<ProvidersOptions>()
            .Configure<IConfiguration>((options, configuration) => configuration.GetSection(ProvidersOptions.Section).Bind(options.Entries))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<ProvidersOptions>, ProvidersOptionsValidation>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.AddSingleton<UpstreamHttpClients>();
        services.AddSingleton<RecentUpstreamOutcomes>();
        services.AddSingleton<ProviderTelemetry>();
        services.AddSingleton<IProviderAdapter, OpenAICompatibleAdapter>();
        services.AddSingleton<IProviderAdapter, AzureOpenAIAdapter>();
        services.AddSingleton<IProviderAdapter, MockAdapter>();
        services.AddSingleton<IProviderAdapter, GeminiAdapter>();
        services.AddSingleton<IProviderAdapter, AnthropicAdapter>();
        services.AddSingleton<IProviderRegistry, ProviderRegistry>();
        return services;
    }
}
