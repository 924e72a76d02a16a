using System.Text.Json;
using Wharf.Cli.Tests.Infrastructure;

namespace Wharf.Cli.Tests;

/// <summary><c>wharf admin</c>, <c>wharf providers</c>, and what the user sees when something is wrong.</summary>
[Collection(CliCollection.Name)]
public sealed class AdminAndUsageTests(CliServerFixture fixture)
{
    [Fact]
    public async Task A_key_created_by_admin_works_until_it_is_revoked_then_is_refused_with_the_servers_message()
    {
        using var admin = fixture.Cli(admin: true);
        var workspace = await admin.RunAsync("admin", "workspaces", "create", "cli-team", "--json");
        Assert.True(workspace.ExitCode == 0, workspace.ToString());
        string workspaceId = JsonDocument.Parse(workspace.Stdout).RootElement.GetProperty("id").GetString()!;

        var key = await admin.RunAsync("admin", "keys", "create", workspaceId, "--name", "ci", "--scopes", "files:read,files:write", "--json");
        Assert.True(key.ExitCode == 0, key.ToString());
        var keyObject = JsonDocument.Parse(key.Stdout).RootElement;
        string secret = keyObject.GetProperty("key").GetString()!;
        string keyId = keyObject.GetProperty("id").GetString()!;
        Assert.Equal(["files:read", "files:write"], keyObject.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));

        using var member = fixture.Cli(apiKey: secret);
        var (path, _) = TestFiles.Random("member.txt", 100, seed: 5);
        var upload = await member.RunAsync("files", "upload", path, "--json");
        Assert.True(upload.ExitCode == 0, upload.ToString());
        var own = await member.RunAsync("files", "ls", "--json");
        Assert.Single(JsonDocument.Parse(own.Stdout).RootElement.GetProperty("data").EnumerateArray());
        var noScope = await member.RunAsync("batches", "ls");
        Assert.Equal(1, noScope.ExitCode);
        Assert.Contains("error: ", noScope.Stderr);

        var keys = await admin.RunAsync("admin", "keys", "ls", workspaceId, "--json");
        Assert.Contains(JsonDocument.Parse(keys.Stdout).RootElement.GetProperty("data").EnumerateArray(), k => k.GetProperty("id").GetString() == keyId);
        Assert.DoesNotContain(secret, keys.Stdout);
        var listed = await admin.RunAsync("admin", "workspaces", "ls", "--all", "--json");
        Assert.Contains(JsonDocument.Parse(listed.Stdout).RootElement.GetProperty("data").EnumerateArray(), w => w.GetProperty("id").GetString() == workspaceId);
        var shown = await admin.RunAsync("admin", "workspaces", "get", workspaceId, "--json");
        Assert.Equal(100, JsonDocument.Parse(shown.Stdout).RootElement.GetProperty("storage_usage_bytes").GetInt64());

        var revoked = await admin.RunAsync("admin", "keys", "revoke", keyId);
        Assert.True(revoked.ExitCode == 0, revoked.ToString());
        Assert.Contains("deleted " + keyId, revoked.Stdout);

        var refused = await member.RunAsync("files", "ls", "--json");

        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("", refused.Stdout);
        Assert.StartsWith("error: ", refused.Stderr);
        Assert.Contains("API key", refused.Stderr);
        AssertNoStackTrace(refused);

        var removed = await admin.RunAsync("admin", "workspaces", "rm", workspaceId);
        Assert.True(removed.ExitCode == 0, removed.ToString());
        File.Delete(path);
    }

    [Fact]
    public async Task Admin_commands_need_the_admin_key_and_a_wrong_one_is_refused()
    {
        using var noAdminKey = fixture.Cli();
        var missing = await noAdminKey.RunAsync("admin", "workspaces", "ls");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("WHARF_ADMIN_KEY", missing.Stderr);

        var wrong = await noAdminKey.RunAsync("admin", "workspaces", "ls", "--admin-key", "not-the-admin-key-at-all");
        Assert.Equal(1, wrong.ExitCode);
        Assert.StartsWith("error: ", wrong.Stderr);
        AssertNoStackTrace(wrong);
    }

    [Fact]
    public async Task Providers_lists_the_mock_provider()
    {
        using var cli = fixture.Cli();
        var json = await cli.RunAsync("providers", "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        var mock = Assert.Single(JsonDocument.Parse(json.Stdout).RootElement.GetProperty("data").EnumerateArray(), p => p.GetProperty("id").GetString() == "mock");
        Assert.Equal("mock", mock.GetProperty("type").GetString());
        var table = await cli.RunAsync("providers");
        Assert.Contains("chat.completions", table.Stdout);
    }

    [Theory]
    [InlineData("files", "ls", "--limit", "zero")]
    [InlineData("files", "frobnicate")]
    [InlineData("batches", "create", "requests.jsonl")]
    [InlineData("files", "upload", "--parallel", "99", "x")]
    [InlineData("files", "ls", "--order", "sideways")]
    public async Task A_bad_argument_is_a_usage_error_with_a_message_and_no_stack_trace(params string[] args)
    {
        using var cli = fixture.Cli();
        fixture.Proxy.Clear();

        var result = await cli.RunAsync(args);

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("error: ", result.Stderr);
        Assert.Contains("--help", result.Stderr);
        Assert.Equal("", result.Stdout);
        AssertNoStackTrace(result);
        Assert.Empty(fixture.Proxy.Seen);
    }

    [Fact]
    public async Task A_missing_file_a_bad_pair_a_bad_url_or_no_key_are_usage_errors_and_an_unreachable_server_is_a_failure()
    {
        using var cli = fixture.Cli();
        var noFile = await cli.RunAsync("files", "upload", Path.Combine(TestFiles.Directory, "does-not-exist.bin"));
        Assert.Equal(2, noFile.ExitCode);
        Assert.Contains("No such file", noFile.Stderr);

        var badPair = await cli.RunAsync("files", "ls", "--metadata", "team");
        Assert.Equal(2, badPair.ExitCode);
        Assert.Contains("--metadata 'team' is not key=value", badPair.Stderr);

        var badUrl = await cli.RunAsync("files", "ls", "--url", "ftp://example");
        Assert.Equal(2, badUrl.ExitCode);
        Assert.Contains("not a server address", badUrl.Stderr);

        using var keyless = fixture.Cli(apiKey: null);
        var noKey = await keyless.RunAsync("files", "ls");
        Assert.Equal(2, noKey.ExitCode);
        Assert.Contains("WHARF_API_KEY", noKey.Stderr);

        // The server's address given with /v1, as an SDK's base URL: the same server.
        var withV1 = await cli.RunAsync("providers", "--json", "--url", new Uri(fixture.Server.BaseAddress, "/v1").ToString());
        Assert.True(withV1.ExitCode == 0, withV1.ToString());

        var unreachable = await cli.RunAsync("files", "ls", "--url", "http://127.0.0.1:9");
        Assert.Equal(1, unreachable.ExitCode);
        Assert.Contains("Cannot reach the server at http://127.0.0.1:9/", unreachable.Stderr);
        AssertNoStackTrace(unreachable);
    }

    private static void AssertNoStackTrace(CliResult result)
    {
        Assert.DoesNotContain("   at ", result.Stderr);
        Assert.DoesNotContain("Exception", result.Stderr);
    }
}
