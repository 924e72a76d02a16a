using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>The API is never open: keys in three headers, 401 envelopes, a generated key printed once.</summary>
public sealed partial class AuthTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Theory]
    [InlineData("GET", "/v1/files")]
    [InlineData("POST", "/v1/files")]
    [InlineData("GET", "/v1/files/file-0000000000000000000000")]
    [InlineData("GET", "/v1/files/file-0000000000000000000000/content")]
    [InlineData("DELETE", "/v1/files/file-0000000000000000000000")]
    [InlineData("GET", "/openai/v1/files")]
    [InlineData("GET", "/openai/files")]
    public async Task Every_route_needs_a_key(string method, string path)
    {
        using var anonymous = fixture.Server.CreateClient(key: null);
        using var response = await anonymous.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        var error = await Wire.AssertErrorAsync(response, 401);
        Assert.Equal("authentication_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Wrong_keys_and_schemes_are_401()
    {
        using var wrong = fixture.Server.CreateClient("sk-wh-0000000000000000000000000000000000000000");
        await Wire.AssertErrorAsync(await wrong.GetAsync("/v1/files"), 401);

        using var basic = fixture.Server.CreateClient(key: null);
        basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", WharfServer.Key);
        await Wire.AssertErrorAsync(await basic.GetAsync("/v1/files"), 401);

        using var empty = fixture.Server.CreateClient(key: null);
        empty.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer ");
        await Wire.AssertErrorAsync(await empty.GetAsync("/v1/files"), 401);
    }

    [Theory]
    [InlineData("api-key")]
    [InlineData("x-api-key")]
    public async Task Keys_are_accepted_in_api_key_headers(string header)
    {
        using var client = fixture.Server.CreateClient(key: null);
        client.DefaultRequestHeaders.Add(header, WharfServer.Key);
        using var response = await client.GetAsync("/v1/files?limit=1");
        Assert.True(response.IsSuccessStatusCode);
    }

    [Fact]
    public async Task Health_probes_need_no_key()
    {
        using var anonymous = fixture.Server.CreateClient(key: null);
        Assert.True((await anonymous.GetAsync("/healthz")).IsSuccessStatusCode);
        Assert.True((await anonymous.GetAsync("/readyz")).IsSuccessStatusCode);
    }

    [Fact]
    public async Task Keys_never_reach_the_log()
    {
        using var wrong = fixture.Server.CreateClient("sk-wh-ThisIsAWrongKeyThatMustNotBeLogged0000");
        await wrong.GetAsync("/v1/files");
        using var right = fixture.Server.CreateClient();
        await Wire.UploadAsync(right, "assistants", "secret file content 7f3a", "secret-name.txt");
        await Task.Delay(200);
        string output = fixture.Server.Output;
        Assert.DoesNotContain(WharfServer.Key, output);
        Assert.DoesNotContain("ThisIsAWrongKey", output);
        Assert.DoesNotContain("secret file content", output);
        Assert.DoesNotContain("secret-name", output);
    }

    [Fact]
    public async Task First_start_without_a_key_prints_one_once_and_it_works()
    {
        string dataDir = Path.Combine(Path.GetTempPath(), "wharf-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            string key;
            await using (var server = await WharfServer.StartWithoutKeyAsync(dataDir))
            {
                await Task.Delay(100);
                var printed = GeneratedKey().Matches(server.Output);
                Assert.Single(printed);
                key = printed[0].Value;
                using var client = server.CreateClient(key);
                Assert.True((await client.GetAsync("/v1/files")).IsSuccessStatusCode);
            }
            await using (var again = await WharfServer.StartWithoutKeyAsync(dataDir))
            {
                await Task.Delay(100);
                Assert.Empty(GeneratedKey().Matches(again.Output));
                using var client = again.CreateClient(key);
                Assert.True((await client.GetAsync("/v1/files")).IsSuccessStatusCode);
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [GeneratedRegex("sk-wh-[0-9A-Za-z]{40}")]
    private static partial Regex GeneratedKey();
}
