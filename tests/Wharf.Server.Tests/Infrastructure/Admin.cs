using System.Net.Http.Json;
using System.Text.Json;

namespace Wharf.Server.Tests.Infrastructure;

/// <summary>Drives the admin API of a test server: workspaces and keys.</summary>
public sealed class Admin(WharfServer server) : IDisposable
{
    private readonly HttpClient _client = server.CreateClient(WharfServer.AdminKey);

    public HttpClient Client => _client;

    public async Task<JsonElement> CreateWorkspaceAsync(string name, long? quota = null, int? rpm = null)
    {
        var body = new Dictionary<string, object?> { ["name"] = name };
        if (quota is not null)
        {
            body["storage_quota_bytes"] = quota;
        }
        if (rpm is not null)
        {
            body["rate_limit_rpm"] = rpm;
        }
        using var response = await _client.PostAsJsonAsync("/admin/workspaces", body);
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json;
    }

    /// <summary>Creates a key and returns (key id, secret).</summary>
    public async Task<(string Id, string Secret)> CreateKeyAsync(string workspaceId, string name = "test", string[]? scopes = null, int? rpm = null, long? expiresAt = null)
    {
        var body = new Dictionary<string, object?> { ["name"] = name };
        if (scopes is not null)
        {
            body["scopes"] = scopes;
        }
        if (rpm is not null)
        {
            body["rate_limit_rpm"] = rpm;
        }
        if (expiresAt is not null)
        {
            body["expires_at"] = expiresAt;
        }
        using var response = await _client.PostAsJsonAsync($"/admin/workspaces/{workspaceId}/keys", body);
        var json = await Wire.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return (json.GetProperty("id").GetString()!, json.GetProperty("key").GetString()!);
    }

    /// <summary>A new workspace with one all-scopes key, and a client using that key.</summary>
    public async Task<(string WorkspaceId, HttpClient Client)> NewTenantAsync(string name, long? quota = null, int? rpm = null)
    {
        var workspace = await CreateWorkspaceAsync(name, quota, rpm);
        string id = workspace.GetProperty("id").GetString()!;
        var (_, secret) = await CreateKeyAsync(id);
        return (id, server.CreateClient(secret));
    }

    public async Task<JsonElement> GetWorkspaceAsync(string id) => await Wire.GetJsonAsync(_client, $"/admin/workspaces/{id}");

    public void Dispose() => _client.Dispose();
}
