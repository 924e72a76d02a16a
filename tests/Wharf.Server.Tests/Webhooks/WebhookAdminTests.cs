using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests.Webhooks;

/// <summary>The admin sets a workspace's <c>webhook_url</c>: its secret shown once, bad URLs refused, workspace keys kept out.</summary>
public sealed class WebhookAdminTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly Admin _admin = new(fixture.Server);

    public void Dispose() => _admin.Dispose();

    private async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string json)
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await _admin.Client.SendAsync(request);
        return (response.StatusCode, await Wire.JsonAsync(response));
    }

    private static string SecretOf(JsonElement workspace)
    {
        string secret = workspace.GetProperty("webhook_secret").GetString()!;
        Assert.StartsWith("whsec_", secret);
        Assert.Equal(32, Convert.FromBase64String(secret[6..]).Length);
        return secret;
    }

    [Fact]
    public async Task The_admin_sets_changes_and_removes_a_webhook_url_and_sees_each_new_secret_once()
    {
        var (status, created) = await SendAsync(HttpMethod.Post, "/admin/workspaces", """{"name":"hooked","webhook_url":"http://127.0.0.1:9/hook?token=abc"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("http://127.0.0.1:9/hook?token=abc", created.GetProperty("webhook_url").GetString());
        string first = SecretOf(created);
        string id = created.GetProperty("id").GetString()!;

        // Never again: not in a read, not in the list.
        var read = await _admin.GetWorkspaceAsync(id);
        Assert.Equal("http://127.0.0.1:9/hook?token=abc", read.GetProperty("webhook_url").GetString());
        Assert.False(read.TryGetProperty("webhook_secret", out _));
        var list = await Wire.GetJsonAsync(_admin.Client, "/admin/workspaces?limit=100");
        var listed = list.GetProperty("data").EnumerateArray().Single(w => w.GetProperty("id").GetString() == id);
        Assert.Equal("http://127.0.0.1:9/hook?token=abc", listed.GetProperty("webhook_url").GetString());
        Assert.False(listed.TryGetProperty("webhook_secret", out _));

        // A change that leaves the URL alone shows no secret; one that sets it (even to the same URL) shows a new one.
        var (_, renamed) = await SendAsync(HttpMethod.Patch, $"/admin/workspaces/{id}", """{"name":"renamed"}""");
        Assert.False(renamed.TryGetProperty("webhook_secret", out _));
        Assert.Equal("http://127.0.0.1:9/hook?token=abc", renamed.GetProperty("webhook_url").GetString());
        var (_, moved) = await SendAsync(HttpMethod.Patch, $"/admin/workspaces/{id}", """{"webhook_url":"https://hooks.example.com/wharf"}""");
        Assert.Equal("https://hooks.example.com/wharf", moved.GetProperty("webhook_url").GetString());
        string second = SecretOf(moved);
        Assert.NotEqual(first, second);
        var (_, same) = await SendAsync(HttpMethod.Patch, $"/admin/workspaces/{id}", """{"webhook_url":"https://hooks.example.com/wharf"}""");
        Assert.NotEqual(second, SecretOf(same));

        var (removedStatus, removed) = await SendAsync(HttpMethod.Patch, $"/admin/workspaces/{id}", """{"webhook_url":null}""");
        Assert.Equal(HttpStatusCode.OK, removedStatus);
        Assert.Equal(JsonValueKind.Null, removed.GetProperty("webhook_url").ValueKind);
        Assert.False(removed.TryGetProperty("webhook_secret", out _));
        Assert.Equal(JsonValueKind.Null, (await _admin.GetWorkspaceAsync(id)).GetProperty("webhook_url").ValueKind);

        // A workspace made without one has none, and no secret.
        var plain = await _admin.CreateWorkspaceAsync("plain");
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("webhook_url").ValueKind);
        Assert.False(plain.TryGetProperty("webhook_secret", out _));

        // No secret is ever logged.
        Assert.DoesNotContain(first[6..], fixture.Server.Output);
        Assert.DoesNotContain(second[6..], fixture.Server.Output);
    }

    [Theory]
    [InlineData("\"ftp://example.com/hook\"")]
    [InlineData("\"not a url\"")]
    [InlineData("\"/relative/hook\"")]
    [InlineData("\"http://\"")]
    [InlineData("\"javascript:alert(1)\"")]
    [InlineData("\"file:///etc/passwd\"")]
    [InlineData("\"\"")]
    [InlineData("42")]
    [InlineData("[\"http://example.com/\"]")]
    [InlineData("{}")]
    public async Task A_bad_webhook_url_is_400_naming_it_on_create_and_on_change(string value)
    {
        var (status, error) = await SendAsync(HttpMethod.Post, "/admin/workspaces", $$"""{"name":"bad-hook","webhook_url":{{value}}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("webhook_url", error.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("error").GetProperty("type").GetString());

        var workspace = await _admin.CreateWorkspaceAsync("kept-" + Guid.NewGuid().ToString("N")[..8]);
        string id = workspace.GetProperty("id").GetString()!;
        var (patchStatus, patchError) = await SendAsync(HttpMethod.Patch, $"/admin/workspaces/{id}", $$"""{"name":"changed","webhook_url":{{value}}}""");
        Assert.Equal(HttpStatusCode.BadRequest, patchStatus);
        Assert.Equal("webhook_url", patchError.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(workspace.GetProperty("name").GetString(), (await _admin.GetWorkspaceAsync(id)).GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_workspace_key_cannot_set_a_webhook_url()
    {
        var (id, client) = await _admin.NewTenantAsync("tenant-" + Guid.NewGuid().ToString("N")[..8]);
        using (client)
        {
            using var patch = await client.PatchAsync($"/admin/workspaces/{id}", JsonContent.Create(new { webhook_url = "http://127.0.0.1:9/steal" }));
            Assert.True(patch.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, patch.StatusCode.ToString());
            using var create = await client.PostAsJsonAsync("/admin/workspaces", new { name = "x", webhook_url = "http://127.0.0.1:9/steal" });
            Assert.True(create.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, create.StatusCode.ToString());
        }
        Assert.Equal(JsonValueKind.Null, (await _admin.GetWorkspaceAsync(id)).GetProperty("webhook_url").ValueKind);
    }
}

/// <summary>Webhook options are checked at start.</summary>
public sealed class WebhookOptionsTests
{
    [Theory]
    [InlineData("--Wharf:Webhooks:FirstRetrySeconds=11", "FirstRetrySeconds")]
    [InlineData("--Wharf:Webhooks:TimeoutSeconds=0", "TimeoutSeconds")]
    [InlineData("--Wharf:Webhooks:MaxConcurrencyPerWorkspace=17", "MaxConcurrencyPerWorkspace must not exceed")]
    public async Task An_out_of_range_webhook_option_stops_the_start_naming_it(string arg, string named)
    {
        string data = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            string output = await WharfServer.RunFailingStartAsync(data, [], [arg]);
            Assert.Contains(named, output);
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }
}
