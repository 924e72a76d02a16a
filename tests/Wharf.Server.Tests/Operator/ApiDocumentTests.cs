using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Wharf.Server.Hosting;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.Operator;

/// <summary>
/// <c>GET /openapi.json</c> and <c>GET /docs</c> on the real server: every route the server maps is in the document,
/// and real answers (a file object, error envelopes) have exactly the members, of the types, the document says.
/// </summary>
public sealed class ApiDocumentTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private WharfServer Server => fixture.Server;

    /// <summary>
    /// Routes that serve the operator, not the API: the document itself, its UI, the metrics, the web console's files
    /// (its data calls are the API's own routes).
    /// </summary>
    private static readonly string[] OperatorRoutes = ["/openapi.json", "/docs", "/metrics", "/console"];

    [Fact]
    public async Task Every_route_the_server_maps_is_in_the_document_with_its_method_and_the_aliases_are_the_v1_operations()
    {
        using var anonymous = Server.CreateClient(key: null);
        var document = await Wire.GetJsonAsync(anonymous, ApiDocument.Path);
        Assert.StartsWith("3.1", document.GetProperty("openapi").GetString());
        var paths = document.GetProperty("paths");

        var routes = MappedRoutes();
        Assert.Contains(routes, r => r.Pattern == "/v1/files" && r.Method == "POST"); // the enumeration sees the API
        int checkedRoutes = 0;
        foreach (var (pattern, method) in routes)
        {
            if (OperatorRoutes.Any(o => pattern == o || pattern.StartsWith(o + "/", StringComparison.Ordinal)))
            {
                continue;
            }
            string documented = pattern;
            foreach (string alias in (string[])["/openai/v1/", "/openai/"])
            {
                if (pattern.StartsWith(alias, StringComparison.Ordinal))
                {
                    documented = "/v1/" + pattern[alias.Length..];
                    break;
                }
            }
            Assert.True(paths.TryGetProperty(documented, out var item), $"{method} {pattern} is not in the document (as {documented})");
            Assert.True(item.TryGetProperty(method.ToLowerInvariant(), out var operation), $"{method} {pattern} has no '{method}' operation in the document");
            Assert.True(operation.TryGetProperty("responses", out var responses) && responses.TryGetProperty("200", out _), $"{method} {pattern} documents no 200");
            checkedRoutes++;
        }
        Assert.True(checkedRoutes >= 3 * 16 + 10, $"only {checkedRoutes} routes checked");
        // The aliases are described once, under /v1.
        Assert.DoesNotContain(paths.EnumerateObject(), p => p.Name.StartsWith("/openai", StringComparison.Ordinal));
        // The providers' recent outcomes are the operator's (admin API), not a workspace route's.
        Assert.True(paths.GetProperty("/admin/providers/{id}/outcomes").TryGetProperty("get", out _));
        Assert.True(paths.GetProperty("/admin/providers").TryGetProperty("get", out _));
        Assert.DoesNotContain(paths.EnumerateObject(), p => p.Name.StartsWith("/v1/", StringComparison.Ordinal) && p.Name.Contains("outcomes", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Key_routes_document_the_bearer_scheme_and_the_error_envelope_on_every_error_status()
    {
        using var anonymous = Server.CreateClient(key: null);
        var document = await Wire.GetJsonAsync(anonymous, ApiDocument.Path);
        var scheme = document.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer");
        Assert.Equal("http", scheme.GetProperty("type").GetString());
        Assert.Equal("bearer", scheme.GetProperty("scheme").GetString());

        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                var responses = operation.Value.GetProperty("responses");
                foreach (var response in responses.EnumerateObject().Where(r => r.Name[0] is '4' or '5'))
                {
                    string reference = response.Value.GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString()!;
                    Assert.Equal("#/components/schemas/ErrorEnvelope", reference);
                }
                if (path.Name is "/healthz" or "/readyz")
                {
                    Assert.False(operation.Value.TryGetProperty("security", out _));
                    continue;
                }
                Assert.Equal("bearer", Assert.Single(operation.Value.GetProperty("security").EnumerateArray()).EnumerateObject().Single().Name);
                foreach (string status in (string[])["400", "401", "429", "500"])
                {
                    Assert.True(responses.TryGetProperty(status, out _), $"{operation.Name} {path.Name} documents no {status}");
                }
            }
        }
        var upload = document.GetProperty("paths").GetProperty("/v1/files").GetProperty("post");
        var form = upload.GetProperty("requestBody").GetProperty("content").GetProperty("multipart/form-data").GetProperty("schema");
        var formSchema = Resolve(document, form);
        Assert.Equal("binary", Resolve(document, formSchema.GetProperty("properties").GetProperty("file")).GetProperty("format").GetString());
        foreach (string status in (string[])["413", "415"])
        {
            Assert.True(upload.GetProperty("responses").TryGetProperty(status, out _), $"POST /v1/files documents no {status}");
        }
        var batch = document.GetProperty("paths").GetProperty("/v1/batches").GetProperty("post").GetProperty("requestBody").GetProperty("content");
        Assert.Contains("input_file_id", Resolve(document, batch.GetProperty("application/json").GetProperty("schema")).GetProperty("properties").EnumerateObject().Select(p => p.Name));
        var list = document.GetProperty("paths").GetProperty("/v1/files").GetProperty("get").GetProperty("parameters");
        Assert.Contains("purpose", list.EnumerateArray().Select(p => p.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task A_file_object_and_error_envelopes_as_sent_match_the_documents_schemas()
    {
        using var anonymous = Server.CreateClient(key: null);
        var document = await Wire.GetJsonAsync(anonymous, ApiDocument.Path);
        using var client = Server.CreateClient();

        var file = await Wire.UploadAsync(client, "assistants", "schema check", "s.txt", ("metadata", "{\"team\":\"docs\"}"), ("collection", "c1"));
        AssertMatches(document, SchemaOf(document, "/v1/files", "post", "200"), file, "file");
        var listed = await Wire.GetJsonAsync(client, "/v1/files");
        AssertMatches(document, SchemaOf(document, "/v1/files", "get", "200"), listed, "list");

        using var notFound = await client.GetAsync("/v1/files/file-0000000000000000000000");
        var notFoundBody = await EnvelopeAsync(notFound, 404);
        AssertMatches(document, SchemaOf(document, "/v1/files/{id}", "get", "404"), notFoundBody, "404");

        using var unauthorized = await anonymous.GetAsync("/v1/files");
        var unauthorizedBody = await EnvelopeAsync(unauthorized, 401);
        AssertMatches(document, SchemaOf(document, "/v1/files", "get", "401"), unauthorizedBody, "401");

        using var badPurpose = await client.PostAsync("/v1/files", Wire.Form("not-a-purpose", "x"u8.ToArray()));
        var badPurposeBody = await EnvelopeAsync(badPurpose, 400, "purpose");
        AssertMatches(document, SchemaOf(document, "/v1/files", "post", "400"), badPurposeBody, "400");
    }

    [Fact]
    public async Task Docs_serves_an_html_reference_that_loads_the_document_without_a_key()
    {
        using var anonymous = Server.CreateClient(key: null);
        using var page = await anonymous.GetAsync(ApiDocument.ReferencePath);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        string html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<html", html, StringComparison.OrdinalIgnoreCase);
        // The page's document source, resolved against the page's own address, is the document.
        var source = System.Text.RegularExpressions.Regex.Match(html, "\"url\":\"([^\"]+)\"");
        Assert.True(source.Success, html);
        var pageAddress = page.RequestMessage!.RequestUri!;
        Assert.Equal(ApiDocument.Path, new Uri(pageAddress, source.Groups[1].Value).AbsolutePath);
        var script = System.Text.RegularExpressions.Regex.Match(html, "<script src=\"([^\"]+)\"");
        using var js = await anonymous.GetAsync(new Uri(pageAddress, script.Groups[1].Value));
        Assert.Equal(HttpStatusCode.OK, js.StatusCode);
    }

    /// <summary>The whole error envelope of an answer (checked as the API's other tests check it).</summary>
    private static async Task<JsonElement> EnvelopeAsync(HttpResponseMessage response, int status, string? param = null)
    {
        await Wire.AssertErrorAsync(response, status, param);
        return await Wire.JsonAsync(response);
    }

    /// <summary>The routes the server maps (pattern and method), enumerated from its endpoint data sources in process.</summary>
    private static List<(string Pattern, string Method)> MappedRoutes()
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-routes-" + Guid.NewGuid().ToString("N"));
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ["--Wharf:DataDir=" + dataDir, "--Wharf:Auth:AdminKey=" + WharfServer.AdminKey, "--Wharf:Providers:mock:Type=mock"],
        });
        builder.AddWharf();
        using var app = builder.Build();
        app.MapWharf();
        var routes = new List<(string, string)>();
        foreach (var endpoint in ((IEndpointRouteBuilder)app).DataSources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>())
        {
            string pattern = "/" + endpoint.RoutePattern.RawText!.Trim('/');
            foreach (string method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
            {
                routes.Add((pattern.Length > 1 && pattern.EndsWith('/') ? pattern[..^1] : pattern, method));
            }
        }
        return routes;
    }

    private static JsonElement SchemaOf(JsonElement document, string path, string method, string status) =>
        Resolve(document, document.GetProperty("paths").GetProperty(path).GetProperty(method).GetProperty("responses")
            .GetProperty(status).GetProperty("content").GetProperty("application/json").GetProperty("schema"));

    private static JsonElement Resolve(JsonElement document, JsonElement schema)
    {
        while (schema.TryGetProperty("$ref", out var reference))
        {
            string name = reference.GetString()!["#/components/schemas/".Length..];
            schema = document.GetProperty("components").GetProperty("schemas").GetProperty(name);
        }
        return schema;
    }

    /// <summary>
    /// The value has no member the schema does not name, every required member, and each value of a type the schema
    /// allows; nested objects and arrays are checked the same way.
    /// </summary>
    private static void AssertMatches(JsonElement document, JsonElement schema, JsonElement value, string at)
    {
        schema = Resolve(document, schema);
        if (schema.TryGetProperty("oneOf", out var oneOf))
        {
            var errors = new List<string>();
            foreach (var option in oneOf.EnumerateArray())
            {
                try
                {
                    AssertMatches(document, option, value, at);
                    return;
                }
                catch (Xunit.Sdk.XunitException e)
                {
                    errors.Add(e.Message);
                }
            }
            Assert.Fail($"{at}: matches none of oneOf: {string.Join(" | ", errors)}");
        }
        var types = TypesOf(schema);
        string kind = value.ValueKind switch
        {
            JsonValueKind.Object => "object",
            JsonValueKind.Array => "array",
            JsonValueKind.String => "string",
            JsonValueKind.Number => value.TryGetInt64(out _) ? "integer" : "number",
            JsonValueKind.True or JsonValueKind.False => "boolean",
            _ => "null",
        };
        Assert.True(types.Count == 0 || types.Contains(kind) || (kind == "integer" && types.Contains("number")),
            $"{at}: a {kind}, the document says {string.Join("|", types)}");
        if (kind == "object" && schema.TryGetProperty("properties", out var properties))
        {
            foreach (var member in value.EnumerateObject())
            {
                Assert.True(properties.TryGetProperty(member.Name, out var property), $"{at}.{member.Name} is not in the document's schema");
                AssertMatches(document, property, member.Value, $"{at}.{member.Name}");
            }
            if (schema.TryGetProperty("required", out var required))
            {
                foreach (var name in required.EnumerateArray())
                {
                    Assert.True(value.TryGetProperty(name.GetString()!, out _), $"{at}.{name} is required by the document but absent");
                }
            }
        }
        if (kind == "object" && schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.Object)
        {
            foreach (var member in value.EnumerateObject())
            {
                AssertMatches(document, additional, member.Value, $"{at}.{member.Name}");
            }
        }
        if (kind == "array" && schema.TryGetProperty("items", out var items))
        {
            int i = 0;
            foreach (var item in value.EnumerateArray())
            {
                AssertMatches(document, items, item, $"{at}[{i++}]");
            }
        }
    }

    private static HashSet<string> TypesOf(JsonElement schema) =>
        !schema.TryGetProperty("type", out var type) ? []
        : type.ValueKind == JsonValueKind.Array ? [.. type.EnumerateArray().Select(t => t.GetString()!)]
        : [type.GetString()!];
}
