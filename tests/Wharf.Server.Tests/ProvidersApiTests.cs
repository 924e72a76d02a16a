using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>Workspaces' <c>allowed_providers</c> in the admin API, and <c>GET /v1/providers</c>.</summary>
public sealed class ProvidersApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly Admin _admin = new(fixture.Server);

    public void Dispose() => _admin.Dispose();

    [Fact]
    public async Task Allowed_providers_is_null_by_default_set_on_create_changed_cleared_and_checked()
    {
        var plain = await _admin.CreateWorkspaceAsync("providers-plain");
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("allowed_providers").ValueKind);

        using var created = await _admin.Client.PostAsJsonAsync("/admin/workspaces", new { name = "providers-set", allowed_providers = new[] { "local", "local" } });
        var json = await Wire.JsonAsync(created);
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        Assert.Equal(["local"], json.GetProperty("allowed_providers").EnumerateArray().Select(e => e.GetString()));
        string id = json.GetProperty("id").GetString()!;

        using var none = await _admin.Client.PatchAsJsonAsync($"/admin/workspaces/{id}", new { allowed_providers = Array.Empty<string>() });
        Assert.Equal(0, (await Wire.JsonAsync(none)).GetProperty("allowed_providers").GetArrayLength());
        using var read = await _admin.Client.GetAsync($"/admin/workspaces/{id}");
        Assert.Equal(0, (await Wire.JsonAsync(read)).GetProperty("allowed_providers").GetArrayLength());

        using var cleared = await _admin.Client.PatchAsync($"/admin/workspaces/{id}", JsonContent.Create(JsonDocument.Parse("""{"allowed_providers":null}""").RootElement));
        Assert.Equal(JsonValueKind.Null, (await Wire.JsonAsync(cleared)).GetProperty("allowed_providers").ValueKind);

        using var unknown = await _admin.Client.PostAsJsonAsync("/admin/workspaces", new { name = "providers-bad", allowed_providers = new[] { "nope" } });
        var error = await Wire.JsonAsync(unknown);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal("allowed_providers", error.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("unknown_provider", error.GetProperty("error").GetProperty("code").GetString());

        using var notStrings = await _admin.Client.PatchAsJsonAsync($"/admin/workspaces/{id}", new { allowed_providers = new[] { 1 } });
        Assert.Equal(HttpStatusCode.BadRequest, notStrings.StatusCode);
        Assert.Equal("allowed_providers", (await Wire.JsonAsync(notStrings)).GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Providers_are_listed_for_any_workspace_key_without_a_secret()
    {
        var workspace = await _admin.CreateWorkspaceAsync("providers-list");
        string id = workspace.GetProperty("id").GetString()!;
        var (_, secret) = await _admin.CreateKeyAsync(id, scopes: ["files:read"]);
        using var client = fixture.Server.CreateClient(secret);

        foreach (string path in new[] { "/v1/providers", "/openai/v1/providers", "/openai/providers" })
        {
            using var response = await client.GetAsync(path);
            var json = await Wire.JsonAsync(response);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("list", json.GetProperty("object").GetString());
            var local = Assert.Single(json.GetProperty("data").EnumerateArray());
            Assert.Equal("local", local.GetProperty("id").GetString());
            Assert.Equal("provider", local.GetProperty("object").GetString());
            Assert.Equal("local", local.GetProperty("type").GetString());
            Assert.Equal(0, local.GetProperty("capabilities").GetArrayLength());
            Assert.Equal(JsonValueKind.Null, local.GetProperty("models").ValueKind);
        }

        using var anonymous = fixture.Server.CreateClient(null);
        using var refused = await anonymous.GetAsync("/v1/providers");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    [Fact]
    public async Task A_key_created_without_scopes_holds_models_invoke_and_one_created_with_some_does_not()
    {
        var workspace = await _admin.CreateWorkspaceAsync("providers-scopes");
        string id = workspace.GetProperty("id").GetString()!;
        using var key = await _admin.Client.PostAsJsonAsync($"/admin/workspaces/{id}/keys", new { name = "all" });
        var json = await Wire.JsonAsync(key);
        Assert.Contains("models:invoke", json.GetProperty("scopes").EnumerateArray().Select(e => e.GetString()));
        using var restricted = await _admin.Client.PostAsJsonAsync($"/admin/workspaces/{id}/keys", new { name = "files", scopes = new[] { "files:read" } });
        Assert.DoesNotContain("models:invoke", (await Wire.JsonAsync(restricted)).GetProperty("scopes").EnumerateArray().Select(e => e.GetString()));
    }
}
