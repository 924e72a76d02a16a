using Wharf.Core.Webhooks;

namespace Wharf.Server.Hosting;

/// <summary>Composition of the webhook sender: its options, validated at start, its HTTP client and the service.</summary>
internal static class WebhooksHosting
{
    public static IServiceCollection AddWharfWebhooks(this IServiceCollection services)
    {
        services.AddOptions<WebhooksOptions>().BindConfiguration(WebhooksOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.MaxConcurrencyPerWorkspace <= o.MaxConcurrency,
                "Wharf:Webhooks:MaxConcurrencyPerWorkspace must not exceed Wharf:Webhooks:MaxConcurrency.")
            .ValidateOnStart();
        services.AddHttpClient(WebhookSender.HttpClientName, client =>
            {
                client.Timeout = Timeout.InfiniteTimeSpan; // each attempt has its own, on the injected clock
                client.DefaultRequestHeaders.UserAgent.ParseAdd("Wharf-Webhooks/1");
            })
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AllowAutoRedirect = false, // a redirect is not a 2xx: the attempt failed
                UseCookies = false,
                AutomaticDecompression = System.Net.DecompressionMethods.None,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            })
            .RemoveAllLoggers(); // the factory's own logs would show each URL
        services.AddHostedService<WebhookSender>();
        return services;
    }
}
