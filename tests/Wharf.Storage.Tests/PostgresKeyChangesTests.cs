using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Wharf.Core.Auth;
using Wharf.Core.Ids;
using Wharf.Storage.Postgres;
using Wharf.Testing;

namespace Wharf.Storage.Tests;

/// <summary>
/// Key revocation across nodes on the PostgreSQL catalog: every change that can make a cached key wrong is announced
/// by its own transaction, and a node's listener clears its key cache on each announcement, suspending the cache
/// while it is not listening.
/// </summary>
public sealed class PostgresKeyChangesTests : IAsyncLifetime
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(1);
    private readonly IdGenerator _ids = new(TimeProvider.System);
    private PostgresBackend _nodeA = null!;
    private PostgresBackend _nodeB = null!;

    private static CancellationToken Ct => CancellationToken.None;

    public async Task InitializeAsync()
    {
        _nodeA = await PostgresBackend.CreateAsync(TimeProvider.System);
        _nodeB = await _nodeA.OpenSecondNodeAsync(TimeProvider.System);
    }

    public async Task DisposeAsync()
    {
        await _nodeB.DisposeAsync();
        await _nodeA.DisposeAsync();
    }

    private async Task<Workspace> AddWorkspaceAsync()
    {
        var workspace = new Workspace { Id = WharfIds.Hex(WharfIds.WorkspacePrefix, _ids.Next()), Name = "team", CreatedAt = 1 };
        await _nodeA.Workspaces.InsertWorkspaceAsync(workspace, Ct);
        return workspace;
    }

    private async Task<(ApiKeyRecord Key, byte[] Hash)> AddKeyAsync(string workspaceId)
    {
        string secret = ApiKeys.NewSecret();
        var key = new ApiKeyRecord
        {
            Id = WharfIds.Hex(WharfIds.KeyPrefix, _ids.Next()),
            WorkspaceId = workspaceId,
            Name = "k",
            Hash = ApiKeys.Hash(secret),
            Prefix = ApiKeys.DisplayPrefix(secret),
            CreatedAt = 1,
        };
        await _nodeA.Keys.InsertKeyAsync(key, Ct);
        return (key, key.Hash);
    }

    /// <summary>A connection of the test's own that listens on the channel, with what it heard.</summary>
    private async Task<(NpgsqlConnection Connection, List<string> Heard)> ListenAsync()
    {
        var connection = new NpgsqlConnection(_nodeA.ConnectionString);
        await connection.OpenAsync();
        var heard = new List<string>();
        connection.Notification += (_, e) => heard.Add(e.Channel);
        await using var listen = new NpgsqlCommand($"LISTEN {PostgresKeyChanges.Channel};", connection);
        await listen.ExecuteNonQueryAsync();
        return (connection, heard);
    }

    private static async Task AssertAnnouncedAsync(NpgsqlConnection connection, List<string> heard, string what)
    {
        Assert.True(await connection.WaitAsync(TimeSpan.FromSeconds(5)), what + " was not announced");
        Assert.Equal([PostgresKeyChanges.Channel], heard);
        heard.Clear();
    }

    private static async Task AssertNotAnnouncedAsync(NpgsqlConnection connection, List<string> heard, string what)
    {
        Assert.False(await connection.WaitAsync(TimeSpan.FromMilliseconds(500)), what + " was announced");
        Assert.Empty(heard);
    }

    [Fact]
    public async Task EveryChangeThatCanMakeACachedKeyWrongIsAnnouncedAndNothingElse()
    {
        var (connection, heard) = await ListenAsync();
        await using var _ = connection;

        var workspace = await AddWorkspaceAsync();
        var (key, _) = await AddKeyAsync(workspace.Id);
        var (other, _) = await AddKeyAsync(workspace.Id);
        await AssertNotAnnouncedAsync(connection, heard, "a new workspace or key (unknown keys are never cached)");

        Assert.True(await _nodeA.Keys.DeleteKeyAsync(key.Id, Ct));
        await AssertAnnouncedAsync(connection, heard, "a revoked key");
        Assert.False(await _nodeA.Keys.DeleteKeyAsync(key.Id, Ct));
        await AssertNotAnnouncedAsync(connection, heard, "a revocation of a key already gone");

        Assert.True(await _nodeA.Workspaces.UpdateWorkspaceAsync(workspace with { RateLimitRpm = 10 }, Ct));
        await AssertAnnouncedAsync(connection, heard, "a changed workspace");
        var unknown = workspace with { Id = WharfIds.Hex(WharfIds.WorkspacePrefix, _ids.Next()) };
        Assert.False(await _nodeA.Workspaces.UpdateWorkspaceAsync(unknown, Ct));
        await AssertNotAnnouncedAsync(connection, heard, "a change of an unknown workspace");

        Assert.True(await _nodeA.Workspaces.DeleteWorkspaceAsync(workspace.Id, 2, Ct));
        await AssertAnnouncedAsync(connection, heard, "a deleted workspace");
        Assert.Null(await _nodeA.Keys.FindKeyByHashAsync(other.Hash, Ct));
        Assert.False(await _nodeA.Workspaces.DeleteWorkspaceAsync(workspace.Id, 3, Ct));
        await AssertNotAnnouncedAsync(connection, heard, "a deletion of a workspace already deleted");
    }

    [Fact]
    public async Task AnAnnouncementIsSentOnlyWhenItsTransactionCommits()
    {
        var (connection, heard) = await ListenAsync();
        await using var _ = connection;
        await using (var changing = new NpgsqlConnection(_nodeA.ConnectionString))
        {
            await changing.OpenAsync();
            await using var transaction = await changing.BeginTransactionAsync();
            await PostgresKeyChanges.AnnounceAsync(changing, transaction, Ct);
            await transaction.RollbackAsync();
        }
        await AssertNotAnnouncedAsync(connection, heard, "a change rolled back");
    }

    [Fact]
    public async Task AKeyRevokedThroughAnotherNodeLeavesThisNodesCacheWithinASecond()
    {
        var cache = new KeyCache(TimeProvider.System, TimeSpan.FromMinutes(5));
        await using var listener = await StartListenerAsync(cache);
        var workspace = await AddWorkspaceAsync();
        var (key, hash) = await AddKeyAsync(workspace.Id);
        var (other, otherHash) = await AddKeyAsync(workspace.Id);
        await CacheAsync(cache, hash);
        await CacheAsync(cache, otherHash);

        Assert.True(await _nodeA.Keys.DeleteKeyAsync(key.Id, Ct));
        await AssertClearedWithinAsync(cache, hash);

        await CacheAsync(cache, otherHash);
        Assert.True(await _nodeA.Workspaces.DeleteWorkspaceAsync(workspace.Id, 2, Ct));
        await AssertClearedWithinAsync(cache, otherHash);
    }

    [Fact]
    public async Task AListenerWhoseConnectionIsCutSuspendsTheCacheUntilItListensAgain()
    {
        var cache = new KeyCache(TimeProvider.System, TimeSpan.FromMinutes(5));
        await using var listener = await StartListenerAsync(cache);
        var workspace = await AddWorkspaceAsync();
        var (key, hash) = await AddKeyAsync(workspace.Id);
        await CacheAsync(cache, hash);

        // The server ends the listener's connection (as a restart or a network fault would).
        await using (var admin = new NpgsqlConnection(_nodeA.ConnectionString))
        {
            await admin.OpenAsync();
            await using var terminate = new NpgsqlCommand(
                $"""
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN {PostgresKeyChanges.Channel}%';
                """,
                admin);
            Assert.Equal(1L, await terminate.ExecuteScalarAsync());
        }
        await WaitForAsync(() => cache.Suspended, TimeSpan.FromSeconds(10), "the cache is suspended once the connection is lost");
        Assert.Null(cache.Get(hash));

        await WaitForAsync(() => !cache.Suspended, TimeSpan.FromSeconds(20), "the listener listens again");
        await CacheAsync(cache, hash);
        Assert.True(await _nodeA.Keys.DeleteKeyAsync(key.Id, Ct));
        await AssertClearedWithinAsync(cache, hash);
    }

    [Fact]
    public async Task ANodeThatCannotListenNeverUsesItsCache()
    {
        var cluster = await PostgresCluster.Shared;
        string connectionString = await cluster.CreateDatabaseAsync();
        await using var database = await PostgresDatabase.OpenAsync(connectionString, Ct);
        await cluster.DropDatabaseAsync(connectionString);
        var cache = new KeyCache(TimeProvider.System, TimeSpan.FromMinutes(5));
        var workspace = await AddWorkspaceAsync();
        var (_, hash) = await AddKeyAsync(workspace.Id);
        var lookup = await _nodeA.Keys.FindKeyByHashAsync(hash, Ct);
        Assert.NotNull(lookup);

        var listener = new PostgresKeyChangeListener(database, cache, TimeProvider.System, NullLogger<PostgresKeyChangeListener>.Instance);
        await listener.StartAsync(Ct);
        try
        {
            for (int i = 0; i < 20; i++)
            {
                cache.Set(hash, lookup, cache.Generation);
                Assert.Null(cache.Get(hash));
                await Task.Delay(100);
            }
            Assert.True(cache.Suspended);
        }
        finally
        {
            await listener.StopAsync(Ct);
        }
    }

    [Fact]
    public void TheRetryDelayDoublesUpToItsCeiling()
    {
        Assert.Equal(PostgresKeyChangeListener.FirstRetryDelay, PostgresKeyChangeListener.RetryDelay(1));
        Assert.Equal(PostgresKeyChangeListener.FirstRetryDelay * 2, PostgresKeyChangeListener.RetryDelay(2));
        Assert.Equal(PostgresKeyChangeListener.FirstRetryDelay * 8, PostgresKeyChangeListener.RetryDelay(4));
        Assert.Equal(PostgresKeyChangeListener.MaxRetryDelay, PostgresKeyChangeListener.RetryDelay(7));
        Assert.Equal(PostgresKeyChangeListener.MaxRetryDelay, PostgresKeyChangeListener.RetryDelay(1000));
    }

    /// <summary>Node B's listener on node B's data source, started and listening (its cache no longer suspended).</summary>
    private async Task<StartedListener> StartListenerAsync(KeyCache cache)
    {
        // Long enough that its connection's last query stays the LISTEN, by which the tests find it.
        var listener = new PostgresKeyChangeListener(_nodeB.Database, cache, TimeProvider.System, NullLogger<PostgresKeyChangeListener>.Instance)
        {
            CheckInterval = TimeSpan.FromMinutes(10),
        };
        Assert.False(cache.Suspended);
        await listener.StartAsync(Ct);
        var started = new StartedListener(listener);
        await WaitForAsync(() => !cache.Suspended, TimeSpan.FromSeconds(20), "the listener listens");
        return started;
    }

    /// <summary>Looks the key up on node B and caches it, as an authenticated request does.</summary>
    private async Task CacheAsync(KeyCache cache, byte[] hash)
    {
        long generation = cache.Generation;
        var lookup = await _nodeB.Keys.FindKeyByHashAsync(hash, Ct);
        Assert.NotNull(lookup);
        cache.Set(hash, lookup, generation);
        Assert.NotNull(cache.Get(hash));
    }

    private static async Task AssertClearedWithinAsync(KeyCache cache, byte[] hash)
    {
        var clock = Stopwatch.StartNew();
        while (cache.Get(hash) is not null && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(5);
        }
        Assert.Null(cache.Get(hash));
        Assert.True(clock.Elapsed < Within, $"the cache was cleared after {clock.Elapsed.TotalMilliseconds:F0} ms");
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < timeout)
        {
            await Task.Delay(20);
        }
        Assert.True(condition(), what + " within " + timeout);
    }

    private sealed class StartedListener(PostgresKeyChangeListener listener) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await listener.StopAsync(CancellationToken.None);
            listener.Dispose();
        }
    }
}
