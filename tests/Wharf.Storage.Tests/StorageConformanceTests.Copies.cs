using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Tests;

/// <summary>Provider copies, copy intents and upstream deletions: what every catalog back-end must do with them.</summary>
public abstract partial class StorageConformanceTests
{
    private IFileCopyCatalog Copies => Backend.Copies;

    private async Task<FileRecord> InsertCopiedFileAsync(string ws = WsA, long bytes = 42)
    {
        var file = TestFiles.Make(ws, NewFileId(), bytes: bytes);
        Assert.Equal(FileInsertOutcome.Inserted, await Catalog.InsertAsync(file, Ct));
        return file;
    }

    private async Task<Wharf.Core.Auth.Workspace> WorkspaceWithQuotaAsync(long quota)
    {
        var workspace = new Wharf.Core.Auth.Workspace { Id = WsA, Name = "copies", CreatedAt = 1, StorageQuotaBytes = quota };
        await Backend.Workspaces.InsertWorkspaceAsync(workspace, Ct);
        return workspace;
    }

    [Fact]
    public async Task AFileAndItsCopyAreWrittenTogetherAndTheIntentGoes()
    {
        await WorkspaceWithQuotaAsync(1000);
        var file = TestFiles.Make(WsA, NewFileId(), provider: "openai", bytes: 100);
        await Copies.RecordIntentAsync(new CopyIntent(file.Id, "openai", WsA, "a.txt", 100, 1_750_000_000), Ct);

        var outcome = await Copies.InsertFileWithCopyAsync(file, new FileCopy(WsA, file.Id, "openai", "file-abc", 1_750_000_001), Ct);

        Assert.Equal(FileInsertOutcome.Inserted, outcome);
        Assert.NotNull(await Catalog.GetAsync(WsA, file.Id, Ct));
        Assert.Equal(new FileCopy(WsA, file.Id, "openai", "file-abc", 1_750_000_001), await Copies.GetCopyAsync(WsA, file.Id, "openai", Ct));
        Assert.Null(await Copies.GetCopyAsync(WsB, file.Id, "openai", Ct));
        Assert.Null(await Copies.GetCopyAsync(WsA, file.Id, "groq", Ct));
        Assert.Empty(await Copies.ListStaleIntentsAsync(long.MaxValue, 10, Ct));
        Assert.Equal(100, (await Backend.Workspaces.GetWorkspaceAsync(WsA, Ct))!.UsageBytes);
    }

    [Fact]
    public async Task AFileRefusedForItsQuotaWritesNeitherRowNorCopy()
    {
        await WorkspaceWithQuotaAsync(50);
        var file = TestFiles.Make(WsA, NewFileId(), provider: "openai", bytes: 100);
        await Copies.RecordIntentAsync(new CopyIntent(file.Id, "openai", WsA, "a.txt", 100, 1_750_000_000), Ct);

        var outcome = await Copies.InsertFileWithCopyAsync(file, new FileCopy(WsA, file.Id, "openai", "file-abc", 1), Ct);

        Assert.Equal(FileInsertOutcome.QuotaExceeded, outcome);
        Assert.Null(await Catalog.GetAsync(WsA, file.Id, Ct));
        Assert.Null(await Copies.GetCopyAsync(WsA, file.Id, "openai", Ct));
        Assert.Single(await Copies.ListStaleIntentsAsync(long.MaxValue, 10, Ct));
        Assert.Equal(0, (await Backend.Workspaces.GetWorkspaceAsync(WsA, Ct))!.UsageBytes);
    }

    [Fact]
    public async Task ACopyNeedsItsFileAndIsRecordedOncePerProvider()
    {
        var file = await InsertCopiedFileAsync();
        await Copies.RecordIntentAsync(new CopyIntent(file.Id, "openai", WsA, "a.txt", 42, 1_750_000_000), Ct);

        Assert.True(await Copies.InsertCopyAsync(new FileCopy(WsA, file.Id, "openai", "up-1", 1), Ct));
        Assert.False(await Copies.InsertCopyAsync(new FileCopy(WsA, file.Id, "openai", "up-2", 2), Ct));
        Assert.True(await Copies.InsertCopyAsync(new FileCopy(WsA, file.Id, "groq", "up-3", 3), Ct));
        // Another workspace's id for the file, or a file with no row: nothing.
        Assert.False(await Copies.InsertCopyAsync(new FileCopy(WsB, file.Id, "azure", "up-4", 4), Ct));
        Assert.False(await Copies.InsertCopyAsync(new FileCopy(WsA, NewFileId(), "openai", "up-5", 5), Ct));

        Assert.Equal("up-1", (await Copies.GetCopyAsync(WsA, file.Id, "openai", Ct))!.UpstreamId);
        Assert.Equal("up-3", (await Copies.GetCopyAsync(WsA, file.Id, "groq", Ct))!.UpstreamId);
        Assert.Null(await Copies.GetCopyAsync(WsB, file.Id, "azure", Ct));
        Assert.Empty(await Copies.ListStaleIntentsAsync(long.MaxValue, 10, Ct));
        Assert.Equal(["up-1"], await Copies.FindKnownUpstreamIdsAsync("openai", ["up-1", "up-3", "nope"], Ct));
        Assert.Equal(["up-1"], await Copies.FindWorkspaceUpstreamIdsAsync(WsA, "openai", ["up-1", "up-3", "nope"], Ct));
        Assert.Empty(await Copies.FindWorkspaceUpstreamIdsAsync(WsB, "openai", ["up-1"], Ct));
        Assert.Empty(await Copies.FindWorkspaceUpstreamIdsAsync(WsA, "groq", ["up-1"], Ct));
        Assert.Empty(await Copies.FindWorkspaceUpstreamIdsAsync(WsA, "openai", [], Ct));
    }

    [Fact]
    public async Task ARetiredCopyLeavesItsRecordForADeletionAndTheFileCanBeCopiedAgain()
    {
        var file = await InsertCopiedFileAsync();
        var copy = new FileCopy(WsA, file.Id, "gemini", "files/old", 1);
        Assert.True(await Copies.InsertCopyAsync(copy, Ct));

        // Only the copy it names: a record made again meanwhile is left alone.
        Assert.False(await Copies.RetireCopyAsync(copy with { UpstreamId = "files/other" }, 1_750_000_700, Ct));
        Assert.True(await Copies.RetireCopyAsync(copy, 1_750_000_700, Ct));
        Assert.False(await Copies.RetireCopyAsync(copy, 1_750_000_701, Ct));

        Assert.Null(await Copies.GetCopyAsync(WsA, file.Id, "gemini", Ct));
        Assert.Equal([new UpstreamDeletion("gemini", "files/old", file.Id, 0, 1_750_000_700)], await Copies.ListDeletionsOfFileAsync(file.Id, Ct));
        Assert.True(await Copies.InsertCopyAsync(new FileCopy(WsA, file.Id, "gemini", "files/new", 2), Ct));
        Assert.Equal("files/new", (await Copies.GetCopyAsync(WsA, file.Id, "gemini", Ct))!.UpstreamId);
        // The retired id stays known (queued), so no request can name it as the workspace's own any more.
        Assert.Equal(["files/old"], await Copies.FindKnownUpstreamIdsAsync("gemini", ["files/old"], Ct));
        Assert.Empty(await Copies.FindWorkspaceUpstreamIdsAsync(WsA, "gemini", ["files/old"], Ct));
    }

    [Fact]
    public async Task DeletingAFileQueuesItsCopiesForDeletionInTheSameStep()
    {
        Clock.Now = DateTimeOffset.FromUnixTimeSeconds(1_750_000_500);
        var file = await InsertCopiedFileAsync();
        var other = await InsertCopiedFileAsync();
        await Copies.InsertCopyAsync(new FileCopy(WsA, file.Id, "openai", "up-1", 1), Ct);
        await Copies.InsertCopyAsync(new FileCopy(WsA, file.Id, "groq", "up-2", 1), Ct);
        await Copies.InsertCopyAsync(new FileCopy(WsA, other.Id, "openai", "up-3", 1), Ct);

        Assert.False(await Catalog.DeleteAsync(WsB, file.Id, Ct));
        Assert.Empty(await Copies.ListDeletionsOfFileAsync(file.Id, Ct));
        Assert.True(await Catalog.DeleteAsync(WsA, file.Id, Ct));

        var queued = (await Copies.ListDeletionsOfFileAsync(file.Id, Ct)).OrderBy(d => d.Provider, StringComparer.Ordinal).ToList();
        Assert.Equal(
            [new UpstreamDeletion("groq", "up-2", file.Id, 0, 1_750_000_500), new UpstreamDeletion("openai", "up-1", file.Id, 0, 1_750_000_500)],
            queued);
        Assert.Null(await Copies.GetCopyAsync(WsA, file.Id, "openai", Ct));
        Assert.NotNull(await Copies.GetCopyAsync(WsA, other.Id, "openai", Ct));
        Assert.Equal(["up-1", "up-3"], (await Copies.FindKnownUpstreamIdsAsync("openai", ["up-1", "up-3"], Ct)).Order(StringComparer.Ordinal));
        // A second delete queues nothing more.
        Assert.False(await Catalog.DeleteAsync(WsA, file.Id, Ct));
        Assert.Equal(2, (await Copies.ListDueDeletionsAsync(long.MaxValue, 10, Ct)).Count);
    }

    [Fact]
    public async Task DeletionsAreDueInOrderRescheduledAndCompleted()
    {
        await Copies.QueueDeletionAsync(new UpstreamDeletion("openai", "up-late", "file-a", 0, 300), Ct);
        await Copies.QueueDeletionAsync(new UpstreamDeletion("openai", "up-soon", "file-b", 0, 100), Ct);
        await Copies.QueueDeletionAsync(new UpstreamDeletion("groq", "up-mid", "file-c", 0, 200), Ct);
        // Queuing the same copy again changes nothing.
        await Copies.QueueDeletionAsync(new UpstreamDeletion("openai", "up-soon", "file-b", 5, 999), Ct);

        Assert.Equal(["up-soon", "up-mid"], (await Copies.ListDueDeletionsAsync(250, 10, Ct)).Select(d => d.UpstreamId));
        Assert.Equal(["up-soon"], (await Copies.ListDueDeletionsAsync(250, 1, Ct)).Select(d => d.UpstreamId));
        Assert.Empty(await Copies.ListDueDeletionsAsync(99, 10, Ct));

        await Copies.RescheduleDeletionAsync("openai", "up-soon", 1, 400, Ct);
        Assert.Equal(["up-mid", "up-late"], (await Copies.ListDueDeletionsAsync(300, 10, Ct)).Select(d => d.UpstreamId));
        Assert.Equal(new UpstreamDeletion("openai", "up-soon", "file-b", 1, 400), Assert.Single(await Copies.ListDeletionsOfFileAsync("file-b", Ct)));

        await Copies.CompleteDeletionAsync("groq", "up-mid", Ct);
        await Copies.CompleteDeletionAsync("openai", "up-mid", Ct); // another provider's id: nothing
        Assert.Equal(["up-late", "up-soon"], (await Copies.ListDueDeletionsAsync(1000, 10, Ct)).Select(d => d.UpstreamId));
        Assert.Equal(["up-late"], await Copies.FindKnownUpstreamIdsAsync("openai", ["up-late", "up-mid"], Ct));
    }

    [Fact]
    public async Task IntentsAreReplacedListedWhenStaleAndRemovedByQueuingTheirCopy()
    {
        await Copies.RecordIntentAsync(new CopyIntent("file-a", "openai", WsA, "a.txt", 1, 100), Ct);
        await Copies.RecordIntentAsync(new CopyIntent("file-a", "openai", WsA, "a2.txt", 2, 150), Ct);
        await Copies.RecordIntentAsync(new CopyIntent("file-a", "groq", WsA, "a.txt", 1, 120), Ct);
        await Copies.RecordIntentAsync(new CopyIntent("file-b", "openai", WsB, "b \u00e9.txt", 3, 500), Ct);

        Assert.Equal(
            [new CopyIntent("file-a", "groq", WsA, "a.txt", 1, 120), new CopyIntent("file-a", "openai", WsA, "a2.txt", 2, 150)],
            await Copies.ListStaleIntentsAsync(400, 10, Ct));

        await Copies.QueueDeletionAsync(new UpstreamDeletion("openai", "up-x", "file-a", 0, 1), Ct);
        await Copies.RemoveIntentAsync("file-a", "groq", Ct);
        Assert.Equal([new CopyIntent("file-b", "openai", WsB, "b \u00e9.txt", 3, 500)], await Copies.ListStaleIntentsAsync(long.MaxValue, 10, Ct));
    }
}
