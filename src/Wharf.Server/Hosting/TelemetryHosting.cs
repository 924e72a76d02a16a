using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Wharf.Core.Telemetry;
using Wharf.Providers;
using Wharf.Server.Auth;

namespace Wharf.Server.Hosting;

/// <summary>
/// Metrics, traces and logs through OpenTelemetry: the framework's HTTP server and client meters and activities,
/// <c>Wharf</c> (<see cref="WharfMetrics"/>) and <c>Wharf.Providers</c> (upstream calls); <c>GET /metrics</c> in the
/// Prometheus text format from the exporter; traces, and OTLP export of every signal, when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; JSON log lines when <c>Wharf:Logging:Json</c> is true.
/// </summary>
internal static class TelemetryHosting
{
    public const string MetricsPath = "/metrics";
    public const string ServiceName = "wharf";

    public static WebApplicationBuilder AddWharfTelemetry(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.TryAddSingleton<WharfMetrics>();
        services.AddHostedService<WorkspaceUsageGauges>();
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName))
            .WithMetrics(metrics => metrics
                .AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
                .AddMeter(WharfMetrics.MeterName, ProviderServiceCollectionExtensions.TelemetryName)
                .AddPrometheusExporter());
        // Traces exist only to be exported: without an exporter nothing listens, so a request starts no activity and
        // sends no traceparent upstream. The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other
        // OTEL_EXPORTER_OTLP_* settings) itself.
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            telemetry
                .WithTracing(tracing => tracing
                    .AddAspNetCoreInstrumentation(aspNetCore => aspNetCore.Filter = context => context.Request.Path != MetricsPath)
                    .AddHttpClientInstrumentation()
                    .AddSource(ProviderServiceCollectionExtensions.TelemetryName))
                .UseOtlpExporter();
        }
        if (builder.Configuration.GetValue<bool>($"{WharfOptions.Section}:Logging:Json"))
        {
            builder.Logging.AddJsonConsole(json =>
            {
                json.IncludeScopes = true;
                json.UseUtcTimestamp = true;
                json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        return builder;
    }

    /// <summary><c>GET /metrics</c>: behind the admin key unless <c>Wharf:Metrics:Public</c>.</summary>
    public static WebApplication MapWharfMetrics(this WebApplication app)
    {
        var endpoint = app.MapPrometheusScrapingEndpoint(MetricsPath);
        if (!app.Services.GetRequiredService<IOptions<WharfOptions>>().Value.Metrics.Public)
        {
            endpoint.RequireAdminKey();
        }
        return app;
    }
}
