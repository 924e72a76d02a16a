using System.Collections.Concurrent;
using System.Security.Cryptography;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>Nothing crosses a workspace: every route × {own, other workspace's, deleted, unknown} object.</summary>
public sealed class IsolationTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly Admin _admin = new(fixture.Server);

    public void Dispose() => _admin.Dispose();

    public static TheoryData<string, string> Matrix()
    {
        var data = new TheoryData<string, string>();
        foreach (string route in new[] { "get", "content", "delete" })
        {
            foreach (string target in new[] { "own", "other", "deleted", "unknown" })
            {
                data.Add(route, target);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Only_own_objects_are_found(string route, string target)
    {
        var (_, mine) = await _admin.NewTenantAsync("mine");
        var (_, theirs) = await _admin.NewTenantAsync("theirs");
        string own = (await Wire.UploadAsync(mine, text: "own")).Id();
        string other = (await Wire.UploadAsync(theirs, text: "other")).Id();
        string deleted = (await Wire.UploadAsync(mine, text: "deleted")).Id();
        Assert.True((await mine.DeleteAsync($"/v1/files/{deleted}")).IsSuccessStatusCode);
        string id = target switch
        {
            "own" => own,
            "other" => other,
            "deleted" => deleted,
            _ => "file-0000000000000000000000",
        };
        foreach (string prefix in new[] { "/v1", "/openai/v1", "/openai" })
        {
            using var response = route switch
            {
                "get" => await mine.GetAsync($"{prefix}/files/{id}"),
                "content" => await mine.GetAsync($"{prefix}/files/{id}/content"),
                _ => await mine.DeleteAsync($"{prefix}/files/{id}"),
            };
            if (target == "own")
            {
                Assert.True(response.IsSuccessStatusCode, $"{route} {prefix}: {(int)response.StatusCode}");
                if (route == "delete")
                {
                    break; // deleted now: the next prefix would rightly be 404
                }
            }
            else
            {
                var error = await Wire.AssertErrorAsync(response, 404, "id");
                Assert.Equal($"No such File object: {id}", error.GetProperty("message").GetString());
            }
        }
        // The other workspace's file is untouched whatever was tried on it.
        Assert.Equal("other", await theirs.GetStringAsync($"/v1/files/{other}/content"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("purpose=batch")]
    [InlineData("status=processed")]
    [InlineData("provider=local")]
    [InlineData("x-model-provider=local")]
    [InlineData("collection=shared-name")]
    [InlineData("metadata.team=shared")]
    [InlineData("order=asc&limit=1")]
    public async Task Lists_never_show_another_workspace(string filter)
    {
        var (_, mine) = await _admin.NewTenantAsync("mine");
        var (_, theirs) = await _admin.NewTenantAsync("theirs");
        var own = new List<string>();
        var other = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            own.Add((await Wire.UploadAsync(mine, "batch", "x", "a.jsonl", ("collection", "shared-name"), ("metadata", "{\"team\":\"shared\"}"))).Id());
            other.Add((await Wire.UploadAsync(theirs, "batch", "y", "b.jsonl", ("collection", "shared-name"), ("metadata", "{\"team\":\"shared\"}"))).Id());
        }
        var seen = new List<string>();
        string? after = null;
        while (true)
        {
            var page = await Wire.GetJsonAsync(mine, $"/v1/files?{filter}" + (after is null ? "" : $"&after={after}"));
            seen.AddRange(page.Ids());
            if (!page.GetProperty("has_more").GetBoolean())
            {
                break;
            }
            after = page.GetProperty("last_id").GetString();
        }
        Assert.Equal(own.Order(), seen.Order());

        // Another workspace's id as a cursor only marks a position; it reveals nothing.
        var around = await Wire.GetJsonAsync(mine, $"/v1/files?after={other[0]}&order=asc");
        Assert.All(around.Ids(), id => Assert.Contains(id, own));
        var before = await Wire.GetJsonAsync(mine, $"/v1/files?before={other[2]}");
        Assert.All(before.Ids(), id => Assert.Contains(id, own));
    }

    [Fact]
    public async Task Many_clients_in_several_workspaces_keep_exact_lists_and_usage()
    {
        var tenants = new List<(string Id, HttpClient Client)>();
        for (int t = 0; t < 3; t++)
        {
            tenants.Add(await _admin.NewTenantAsync($"busy-{t}"));
        }
        var alive = new ConcurrentDictionary<string, (string Workspace, int Bytes)>();
        var work = tenants.SelectMany(tenant => Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
        {
            var mineAlive = new List<string>();
            for (int i = 0; i < 15; i++)
            {
                int size = RandomNumberGenerator.GetInt32(1, 20_000);
                using var response = await tenant.Client.PostAsync("/v1/files", Wire.Form("user_data", RandomNumberGenerator.GetBytes(size), $"c{c}-{i}.bin"));
                Assert.True(response.IsSuccessStatusCode);
                string id = (await Wire.JsonAsync(response)).Id();
                alive[id] = (tenant.Id, size);
                mineAlive.Add(id);
                if (i % 3 == 2)
                {
                    string victim = mineAlive[RandomNumberGenerator.GetInt32(mineAlive.Count)];
                    mineAlive.Remove(victim);
                    Assert.True((await tenant.Client.DeleteAsync($"/v1/files/{victim}")).IsSuccessStatusCode);
                    Assert.True(alive.TryRemove(victim, out _));
                }
            }
        }))).ToArray();
        await Task.WhenAll(work);

        foreach (var (workspaceId, client) in tenants)
        {
            var expected = alive.Where(a => a.Value.Workspace == workspaceId).ToList();
            var listed = await Wire.GetJsonAsync(client, "/v1/files");
            Assert.Equal(expected.Select(e => e.Key).Order(), listed.Ids().Order());
            var workspace = await _admin.GetWorkspaceAsync(workspaceId);
            Assert.Equal(expected.Sum(e => (long)e.Value.Bytes), workspace.GetProperty("storage_usage_bytes").GetInt64());
        }
    }
}
