using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>Listing: keyset pagination, filters and parameter errors, over raw HTTP.</summary>
public sealed class FileListingTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly HttpClient _client = fixture.Server.CreateClient();

    private async Task<List<string>> UploadManyAsync(string collection, int count)
    {
        var ids = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var file = await Wire.UploadAsync(_client, i % 2 == 0 ? "batch" : "assistants", $"line {i}", $"f{i}.jsonl",
                ("collection", collection), ("metadata", $$"""{"parity":"{{(i % 2 == 0 ? "even" : "odd")}}","third":"{{i % 3}}"}"""));
            ids.Add(file.Id());
        }
        return ids;
    }

    [Theory]
    [InlineData("desc", 1)]
    [InlineData("desc", 4)]
    [InlineData("asc", 7)]
    [InlineData("asc", 23)]
    public async Task Walking_with_after_visits_every_file_once_in_order(string order, int limit)
    {
        string collection = "walk-" + Guid.NewGuid().ToString("N");
        var created = await UploadManyAsync(collection, 23);
        var expected = order == "desc" ? Enumerable.Reverse(created).ToList() : created;

        var seen = new List<string>();
        string? after = null;
        for (int pages = 0; pages < 100; pages++)
        {
            string url = $"/v1/files?collection={collection}&order={order}&limit={limit}" + (after is null ? "" : $"&after={after}");
            var page = await Wire.GetJsonAsync(_client, url);
            var ids = page.Ids();
            Assert.True(ids.Count <= limit);
            seen.AddRange(ids);
            bool hasMore = page.GetProperty("has_more").GetBoolean();
            if (ids.Count > 0)
            {
                Assert.Equal(ids[0], page.GetProperty("first_id").GetString());
                Assert.Equal(ids[^1], page.GetProperty("last_id").GetString());
            }
            if (!hasMore)
            {
                Assert.Equal(JsonValueKind.Null, page.GetProperty("after").ValueKind);
                break;
            }
            Assert.Equal(ids[^1], page.GetProperty("after").GetString());
            after = page.GetProperty("last_id").GetString();
        }
        Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task Walking_back_with_before_returns_the_nearest_pages_in_list_order()
    {
        string collection = "back-" + Guid.NewGuid().ToString("N");
        var created = await UploadManyAsync(collection, 11);
        var desc = Enumerable.Reverse(created).ToList();

        // The page just before the oldest file (in desc order) holds the 4 files nearest to it.
        var page = await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&limit=4&before={desc[^1]}");
        Assert.Equal(desc.GetRange(6, 4), page.Ids());
        Assert.True(page.GetProperty("has_more").GetBoolean());

        // Walk back to the start: every file before the last one, once, nearest pages first.
        var seen = new List<string>();
        string cursor = desc[^1];
        while (true)
        {
            page = await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&limit=4&before={cursor}");
            var ids = page.Ids();
            seen.InsertRange(0, ids);
            if (!page.GetProperty("has_more").GetBoolean())
            {
                break;
            }
            cursor = ids[0];
        }
        Assert.Equal(desc.Take(10), seen);

        var asc = await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&order=asc&limit=3&before={created[5]}");
        Assert.Equal(created.GetRange(2, 3), asc.Ids());
    }

    [Fact]
    public async Task A_deleted_cursor_still_marks_its_position()
    {
        string collection = "del-" + Guid.NewGuid().ToString("N");
        var created = await UploadManyAsync(collection, 6);
        using var deleted = await _client.DeleteAsync($"/v1/files/{created[3]}");
        Assert.True(deleted.IsSuccessStatusCode);

        var page = await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&after={created[3]}");
        Assert.Equal([created[2], created[1], created[0]], page.Ids());
    }

    [Fact]
    public async Task Filters_select_exactly_the_matching_files()
    {
        string collection = "filter-" + Guid.NewGuid().ToString("N");
        var created = await UploadManyAsync(collection, 12);
        var desc = Enumerable.Reverse(created).ToList();

        var batch = await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&purpose=batch");
        Assert.Equal(desc.Where((_, i) => (11 - i) % 2 == 0), batch.Ids());
        Assert.All(batch.GetProperty("data").EnumerateArray(), f => Assert.Equal("batch", f.GetProperty("purpose").GetString()));

        var even = await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&metadata.parity=even");
        Assert.Equal(batch.Ids(), even.Ids());

        var evenThird0 = await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&metadata.parity=even&metadata.third=0");
        Assert.Equal(desc.Where((_, i) => (11 - i) % 6 == 0), evenThird0.Ids());

        var evenPaged = await Wire.GetJsonAsync(_client, $"/v1/files?metadata.parity=even&collection={collection}&limit=2&after={desc[0]}&order=desc");
        Assert.Equal(desc.Where((_, i) => (11 - i) % 2 == 0).Where(id => string.CompareOrdinal(id, desc[0]) < 0).Take(2), evenPaged.Ids());

        Assert.Equal(12, (await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&provider=local")).Ids().Count);
        Assert.Equal(12, (await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&x-model-provider=local")).Ids().Count);
        using (var response = await _client.GetAsync($"/v1/files?collection={collection}&provider=openai"))
        {
            // This server has no provider 'openai'.
            await Wire.AssertErrorAsync(response, 400, "provider", "unknown_provider");
        }
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/files?collection={collection}"))
        {
            request.Headers.Add("x-model-provider", "local");
            using var response = await _client.SendAsync(request);
            Assert.Equal(12, (await Wire.JsonAsync(response)).Ids().Count);
        }

        Assert.Equal(12, (await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&status=processed")).Ids().Count);
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&status=processing")).Ids());
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}&metadata.parity=none")).Ids());
        Assert.Empty((await Wire.GetJsonAsync(_client, $"/v1/files?collection={collection}-other")).Ids());
    }

    [Fact]
    public async Task Empty_page_has_null_cursors()
    {
        var page = await Wire.GetJsonAsync(_client, $"/v1/files?collection=none-{Guid.NewGuid():N}");
        Assert.Equal("list", page.GetProperty("object").GetString());
        Assert.Empty(page.GetProperty("data").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, page.GetProperty("first_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, page.GetProperty("last_id").ValueKind);
        Assert.False(page.GetProperty("has_more").GetBoolean());
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=-1", "limit")]
    [InlineData("limit=10001", "limit")]
    [InlineData("limit=ten", "limit")]
    [InlineData("limit=", "limit")]
    [InlineData("order=sideways", "order")]
    [InlineData("after=bogus", "after")]
    [InlineData("after=file-abc", "after")]
    [InlineData("before=file-zzzzzzzzzzzzzzzzzzzzzz", "before")]
    [InlineData("purpose=nope", "purpose")]
    [InlineData("status=running", "status")]
    public async Task Bad_list_parameters_are_400_naming_the_parameter(string query, string param)
    {
        using var response = await _client.GetAsync("/v1/files?" + query);
        var error = await Wire.AssertErrorAsync(response, 400, param);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_huge_query_string_is_answered_and_leaves_the_server_healthy()
    {
        string huge = new('a', 40_000);
        using var response = await _client.GetAsync($"/v1/files?metadata.k={huge}&collection={huge}");
        Assert.True((int)response.StatusCode is 200 or 400 or 414, response.StatusCode.ToString());
        using var health = await _client.GetAsync("/healthz");
        Assert.True(health.IsSuccessStatusCode);
    }
}
