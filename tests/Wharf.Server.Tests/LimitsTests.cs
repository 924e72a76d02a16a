using System.Net;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>Rate limits per key and storage quotas per workspace.</summary>
public sealed class LimitsTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly Admin _admin = new(fixture.Server);

    public void Dispose() => _admin.Dispose();

    [Fact]
    public async Task A_key_over_its_rate_gets_429_with_retry_after_and_headers_on_every_response()
    {
        var (_, client) = await _admin.NewTenantAsync("limited", rpm: 3);
        for (int i = 0; i < 3; i++)
        {
            using var ok = await client.GetAsync("/v1/files");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("3", ok.Headers.GetValues("x-ratelimit-limit-requests").Single());
            Assert.Equal((2 - i).ToString(System.Globalization.CultureInfo.InvariantCulture), ok.Headers.GetValues("x-ratelimit-remaining-requests").Single());
            Assert.EndsWith("s", ok.Headers.GetValues("x-ratelimit-reset-requests").Single());
        }
        using var limited = await client.GetAsync("/v1/files");
        var error = await Wire.AssertErrorAsync(limited, 429, code: "rate_limit_exceeded");
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.True(limited.Headers.RetryAfter!.Delta >= TimeSpan.FromSeconds(1));
        Assert.Equal("0", limited.Headers.GetValues("x-ratelimit-remaining-requests").Single());
    }

    [Fact]
    public async Task Limits_are_per_key_and_a_key_can_override_its_workspace()
    {
        string ws = (await _admin.CreateWorkspaceAsync("override", rpm: 2)).GetProperty("id").GetString()!;
        var (_, generous) = await _admin.CreateKeyAsync(ws, "generous", rpm: 5);
        var (_, plain) = await _admin.CreateKeyAsync(ws, "plain");
        using var generousClient = fixture.Server.CreateClient(generous);
        using var plainClient = fixture.Server.CreateClient(plain);

        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await generousClient.GetAsync("/v1/files")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.TooManyRequests, (await generousClient.GetAsync("/v1/files")).StatusCode);

        // The other key of the same workspace has its own bucket, at the workspace's rate.
        Assert.Equal(HttpStatusCode.OK, (await plainClient.GetAsync("/v1/files")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await plainClient.GetAsync("/v1/files")).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await plainClient.GetAsync("/v1/files")).StatusCode);
    }

    [Fact]
    public async Task An_upload_over_the_quota_is_refused_before_its_bytes_are_kept()
    {
        var (ws, client) = await _admin.NewTenantAsync("quota", quota: 1000);
        using (var first = await client.PostAsync("/v1/files", Wire.Form("assistants", new byte[600])))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        Assert.Equal(600, (await _admin.GetWorkspaceAsync(ws)).GetProperty("storage_usage_bytes").GetInt64());

        using (var over = await client.PostAsync("/v1/files", Wire.Form("assistants", new byte[401])))
        {
            await Wire.AssertErrorAsync(over, 403, "file", "storage_quota_exceeded");
        }
        Assert.Empty(Directory.GetFiles(Path.Combine(fixture.Server.DataDir, "blobs", ".staging")));
        var listed = await Wire.GetJsonAsync(client, "/v1/files");
        Assert.Single(listed.Ids());
        Assert.Equal(600, (await _admin.GetWorkspaceAsync(ws)).GetProperty("storage_usage_bytes").GetInt64());

        using (var exact = await client.PostAsync("/v1/files", Wire.Form("assistants", new byte[400])))
        {
            Assert.Equal(HttpStatusCode.OK, exact.StatusCode);
        }
        Assert.Equal(1000, (await _admin.GetWorkspaceAsync(ws)).GetProperty("storage_usage_bytes").GetInt64());

        foreach (string id in (await Wire.GetJsonAsync(client, "/v1/files")).Ids())
        {
            Assert.True((await client.DeleteAsync($"/v1/files/{id}")).IsSuccessStatusCode);
        }
        Assert.Equal(0, (await _admin.GetWorkspaceAsync(ws)).GetProperty("storage_usage_bytes").GetInt64());
        using var full = await client.PostAsync("/v1/files", Wire.Form("assistants", new byte[1000]));
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
    }

    [Fact]
    public async Task Parallel_uploads_never_take_a_workspace_over_its_quota()
    {
        var (ws, client) = await _admin.NewTenantAsync("race", quota: 10_000);
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
        {
            using var response = await client.PostAsync("/v1/files", Wire.Form("assistants", new byte[1500]));
            return response.StatusCode;
        }));
        Assert.Equal(6, results.Count(s => s == HttpStatusCode.OK));
        Assert.All(results, s => Assert.True(s is HttpStatusCode.OK or HttpStatusCode.Forbidden));
        Assert.Equal(9000, (await _admin.GetWorkspaceAsync(ws)).GetProperty("storage_usage_bytes").GetInt64());
        Assert.Equal(6, (await Wire.GetJsonAsync(client, "/v1/files")).Ids().Count);
    }
}
