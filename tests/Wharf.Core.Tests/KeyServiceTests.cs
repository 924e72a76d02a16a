using Wharf.Core.Tenancy;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Core.Auth;
using Wharf.Core.Ids;

namespace Wharf.Core.Tests;

public sealed class KeyServiceTests
{
    private static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeKeyCatalog _catalog;
    private readonly KeyUsageTracker _usage = new();
    private readonly IdGenerator _ids;
    private readonly KeyService _service;

    public KeyServiceTests()
    {
        _catalog = new FakeKeyCatalog(_workspaces);
        _workspaces.KeyCatalog = _catalog;
        _ids = new IdGenerator(_time);
        _service = new KeyService(_catalog, _workspaces, _usage, new KeyCache(_time, TimeSpan.Zero), _ids, _time, NullLogger<KeyService>.Instance);
    }

    private long Now => _time.GetUtcNow().ToUnixTimeSeconds();

    [Fact]
    public async Task BootstrapKeyIsAddedOnceAndAuthenticates()
    {
        const string key = "my-bootstrap-key";
        Assert.Null(await _service.BootstrapAsync(key, CancellationToken.None));
        Assert.Null(await _service.BootstrapAsync(key, CancellationToken.None));

        var workspace = Assert.Single(_workspaces.All);
        Assert.Equal("default", workspace.Name);
        Assert.True(WharfIds.IsHexId(workspace.Id, WharfIds.WorkspacePrefix));
        var stored = Assert.Single(_catalog.Keys);
        Assert.True(WharfIds.IsHexId(stored.Id, WharfIds.KeyPrefix));
        Assert.Equal(workspace.Id, stored.WorkspaceId);
        Assert.DoesNotContain("bootstrap-key", stored.Prefix, StringComparison.Ordinal);

        var authenticated = await _service.AuthenticateAsync(key, CancellationToken.None);
        Assert.Equal(stored.Id, authenticated?.Key.Id);
        Assert.Equal(workspace.Id, authenticated?.Workspace.Id);
        Assert.Null(await _service.AuthenticateAsync(key + "x", CancellationToken.None));
    }

    [Fact]
    public async Task WithoutAnyKeyTheFirstStartGeneratesOneOnce()
    {
        string? secret = await _service.BootstrapAsync(null, CancellationToken.None);
        Assert.NotNull(secret);
        Assert.StartsWith("sk-wh-", secret, StringComparison.Ordinal);
        Assert.Null(await _service.BootstrapAsync(null, CancellationToken.None));
        Assert.Single(_catalog.Keys);
        Assert.NotNull(await _service.AuthenticateAsync(secret, CancellationToken.None));
    }

    [Fact]
    public async Task SecondBootstrapKeyJoinsTheDefaultWorkspace()
    {
        await _service.BootstrapAsync("first-key", CancellationToken.None);
        await _service.BootstrapAsync("second-key", CancellationToken.None);
        Assert.Single(_workspaces.All);
        Assert.Equal(2, _catalog.Keys.Count);
        Assert.All(_catalog.Keys, k => Assert.Equal(_workspaces.All[0].Id, k.WorkspaceId));
    }

    [Fact]
    public async Task BootstrapKeysGetEveryScopeAndNoExpiry()
    {
        await _service.BootstrapAsync("first-key", CancellationToken.None);
        var key = Assert.Single(_catalog.Keys);
        Assert.Equal([ApiScopes.Every], key.Scopes);
        Assert.Null(key.ExpiresAt);
        Assert.Null(key.RateLimitRpm);
    }

    private const string Ws = "ws_00000000000000000000000000000001";

    private ApiKeyRecord AddKey(string secret, long? expiresAt = null, string workspace = Ws)
    {
        if (_workspaces.Live(workspace) is null && !_workspaces.HasRow(workspace))
        {
            _workspaces.Add(new Workspace { Id = workspace, Name = "w", CreatedAt = 1, RateLimitRpm = 77 });
        }
        var key = new ApiKeyRecord
        {
            Id = WharfIds.Hex(WharfIds.KeyPrefix, _ids.Next()),
            WorkspaceId = workspace,
            Name = "k",
            Hash = ApiKeys.Hash(secret),
            Prefix = ApiKeys.DisplayPrefix(secret),
            CreatedAt = Now,
            ExpiresAt = expiresAt,
        };
        _catalog.Keys.Add(key);
        return key;
    }

    [Fact]
    public async Task AuthenticateReturnsTheKeyAndItsWorkspace()
    {
        string secret = ApiKeys.NewSecret();
        var key = AddKey(secret);
        var found = await _service.AuthenticateAsync(secret, CancellationToken.None);
        Assert.NotNull(found);
        Assert.Same(key, found.Key);
        Assert.Equal(Ws, found.Workspace.Id);
        Assert.Equal(77, found.Workspace.RateLimitRpm);
    }

    [Fact]
    public async Task ExpiredKeyIsRefused()
    {
        string secret = ApiKeys.NewSecret();
        AddKey(secret, expiresAt: Now + 60);

        Assert.NotNull(await _service.AuthenticateAsync(secret, CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.NotNull(await _service.AuthenticateAsync(secret, CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await _service.AuthenticateAsync(secret, CancellationToken.None));
        _time.Advance(TimeSpan.FromDays(1));
        Assert.Null(await _service.AuthenticateAsync(secret, CancellationToken.None));
    }

    [Fact]
    public async Task AnExpiredKeyIsNotRecordedAsUsed()
    {
        string secret = ApiKeys.NewSecret();
        AddKey(secret, expiresAt: Now);
        Assert.Null(await _service.AuthenticateAsync(secret, CancellationToken.None));
        Assert.Equal(0, await _usage.FlushAsync(_catalog, CancellationToken.None));
        Assert.Empty(_catalog.Touches);
    }

    [Fact]
    public async Task UnknownKeyIsRefusedAfterOneLookupAndNotRecorded()
    {
        AddKey(ApiKeys.NewSecret());
        Assert.Null(await _service.AuthenticateAsync(ApiKeys.NewSecret(), CancellationToken.None));
        Assert.Null(await _service.AuthenticateAsync("", CancellationToken.None));
        Assert.Equal(2, _catalog.Lookups);
        Assert.Equal(0, await _usage.FlushAsync(_catalog, CancellationToken.None));
        Assert.Empty(_catalog.Touches);
    }

    [Fact]
    public async Task KeyOfADeletedWorkspaceIsRefused()
    {
        string secret = ApiKeys.NewSecret();
        AddKey(secret);
        Assert.NotNull(await _service.AuthenticateAsync(secret, CancellationToken.None));
        Assert.True(await _workspaces.DeleteWorkspaceAsync(Ws, Now, CancellationToken.None));
        Assert.Null(await _service.AuthenticateAsync(secret, CancellationToken.None));
    }

    [Fact]
    public async Task SuccessRecordsTheLastUseAndAFlushWritesOneBatch()
    {
        string secretA = ApiKeys.NewSecret();
        string secretB = ApiKeys.NewSecret();
        var a = AddKey(secretA);
        var b = AddKey(secretB);
        long t0 = Now;

        Assert.NotNull(await _service.AuthenticateAsync(secretA, CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.NotNull(await _service.AuthenticateAsync(secretA, CancellationToken.None));
        Assert.NotNull(await _service.AuthenticateAsync(secretB, CancellationToken.None));
        // Nothing is written per request.
        Assert.Empty(_catalog.Touches);

        Assert.Equal(2, await _usage.FlushAsync(_catalog, CancellationToken.None));
        var batch = Assert.Single(_catalog.Touches);
        Assert.Equal(
            new[] { new KeyValuePair<string, long>(a.Id, t0 + 30), new KeyValuePair<string, long>(b.Id, t0 + 30) }.OrderBy(p => p.Key, StringComparer.Ordinal),
            batch.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(t0 + 30, _catalog.Keys.Single(k => k.Id == a.Id).LastUsedAt);

        // A flush with nothing new writes nothing.
        Assert.Equal(0, await _usage.FlushAsync(_catalog, CancellationToken.None));
        Assert.Single(_catalog.Touches);

        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.NotNull(await _service.AuthenticateAsync(secretB, CancellationToken.None));
        Assert.Equal(1, await _usage.FlushAsync(_catalog, CancellationToken.None));
        Assert.Equal(2, _catalog.Touches.Count);
        Assert.Equal(new KeyValuePair<string, long>(b.Id, t0 + 35), Assert.Single(_catalog.Touches[1]));
    }
}

public sealed class KeyUsageTrackerTests
{
    [Fact]
    public async Task TouchKeepsTheLatestTimePerKey()
    {
        var workspaces = new FakeWorkspaceCatalog();
        var keys = new FakeKeyCatalog(workspaces);
        var tracker = new KeyUsageTracker();
        tracker.Touch("key_a", 100);
        tracker.Touch("key_a", 50);
        tracker.Touch("key_b", 7);
        tracker.Touch("key_a", 120);
        tracker.Touch("key_a", 110);

        Assert.Equal(2, await tracker.FlushAsync(keys, CancellationToken.None));
        var batch = Assert.Single(keys.Touches);
        Assert.Equal(120, batch.Single(p => p.Key == "key_a").Value);
        Assert.Equal(7, batch.Single(p => p.Key == "key_b").Value);
    }

    [Fact]
    public async Task ConcurrentTouchesAreAllFlushedOnce()
    {
        var keys = new FakeKeyCatalog(new FakeWorkspaceCatalog());
        var tracker = new KeyUsageTracker();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                tracker.Touch("key_" + (i % 50), (t * 1000) + i);
            }
        })));
        Assert.Equal(50, await tracker.FlushAsync(keys, CancellationToken.None));
        var batch = Assert.Single(keys.Touches);
        Assert.All(batch, p => Assert.Equal(7000 + 950 + int.Parse(p.Key[4..], System.Globalization.CultureInfo.InvariantCulture), p.Value));
        Assert.Equal(0, await tracker.FlushAsync(keys, CancellationToken.None));
    }
}

public sealed class KeyCacheTests
{
    private static readonly DateTimeOffset Start = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeKeyCatalog _catalog;
    private readonly KeyCache _cache;
    private readonly KeyService _service;

    public KeyCacheTests()
    {
        _catalog = new FakeKeyCatalog(_workspaces);
        _workspaces.KeyCatalog = _catalog;
        _cache = new KeyCache(_time, TimeSpan.FromMinutes(5));
        _service = new KeyService(_catalog, _workspaces, new KeyUsageTracker(), _cache, new IdGenerator(_time), _time, NullLogger<KeyService>.Instance);
    }

    [Fact]
    public async Task AKeyThatAuthenticatedIsServedFromTheCacheUntilCleared()
    {
        await _service.BootstrapAsync("sk-cached-key", CancellationToken.None);
        int before = _catalog.Lookups;
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        Assert.Equal(before + 1, _catalog.Lookups);

        _cache.Clear();
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        Assert.Equal(before + 2, _catalog.Lookups);
    }

    [Fact]
    public async Task ASuspendedCacheServesAndKeepsNothingThenResumesEmpty()
    {
        await _service.BootstrapAsync("sk-cached-key", CancellationToken.None);
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        int before = _catalog.Lookups;

        _cache.Suspend();
        Assert.True(_cache.Suspended);
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        Assert.Equal(before + 2, _catalog.Lookups);

        _cache.Resume();
        Assert.False(_cache.Suspended);
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        Assert.Equal(before + 3, _catalog.Lookups);
    }

    [Fact]
    public async Task ALookupThatReadTheKeyBeforeARevocationClearedTheCacheIsNotKept()
    {
        await _service.BootstrapAsync("sk-cached-key", CancellationToken.None);
        // The lookup reads the key, then (before its answer is cached) the key is revoked and the cache cleared, as a
        // revocation announced by another node does while this node's request is under way.
        _catalog.AfterLookup = () =>
        {
            _catalog.AfterLookup = null;
            _catalog.Keys.Clear();
            _cache.Clear();
        };
        Assert.NotNull(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
        Assert.Null(await _service.AuthenticateAsync("sk-cached-key", CancellationToken.None));
    }

    [Fact]
    public async Task AnEntryReadBeforeASuspensionOrAClearIsNotKept()
    {
        await _service.BootstrapAsync("sk-cached-key", CancellationToken.None);
        byte[] hash = ApiKeys.Hash("sk-cached-key");
        var lookup = await _catalog.FindKeyByHashAsync(hash, CancellationToken.None);
        Assert.NotNull(lookup);

        long generation = _cache.Generation;
        _cache.Clear();
        _cache.Set(hash, lookup, generation);
        Assert.Null(_cache.Get(hash));

        generation = _cache.Generation;
        _cache.Suspend();
        _cache.Resume();
        _cache.Set(hash, lookup, generation);
        Assert.Null(_cache.Get(hash));

        _cache.Set(hash, lookup, _cache.Generation);
        Assert.Same(lookup, _cache.Get(hash));
    }

    [Fact]
    public async Task UnknownKeysAreNeverCached()
    {
        int before = _catalog.Lookups;
        for (int i = 0; i < 3; i++)
        {
            Assert.Null(await _service.AuthenticateAsync("sk-wh-unknown", CancellationToken.None));
        }
        Assert.Equal(before + 3, _catalog.Lookups);
    }

    [Fact]
    public async Task RevocationThroughTheAdminServiceIsImmediateDespiteTheCache()
    {
        var admin = new WorkspaceService(_workspaces, _catalog, _cache, new IdGenerator(_time), _time, new FakeProviderRegistry("local", "openai", "groq"));
        var workspace = await admin.CreateAsync("team", null, null, CancellationToken.None);
        var key = await admin.CreateKeyAsync(workspace.Value.Id, new KeyRequest { Name = "k" }, CancellationToken.None);
        Assert.NotNull(await _service.AuthenticateAsync(key.Value.Secret, CancellationToken.None));

        Assert.True((await admin.RevokeKeyAsync(key.Value.Key.Id, CancellationToken.None)).IsOk);
        Assert.Null(await _service.AuthenticateAsync(key.Value.Secret, CancellationToken.None));

        var other = await admin.CreateKeyAsync(workspace.Value.Id, new KeyRequest { Name = "k2" }, CancellationToken.None);
        Assert.NotNull(await _service.AuthenticateAsync(other.Value.Secret, CancellationToken.None));
        Assert.True((await admin.DeleteAsync(workspace.Value.Id, CancellationToken.None)).IsOk);
        Assert.Null(await _service.AuthenticateAsync(other.Value.Secret, CancellationToken.None));
    }
}
