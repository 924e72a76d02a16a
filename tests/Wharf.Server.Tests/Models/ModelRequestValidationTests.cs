using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.Models;

/// <summary>A server whose model requests may hold at most 1 KiB, and whose routing names no provider.</summary>
public sealed class SmallModelBodyServerFixture : ServerFixture
{
    public const int MaxBodyBytes = 1024;

    protected override string[] Args => ["--Wharf:Requests:MaxBodyBytes=" + MaxBodyBytes];
}

/// <summary>
/// Bad model requests get a clear 4xx in the envelope and leave the server healthy: malformed JSON, no model, a
/// model that is not a string, a body over the limit, an unknown or hostile provider name, a key without the scope.
/// A request no provider can serve is a 503 saying which stage dropped whom.
/// </summary>
public sealed class ModelRequestValidationTests(SmallModelBodyServerFixture fixture) : IClassFixture<SmallModelBodyServerFixture>, IDisposable
{
    private static readonly string[] Endpoints = ["/chat/completions", "/completions", "/embeddings", "/responses"];

    private readonly HttpClient _client = fixture.Server.CreateClient();

    public void Dispose() => _client.Dispose();

    private static ByteArrayContent Json(string text) => Json(Encoding.UTF8.GetBytes(text));

    private static ByteArrayContent Json(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    private async Task AssertHealthyAsync()
    {
        using var health = await _client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Theory]
    [InlineData("{\"model\":", "body", "invalid_json")]
    [InlineData("", "body", "invalid_json")]
    [InlineData("[\"model\"]", "body", "invalid_json")]
    [InlineData("{\"messages\":[]}", "model", "missing_required_parameter")]
    [InlineData("{\"model\":{\"name\":\"gpt\"}}", "model", "invalid_type")]
    [InlineData("{\"model\":\"m\",\"provider\":[\"a\"]}", "provider", "invalid_type")]
    public async Task A_malformed_body_is_a_400_naming_the_parameter_on_every_endpoint_and_prefix(string body, string param, string code)
    {
        foreach (string prefix in (string[])["/v1", "/openai/v1", "/openai"])
        {
            foreach (string endpoint in Endpoints)
            {
                using var response = await _client.PostAsync(prefix + endpoint, Json(body));
                await Wire.AssertErrorAsync(response, 400, param, code);
                Assert.False(response.Headers.Contains("x-wharf-attempts"));
            }
        }
        await AssertHealthyAsync();
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413_whether_its_length_is_announced_or_not()
    {
        string big = "{\"model\":\"m\",\"input\":\"" + new string('x', SmallModelBodyServerFixture.MaxBodyBytes) + "\"}";
        using (var response = await _client.PostAsync("/v1/embeddings", Json(big)))
        {
            await Wire.AssertErrorAsync(response, 413, code: "request_too_large");
        }
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        chunked.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using (var response = await _client.SendAsync(request))
        {
            await Wire.AssertErrorAsync(response, 413, code: "request_too_large");
        }
        await AssertHealthyAsync();
    }

    [Fact]
    public async Task An_unknown_provider_is_a_400_on_provider_wherever_it_is_named()
    {
        using (var response = await _client.PostAsync("/v1/chat/completions", Json("{\"model\":\"m\",\"provider\":\"nope\"}")))
        {
            await Wire.AssertErrorAsync(response, 400, "provider", "unknown_provider");
        }
        using (var response = await _client.PostAsync("/v1/chat/completions?provider=nope", Json("{\"model\":\"m\"}")))
        {
            await Wire.AssertErrorAsync(response, 400, "provider", "unknown_provider");
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json("{\"model\":\"m\"}") };
        request.Headers.Add("x-model-provider", "nope");
        using (var response = await _client.SendAsync(request))
        {
            await Wire.AssertErrorAsync(response, 400, "provider", "unknown_provider");
        }
    }

    [Theory]
    [InlineData("<script>alert(1)</script>")]
    [InlineData("\"}, \"ok\": true, \"x\": {\"")]
    [InlineData("\\u0000 \t; drop")]
    public async Task A_hostile_x_model_provider_is_a_400_that_never_echoes_it_unescaped(string value)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json("{\"model\":\"m\"}") };
        Assert.True(request.Headers.TryAddWithoutValidation("x-model-provider", value + new string('A', 10_000)));

        using var response = await _client.SendAsync(request);

        string raw = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.DoesNotContain("<script>", raw, StringComparison.Ordinal);
        Assert.DoesNotContain(new string('A', 1000), raw, StringComparison.Ordinal);
        using var document = JsonDocument.Parse(raw);
        Assert.False(document.RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal("provider", document.RootElement.GetProperty("error").GetProperty("param").GetString());
        Assert.False(response.Headers.Contains("x-wharf-provider"));
        await AssertHealthyAsync();
    }

    [Fact]
    public async Task A_x_model_provider_of_bytes_that_are_not_ASCII_is_a_400_too()
    {
        byte[] body = Encoding.ASCII.GetBytes("{\"model\":\"m\"}");
        byte[] request =
        [
            .. Encoding.ASCII.GetBytes($"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WharfServer.Key}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\nx-model-provider: caf"),
            0xE9, 0xFF, 0xC3,
            .. Encoding.ASCII.GetBytes("\r\n\r\n"),
            .. body,
        ];

        string answer = await RawHttp.SendAsync(fixture.Server, request);

        Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
        Assert.Contains("\"ok\":false", answer, StringComparison.Ordinal);
        await AssertHealthyAsync();
    }

    [Fact]
    public async Task A_request_no_provider_can_serve_is_a_503_whose_diagnostics_say_which_stage_dropped_whom()
    {
        using var response = await _client.PostAsync("/v1/embeddings", Json("{\"model\":\"local/e\",\"input\":\"x\"}"));

        var error = await Wire.AssertErrorAsync(response, 503, code: "no_eligible_provider");
        Assert.Equal("upstream_error", error.GetProperty("type").GetString());
        var json = await Wire.JsonAsync(response);
        Assert.Equal(0, json.GetProperty("attempt_count").GetInt32());
        var stages = json.GetProperty("routing_diagnostics").GetProperty("filterStages").EnumerateArray().ToList();
        Assert.Equal(["configured_and_enabled", "enabled_for_workspace", "supports_endpoint", "serves_model"], stages.Select(s => s.GetProperty("stage").GetString()));
        var endpointStage = stages[2];
        Assert.Equal((1, 0), (endpointStage.GetProperty("beforeCount").GetInt32(), endpointStage.GetProperty("afterCount").GetInt32()));
        var dropped = Assert.Single(endpointStage.GetProperty("droppedProviders").EnumerateArray());
        Assert.Equal(("local", "unsupported_endpoint"), (dropped.GetProperty("providerId").GetString(), dropped.GetProperty("reason").GetString()));
        var candidates = json.GetProperty("provider_candidate_diagnostics");
        Assert.Equal(["local"], candidates.GetProperty("droppedUnsupportedEndpoint").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("embeddings", json.GetProperty("provider_enablement").GetProperty("capability").GetString());
        Assert.False(response.Headers.Contains("x-wharf-attempts"));
    }

    [Fact]
    public async Task A_model_no_routing_names_is_a_503_too()
    {
        using var response = await _client.PostAsync("/v1/chat/completions", Json("{\"model\":\"gpt-4o\",\"messages\":[]}"));
        var error = await Wire.AssertErrorAsync(response, 503, code: "no_eligible_provider");
        Assert.Contains("Wharf:Routing:Default", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_without_models_invoke_is_refused()
    {
        using var admin = new Admin(fixture.Server);
        var workspace = await admin.CreateWorkspaceAsync("no-models-" + Guid.NewGuid().ToString("N")[..8]);
        var (_, secret) = await admin.CreateKeyAsync(workspace.Id(), scopes: ["files:read"]);
        using var client = fixture.Server.CreateClient(secret);

        using var response = await client.PostAsync("/v1/chat/completions", Json("{\"model\":\"m\"}"));

        await Wire.AssertErrorAsync(response, 403, code: "insufficient_scope");
    }
}

/// <summary>Routing configuration is checked at start.</summary>
public sealed class RoutingConfigurationTests
{
    [Theory]
    [InlineData("--Wharf:Routing:Default:0=nope", "Wharf:Routing:Default:0 names 'nope'")]
    [InlineData("--Wharf:Routing:Models:gpt-4o:0=typo", "Wharf:Routing:Models:gpt-4o:0 names 'typo'")]
    [InlineData("--Wharf:Routing:MaxRetries=-1", "MaxRetries")]
    [InlineData("--Wharf:Requests:MaxBodyBytes=0", "MaxBodyBytes")]
    public async Task A_routing_list_naming_no_provider_or_a_value_out_of_range_stops_the_start_naming_the_key(string arg, string expected)
    {
        var dataDir = Directory.CreateTempSubdirectory("wharf-routing-");
        try
        {
            string output = await WharfServer.RunFailingStartAsync(dataDir.FullName, [], [arg]);
            Assert.Contains(expected, output, StringComparison.Ordinal);
        }
        finally
        {
            dataDir.Delete(recursive: true);
        }
    }
}
