using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;

namespace Wharf.Storage.Tests;

/// <summary>Workspaces, keys, usage and quotas: the tenancy half of the conformance suite.</summary>
public abstract partial class StorageConformanceTests
{
    private IWorkspaceCatalog Workspaces => Backend.Workspaces;

    private IKeyCatalog Keys => Backend.Keys;

    private string NewWorkspaceId() => WharfIds.Hex(WharfIds.WorkspacePrefix, _ids.Next());

    private long _createdAt = 1_750_000_000;

    private Workspace MakeWorkspace(string? name = null, long? quota = null, int? rpm = null, string? id = null) => new()
    {
        Id = id ?? NewWorkspaceId(),
        Name = name ?? "team",
        CreatedAt = _createdAt++,
        StorageQuotaBytes = quota,
        RateLimitRpm = rpm,
    };

    private async Task<Workspace> AddWorkspaceAsync(string? name = null, long? quota = null, int? rpm = null, string? id = null)
    {
        var workspace = MakeWorkspace(name, quota, rpm, id);
        await Workspaces.InsertWorkspaceAsync(workspace, Ct);
        return workspace;
    }

    private ApiKeyRecord MakeKey(string workspaceId, string secret, string name = "k") => new()
    {
        Id = WharfIds.Hex(WharfIds.KeyPrefix, _ids.Next()),
        WorkspaceId = workspaceId,
        Name = name,
        Hash = ApiKeys.Hash(secret),
        Prefix = ApiKeys.DisplayPrefix(secret),
        CreatedAt = _createdAt++,
    };

    private async Task<(ApiKeyRecord Key, string Secret)> AddKeyAsync(string workspaceId, string name = "k")
    {
        string secret = ApiKeys.NewSecret();
        var key = MakeKey(workspaceId, secret, name);
        await Keys.InsertKeyAsync(key, Ct);
        return (key, secret);
    }

    private async Task<long> UsageAsync(string workspaceId) =>
        (await Workspaces.GetWorkspaceAsync(workspaceId, Ct) ?? throw new InvalidOperationException("no workspace " + workspaceId)).UsageBytes;

    private async Task<FileRecord> InsertFileAsync(string workspaceId, long bytes)
    {
        var file = TestFiles.Make(workspaceId, NewFileId(), bytes: bytes);
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(file, Ct));
        return file;
    }

    private static void AssertSameKey(ApiKeyRecord expected, ApiKeyRecord actual)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.WorkspaceId, actual.WorkspaceId);
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.Hash, actual.Hash);
        Assert.Equal(expected.Prefix, actual.Prefix);
        Assert.Equal(expected.CreatedAt, actual.CreatedAt);
        Assert.Equal(expected.Scopes.Order(StringComparer.Ordinal), actual.Scopes.Order(StringComparer.Ordinal));
        Assert.Equal(expected.ExpiresAt, actual.ExpiresAt);
        Assert.Equal(expected.RateLimitRpm, actual.RateLimitRpm);
    }

    // ---------------------------------------------------------------- workspaces

    [Fact]
    public async Task WorkspaceInsertThenGetRoundTripsEveryField()
    {
        var full = await AddWorkspaceAsync("\u00e9quipe \u65e5\u672c \U0001F600 'quoted\"", quota: 5_000_000_000_000, rpm: 1_000_000);
        var bare = await AddWorkspaceAsync("bare");

        Assert.Equal(full, await Workspaces.GetWorkspaceAsync(full.Id, Ct));
        var read = await Workspaces.GetWorkspaceAsync(bare.Id, Ct);
        Assert.NotNull(read);
        Assert.Equal(bare.Id, read.Id);
        Assert.Equal("bare", read.Name);
        Assert.Equal(bare.CreatedAt, read.CreatedAt);
        Assert.Null(read.StorageQuotaBytes);
        Assert.Null(read.RateLimitRpm);
        Assert.Equal(0, read.UsageBytes);

        var zero = await AddWorkspaceAsync("zero", quota: 0, rpm: 1);
        Assert.Equal(zero, await Workspaces.GetWorkspaceAsync(zero.Id, Ct));

        Assert.Null(await Workspaces.GetWorkspaceAsync(NewWorkspaceId(), Ct));
        Assert.Null(await Workspaces.GetWorkspaceAsync("", Ct));
    }

    [Fact]
    public async Task WorkspacesAreFoundByName()
    {
        Assert.Null(await Workspaces.FindWorkspaceByNameAsync("default", Ct));
        var ws = await AddWorkspaceAsync("default");
        var other = await AddWorkspaceAsync("d\u00e9faut");

        Assert.Equal(ws, await Workspaces.FindWorkspaceByNameAsync("default", Ct));
        Assert.Equal(other, await Workspaces.FindWorkspaceByNameAsync("d\u00e9faut", Ct));
        Assert.Null(await Workspaces.FindWorkspaceByNameAsync("Default", Ct));
        Assert.Null(await Workspaces.FindWorkspaceByNameAsync("default ", Ct));
        Assert.Null(await Workspaces.FindWorkspaceByNameAsync("", Ct));
    }

    [Fact]
    public async Task ListWorkspacesPagesInIdOrder()
    {
        var created = new List<Workspace>();
        for (int i = 0; i < 7; i++)
        {
            created.Add(MakeWorkspace("w" + i));
        }
        // Inserted out of order: the catalog orders by id.
        foreach (var ws in created.OrderBy(w => w.Name.GetHashCode(StringComparison.Ordinal)))
        {
            await Workspaces.InsertWorkspaceAsync(ws, Ct);
        }
        var ids = created.Select(w => w.Id).Order(StringComparer.Ordinal).ToList();

        var first = await Workspaces.ListWorkspacesAsync(3, null, Ct);
        Assert.Equal(ids.Take(3), first.Items.Select(w => w.Id));
        Assert.True(first.HasMore);
        var second = await Workspaces.ListWorkspacesAsync(3, first.Items[^1].Id, Ct);
        Assert.Equal(ids.Skip(3).Take(3), second.Items.Select(w => w.Id));
        Assert.True(second.HasMore);
        var third = await Workspaces.ListWorkspacesAsync(3, second.Items[^1].Id, Ct);
        Assert.Equal(ids.Skip(6), third.Items.Select(w => w.Id));
        Assert.False(third.HasMore);

        // A full page with nothing after it has no more; past the end is empty.
        var all = await Workspaces.ListWorkspacesAsync(7, null, Ct);
        Assert.Equal(ids, all.Items.Select(w => w.Id));
        Assert.False(all.HasMore);
        var end = await Workspaces.ListWorkspacesAsync(3, ids[^1], Ct);
        Assert.Empty(end.Items);
        Assert.False(end.HasMore);

        // Every field comes back in a listing.
        var listed = all.Items.Single(w => w.Id == created[4].Id);
        Assert.Equal(created[4], listed);

        // The cursor needs only the id: a deleted workspace's id still places the page.
        Assert.True(await Workspaces.DeleteWorkspaceAsync(ids[2], Now, Ct));
        var afterDeleted = await Workspaces.ListWorkspacesAsync(2, ids[2], Ct);
        Assert.Equal(ids.Skip(3).Take(2), afterDeleted.Items.Select(w => w.Id));
        Assert.True(afterDeleted.HasMore);
        var withoutDeleted = await Workspaces.ListWorkspacesAsync(100, null, Ct);
        Assert.Equal(ids.Where(id => id != ids[2]), withoutDeleted.Items.Select(w => w.Id));
        Assert.False(withoutDeleted.HasMore);
    }

    [Fact]
    public async Task ListWorkspacesReportsUsage()
    {
        var ws = await AddWorkspaceAsync(quota: 1000);
        await InsertFileAsync(ws.Id, 123);
        var listed = Assert.Single((await Workspaces.ListWorkspacesAsync(10, null, Ct)).Items);
        Assert.Equal(123, listed.UsageBytes);
        Assert.Equal(1000, listed.StorageQuotaBytes);
    }

    [Fact]
    public async Task AllowedProvidersRoundTripAsNullEmptyOrAList()
    {
        var every = await AddWorkspaceAsync("every");
        var none = MakeWorkspace("none") with { AllowedProviders = [] };
        await Workspaces.InsertWorkspaceAsync(none, Ct);
        var some = MakeWorkspace("some") with { AllowedProviders = ["openai", "groq.eu", "my-vllm_2"] };
        await Workspaces.InsertWorkspaceAsync(some, Ct);

        Assert.Null((await Workspaces.GetWorkspaceAsync(every.Id, Ct))!.AllowedProviders);
        Assert.Empty((await Workspaces.GetWorkspaceAsync(none.Id, Ct))!.AllowedProviders!);
        Assert.Equal(["openai", "groq.eu", "my-vllm_2"], (await Workspaces.GetWorkspaceAsync(some.Id, Ct))!.AllowedProviders);

        Assert.True(await Workspaces.UpdateWorkspaceAsync(every with { AllowedProviders = ["azure"] }, Ct));
        Assert.True(await Workspaces.UpdateWorkspaceAsync(some with { AllowedProviders = null }, Ct));
        Assert.Equal(["azure"], (await Workspaces.GetWorkspaceAsync(every.Id, Ct))!.AllowedProviders);
        Assert.Null((await Workspaces.GetWorkspaceAsync(some.Id, Ct))!.AllowedProviders);
    }

    [Fact]
    public async Task UpdateWritesTheNameAndLimits()
    {
        var ws = await AddWorkspaceAsync("team", quota: 500, rpm: 60);
        await InsertFileAsync(ws.Id, 300);

        var changed = ws with { Name = "renamed", StorageQuotaBytes = 400, RateLimitRpm = 120 };
        Assert.True(await Workspaces.UpdateWorkspaceAsync(changed, Ct));
        var read = await Workspaces.GetWorkspaceAsync(ws.Id, Ct);
        Assert.Equal(changed with { UsageBytes = 300 }, read);
        Assert.Equal(ws.Id, (await Workspaces.FindWorkspaceByNameAsync("renamed", Ct))?.Id);
        Assert.Null(await Workspaces.FindWorkspaceByNameAsync("team", Ct));

        // Clearing the limits; the usage is the catalog's, whatever the record passed says.
        Assert.True(await Workspaces.UpdateWorkspaceAsync(changed with { StorageQuotaBytes = null, RateLimitRpm = null, UsageBytes = 0 }, Ct));
        read = await Workspaces.GetWorkspaceAsync(ws.Id, Ct);
        Assert.NotNull(read);
        Assert.Null(read.StorageQuotaBytes);
        Assert.Null(read.RateLimitRpm);
        Assert.Equal(300, read.UsageBytes);
        Assert.Equal("renamed", read.Name);
        Assert.Equal(ws.CreatedAt, read.CreatedAt);

        Assert.False(await Workspaces.UpdateWorkspaceAsync(MakeWorkspace("ghost"), Ct));
        Assert.Null(await Workspaces.FindWorkspaceByNameAsync("ghost", Ct));
    }

    [Fact]
    public async Task UpdateOfADeletedWorkspaceIsFalse()
    {
        var ws = await AddWorkspaceAsync("team");
        Assert.True(await Workspaces.DeleteWorkspaceAsync(ws.Id, Now, Ct));
        Assert.False(await Workspaces.UpdateWorkspaceAsync(ws with { Name = "back" }, Ct));
        Assert.Null(await Workspaces.GetWorkspaceAsync(ws.Id, Ct));
        Assert.Null(await Workspaces.FindWorkspaceByNameAsync("back", Ct));
    }

    [Fact]
    public async Task DeleteHidesTheWorkspaceAndDropsItsKeys()
    {
        var ws = await AddWorkspaceAsync("team");
        var other = await AddWorkspaceAsync("other");
        var (key1, secret1) = await AddKeyAsync(ws.Id);
        var (_, secret2) = await AddKeyAsync(ws.Id);
        var (otherKey, otherSecret) = await AddKeyAsync(other.Id);

        Assert.True(await Workspaces.DeleteWorkspaceAsync(ws.Id, Now, Ct));

        Assert.Null(await Workspaces.GetWorkspaceAsync(ws.Id, Ct));
        Assert.Null(await Workspaces.FindWorkspaceByNameAsync("team", Ct));
        Assert.Equal(new[] { other.Id }, (await Workspaces.ListWorkspacesAsync(100, null, Ct)).Items.Select(w => w.Id));
        Assert.Empty(await Keys.ListKeysAsync(ws.Id, Ct));
        Assert.Null(await Keys.FindKeyByHashAsync(ApiKeys.Hash(secret1), Ct));
        Assert.Null(await Keys.FindKeyByHashAsync(ApiKeys.Hash(secret2), Ct));
        Assert.False(await Keys.DeleteKeyAsync(key1.Id, Ct));

        // The other workspace and its key are untouched.
        Assert.Equal(other, await Workspaces.GetWorkspaceAsync(other.Id, Ct));
        Assert.Equal(otherKey.Id, (await Keys.FindKeyByHashAsync(ApiKeys.Hash(otherSecret), Ct))?.Key.Id);
        Assert.Equal(otherKey.Id, Assert.Single(await Keys.ListKeysAsync(other.Id, Ct)).Id);

        Assert.False(await Workspaces.DeleteWorkspaceAsync(ws.Id, Now, Ct));
        Assert.False(await Workspaces.DeleteWorkspaceAsync(NewWorkspaceId(), Now, Ct));
    }

    [Fact]
    public async Task DeletingTheOnlyKeysWorkspaceLeavesNoKey()
    {
        var ws = await AddWorkspaceAsync();
        await AddKeyAsync(ws.Id);
        Assert.True(await Keys.AnyKeyAsync(Ct));
        Assert.True(await Workspaces.DeleteWorkspaceAsync(ws.Id, Now, Ct));
        Assert.False(await Keys.AnyKeyAsync(Ct));
    }

    [Fact]
    public async Task ANameOfADeletedWorkspaceCanBeUsedAgain()
    {
        var old = await AddWorkspaceAsync("team");
        Assert.True(await Workspaces.DeleteWorkspaceAsync(old.Id, Now, Ct));
        var fresh = await AddWorkspaceAsync("team");
        Assert.Equal(fresh, await Workspaces.FindWorkspaceByNameAsync("team", Ct));
        Assert.Null(await Workspaces.GetWorkspaceAsync(old.Id, Ct));
    }

    [Fact]
    public async Task ListDeletedListsOnlyDeletedWorkspacesWithARow()
    {
        var live = await AddWorkspaceAsync("live");
        var a = await AddWorkspaceAsync("a");
        var b = await AddWorkspaceAsync("b");
        var c = await AddWorkspaceAsync("c");
        Assert.Empty(await Workspaces.ListDeletedWorkspacesAsync(100, Ct));

        Assert.True(await Workspaces.DeleteWorkspaceAsync(a.Id, Now, Ct));
        Assert.True(await Workspaces.DeleteWorkspaceAsync(b.Id, Now + 1, Ct));
        Assert.True(await Workspaces.DeleteWorkspaceAsync(c.Id, Now + 2, Ct));

        var deleted = await Workspaces.ListDeletedWorkspacesAsync(100, Ct);
        Assert.Equal(new[] { a.Id, b.Id, c.Id }.Order(StringComparer.Ordinal), deleted.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(live.Id, deleted);
        var two = await Workspaces.ListDeletedWorkspacesAsync(2, Ct);
        Assert.Equal(2, two.Count);
        Assert.Empty(two.Except(deleted));

        Assert.True(await Workspaces.PurgeWorkspaceAsync(b.Id, Ct));
        Assert.Equal(new[] { a.Id, c.Id }.Order(StringComparer.Ordinal), (await Workspaces.ListDeletedWorkspacesAsync(100, Ct)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task PurgeWaitsUntilTheDeletedWorkspaceHoldsNoFile()
    {
        var ws = await AddWorkspaceAsync("team");
        var other = await AddWorkspaceAsync("other");
        var f1 = await InsertFileAsync(ws.Id, 10);
        var f2 = await InsertFileAsync(ws.Id, 20);
        await InsertFileAsync(other.Id, 30);

        // A live workspace is never purged, files or not.
        Assert.False(await Workspaces.PurgeWorkspaceAsync(ws.Id, Ct));
        Assert.NotNull(await Workspaces.GetWorkspaceAsync(ws.Id, Ct));

        Assert.True(await Workspaces.DeleteWorkspaceAsync(ws.Id, Now, Ct));
        Assert.False(await Workspaces.PurgeWorkspaceAsync(ws.Id, Ct));
        Assert.Contains(ws.Id, await Workspaces.ListDeletedWorkspacesAsync(100, Ct));

        // Its files are still reachable by id for the sweeper.
        Assert.NotNull(await Catalog.GetAsync(ws.Id, f1.Id, Ct));
        Assert.True(await Catalog.DeleteAsync(ws.Id, f1.Id, Ct));
        Assert.False(await Workspaces.PurgeWorkspaceAsync(ws.Id, Ct));
        Assert.True(await Catalog.DeleteAsync(ws.Id, f2.Id, Ct));

        Assert.True(await Workspaces.PurgeWorkspaceAsync(ws.Id, Ct));
        Assert.DoesNotContain(ws.Id, await Workspaces.ListDeletedWorkspacesAsync(100, Ct));
        Assert.False(await Workspaces.PurgeWorkspaceAsync(ws.Id, Ct));
        Assert.False(await Workspaces.PurgeWorkspaceAsync(NewWorkspaceId(), Ct));
        Assert.Null(await Workspaces.GetWorkspaceAsync(ws.Id, Ct));

        // The other workspace keeps its row and usage.
        Assert.Equal(30, await UsageAsync(other.Id));
    }

    [Fact]
    public async Task PurgeOfAnEmptyLiveWorkspaceIsFalse()
    {
        var ws = await AddWorkspaceAsync("team");
        Assert.False(await Workspaces.PurgeWorkspaceAsync(ws.Id, Ct));
        Assert.Equal(ws, await Workspaces.GetWorkspaceAsync(ws.Id, Ct));
    }

    // ---------------------------------------------------------------- keys

    [Fact]
    public async Task KeysAreFoundByHash()
    {
        Assert.False(await Keys.AnyKeyAsync(Ct));
        var wsA = await AddWorkspaceAsync("a", quota: 999, rpm: 42, id: WsA);
        await AddWorkspaceAsync("b", id: WsB);
        string secret = ApiKeys.NewSecret();
        var key = MakeKey(WsA, secret, "bootstrap");
        await Keys.InsertKeyAsync(key, Ct);
        await Keys.InsertKeyAsync(MakeKey(WsB, ApiKeys.NewSecret()), Ct);
        Assert.True(await Keys.AnyKeyAsync(Ct));

        var found = await Keys.FindKeyByHashAsync(ApiKeys.Hash(secret), Ct);
        Assert.NotNull(found);
        Assert.Equal(key.Id, found.Key.Id);
        Assert.Equal(WsA, found.Key.WorkspaceId);
        Assert.Equal("bootstrap", found.Key.Name);
        Assert.Equal(key.Hash, found.Key.Hash);
        Assert.Equal(key.Prefix, found.Key.Prefix);
        Assert.Equal(key.CreatedAt, found.Key.CreatedAt);
        Assert.Equal(wsA, found.Workspace);

        Assert.Null(await Keys.FindKeyByHashAsync(ApiKeys.Hash(secret + "x"), Ct));
        Assert.Null(await Keys.FindKeyByHashAsync(new byte[32], Ct));
    }

    [Fact]
    public async Task TheLookupCarriesTheWorkspacesCurrentUsage()
    {
        var ws = await AddWorkspaceAsync(quota: 1000);
        var (_, secret) = await AddKeyAsync(ws.Id);
        await InsertFileAsync(ws.Id, 250);
        var found = await Keys.FindKeyByHashAsync(ApiKeys.Hash(secret), Ct);
        Assert.Equal(250, found?.Workspace.UsageBytes);
        Assert.Equal(1000, found?.Workspace.StorageQuotaBytes);
    }

    [Fact]
    public async Task AKeyWhoseWorkspaceHasNoRowIsNotFound()
    {
        // A lookup holds the key's workspace; without a workspace there is nothing to authenticate into.
        string secret = ApiKeys.NewSecret();
        await Keys.InsertKeyAsync(MakeKey(NewWorkspaceId(), secret), Ct);
        Assert.Null(await Keys.FindKeyByHashAsync(ApiKeys.Hash(secret), Ct));
    }

    [Fact]
    public async Task ASecondKeyWithTheSameHashIsRejected()
    {
        await AddWorkspaceAsync("a", id: WsA);
        await AddWorkspaceAsync("b", id: WsB);
        string secret = ApiKeys.NewSecret();
        var first = MakeKey(WsA, secret, "first");
        await Keys.InsertKeyAsync(first, Ct);

        await Assert.ThrowsAnyAsync<Exception>(() => Keys.InsertKeyAsync(MakeKey(WsB, secret, "second"), Ct));

        var found = await Keys.FindKeyByHashAsync(ApiKeys.Hash(secret), Ct);
        Assert.Equal(first.Id, found?.Key.Id);
        Assert.Equal(WsA, found?.Key.WorkspaceId);
        Assert.Empty(await Keys.ListKeysAsync(WsB, Ct));
    }

    [Fact]
    public async Task ListKeysListsThatWorkspacesKeysOldestFirst()
    {
        var ws = await AddWorkspaceAsync("a");
        var other = await AddWorkspaceAsync("b");
        var keys = new List<ApiKeyRecord>();
        for (int i = 0; i < 5; i++)
        {
            keys.Add(MakeKey(ws.Id, ApiKeys.NewSecret(), "k" + i));
        }
        var theirs = MakeKey(other.Id, ApiKeys.NewSecret(), "theirs");
        // Inserted out of order, with another workspace's key among them.
        foreach (var key in new[] { keys[3], keys[0], theirs, keys[4], keys[1], keys[2] })
        {
            await Keys.InsertKeyAsync(key, Ct);
        }

        var listed = await Keys.ListKeysAsync(ws.Id, Ct);
        Assert.Equal(keys.Select(k => k.Id), listed.Select(k => k.Id));
        for (int i = 0; i < keys.Count; i++)
        {
            AssertSameKey(keys[i], listed[i]);
            Assert.Null(listed[i].LastUsedAt);
        }
        AssertSameKey(theirs, Assert.Single(await Keys.ListKeysAsync(other.Id, Ct)));
        Assert.Empty(await Keys.ListKeysAsync(NewWorkspaceId(), Ct));
    }

    [Fact]
    public async Task DeletingAKeyRevokesIt()
    {
        var ws = await AddWorkspaceAsync();
        var (revoked, revokedSecret) = await AddKeyAsync(ws.Id, "revoked");
        var (kept, keptSecret) = await AddKeyAsync(ws.Id, "kept");
        Assert.NotNull(await Keys.FindKeyByHashAsync(ApiKeys.Hash(revokedSecret), Ct));

        Assert.True(await Keys.DeleteKeyAsync(revoked.Id, Ct));
        Assert.Null(await Keys.FindKeyByHashAsync(ApiKeys.Hash(revokedSecret), Ct));
        Assert.Equal(new[] { kept.Id }, (await Keys.ListKeysAsync(ws.Id, Ct)).Select(k => k.Id));
        Assert.Equal(kept.Id, (await Keys.FindKeyByHashAsync(ApiKeys.Hash(keptSecret), Ct))?.Key.Id);
        Assert.False(await Keys.DeleteKeyAsync(revoked.Id, Ct));
        Assert.False(await Keys.DeleteKeyAsync(WharfIds.Hex(WharfIds.KeyPrefix, _ids.Next()), Ct));

        Assert.True(await Keys.AnyKeyAsync(Ct));
        Assert.True(await Keys.DeleteKeyAsync(kept.Id, Ct));
        Assert.False(await Keys.AnyKeyAsync(Ct));
        // The workspace itself stays.
        Assert.NotNull(await Workspaces.GetWorkspaceAsync(ws.Id, Ct));
    }

    [Fact]
    public async Task TouchKeysKeepsTheLatestTime()
    {
        var ws = await AddWorkspaceAsync();
        var (a, secretA) = await AddKeyAsync(ws.Id, "a");
        var (b, _) = await AddKeyAsync(ws.Id, "b");
        var (c, _) = await AddKeyAsync(ws.Id, "c");

        async Task<long?> LastUsedAsync(string id) => (await Keys.ListKeysAsync(ws.Id, Ct)).Single(k => k.Id == id).LastUsedAt;

        await Keys.TouchKeysAsync([new(a.Id, 1_750_000_100), new(b.Id, 1_750_000_050)], Ct);
        Assert.Equal(1_750_000_100, await LastUsedAsync(a.Id));
        Assert.Equal(1_750_000_050, await LastUsedAsync(b.Id));
        Assert.Null(await LastUsedAsync(c.Id));
        Assert.Equal(1_750_000_100, (await Keys.FindKeyByHashAsync(ApiKeys.Hash(secretA), Ct))?.Key.LastUsedAt);

        // An older time (a flush from a slower node) never moves it back; a newer one moves it on.
        await Keys.TouchKeysAsync([new(a.Id, 1_750_000_090), new(b.Id, 1_750_000_200)], Ct);
        Assert.Equal(1_750_000_100, await LastUsedAsync(a.Id));
        Assert.Equal(1_750_000_200, await LastUsedAsync(b.Id));

        // An unknown or revoked key in the batch is skipped; the rest is written.
        string unknown = WharfIds.Hex(WharfIds.KeyPrefix, _ids.Next());
        await Keys.TouchKeysAsync([new(unknown, 1_750_000_300), new(c.Id, 1_750_000_300)], Ct);
        Assert.Equal(1_750_000_300, await LastUsedAsync(c.Id));
        Assert.Equal(3, (await Keys.ListKeysAsync(ws.Id, Ct)).Count);

        await Keys.TouchKeysAsync([], Ct);
        Assert.Equal(1_750_000_300, await LastUsedAsync(c.Id));
    }

    [Fact]
    public async Task ScopesExpiryAndRateLimitRoundTrip()
    {
        var ws = await AddWorkspaceAsync();
        string restrictedSecret = ApiKeys.NewSecret();
        var restricted = MakeKey(ws.Id, restrictedSecret, "reader") with
        {
            Scopes = [ApiScopes.FilesRead, ApiScopes.BatchesRead],
            ExpiresAt = 1_900_000_000,
            RateLimitRpm = 60,
        };
        string oneSecret = ApiKeys.NewSecret();
        var one = MakeKey(ws.Id, oneSecret, "writer") with { Scopes = [ApiScopes.FilesWrite], RateLimitRpm = 1_000_000 };
        string plainSecret = ApiKeys.NewSecret();
        var plain = MakeKey(ws.Id, plainSecret, "plain");
        await Keys.InsertKeyAsync(restricted, Ct);
        await Keys.InsertKeyAsync(one, Ct);
        await Keys.InsertKeyAsync(plain, Ct);

        var found = await Keys.FindKeyByHashAsync(ApiKeys.Hash(restrictedSecret), Ct);
        Assert.NotNull(found);
        AssertSameKey(restricted, found.Key);
        Assert.Equal(2, found.Key.Scopes.Count);
        AssertSameKey(one, (await Keys.FindKeyByHashAsync(ApiKeys.Hash(oneSecret), Ct))!.Key);
        Assert.Equal(new[] { ApiScopes.FilesWrite }, (await Keys.FindKeyByHashAsync(ApiKeys.Hash(oneSecret), Ct))!.Key.Scopes);

        var plainFound = await Keys.FindKeyByHashAsync(ApiKeys.Hash(plainSecret), Ct);
        Assert.NotNull(plainFound);
        Assert.Equal([ApiScopes.Every], plainFound.Key.Scopes);
        Assert.Null(plainFound.Key.ExpiresAt);
        Assert.Null(plainFound.Key.RateLimitRpm);

        var listed = await Keys.ListKeysAsync(ws.Id, Ct);
        Assert.Equal(3, listed.Count);
        AssertSameKey(restricted, listed[0]);
        AssertSameKey(one, listed[1]);
        AssertSameKey(plain, listed[2]);
    }

    // ---------------------------------------------------------------- usage and quota

    [Fact]
    public async Task UsageFollowsInsertsAndDeletes()
    {
        var ws = await AddWorkspaceAsync("a");
        var other = await AddWorkspaceAsync("b");
        Assert.Equal(0, await UsageAsync(ws.Id));

        var small = await InsertFileAsync(ws.Id, 100);
        Assert.Equal(100, await UsageAsync(ws.Id));
        var large = await InsertFileAsync(ws.Id, 5_000_000_000);
        Assert.Equal(5_000_000_100, await UsageAsync(ws.Id));
        await InsertFileAsync(ws.Id, 0);
        Assert.Equal(5_000_000_100, await UsageAsync(ws.Id));

        // Another workspace's files count for it alone.
        var theirs = await InsertFileAsync(other.Id, 7);
        Assert.Equal(5_000_000_100, await UsageAsync(ws.Id));
        Assert.Equal(7, await UsageAsync(other.Id));

        Assert.True(await Catalog.DeleteAsync(ws.Id, small.Id, Ct));
        Assert.Equal(5_000_000_000, await UsageAsync(ws.Id));
        // A delete that removes nothing subtracts nothing.
        Assert.False(await Catalog.DeleteAsync(ws.Id, small.Id, Ct));
        Assert.False(await Catalog.DeleteAsync(ws.Id, theirs.Id, Ct));
        Assert.False(await Catalog.DeleteAsync(other.Id, large.Id, Ct));
        Assert.False(await Catalog.DeleteAsync(ws.Id, NewFileId(), Ct));
        Assert.Equal(5_000_000_000, await UsageAsync(ws.Id));
        Assert.Equal(7, await UsageAsync(other.Id));

        Assert.True(await Catalog.DeleteAsync(ws.Id, large.Id, Ct));
        Assert.Equal(0, await UsageAsync(ws.Id));
        Assert.True(await Catalog.DeleteAsync(other.Id, theirs.Id, Ct));
        Assert.Equal(0, await UsageAsync(other.Id));
    }

    [Fact]
    public async Task AFileOfAWorkspaceWithoutARowIsInsertedWithoutQuota()
    {
        var file = TestFiles.Make(NewWorkspaceId(), NewFileId(), bytes: long.MaxValue / 2);
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(file, Ct));
        Assert.NotNull(await Catalog.GetAsync(file.WorkspaceId, file.Id, Ct));
        Assert.True(await Catalog.DeleteAsync(file.WorkspaceId, file.Id, Ct));
    }

    [Fact]
    public async Task AnInsertOverTheQuotaIsRefusedAndWritesNothing()
    {
        var ws = await AddWorkspaceAsync(quota: 1000);
        await InsertFileAsync(ws.Id, 600);

        var over = TestFiles.Make(ws.Id, NewFileId(), bytes: 401, metadata: new Dictionary<string, string> { ["k"] = "v" });
        Assert.Equal(FileInsertOutcome.QuotaExceeded, await Catalog.InsertAsync(over, Ct));
        Assert.Null(await Catalog.GetAsync(ws.Id, over.Id, Ct));
        Assert.Empty(await Catalog.FindExistingAsync([over.Id], Ct));
        Assert.Empty((await Catalog.ListAsync(Query(ws.Id, metadata: [new("k", "v")]), Ct)).Items);
        Assert.Single((await Catalog.ListAsync(Query(ws.Id), Ct)).Items);
        Assert.Equal(600, await UsageAsync(ws.Id));

        // Refused, nothing was written: the same id can still be inserted once it fits.
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(over with { Bytes = 400 }, Ct));
        Assert.Equal(1000, await UsageAsync(ws.Id));
        Assert.Equal("v", (await Catalog.GetAsync(ws.Id, over.Id, Ct))?.Metadata["k"]);

        // Full: not one byte more, but an empty file takes nothing.
        Assert.Equal(FileInsertOutcome.QuotaExceeded, await Catalog.InsertAsync(TestFiles.Make(ws.Id, NewFileId(), bytes: 1), Ct));
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(TestFiles.Make(ws.Id, NewFileId(), bytes: 0), Ct));
        Assert.Equal(1000, await UsageAsync(ws.Id));
    }

    [Fact]
    public async Task ExactlyReachingTheQuotaIsAllowed()
    {
        var ws = await AddWorkspaceAsync(quota: 1000);
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(TestFiles.Make(ws.Id, NewFileId(), bytes: 1000), Ct));
        Assert.Equal(1000, await UsageAsync(ws.Id));

        var single = await AddWorkspaceAsync(quota: 5_000_000_000);
        Assert.Equal(FileInsertOutcome.QuotaExceeded, await Catalog.InsertAsync(TestFiles.Make(single.Id, NewFileId(), bytes: 5_000_000_001), Ct));
        Assert.Equal(0, await UsageAsync(single.Id));
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(TestFiles.Make(single.Id, NewFileId(), bytes: 5_000_000_000), Ct));
        Assert.Equal(5_000_000_000, await UsageAsync(single.Id));
    }

    [Fact]
    public async Task AZeroQuotaRefusesAnyByte()
    {
        var ws = await AddWorkspaceAsync(quota: 0);
        Assert.Equal(FileInsertOutcome.QuotaExceeded, await Catalog.InsertAsync(TestFiles.Make(ws.Id, NewFileId(), bytes: 1), Ct));
        Assert.Empty((await Catalog.ListAsync(Query(ws.Id), Ct)).Items);
        Assert.Equal(0, await UsageAsync(ws.Id));
    }

    [Fact]
    public async Task FilesOfAnotherWorkspaceDoNotCountAgainstTheQuota()
    {
        var ws = await AddWorkspaceAsync("limited", quota: 100);
        var other = await AddWorkspaceAsync("other");
        await InsertFileAsync(other.Id, 10_000);
        var otherLimited = await AddWorkspaceAsync("other-limited", quota: 50);
        await InsertFileAsync(otherLimited.Id, 50);

        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(TestFiles.Make(ws.Id, NewFileId(), bytes: 100), Ct));
        Assert.Equal(100, await UsageAsync(ws.Id));
    }

    [Fact]
    public async Task FreedSpaceCanBeUsedAgainAndALoweredQuotaBindsNewInsertsOnly()
    {
        var ws = await AddWorkspaceAsync(quota: 1000);
        var a = await InsertFileAsync(ws.Id, 700);
        Assert.Equal(FileInsertOutcome.QuotaExceeded, await Catalog.InsertAsync(TestFiles.Make(ws.Id, NewFileId(), bytes: 301), Ct));
        Assert.True(await Catalog.DeleteAsync(ws.Id, a.Id, Ct));
        var b = await InsertFileAsync(ws.Id, 1000);

        // Lowering the quota under the usage keeps the files but refuses more.
        var current = await Workspaces.GetWorkspaceAsync(ws.Id, Ct);
        Assert.True(await Workspaces.UpdateWorkspaceAsync(current! with { StorageQuotaBytes = 500 }, Ct));
        Assert.Equal(1000, await UsageAsync(ws.Id));
        Assert.NotNull(await Catalog.GetAsync(ws.Id, b.Id, Ct));
        Assert.Equal(FileInsertOutcome.QuotaExceeded, await Catalog.InsertAsync(TestFiles.Make(ws.Id, NewFileId(), bytes: 1), Ct));

        // Raising it, or clearing it, lets inserts through again.
        Assert.True(await Workspaces.UpdateWorkspaceAsync(current with { StorageQuotaBytes = null }, Ct));
        await InsertFileAsync(ws.Id, 1_000_000);
        Assert.Equal(1_001_000, await UsageAsync(ws.Id));
    }

    [Fact]
    public async Task ParallelInsertsNeverTakeUsageOverTheQuota()
    {
        const long Quota = 20_000;
        const int MaxFile = 503;
        var ws = await AddWorkspaceAsync(quota: Quota);
        int accepted = 0;
        int refused = 0;
        long maxSeen = 0;
        using var done = new CancellationTokenSource();

        var monitor = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                long usage = await UsageAsync(ws.Id);
                InterlockedMax(ref maxSeen, usage);
                await Task.Yield();
            }
        });

        var writers = Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            var random = new Random(1000 + t);
            var mine = new List<FileRecord>();
            for (int i = 0; i < 25; i++)
            {
                var file = TestFiles.Make(ws.Id, NewFileId(), bytes: random.Next(97, MaxFile + 1));
                if (await Catalog.InsertAsync(file, Ct) == FileInsertOutcome.Inserted)
                {
                    Interlocked.Increment(ref accepted);
                    mine.Add(file);
                }
                else
                {
                    Interlocked.Increment(ref refused);
                }
                // Some deletes run alongside, so the usage goes down as well as up.
                if (i % 5 == 4 && mine.Count > 0)
                {
                    Assert.True(await Catalog.DeleteAsync(ws.Id, mine[0].Id, Ct));
                    mine.RemoveAt(0);
                }
            }
        })).ToList();
        await Task.WhenAll(writers);
        await done.CancelAsync();
        await monitor;

        var present = (await Catalog.ListAsync(Query(ws.Id, limit: 10_000), Ct)).Items;
        long usage = await UsageAsync(ws.Id);
        Assert.Equal(present.Sum(f => f.Bytes), usage);
        Assert.True(usage <= Quota, $"usage {usage} is over the quota {Quota}");
        Assert.True(maxSeen <= Quota, $"usage reached {maxSeen}, over the quota {Quota}");
        Assert.Equal(200, accepted + refused);
        // The quota was reached (some inserts were refused) and the refusals were right to be.
        Assert.True(refused > 0, "no insert was refused: the test did not reach the quota");
        Assert.True(accepted > Quota / MaxFile, $"only {accepted} inserts were accepted");
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current = Volatile.Read(ref target);
        while (value > current)
        {
            long seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }
            current = seen;
        }
    }

    [Fact]
    public async Task The_largest_live_workspaces_are_listed_with_their_bytes_and_files_largest_first_up_to_the_cap()
    {
        var reader = Assert.IsAssignableFrom<IWorkspaceUsageReader>(Workspaces);
        // Sizes far above anything another test stores, so that these are the largest whatever else the catalog holds.
        const long Tera = 1_000_000_000_000;
        var small = await AddWorkspaceAsync("small");
        var large = await AddWorkspaceAsync("large");
        var middle = await AddWorkspaceAsync("middle");
        var deleted = await AddWorkspaceAsync("deleted");
        await InsertFileAsync(small.Id, 7 * Tera);
        await InsertFileAsync(large.Id, 9 * Tera);
        await InsertFileAsync(large.Id, 1 * Tera);
        await InsertFileAsync(large.Id, 1 * Tera);
        await InsertFileAsync(middle.Id, 4 * Tera);
        await InsertFileAsync(middle.Id, 4 * Tera);
        await InsertFileAsync(deleted.Id, 50 * Tera);
        Assert.True(await Workspaces.DeleteWorkspaceAsync(deleted.Id, Now, Ct));

        var top = await reader.ListLargestAsync(2, Ct);
        Assert.Equal([new WorkspaceStorage(large.Id, 11 * Tera, 3), new WorkspaceStorage(middle.Id, 8 * Tera, 2)], top);
        var three = await reader.ListLargestAsync(3, Ct);
        Assert.Equal(new WorkspaceStorage(small.Id, 7 * Tera, 1), three[2]);
    }
}
