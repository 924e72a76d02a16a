using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Wharf.Core.Auth;
using Wharf.Server.Auth;
using Wharf.Server.Hosting;

namespace Wharf.Server.Tests;

/// <summary>
/// The key gate acts on routes that carry <see cref="RouteAccess"/>; a route mapped without it would be open to
/// anyone. This holds every route the server maps to that, whatever routes are added later.
/// </summary>
public sealed class RouteAccessTests
{
    private static readonly string[] ModelRoutes = ["/chat/completions", "/completions", "/embeddings", "/responses"];

    [Fact]
    public async Task Every_route_but_the_health_probes_and_the_API_document_and_its_reference_takes_a_key()
    {
        var dataDir = Directory.CreateTempSubdirectory("wharf-routes-");
        try
        {
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions
            {
                Args = [$"--Wharf:DataDir={dataDir.FullName}", "--Wharf:Auth:AdminKey=admin-key-for-route-test"],
            });
            builder.AddWharf();
            await using var app = builder.Build();
            app.UseWharf();
            app.MapWharf();

            var routes = ((IEndpointRouteBuilder)app).DataSources.SelectMany(source => source.Endpoints).OfType<RouteEndpoint>().ToList();
            var open = routes.Where(route => route.Metadata.GetMetadata<RouteAccess>() is null).Select(route => route.RoutePattern.RawText);
            // The API document and its reference UI (its page and the page's own assets) and the web console's static
            // files (its data calls take a key like any other) are public by decision (docs/decisions.md); /metrics is
            // not among them: it takes the admin key by default.
            Assert.Equal(
                ["/console/{name?}", "/docs/favicon.svg", "/docs/scalar.aspnetcore.js", "/docs/scalar.js", "/docs/{documentName?}", "/healthz", "/openapi.json", "/readyz"],
                open.Order());

            // The admin API and, unless Wharf:Metrics:Public, the metrics take the admin key alone.
            var admin = routes.Where(route => route.RoutePattern.RawText!.StartsWith("/admin", StringComparison.Ordinal)
                || route.RoutePattern.RawText == TelemetryHosting.MetricsPath).ToList();
            Assert.NotEmpty(admin);
            Assert.Contains(admin, route => route.RoutePattern.RawText == TelemetryHosting.MetricsPath);
            Assert.All(admin, route => Assert.Same(RouteAccess.AdminKey, route.Metadata.GetMetadata<RouteAccess>()));
            // The providers' recent upstream outcomes mix every workspace's calls: they are the operator's, under the
            // admin API, with the list of every configured provider beside them; no workspace route serves them.
            Assert.Contains(admin, route => route.RoutePattern.RawText == "/admin/providers/{id}/outcomes");
            Assert.Contains(admin, route => route.RoutePattern.RawText == "/admin/providers");
            // Every other route takes a workspace key: files:read to read (GET), files:write to change anything;
            // batches batches:read and batches:write alike; the provider list any workspace key (it describes what the
            // key may use); model requests models:invoke.
            var api = routes.Except(admin).Where(route => route.Metadata.GetMetadata<RouteAccess>() is not null).ToList();
            Assert.DoesNotContain(api, route => route.RoutePattern.RawText!.Contains("outcomes", StringComparison.Ordinal));
            Assert.Contains(api, route => route.RoutePattern.RawText!.Contains("/uploads", StringComparison.Ordinal));
            foreach (string prefix in WharfHostingExtensions.ApiPrefixes)
            {
                Assert.All(ModelRoutes, model => Assert.Contains(api, route => route.RoutePattern.RawText == prefix + model));
            }
            Assert.All(api, route =>
            {
                var methods = route.Metadata.GetMetadata<IHttpMethodMetadata>()!.HttpMethods;
                string pattern = route.RoutePattern.RawText!;
                string expected = pattern.EndsWith("/providers", StringComparison.Ordinal) ? ""
                    : ModelRoutes.Any(model => pattern.EndsWith(model, StringComparison.Ordinal)) ? ApiScopes.ModelsInvoke
                    : pattern.Contains("/batches", StringComparison.Ordinal) ? (methods.All(method => method == "GET") ? ApiScopes.BatchesRead : ApiScopes.BatchesWrite)
                    : methods.All(method => method == "GET") ? ApiScopes.FilesRead : ApiScopes.FilesWrite;
                Assert.True(expected == route.Metadata.GetMetadata<RouteAccess>()!.Scope,
                    $"{string.Join(',', methods)} {route.RoutePattern.RawText} should take {expected}.");
            });
        }
        finally
        {
            dataDir.Delete(recursive: true);
        }
    }
}
