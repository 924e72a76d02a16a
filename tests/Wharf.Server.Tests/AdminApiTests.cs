using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>A server whose background jobs run every second, so deletion and last-used times show quickly.</summary>
public sealed class FastSweepServerFixture : ServerFixture
{
    protected override string[] Args => ["--Wharf:Sweeper:IntervalSeconds=1", "--Wharf:Auth:LastUsedFlushSeconds=1"];
}

/// <summary>The admin API: workspaces, keys, scopes, revocation, deletion, admin authentication.</summary>
public sealed class AdminApiTests(FastSweepServerFixture fixture) : IClassFixture<FastSweepServerFixture>, IDisposable
{
    private readonly Admin _admin = new(fixture.Server);

    public void Dispose() => _admin.Dispose();

    private static async Task<T> PollAsync<T>(Func<Task<T>> read, Func<T, bool> done)
    {
        T value = await read();
        for (int i = 0; i < 100 && !done(value); i++)
        {
            await Task.Delay(100);
            value = await read();
        }
        return value;
    }

    [Fact]
    public async Task Workspaces_can_be_created_read_listed_changed_and_deleted()
    {
        var created = await _admin.CreateWorkspaceAsync("team-a", quota: 1000, rpm: 60);
        string id = created.GetProperty("id").GetString()!;
        Assert.Matches("^ws_[0-9a-f]{32}$", id);
        Assert.Equal("workspace", created.GetProperty("object").GetString());
        Assert.Equal("team-a", created.GetProperty("name").GetString());
        Assert.Equal(1000, created.GetProperty("storage_quota_bytes").GetInt64());
        Assert.Equal(0, created.GetProperty("storage_usage_bytes").GetInt64());
        Assert.Equal(60, created.GetProperty("rate_limit_rpm").GetInt32());
        Assert.True(created.GetProperty("created_at").GetInt64() > 0);

        Assert.Equal(created.ToString(), (await _admin.GetWorkspaceAsync(id)).ToString());
        var list = await Wire.GetJsonAsync(_admin.Client, "/admin/workspaces?limit=100");
        Assert.Equal("list", list.GetProperty("object").GetString());
        Assert.Contains(id, list.Ids());

        using (var patch = await _admin.Client.PatchAsync($"/admin/workspaces/{id}", JsonContent.Create(new { name = "team-a2", rate_limit_rpm = (int?)null })))
        {
            var patched = await Wire.JsonAsync(patch);
            Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
            Assert.Equal("team-a2", patched.GetProperty("name").GetString());
            Assert.Equal(1000, patched.GetProperty("storage_quota_bytes").GetInt64());
            Assert.Equal(JsonValueKind.Null, patched.GetProperty("rate_limit_rpm").ValueKind);
        }

        using (var delete = await _admin.Client.DeleteAsync($"/admin/workspaces/{id}"))
        {
            var deleted = await Wire.JsonAsync(delete);
            Assert.True(deleted.GetProperty("deleted").GetBoolean());
            Assert.Equal(id, deleted.GetProperty("id").GetString());
        }
        await Wire.AssertErrorAsync(await _admin.Client.GetAsync($"/admin/workspaces/{id}"), 404, "id");
        await Wire.AssertErrorAsync(await _admin.Client.DeleteAsync($"/admin/workspaces/{id}"), 404, "id");
        Assert.DoesNotContain(id, (await Wire.GetJsonAsync(_admin.Client, "/admin/workspaces?limit=100")).Ids());
    }

    [Fact]
    public async Task Workspace_list_pages_with_after()
    {
        for (int i = 0; i < 5; i++)
        {
            await _admin.CreateWorkspaceAsync($"page-{i}");
        }
        var seen = new List<string>();
        string? after = null;
        while (true)
        {
            var page = await Wire.GetJsonAsync(_admin.Client, "/admin/workspaces?limit=2" + (after is null ? "" : "&after=" + after));
            Assert.True(page.Ids().Count <= 2);
            seen.AddRange(page.Ids());
            if (!page.GetProperty("has_more").GetBoolean())
            {
                break;
            }
            after = page.GetProperty("last_id").GetString();
        }
        Assert.Equal(seen.Distinct().Count(), seen.Count);
        Assert.Equal(seen.Order(StringComparer.Ordinal), seen);
        Assert.True(seen.Count >= 6);
    }

    [Theory]
    [InlineData("{}", "name")]
    [InlineData("{\"name\":\"\"}", "name")]
    [InlineData("{\"name\":42}", "name")]
    [InlineData("{\"name\":\"x\",\"storage_quota_bytes\":-1}", "storage_quota_bytes")]
    [InlineData("{\"name\":\"x\",\"storage_quota_bytes\":\"big\"}", "storage_quota_bytes")]
    [InlineData("{\"name\":\"x\",\"rate_limit_rpm\":0}", "rate_limit_rpm")]
    [InlineData("{\"name\":\"x\",\"rate_limit_rpm\":1.5}", "rate_limit_rpm")]
    [InlineData("not json", "body")]
    [InlineData("[1]", "body")]
    public async Task Bad_workspace_bodies_are_400_naming_the_field(string body, string param)
    {
        using var response = await _admin.Client.PostAsync("/admin/workspaces", new StringContent(body, Encoding.UTF8, "application/json"));
        await Wire.AssertErrorAsync(response, 400, param);
    }

    [Fact]
    public async Task A_key_is_shown_once_works_and_revocation_is_immediate()
    {
        string ws = (await _admin.CreateWorkspaceAsync("keys")).GetProperty("id").GetString()!;
        var (keyId, secret) = await _admin.CreateKeyAsync(ws, "ci");
        Assert.Matches("^sk-wh-[0-9A-Za-z]{40}$", secret);
        Assert.Matches("^key_[0-9a-f]{32}$", keyId);

        var keys = await Wire.GetJsonAsync(_admin.Client, $"/admin/workspaces/{ws}/keys");
        var listed = Assert.Single(keys.GetProperty("data").EnumerateArray());
        Assert.False(listed.TryGetProperty("key", out _));
        Assert.Equal("api_key", listed.GetProperty("object").GetString());
        Assert.StartsWith("sk-wh-", listed.GetProperty("prefix").GetString());
        Assert.DoesNotContain(secret[10..], keys.ToString());
        Assert.Equal(["files:read", "files:write", "batches:read", "batches:write", "models:invoke"], listed.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));

        using var client = fixture.Server.CreateClient(secret);
        Assert.True((await client.GetAsync("/v1/files")).IsSuccessStatusCode);

        var used = await PollAsync(
            () => Wire.GetJsonAsync(_admin.Client, $"/admin/workspaces/{ws}/keys"),
            k => k.GetProperty("data")[0].GetProperty("last_used_at").ValueKind == JsonValueKind.Number);
        Assert.Equal(JsonValueKind.Number, used.GetProperty("data")[0].GetProperty("last_used_at").ValueKind);

        using (var revoke = await _admin.Client.DeleteAsync($"/admin/keys/{keyId}"))
        {
            Assert.True((await Wire.JsonAsync(revoke)).GetProperty("deleted").GetBoolean());
        }
        await Wire.AssertErrorAsync(await client.GetAsync("/v1/files"), 401);
        await Wire.AssertErrorAsync(await _admin.Client.DeleteAsync($"/admin/keys/{keyId}"), 404, "id");
    }

    [Fact]
    public async Task Scopes_limit_what_a_key_may_do()
    {
        string ws = (await _admin.CreateWorkspaceAsync("scopes")).GetProperty("id").GetString()!;
        var (_, readOnly) = await _admin.CreateKeyAsync(ws, "reader", ["files:read"]);
        var (_, writeOnly) = await _admin.CreateKeyAsync(ws, "writer", ["files:write"]);
        using var reader = fixture.Server.CreateClient(readOnly);
        using var writer = fixture.Server.CreateClient(writeOnly);

        string id = (await Wire.UploadAsync(writer)).Id();
        Assert.True((await reader.GetAsync($"/v1/files/{id}")).IsSuccessStatusCode);
        Assert.True((await reader.GetAsync($"/v1/files/{id}/content")).IsSuccessStatusCode);

        var error = await Wire.AssertErrorAsync(await reader.PostAsync("/v1/files", Wire.Form("assistants", "x"u8.ToArray())), 403);
        Assert.Equal("permission_error", error.GetProperty("type").GetString());
        await Wire.AssertErrorAsync(await reader.DeleteAsync($"/v1/files/{id}"), 403);
        await Wire.AssertErrorAsync(await writer.GetAsync("/v1/files"), 403);
        await Wire.AssertErrorAsync(await writer.GetAsync($"/v1/files/{id}"), 403);
        Assert.True((await writer.DeleteAsync($"/v1/files/{id}")).IsSuccessStatusCode);

        using var badScope = await _admin.Client.PostAsJsonAsync($"/admin/workspaces/{ws}/keys", new { name = "x", scopes = new[] { "files:admin" } });
        await Wire.AssertErrorAsync(badScope, 400, "scopes");
    }

    [Fact]
    public async Task An_expired_key_stops_working()
    {
        string ws = (await _admin.CreateWorkspaceAsync("expiry")).GetProperty("id").GetString()!;
        var (_, secret) = await _admin.CreateKeyAsync(ws, expiresAt: DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 2);
        using var client = fixture.Server.CreateClient(secret);
        Assert.True((await client.GetAsync("/v1/files")).IsSuccessStatusCode);
        var status = await PollAsync(async () => (await client.GetAsync("/v1/files")).StatusCode, s => s == HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.Unauthorized, status);

        using var past = await _admin.Client.PostAsJsonAsync($"/admin/workspaces/{ws}/keys", new { name = "x", expires_at = 1000 });
        await Wire.AssertErrorAsync(past, 400, "expires_at");
    }

    [Fact]
    public async Task Deleting_a_workspace_stops_its_keys_and_sweeps_its_files_only()
    {
        var (doomed, doomedClient) = await _admin.NewTenantAsync("doomed");
        var (_, survivorClient) = await _admin.NewTenantAsync("survivor");
        var doomedFiles = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            doomedFiles.Add((await Wire.UploadAsync(doomedClient, text: $"doomed {i}")).Id());
        }
        string kept = (await Wire.UploadAsync(survivorClient, text: "kept")).Id();

        Assert.True((await _admin.Client.DeleteAsync($"/admin/workspaces/{doomed}")).IsSuccessStatusCode);
        await Wire.AssertErrorAsync(await doomedClient.GetAsync("/v1/files"), 401);

        string blobs = Path.Combine(fixture.Server.DataDir, "blobs");
        bool BlobExists(string id) => File.Exists(Path.Combine(blobs, id[^2..], id));
        var remaining = await PollAsync(() => Task.FromResult(doomedFiles.Count(BlobExists)), n => n == 0);
        Assert.Equal(0, remaining);

        Assert.True(BlobExists(kept));
        Assert.Equal("kept", await survivorClient.GetStringAsync($"/v1/files/{kept}/content"));
    }

    [Fact]
    public async Task The_admin_api_takes_only_the_admin_key()
    {
        using var anonymous = fixture.Server.CreateClient(key: null);
        await Wire.AssertErrorAsync(await anonymous.GetAsync("/admin/workspaces"), 401);
        using var workspaceKey = fixture.Server.CreateClient();
        await Wire.AssertErrorAsync(await workspaceKey.GetAsync("/admin/workspaces"), 401);
        await Wire.AssertErrorAsync(await workspaceKey.PostAsJsonAsync("/admin/workspaces", new { name = "x" }), 401);
        using var wrong = fixture.Server.CreateClient(WharfServer.AdminKey + "x");
        await Wire.AssertErrorAsync(await wrong.GetAsync("/admin/workspaces"), 401);
        // ... and the admin key is not a workspace key.
        await Wire.AssertErrorAsync(await _admin.Client.GetAsync("/v1/files"), 401);
        Assert.DoesNotContain(WharfServer.AdminKey, fixture.Server.Output);
    }
}
