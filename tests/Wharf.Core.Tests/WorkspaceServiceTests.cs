using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Ids;
using Wharf.Core.Tenancy;

namespace Wharf.Core.Tests;

public sealed class WorkspaceServiceTests
{
    private static readonly DateTimeOffset Start = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private const string UnknownWs = "ws_0123456789abcdef0123456789abcdef";
    private const string UnknownKey = "key_0123456789abcdef0123456789abcdef";

    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeKeyCatalog _keys;
    private readonly WorkspaceService _service;

    public WorkspaceServiceTests()
    {
        _keys = new FakeKeyCatalog(_workspaces);
        _workspaces.KeyCatalog = _keys;
        _service = new WorkspaceService(_workspaces, _keys, new KeyCache(_time, TimeSpan.Zero), new IdGenerator(_time), _time, new FakeProviderRegistry("local", "openai", "groq"));
    }

    private static CancellationToken Ct => CancellationToken.None;

    private long Now => Start.ToUnixTimeSeconds();

    private async Task<Workspace> CreateAsync(string name = "team", long? quota = null, int? rpm = null)
    {
        var result = await _service.CreateAsync(name, quota, rpm, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        return result.Value;
    }

    private static void AssertInvalid<T>(Result<T> result, string param)
    {
        Assert.False(result.IsOk);
        Assert.Equal(400, result.Error.Status);
        Assert.Equal(param, result.Error.Param);
        Assert.Equal("invalid_request_error", result.Error.Type);
        Assert.NotNull(result.Error.Code);
    }

    private static void AssertNoSuchWorkspace<T>(Result<T> result, string id)
    {
        Assert.False(result.IsOk);
        Assert.Equal(404, result.Error.Status);
        Assert.Equal("No such Workspace object: " + id, result.Error.Message);
        Assert.Equal("id", result.Error.Param);
        Assert.Null(result.Error.Code);
    }

    // ---------------------------------------------------------------- workspaces

    [Fact]
    public async Task CreateStoresTheWorkspace()
    {
        var ws = await CreateAsync("\u00e9quipe \u65e5\u672c", quota: 1_000_000, rpm: 600);
        Assert.True(WharfIds.IsHexId(ws.Id, WharfIds.WorkspacePrefix));
        Assert.Equal("\u00e9quipe \u65e5\u672c", ws.Name);
        Assert.Equal(Now, ws.CreatedAt);
        Assert.Equal(1_000_000, ws.StorageQuotaBytes);
        Assert.Equal(600, ws.RateLimitRpm);
        Assert.Equal(0, ws.UsageBytes);
        Assert.Equal(ws, Assert.Single(_workspaces.All));

        var other = await CreateAsync("other");
        Assert.True(string.CompareOrdinal(other.Id, ws.Id) > 0);
        Assert.Null(other.StorageQuotaBytes);
        Assert.Null(other.RateLimitRpm);
    }

    public static TheoryData<string?> BadNames => new()
    {
        null,
        "",
        " ",
        "\t",
        new string('a', WorkspaceService.MaxNameLength + 1),
        "a\u0000b",
        "line\nbreak",
        "bell\u0007",
        "del\u007f",
        "c1\u0085",
    };

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task CreateRefusesABadName(string? name)
    {
        AssertInvalid(await _service.CreateAsync(name, null, null, Ct), "name");
        Assert.Empty(_workspaces.All);
    }

    [Theory]
    [InlineData("a")]
    [InlineData("team-1 (prod)")]
    [InlineData("\U0001F600")]
    public async Task CreateAcceptsAGoodName(string name)
    {
        Assert.Equal(name, (await CreateAsync(name)).Name);
        Assert.Equal(new string('x', 128), (await CreateAsync(new string('x', 128))).Name);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    public async Task CreateRefusesANegativeQuota(long quota)
    {
        AssertInvalid(await _service.CreateAsync("team", quota, null, Ct), "storage_quota_bytes");
        Assert.Empty(_workspaces.All);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(1_000_001)]
    [InlineData(int.MaxValue)]
    public async Task CreateRefusesAnRpmOutOfRange(int rpm)
    {
        AssertInvalid(await _service.CreateAsync("team", null, rpm, Ct), "rate_limit_rpm");
        Assert.Empty(_workspaces.All);
    }

    [Fact]
    public async Task CreateAcceptsTheBoundaries()
    {
        Assert.Equal(0, (await CreateAsync(quota: 0)).StorageQuotaBytes);
        Assert.Equal(1, (await CreateAsync(rpm: 1)).RateLimitRpm);
        Assert.Equal(1_000_000, (await CreateAsync(rpm: 1_000_000)).RateLimitRpm);
    }

    [Theory]
    [InlineData(UnknownWs)]
    [InlineData("ws_nope")]
    [InlineData("ws_0123456789ABCDEF0123456789ABCDEF")]
    [InlineData("../ws")]
    [InlineData("")]
    public async Task UnknownOrMalformedWorkspaceIsNoSuchWorkspace(string id)
    {
        await CreateAsync();
        AssertNoSuchWorkspace(await _service.GetAsync(id, Ct), id);
        AssertNoSuchWorkspace(await _service.UpdateAsync(id, new WorkspaceChange { Name = "x" }, Ct), id);
        AssertNoSuchWorkspace(await _service.DeleteAsync(id, Ct), id);
        AssertNoSuchWorkspace(await _service.ListKeysAsync(id, Ct), id);
        AssertNoSuchWorkspace(await _service.CreateKeyAsync(id, new KeyRequest { Name = "k" }, Ct), id);
        Assert.Empty(_keys.Keys);
        Assert.Single(_workspaces.All);
    }

    [Fact]
    public async Task MalformedIdsNeverReachTheCatalog()
    {
        AssertNoSuchWorkspace(await _service.GetAsync("ws_nope", Ct), "ws_nope");
        AssertNoSuchWorkspace(await _service.DeleteAsync("ws_nope", Ct), "ws_nope");
        Assert.Empty(_workspaces.Calls);
    }

    [Fact]
    public async Task GetReturnsTheWorkspaceWithItsUsage()
    {
        var ws = await CreateAsync(quota: 100);
        _workspaces.SetUsage(ws.Id, 42);
        var read = await _service.GetAsync(ws.Id, Ct);
        Assert.True(read.IsOk);
        Assert.Equal(42, read.Value.UsageBytes);
        Assert.Equal(100, read.Value.StorageQuotaBytes);
    }

    [Fact]
    public async Task ListPagesInIdOrder()
    {
        var created = new List<Workspace>();
        for (int i = 0; i < 5; i++)
        {
            created.Add(await CreateAsync("w" + i));
        }
        var first = await _service.ListAsync(2, null, Ct);
        Assert.Equal(created.Take(2).Select(w => w.Id), first.Value.Items.Select(w => w.Id));
        Assert.True(first.Value.HasMore);
        var rest = await _service.ListAsync(10, first.Value.Items[^1].Id, Ct);
        Assert.Equal(created.Skip(2).Select(w => w.Id), rest.Value.Items.Select(w => w.Id));
        Assert.False(rest.Value.HasMore);

        Assert.True((await _service.ListAsync(null, null, Ct)).IsOk);
        Assert.Equal("list:20:", _workspaces.Calls[^1]);
        Assert.True((await _service.ListAsync(100, null, Ct)).IsOk);
        Assert.True((await _service.ListAsync(1, null, Ct)).IsOk);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(101)]
    public async Task ListRefusesALimitOutOfRange(int limit)
    {
        AssertInvalid(await _service.ListAsync(limit, null, Ct), "limit");
        Assert.DoesNotContain(_workspaces.Calls, c => c.StartsWith("list:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("nope")]
    [InlineData("file-0000000000000000000000")]
    [InlineData("key_0123456789abcdef0123456789abcdef")]
    [InlineData("")]
    public async Task ListRefusesAMalformedCursor(string after)
    {
        AssertInvalid(await _service.ListAsync(10, after, Ct), "after");
        Assert.DoesNotContain(_workspaces.Calls, c => c.StartsWith("list:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UpdateWithNullFieldsKeepsEveryValue()
    {
        var ws = await CreateAsync("team", quota: 500, rpm: 60);
        var result = await _service.UpdateAsync(ws.Id, new WorkspaceChange(), Ct);
        Assert.True(result.IsOk);
        Assert.Equal(ws, result.Value);
        Assert.Equal(ws, (await _service.GetAsync(ws.Id, Ct)).Value);
    }

    [Fact]
    public async Task UpdateChangesOnlyTheFieldsGiven()
    {
        var ws = await CreateAsync("team", quota: 500, rpm: 60);

        var renamed = await _service.UpdateAsync(ws.Id, new WorkspaceChange { Name = "renamed" }, Ct);
        Assert.Equal(ws with { Name = "renamed" }, renamed.Value);

        var quota = await _service.UpdateAsync(ws.Id, new WorkspaceChange { StorageQuotaBytes = 0 }, Ct);
        Assert.Equal(ws with { Name = "renamed", StorageQuotaBytes = 0 }, quota.Value);

        var rpm = await _service.UpdateAsync(ws.Id, new WorkspaceChange { RateLimitRpm = 1_000_000 }, Ct);
        Assert.Equal(ws with { Name = "renamed", StorageQuotaBytes = 0, RateLimitRpm = 1_000_000 }, rpm.Value);

        var stored = (await _service.GetAsync(ws.Id, Ct)).Value;
        Assert.Equal("renamed", stored.Name);
        Assert.Equal(0, stored.StorageQuotaBytes);
        Assert.Equal(1_000_000, stored.RateLimitRpm);
        Assert.Equal(ws.CreatedAt, stored.CreatedAt);
    }

    [Fact]
    public async Task UpdateClearFlagsRemoveTheLimits()
    {
        var ws = await CreateAsync("team", quota: 500, rpm: 60);

        var noQuota = await _service.UpdateAsync(ws.Id, new WorkspaceChange { ClearStorageQuota = true }, Ct);
        Assert.Null(noQuota.Value.StorageQuotaBytes);
        Assert.Equal(60, noQuota.Value.RateLimitRpm);

        var noRpm = await _service.UpdateAsync(ws.Id, new WorkspaceChange { ClearRateLimit = true }, Ct);
        Assert.Null(noRpm.Value.StorageQuotaBytes);
        Assert.Null(noRpm.Value.RateLimitRpm);

        var stored = (await _service.GetAsync(ws.Id, Ct)).Value;
        Assert.Null(stored.StorageQuotaBytes);
        Assert.Null(stored.RateLimitRpm);
        Assert.Equal("team", stored.Name);
    }

    [Fact]
    public async Task UpdateKeepsTheUsageTheCatalogHolds()
    {
        var ws = await CreateAsync("team", quota: 500);
        _workspaces.SetUsage(ws.Id, 321);
        var result = await _service.UpdateAsync(ws.Id, new WorkspaceChange { StorageQuotaBytes = 1000 }, Ct);
        Assert.Equal(321, result.Value.UsageBytes);
        Assert.Equal(321, (await _service.GetAsync(ws.Id, Ct)).Value.UsageBytes);
    }

    [Theory]
    [InlineData("", null, null, "name")]
    [InlineData("a\nb", null, null, "name")]
    [InlineData(null, -5L, null, "storage_quota_bytes")]
    [InlineData(null, null, 0, "rate_limit_rpm")]
    [InlineData(null, null, 1_000_001, "rate_limit_rpm")]
    public async Task UpdateValidatesAndChangesNothingOnError(string? name, long? quota, int? rpm, string param)
    {
        var ws = await CreateAsync("team", quota: 500, rpm: 60);
        AssertInvalid(await _service.UpdateAsync(ws.Id, new WorkspaceChange { Name = name, StorageQuotaBytes = quota, RateLimitRpm = rpm }, Ct), param);
        Assert.Equal(ws, (await _service.GetAsync(ws.Id, Ct)).Value);
        Assert.DoesNotContain(_workspaces.Calls, c => c.StartsWith("update:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DeleteHidesTheWorkspaceAndRevokesItsKeys()
    {
        var ws = await CreateAsync("team");
        var other = await CreateAsync("other");
        var key = (await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k" }, Ct)).Value;
        var otherKey = (await _service.CreateKeyAsync(other.Id, new KeyRequest { Name = "k" }, Ct)).Value;

        var deleted = await _service.DeleteAsync(ws.Id, Ct);
        Assert.True(deleted.IsOk);
        Assert.Equal(ws.Id, deleted.Value);

        AssertNoSuchWorkspace(await _service.GetAsync(ws.Id, Ct), ws.Id);
        AssertNoSuchWorkspace(await _service.DeleteAsync(ws.Id, Ct), ws.Id);
        AssertNoSuchWorkspace(await _service.ListKeysAsync(ws.Id, Ct), ws.Id);
        AssertNoSuchWorkspace(await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k" }, Ct), ws.Id);
        AssertNoSuchWorkspace(await _service.UpdateAsync(ws.Id, new WorkspaceChange { Name = "back" }, Ct), ws.Id);
        Assert.Null(await _keys.FindKeyByHashAsync(key.Key.Hash, Ct));
        Assert.NotNull(await _keys.FindKeyByHashAsync(otherKey.Key.Hash, Ct));
        Assert.Equal(other.Id, Assert.Single((await _service.ListAsync(null, null, Ct)).Value.Items).Id);
        Assert.Equal(new[] { ws.Id }, await _workspaces.ListDeletedWorkspacesAsync(10, Ct));
    }

    // ---------------------------------------------------------------- keys

    [Fact]
    public async Task CreateKeyReturnsTheSecretOnceAndStoresOnlyItsHash()
    {
        var ws = await CreateAsync();
        var result = await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "ci", ExpiresAt = Now + 3600, RateLimitRpm = 30 }, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        var (key, secret) = result.Value;

        Assert.StartsWith(ApiKeys.SecretPrefix, secret, StringComparison.Ordinal);
        Assert.Equal(ApiKeys.SecretPrefix.Length + ApiKeys.SecretRandomLength, secret.Length);
        Assert.True(WharfIds.IsHexId(key.Id, WharfIds.KeyPrefix));
        Assert.Equal(ws.Id, key.WorkspaceId);
        Assert.Equal("ci", key.Name);
        Assert.Equal(ApiKeys.Hash(secret), key.Hash);
        Assert.Equal(ApiKeys.DisplayPrefix(secret), key.Prefix);
        Assert.Equal(Now, key.CreatedAt);
        Assert.Equal([ApiScopes.Every], key.Scopes);
        Assert.True(ApiScopes.Allows(key.Scopes, ApiScopes.ModelsInvoke));
        Assert.Equal(Now + 3600, key.ExpiresAt);
        Assert.Equal(30, key.RateLimitRpm);
        Assert.Null(key.LastUsedAt);

        var stored = Assert.Single(_keys.Keys);
        Assert.Same(key, stored);
        var found = await _keys.FindKeyByHashAsync(ApiKeys.Hash(secret), Ct);
        Assert.Equal(key.Id, found?.Key.Id);
    }

    [Fact]
    public async Task CreateKeyKeepsTheScopesGivenWithoutDuplicates()
    {
        var ws = await CreateAsync();
        var result = await _service.CreateKeyAsync(ws.Id,
            new KeyRequest { Name = "reader", Scopes = [ApiScopes.FilesRead, ApiScopes.BatchesRead, ApiScopes.FilesRead] }, Ct);
        Assert.True(result.IsOk, result.Error?.Message);
        Assert.Equal(new[] { ApiScopes.FilesRead, ApiScopes.BatchesRead }, result.Value.Key.Scopes);
    }

    public static TheoryData<string[]> BadScopes => new()
    {
        new[] { "files:delete" },
        new[] { ApiScopes.FilesRead, "admin" },
        new[] { "Files:Read" },
        new[] { "" },
        new[] { "files:read " },
        Array.Empty<string>(),
    };

    [Theory]
    [MemberData(nameof(BadScopes))]
    public async Task CreateKeyRefusesUnknownOrEmptyScopes(string[] scopes)
    {
        var ws = await CreateAsync();
        AssertInvalid(await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k", Scopes = scopes }, Ct), "scopes");
        Assert.Empty(_keys.Keys);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(1L)]
    public async Task CreateKeyExpiryMustBeInTheFuture(long offset)
    {
        var ws = await CreateAsync();
        // offset 1 is accepted; 0 (now) and the past are refused.
        var result = await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k", ExpiresAt = Now + offset }, Ct);
        if (offset > 0)
        {
            Assert.True(result.IsOk, result.Error?.Message);
            Assert.Single(_keys.Keys);
        }
        else
        {
            AssertInvalid(result, "expires_at");
            Assert.Empty(_keys.Keys);
        }
    }

    [Fact]
    public async Task CreateKeyRefusesAnExpiryLongPast()
    {
        var ws = await CreateAsync();
        AssertInvalid(await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k", ExpiresAt = 0 }, Ct), "expires_at");
        AssertInvalid(await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k", ExpiresAt = long.MinValue }, Ct), "expires_at");
        Assert.Empty(_keys.Keys);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1_000_001)]
    public async Task CreateKeyRefusesAnRpmOutOfRange(int rpm)
    {
        var ws = await CreateAsync();
        AssertInvalid(await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k", RateLimitRpm = rpm }, Ct), "rate_limit_rpm");
        Assert.Empty(_keys.Keys);
    }

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task CreateKeyRefusesABadName(string? name)
    {
        var ws = await CreateAsync();
        AssertInvalid(await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = name }, Ct), "name");
        Assert.Empty(_keys.Keys);
    }

    [Fact]
    public async Task ListKeysListsOnlyThatWorkspacesKeys()
    {
        var ws = await CreateAsync("a");
        var other = await CreateAsync("b");
        var k1 = (await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "one" }, Ct)).Value.Key;
        await _service.CreateKeyAsync(other.Id, new KeyRequest { Name = "theirs" }, Ct);
        var k2 = (await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "two" }, Ct)).Value.Key;

        var listed = await _service.ListKeysAsync(ws.Id, Ct);
        Assert.True(listed.IsOk);
        Assert.Equal(new[] { k1.Id, k2.Id }, listed.Value.Select(k => k.Id));
        Assert.Empty((await _service.ListKeysAsync((await CreateAsync("empty")).Id, Ct)).Value);
    }

    [Fact]
    public async Task RevokeRemovesTheKeyAndASecondRevokeIs404()
    {
        var ws = await CreateAsync();
        var created = (await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k" }, Ct)).Value;
        var kept = (await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "kept" }, Ct)).Value;

        var revoked = await _service.RevokeKeyAsync(created.Key.Id, Ct);
        Assert.True(revoked.IsOk);
        Assert.Equal(created.Key.Id, revoked.Value);
        Assert.Null(await _keys.FindKeyByHashAsync(ApiKeys.Hash(created.Secret), Ct));
        Assert.NotNull(await _keys.FindKeyByHashAsync(ApiKeys.Hash(kept.Secret), Ct));

        var again = await _service.RevokeKeyAsync(created.Key.Id, Ct);
        Assert.False(again.IsOk);
        Assert.Equal(404, again.Error.Status);
        Assert.Equal("No such API key: " + created.Key.Id, again.Error.Message);
        Assert.Equal("id", again.Error.Param);
    }

    [Theory]
    [InlineData(UnknownKey)]
    [InlineData("key_nope")]
    [InlineData(UnknownWs)]
    [InlineData("")]
    public async Task RevokeOfAnUnknownOrMalformedKeyIs404(string id)
    {
        var ws = await CreateAsync();
        await _service.CreateKeyAsync(ws.Id, new KeyRequest { Name = "k" }, Ct);
        var result = await _service.RevokeKeyAsync(id, Ct);
        Assert.False(result.IsOk);
        Assert.Equal(404, result.Error.Status);
        Assert.Equal("No such API key: " + id, result.Error.Message);
        Assert.Equal("id", result.Error.Param);
        Assert.Single(_keys.Keys);
    }

    [Fact]
    public async Task AllowedProvidersAreKeptDeduplicatedChangedAndClearedAndUnknownOnesRefused()
    {
        var created = await _service.CreateAsync("team", null, null, Ct, ["openai", "groq", "openai"]);
        Assert.True(created.IsOk);
        Assert.Equal(["openai", "groq"], created.Value.AllowedProviders);

        var unchanged = await _service.UpdateAsync(created.Value.Id, new WorkspaceChange { Name = "renamed" }, Ct);
        Assert.Equal(["openai", "groq"], unchanged.Value.AllowedProviders);

        var none = await _service.UpdateAsync(created.Value.Id, new WorkspaceChange { AllowedProviders = [] }, Ct);
        Assert.Empty(none.Value.AllowedProviders!);

        var cleared = await _service.UpdateAsync(created.Value.Id, new WorkspaceChange { ClearAllowedProviders = true }, Ct);
        Assert.Null(cleared.Value.AllowedProviders);

        var unknown = await _service.CreateAsync("other", null, null, Ct, ["openai", "nope\u0001"]);
        Assert.False(unknown.IsOk);
        Assert.Equal((400, "allowed_providers", "unknown_provider"), (unknown.Error.Status, unknown.Error.Param, unknown.Error.Code));
        var unknownOnUpdate = await _service.UpdateAsync(created.Value.Id, new WorkspaceChange { AllowedProviders = ["azure"] }, Ct);
        Assert.False(unknownOnUpdate.IsOk);
        Assert.Equal("allowed_providers", unknownOnUpdate.Error.Param);
        Assert.Equal(["renamed"], _workspaces.All.Select(w => w.Name));
    }

    [Fact]
    public async Task AWebhookUrlComesWithANewSecretShownOnlyInTheAnswerThatSetIt()
    {
        var created = await _service.CreateAsync(new WorkspaceChange { Name = "team", WebhookUrl = "http://127.0.0.1:9000/hook" }, Ct);
        Assert.True(created.IsOk, created.Error?.Message);
        var ws = created.Value.Workspace;
        Assert.Equal("http://127.0.0.1:9000/hook", ws.WebhookUrl);
        string first = created.Value.WebhookSecret!;
        Assert.StartsWith("whsec_", first);
        Assert.Equal(first, _workspaces.WebhookSecrets[ws.Id]);
        Assert.Equal("http://127.0.0.1:9000/hook", (await _service.GetAsync(ws.Id, Ct)).Value.WebhookUrl);

        // A change that does not name the URL keeps it and its secret, and shows no secret.
        var renamed = await _service.ChangeAsync(ws.Id, new WorkspaceChange { Name = "renamed" }, Ct);
        Assert.Null(renamed.Value.WebhookSecret);
        Assert.Equal("http://127.0.0.1:9000/hook", renamed.Value.Workspace.WebhookUrl);
        Assert.Equal(first, _workspaces.WebhookSecrets[ws.Id]);

        // Setting a URL, even the same one, makes a new secret.
        var same = await _service.ChangeAsync(ws.Id, new WorkspaceChange { WebhookUrl = "http://127.0.0.1:9000/hook" }, Ct);
        string second = same.Value.WebhookSecret!;
        Assert.NotEqual(first, second);
        Assert.Equal(second, _workspaces.WebhookSecrets[ws.Id]);
        var moved = await _service.ChangeAsync(ws.Id, new WorkspaceChange { WebhookUrl = "https://hooks.example.com/wharf" }, Ct);
        Assert.Equal("https://hooks.example.com/wharf", moved.Value.Workspace.WebhookUrl);
        Assert.NotEqual(second, moved.Value.WebhookSecret);

        var removed = await _service.ChangeAsync(ws.Id, new WorkspaceChange { ClearWebhookUrl = true }, Ct);
        Assert.Null(removed.Value.WebhookSecret);
        Assert.Null(removed.Value.Workspace.WebhookUrl);
        Assert.False(_workspaces.WebhookSecrets.ContainsKey(ws.Id));

        var none = await _service.CreateAsync(new WorkspaceChange { Name = "plain" }, Ct);
        Assert.Null(none.Value.WebhookSecret);
        Assert.Null(none.Value.Workspace.WebhookUrl);
    }

    [Fact]
    public async Task ABadWebhookUrlIsRefusedNamingWebhookUrlAndChangesNothing()
    {
        AssertInvalid(await _service.CreateAsync(new WorkspaceChange { Name = "team", WebhookUrl = "ftp://example.com/" }, Ct), "webhook_url");
        Assert.Empty(_workspaces.All);
        var ws = await CreateAsync();
        AssertInvalid(await _service.ChangeAsync(ws.Id, new WorkspaceChange { Name = "renamed", WebhookUrl = "not a url" }, Ct), "webhook_url");
        Assert.Equal("team", (await _service.GetAsync(ws.Id, Ct)).Value.Name);
        Assert.Empty(_workspaces.WebhookSecrets);
    }
}
