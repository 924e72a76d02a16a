using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;

namespace Wharf.Storage.Tests;

/// <summary>
/// Named leases, claims on hashing a file, and deletes that race: what lets several nodes share the background work
/// of one catalog, each item done once.
/// </summary>
public abstract partial class StorageConformanceTests
{
    private const string Sweep = "storage-sweep";
    private const string Owner1 = "node_1111111111111111";
    private const string Owner2 = "node_2222222222222222";

    private ILeaseCatalog Leases => Backend.Leases;

    [Fact]
    public async Task ALeaseHasOneOwnerAtATimeAndItsOwnerKeepsIt()
    {
        Assert.True(await Leases.TryAcquireAsync(Sweep, Owner1, 1_000, 31_000, Ct));
        Assert.False(await Leases.TryAcquireAsync(Sweep, Owner2, 1_000, 31_000, Ct));
        Assert.False(await Leases.TryAcquireAsync(Sweep, Owner2, 30_999, 60_999, Ct));
        // The owner asking again keeps it, with the new deadline: the other node is still refused after the old one.
        Assert.True(await Leases.TryAcquireAsync(Sweep, Owner1, 20_000, 50_000, Ct));
        Assert.False(await Leases.TryAcquireAsync(Sweep, Owner2, 31_000, 61_000, Ct));
        Assert.False(await Leases.TryAcquireAsync(Sweep, Owner2, 49_999, 79_999, Ct));
    }

    [Fact]
    public async Task ALeaseThatRanOutGoesToTheNextNodeAndItsOldOwnerCannotRenewIt()
    {
        Assert.True(await Leases.TryAcquireAsync(Sweep, Owner1, 1_000, 31_000, Ct));
        Assert.True(await Leases.TryAcquireAsync(Sweep, Owner2, 31_000, 61_000, Ct)); // ran out at its deadline
        Assert.False(await Leases.RenewAsync(Sweep, Owner1, 91_000, Ct));
        Assert.False(await Leases.TryAcquireAsync(Sweep, Owner1, 40_000, 70_000, Ct));
        Assert.True(await Leases.RenewAsync(Sweep, Owner2, 91_000, Ct));
        Assert.False(await Leases.TryAcquireAsync(Sweep, Owner1, 61_000, 91_000, Ct)); // the renewal moved the deadline
        Assert.True(await Leases.TryAcquireAsync(Sweep, Owner1, 91_000, 121_000, Ct));
    }

    [Fact]
    public async Task OnlyItsOwnerRenewsOrReleasesALease()
    {
        Assert.False(await Leases.RenewAsync(Sweep, Owner1, 31_000, Ct)); // no one holds it: nothing to renew
        Assert.True(await Leases.TryAcquireAsync(Sweep, Owner1, 1_000, 31_000, Ct));
        Assert.False(await Leases.RenewAsync(Sweep, Owner2, 99_000, Ct));
        await Leases.ReleaseAsync(Sweep, Owner2, Ct);
        Assert.False(await Leases.TryAcquireAsync(Sweep, Owner2, 2_000, 32_000, Ct)); // still the first owner's

        Assert.True(await Leases.RenewAsync(Sweep, Owner1, 40_000, Ct));
        await Leases.ReleaseAsync(Sweep, Owner1, Ct);
        Assert.False(await Leases.RenewAsync(Sweep, Owner1, 50_000, Ct)); // released: no longer its
        Assert.True(await Leases.TryAcquireAsync(Sweep, Owner2, 3_000, 33_000, Ct)); // free at once, long before 40 s
        await Leases.ReleaseAsync(Sweep, Owner2, Ct);
        await Leases.ReleaseAsync(Sweep, Owner2, Ct); // releasing twice is harmless
    }

    [Fact]
    public async Task LeasesOfDifferentNamesHaveTheirOwnOwners()
    {
        Assert.True(await Leases.TryAcquireAsync(Sweep, Owner1, 1_000, 31_000, Ct));
        Assert.True(await Leases.TryAcquireAsync("provider-file-sweep", Owner2, 1_000, 31_000, Ct));
        Assert.False(await Leases.TryAcquireAsync("provider-file-sweep", Owner1, 1_000, 31_000, Ct));
        await Leases.ReleaseAsync("provider-file-sweep", Owner2, Ct);
        Assert.False(await Leases.TryAcquireAsync(Sweep, Owner2, 1_000, 31_000, Ct)); // the other lease is untouched
    }

    [Fact]
    public async Task NodesAskingForAFreeLeaseAtOnceGiveItOneOwner()
    {
        for (int round = 0; round < 5; round++)
        {
            string name = "race-" + round;
            var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(i =>
                Task.Run(() => Leases.TryAcquireAsync(name, $"node_{i:x16}", 1_000, 31_000, Ct))));
            Assert.Single(answers, taken => taken);
        }
    }

    // ---------------------------------------------------------------- claims on hashing a file

    private async Task<FileRecord> InsertUnhashedAsync(string ws = WsA)
    {
        var file = TestFiles.Make(ws, NewFileId()) with { Sha256 = null };
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(file, Ct));
        return file;
    }

    [Fact]
    public async Task AHashingClaimHasOneOwnerAtATimeAndKeepsItsFileOffTheUnhashedList()
    {
        var claimed = await InsertUnhashedAsync();
        var free = await InsertUnhashedAsync();
        long now = NowMs;

        Assert.True(await Catalog.ClaimHashingAsync(WsA, claimed.Id, Owner1, now, now + 60_000, Ct));
        Assert.False(await Catalog.ClaimHashingAsync(WsA, claimed.Id, Owner2, now, now + 60_000, Ct));
        Assert.Equal([free.Id], (await Catalog.ListUnhashedAsync(null, 10, now, Ct)).Select(f => f.Id));
        Assert.Equal([free.Id], (await Catalog.ListUnhashedAsync(null, 10, now + 59_999, Ct)).Select(f => f.Id));
        // Its owner renews it (the same call): the deadline moves.
        Assert.True(await Catalog.ClaimHashingAsync(WsA, claimed.Id, Owner1, now + 30_000, now + 90_000, Ct));
        Assert.False(await Catalog.ClaimHashingAsync(WsA, claimed.Id, Owner2, now + 60_000, now + 120_000, Ct));
        Assert.Equal([free.Id], (await Catalog.ListUnhashedAsync(null, 10, now + 60_000, Ct)).Select(f => f.Id));
        // Its file's row is unchanged by the claim.
        Assert.Equal(claimed with { Metadata = FileRecord.EmptyMetadata }, (await Catalog.GetAsync(WsA, claimed.Id, Ct))! with { Metadata = FileRecord.EmptyMetadata });
    }

    [Fact]
    public async Task AHashingClaimThatRanOutIsTakenOverAndAReleasedOneFreesItsFileAtOnce()
    {
        var file = await InsertUnhashedAsync();
        long now = NowMs;
        Assert.True(await Catalog.ClaimHashingAsync(WsA, file.Id, Owner1, now, now + 60_000, Ct));

        // A dead owner's claim runs out: the file is listed again, and another node takes it.
        Assert.Equal([file.Id], (await Catalog.ListUnhashedAsync(null, 10, now + 60_000, Ct)).Select(f => f.Id));
        Assert.True(await Catalog.ClaimHashingAsync(WsA, file.Id, Owner2, now + 60_000, now + 120_000, Ct));
        Assert.False(await Catalog.ClaimHashingAsync(WsA, file.Id, Owner1, now + 60_001, now + 120_001, Ct)); // the old owner's renewal fails

        // Only its owner gives a claim up; then the file is free at once.
        await Catalog.ReleaseHashingAsync(WsA, file.Id, Owner1, Ct);
        Assert.Empty(await Catalog.ListUnhashedAsync(null, 10, now + 61_000, Ct));
        await Catalog.ReleaseHashingAsync(WsA, file.Id, Owner2, Ct);
        Assert.Equal([file.Id], (await Catalog.ListUnhashedAsync(null, 10, now + 61_000, Ct)).Select(f => f.Id));
        Assert.True(await Catalog.ClaimHashingAsync(WsA, file.Id, Owner1, now + 61_000, now + 121_000, Ct));
    }

    [Fact]
    public async Task NoClaimOnAHashedAGoneOrAnotherWorkspacesFile()
    {
        var hashed = TestFiles.Make(WsA, NewFileId());
        await Catalog.InsertAsync(hashed, Ct);
        var unhashed = await InsertUnhashedAsync();
        long now = NowMs;

        Assert.False(await Catalog.ClaimHashingAsync(WsA, hashed.Id, Owner1, now, now + 60_000, Ct));
        Assert.False(await Catalog.ClaimHashingAsync(WsB, unhashed.Id, Owner1, now, now + 60_000, Ct));
        Assert.False(await Catalog.ClaimHashingAsync(WsA, NewFileId(), Owner1, now, now + 60_000, Ct));
        Assert.True(await Catalog.ClaimHashingAsync(WsA, unhashed.Id, Owner1, now, now + 60_000, Ct));
        // Once hashed, its owner's claim is over too: nothing is left to renew.
        Assert.True(await Catalog.SetSha256Async(WsA, unhashed.Id, new string('c', 64), Ct));
        Assert.False(await Catalog.ClaimHashingAsync(WsA, unhashed.Id, Owner1, now, now + 60_000, Ct));
        Assert.True(await Catalog.DeleteAsync(WsA, hashed.Id, Ct));
        Assert.False(await Catalog.ClaimHashingAsync(WsA, hashed.Id, Owner1, now, now + 60_000, Ct));
    }

    [Fact]
    public async Task NodesClaimingAFileAtOnceGiveItOneOwner()
    {
        var file = await InsertUnhashedAsync();
        long now = NowMs;
        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(i =>
            Task.Run(() => Catalog.ClaimHashingAsync(WsA, file.Id, $"node_{i:x16}", now, now + 60_000, Ct))));
        Assert.Single(answers, claimed => claimed);
    }

    // ---------------------------------------------------------------- deletes that race

    /// <summary>
    /// Sweeps of expired files on several nodes (or a sweep and an API delete) may reach the same file at once: one
    /// delete removes it, and only that one takes its bytes out of the usage and queues its copy's upstream deletion.
    /// </summary>
    [Fact]
    public async Task DeletesOfTheSameExpiredFilesRacingRemoveEachOnceAndCountItOnce()
    {
        await Backend.Workspaces.InsertWorkspaceAsync(new Wharf.Core.Auth.Workspace { Id = WsA, Name = "race", CreatedAt = 1 }, Ct);
        var kept = TestFiles.Make(WsA, NewFileId(), bytes: 7);
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(kept, Ct));
        var expired = new List<FileRecord>();
        for (int i = 0; i < 20; i++)
        {
            var file = TestFiles.Make(WsA, NewFileId(), bytes: 100 + i, expiresAt: Now - 1,
                metadata: new Dictionary<string, string> { ["k"] = "v" + i });
            Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(file, Ct));
            Assert.True(await Copies.InsertCopyAsync(new FileCopy(WsA, file.Id, "openai", "up-" + file.Id, 1), Ct));
            expired.Add(file);
        }
        Assert.Equal(7 + expired.Sum(f => f.Bytes), (await Backend.Workspaces.GetWorkspaceAsync(WsA, Ct))!.UsageBytes);

        // Four sweeps at once, each deleting what it listed, in its own order.
        var removedBy = await Task.WhenAll(Enumerable.Range(0, 4).Select(sweep => Task.Run(async () =>
        {
            var listed = await Catalog.ListExpiredAsync(Now, 500, Ct);
            var removed = new List<string>();
            foreach (var file in sweep % 2 == 0 ? listed : listed.Reverse())
            {
                if (await Catalog.DeleteAsync(file.WorkspaceId, file.Id, Ct))
                {
                    removed.Add(file.Id);
                }
            }
            return removed;
        })));

        var removedIds = removedBy.SelectMany(r => r).ToList();
        Assert.Equal(expired.Select(f => f.Id).Order(StringComparer.Ordinal), removedIds.Order(StringComparer.Ordinal)); // each once
        Assert.Equal(7, (await Backend.Workspaces.GetWorkspaceAsync(WsA, Ct))!.UsageBytes);
        Assert.Empty(await Catalog.ListExpiredAsync(Now, 500, Ct));
        Assert.NotNull(await Catalog.GetAsync(WsA, kept.Id, Ct));
        var queued = await Copies.ListDueDeletionsAsync(long.MaxValue, 100, Ct);
        Assert.Equal(expired.Select(f => "up-" + f.Id).Order(StringComparer.Ordinal), queued.Select(d => d.UpstreamId).Order(StringComparer.Ordinal));
    }

    // ---------------------------------------------------------------- bytes of deleted files, removed later

    [Fact]
    public async Task DeferredBlobsComeDueAtTheirTimeSoonestFirstAndAreForgotten()
    {
        var deferred = Backend.DeferredBlobs;
        string[] late = [NewFileId(), NewFileId()];
        string soon = NewFileId();
        await deferred.DeferAsync(late, 2_000, Ct);
        await deferred.DeferAsync([soon], 1_000, Ct);
        await deferred.DeferAsync([], 1_000, Ct);

        Assert.Empty(await deferred.ListDueAsync(999, 10, Ct));
        Assert.Equal([soon], await deferred.ListDueAsync(1_000, 10, Ct));
        Assert.Equal(soon, (await deferred.ListDueAsync(2_000, 10, Ct))[0]);
        Assert.Equal(late.Append(soon).Order(StringComparer.Ordinal), (await deferred.ListDueAsync(2_000, 10, Ct)).Order(StringComparer.Ordinal));
        Assert.Single(await deferred.ListDueAsync(2_000, 1, Ct));

        await deferred.ForgetAsync([soon, late[0]], Ct);
        await deferred.ForgetAsync([], Ct);
        Assert.Equal([late[1]], await deferred.ListDueAsync(long.MaxValue, 10, Ct));
    }

    [Fact]
    public async Task DeferringABlobAgainKeepsTheLaterTime()
    {
        var deferred = Backend.DeferredBlobs;
        string blob = NewFileId();
        await deferred.DeferAsync([blob], 2_000, Ct);
        await deferred.DeferAsync([blob, blob], 1_000, Ct); // a second delete racing the first: the bytes stay the longer time
        Assert.Empty(await deferred.ListDueAsync(1_999, 10, Ct));
        await deferred.DeferAsync([blob], 3_000, Ct);
        Assert.Empty(await deferred.ListDueAsync(2_999, 10, Ct));
        Assert.Equal([blob], await deferred.ListDueAsync(3_000, 10, Ct));
    }

    [Fact]
    public async Task FindDeferredReportsTheRecordedBlobsWhateverTheirTime()
    {
        var deferred = Backend.DeferredBlobs;
        string due = NewFileId(), later = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next()), unknown = NewFileId();
        await deferred.DeferAsync([due], 1, Ct);
        await deferred.DeferAsync([later], long.MaxValue, Ct);
        var found = await deferred.FindDeferredAsync([due, later, unknown], Ct);
        Assert.Equal(new[] { due, later }.Order(StringComparer.Ordinal), found.Order(StringComparer.Ordinal));
        Assert.Empty(await deferred.FindDeferredAsync([], Ct));
        await deferred.ForgetAsync([due], Ct);
        Assert.Equal([later], await deferred.FindDeferredAsync([due, later], Ct));
    }
}
