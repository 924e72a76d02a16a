using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Wharf.Core;
using Wharf.Core.Auth;
using Wharf.Core.Batches;
using Wharf.Core.Files;
using Wharf.Providers;
using Wharf.Server.Api;
using Wharf.Server.Auth;
using Wharf.Server.Errors;
using Wharf.Server.WebConsole;
using Wharf.Storage;

namespace Wharf.Server.Hosting;

/// <summary>Composition of the Wharf server: what <c>Program.cs</c> calls.</summary>
internal static class WharfHostingExtensions
{
    /// <summary>Every route exists under these prefixes.</summary>
    public static readonly string[] ApiPrefixes = ["/v1", "/openai/v1", "/openai"];

    public static WebApplicationBuilder AddWharf(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<WharfOptions>().BindConfiguration(WharfOptions.Section).ValidateDataAnnotations()
            .Validate(o => IsValid(o.Auth) && IsValid(o.Sweeper) && IsValid(o.RateLimits) && IsValid(o.Metrics),
                "Wharf:Auth, Wharf:Sweeper, Wharf:RateLimits or Wharf:Metrics holds a value out of range (see docs/configuration.md).")
            .Validate(o => o.Auth.AdminKey is null || o.Auth.AdminKey.Length >= 16, "Wharf:Auth:AdminKey must be at least 16 characters.")
            .ValidateOnStart();
        services.AddOptions<FilesOptions>().BindConfiguration(FilesOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.DefaultListLimit <= o.MaxListLimit, "Wharf:Files:DefaultListLimit must not exceed Wharf:Files:MaxListLimit.")
            .Validate(o => o.ExtraPurposes.All(p => !string.IsNullOrWhiteSpace(p) && p.Length <= 64), "Wharf:Files:ExtraPurposes holds an empty or overlong purpose.")
            .ValidateOnStart();

        services.AddOptions<ProviderFilesOptions>().BindConfiguration(ProviderFilesOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.RetryBaseSeconds <= o.RetryMaxSeconds, "Wharf:ProviderFiles:RetryBaseSeconds must not exceed Wharf:ProviderFiles:RetryMaxSeconds.")
            .ValidateOnStart();

        services.AddOptions<BatchesOptions>().BindConfiguration(BatchesOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.NativePollMinSeconds <= o.NativePollMaxSeconds, "Wharf:Batches:NativePollMinSeconds must not exceed Wharf:Batches:NativePollMaxSeconds.")
            .ValidateOnStart();

        services.AddOptions<ServerLimitsOptions>().BindConfiguration(ServerLimitsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<ServerLimitsOptions>, ServerLimitsValidation>();
        services.AddSingleton<IConfigureOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>, KestrelLimits>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestLineSize = 64 * 1024;
            kestrel.Limits.MaxRequestBufferSize = 1024 * 1024;
            kestrel.ConfigureEndpointDefaults(ServerRejectionEnvelope.Use);
        });
        // 64 KiB receives in place of 4 KiB ones: request bodies read at twice the speed (LargeBlockMemoryPool).
        services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>, LargeBlockMemoryPoolFactory>();

        // Wharf:Storage:Catalog chooses the catalog (SQLite in Wharf:DataDir, or PostgreSQL), Wharf:Storage:Blobs the blob
        // store (disk under Wharf:DataDir, or an S3-compatible bucket).
        services.AddWharfStorage(builder.Configuration);
        if (services.AddBlobStore(builder.Configuration[StorageServiceCollectionExtensions.BlobsSetting]))
        {
            services.AddHostedService<BlobStoreStartCheck>();
        }
        services.AddWharfProviders();
        services.AddWharfModelRequests();

        services.AddWharfCore();
        services.TryAddSingleton(sp => new KeyCache(
            sp.GetRequiredService<TimeProvider>(),
            TimeSpan.FromSeconds(sp.GetRequiredService<IOptions<WharfOptions>>().Value.Auth.KeyCacheSeconds)));
        services.AddSingleton<KeyRateLimiter>();
        services.AddSingleton<FailedAuthenticationLimiter>();
        services.AddSingleton<AuthenticationFailureLog>();
        services.AddHostedService(sp => sp.GetRequiredService<AuthenticationFailureLog>());
        services.AddHostedService<StartupTasks>();
        services.TryAddSingleton<SweepLeases>();
        services.AddHostedService<StorageSweeper>();
        services.AddHostedService<ProviderFileSweeper>();
        services.AddHostedService<KeyUsageFlusher>();
        services.AddHostedService<DeferredHashing>();
        services.AddHostedService<RefusedConnectionLog>();
        services.AddHostedService<BatchEngine>();
        services.AddWharfWebhooks();

        services.AddSingleton<KeyGate>();

        services.AddWharfApiDocument();
        builder.AddWharfTelemetry();
        services.AddExceptionHandler<EnvelopeExceptionHandler>();
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.TypeInfoResolverChain.Insert(0, WireJsonContext.Default);
            json.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            // Numbers are written as numbers, and so the OpenAPI document describes them (the web defaults would
            // describe every integer as "integer or string"). No handler binds a body through these options.
            json.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
        });
        return builder;
    }

    private static bool IsValid(object options) =>
        System.ComponentModel.DataAnnotations.Validator.TryValidateObject(options, new System.ComponentModel.DataAnnotations.ValidationContext(options), null, validateAllProperties: true);

    public static WebApplication UseWharf(this WebApplication app)
    {
        app.UseServerRejectionEnvelope();
        app.UseMiddleware<RequestIdMiddleware>();
        app.UseExceptionHandler();
        app.UseEnvelopeForBareStatusCodes();
        // Named here so that routing always runs before the gate: the gate reads the route's RouteAccess, and a route
        // not chosen yet would carry none.
        app.UseRouting();
        app.Use(app.Services.GetRequiredService<KeyGate>().InvokeAsync);
        return app;
    }

    public static WebApplication MapWharf(this WebApplication app)
    {
        var filesOptions = app.Services.GetRequiredService<IOptions<FilesOptions>>();
        // One group over every API route, so that each route's error statuses are described from its final metadata.
        var routes = app.MapGroup("");
        ((IEndpointConventionBuilder)routes).Finally(ErrorResponses.Describe);
        foreach (string prefix in ApiPrefixes)
        {
            var api = routes.MapGroup(prefix).MapFilesApi(filesOptions).MapUploadsApi().MapBatchesApi().MapProvidersApi().MapModelRequests(app.Services);
            if (prefix != ApiPrefixes[0])
            {
                api.ExcludeFromDescription(); // the aliases are the same operations (ApiDocument)
            }
        }
        if (!string.IsNullOrEmpty(app.Services.GetRequiredService<IOptions<WharfOptions>>().Value.Auth.AdminKey))
        {
            routes.MapAdminApi();
        }
        routes.MapHealthApi();
        app.MapWharfApiDocument();
        app.MapWharfMetrics();
        app.MapConsole(); // the web console: public static files that call the API above with the user's key
        return app;
    }
}
