using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Wharf.Console.Tests.Infrastructure;

namespace Wharf.Console.Tests;

/// <summary>What the console's files are sent with, and the admin's providers' outcomes endpoint it reads, over plain HTTP.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class ConsoleHttpTests(ConsoleFixture fixture)
{
    private ConsoleServer Server => fixture.Server;

    [Theory]
    [InlineData("/console/", "text/html")]
    [InlineData("/console/console.js", "text/javascript")]
    [InlineData("/console/console.css", "text/css")]
    public async Task The_console_files_load_without_a_key_under_a_strict_content_security_policy(string path, string contentType)
    {
        using var client = Server.CreateClient(key: null);
        using var answer = await client.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(contentType, answer.Content.Headers.ContentType!.MediaType);
        string csp = string.Join(";", answer.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'none'", csp);
        Assert.Contains("script-src 'self'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        Assert.DoesNotContain("unsafe-eval", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Equal("nosniff", Assert.Single(answer.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("no-referrer", Assert.Single(answer.Headers.GetValues("Referrer-Policy")));

        using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(answer.Content.Headers.ContentLength, head.Content.Headers.ContentLength);

        // Revalidated by its ETag.
        using var again = new HttpRequestMessage(HttpMethod.Get, path);
        again.Headers.IfNoneMatch.Add(answer.Headers.ETag!);
        using var notModified = await client.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
    }

    [Fact]
    public async Task The_page_holds_no_inline_script_or_style()
    {
        using var client = Server.CreateClient(key: null);
        string page = await client.GetStringAsync("/console/");

        Assert.Contains("<script src=\"console.js\" defer></script>", page);
        Assert.DoesNotMatch("<script(?![^>]*\\ssrc=)", page);
        Assert.DoesNotContain("style=", page);
        Assert.DoesNotContain("<style", page);
        Assert.DoesNotMatch("\\son[a-z]+\\s*=", page); // no event handler attribute
    }

    [Fact]
    public async Task Console_without_a_slash_goes_to_the_page_and_an_unknown_file_is_the_404_envelope()
    {
        using var handler = new HttpClientHandler { AllowAutoRedirect = false };
        using var client = new HttpClient(handler) { BaseAddress = Server.BaseAddress };

        using var redirect = await client.GetAsync("/console");
        Assert.Equal(HttpStatusCode.Found, redirect.StatusCode);
        Assert.Equal("/console/", redirect.Headers.Location!.OriginalString);

        using var missing = await client.GetAsync("/console/secrets.json");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var envelope = JsonDocument.Parse(await missing.Content.ReadAsStringAsync());
        Assert.Equal("invalid_request_error", envelope.RootElement.GetProperty("error").GetProperty("type").GetString());
        using var traversal = await client.GetAsync("/console/..%2Fappsettings.json");
        Assert.Equal(HttpStatusCode.NotFound, traversal.StatusCode);
    }

    [Fact]
    public async Task Every_data_call_of_the_console_still_needs_a_key()
    {
        using var client = Server.CreateClient(key: null);
        foreach (string path in (string[])["/v1/files", "/v1/batches", "/v1/providers", "/admin/providers", "/admin/providers/mock/outcomes", "/admin/workspaces"])
        {
            using var answer = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, answer.StatusCode);
        }
    }

    [Fact]
    public async Task Provider_outcomes_list_the_recent_calls_newest_first_for_the_admin_key_alone()
    {
        using var client = Server.CreateClient();
        for (int i = 0; i < 3; i++)
        {
            using var call = await client.PostAsync("/v1/embeddings",
                new StringContent("""{"model":"mock/e","input":"x"}""", new MediaTypeHeaderValue("application/json")));
            Assert.Equal(HttpStatusCode.OK, call.StatusCode);
        }

        using var admin = Server.CreateClient(ConsoleServer.AdminKey);
        using var outcomes = JsonDocument.Parse(await admin.GetStringAsync("/admin/providers/mock/outcomes"));
        Assert.Equal("list", outcomes.RootElement.GetProperty("object").GetString());
        Assert.Equal("mock", outcomes.RootElement.GetProperty("provider").GetString());
        var data = outcomes.RootElement.GetProperty("data").EnumerateArray().ToList();
        var embeddings = data.Where(o => o.GetProperty("operation").GetString() == "embeddings").ToList();
        Assert.True(embeddings.Count >= 3);
        Assert.All(embeddings, o =>
        {
            Assert.Equal("ok", o.GetProperty("outcome").GetString());
            Assert.Equal(200, o.GetProperty("status").GetInt32());
            Assert.True(o.GetProperty("duration_ms").GetInt64() >= 0);
        });
        var times = data.Select(o => o.GetProperty("at").GetInt64()).ToList();
        Assert.Equal(times.OrderByDescending(t => t), times);
        Assert.True(data.Count <= 50);
        using var unknown = await admin.GetAsync("/admin/providers/no-such-provider/outcomes");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("id", JsonDocument.Parse(await unknown.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("param").GetString());

        // The admin lists every configured provider, a workspace key only those it may use.
        using var workspace = await admin.PostAsync("/admin/workspaces",
            new StringContent($$"""{"name":"local-only-{{Guid.NewGuid():N}}","allowed_providers":["local"]}""", new MediaTypeHeaderValue("application/json")));
        string workspaceId = JsonDocument.Parse(await workspace.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        using var key = await admin.PostAsync($"/admin/workspaces/{workspaceId}/keys", new StringContent("""{"name":"k"}""", new MediaTypeHeaderValue("application/json")));
        string secret = JsonDocument.Parse(await key.Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
        using var all = JsonDocument.Parse(await admin.GetStringAsync("/admin/providers"));
        Assert.Equal(["local", "mock", "slowmock"], all.RootElement.GetProperty("data").EnumerateArray().Select(p => p.GetProperty("id").GetString()).Order());
        using var limited = Server.CreateClient(secret);
        using var usable = JsonDocument.Parse(await limited.GetStringAsync("/v1/providers"));
        Assert.Equal(["local"], usable.RootElement.GetProperty("data").EnumerateArray().Select(p => p.GetProperty("id").GetString()));

        // A workspace key, even one that may use the provider (the ring holds every workspace's calls to it), gets what
        // it gets on any admin route; and no workspace route serves the outcomes.
        foreach (var workspaceClient in (HttpClient[])[client, limited])
        {
            using var onAdminRoute = await workspaceClient.GetAsync("/admin/workspaces");
            string refusal = await ErrorOfAsync(onAdminRoute);
            Assert.Equal(HttpStatusCode.Unauthorized, onAdminRoute.StatusCode);
            Assert.Contains("invalid_admin_key", refusal, StringComparison.Ordinal);
            foreach (string path in (string[])["/admin/providers/mock/outcomes", "/admin/providers/local/outcomes", "/admin/providers"])
            {
                using var refused = await workspaceClient.GetAsync(path);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
                Assert.Equal(refusal, await ErrorOfAsync(refused));
            }
            foreach (string path in (string[])["/v1/providers/mock/outcomes", "/v1/providers/local/outcomes", "/openai/v1/providers/mock/outcomes"])
            {
                using var gone = await workspaceClient.GetAsync(path);
                Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
                Assert.DoesNotContain("embeddings", await gone.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
        }
    }

    /// <summary>An error envelope's message, type, code and field (not its per-request ids).</summary>
    private static async Task<string> ErrorOfAsync(HttpResponseMessage response)
    {
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = body.RootElement.GetProperty("error");
        return string.Join('|', ((string[])["message", "type", "code", "param"]).Select(name => error.GetProperty(name).ToString()));
    }
}
