using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Uploads;

namespace Wharf.Core.Tests;

/// <summary>
/// A file made from upload parts, deleted while it is read: its parts stay until the read ends (the orphan sweep leaves
/// them alone meanwhile), then go.
/// </summary>
public sealed class ContentReadsTests
{
    private const string Ws = "ws_00000000000000000000000000000001";
    private static readonly DateTimeOffset Start = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly CallLog _log = new();
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeFileCatalog _files;
    private readonly FakeUploadCatalog _uploads;
    private readonly FakeBlobStore _blobs;
    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeFileCopyCatalog _copies = new();
    private readonly IdGenerator _ids;
    private readonly FileService _service;
    private readonly FakeDeferredBlobDeletions _deferred = new(new CallLog());

    public ContentReadsTests()
    {
        _files = new FakeFileCatalog(_log, _workspaces, _time);
        _workspaces.FileCatalog = _files;
        _uploads = new FakeUploadCatalog(_log, _files);
        _blobs = new FakeBlobStore(_log);
        _ids = new IdGenerator(_time);
        var options = Microsoft.Extensions.Options.Options.Create(new FilesOptions());
        _service = new FileService(_files, _workspaces, _uploads, _blobs, new FakeProviderRegistry("local"), _copies, _deferred, _copies.Deleter(_time), new FilePurposes(options),
            _ids, options, _time, NullLogger<FileService>.Instance);
    }

    private static CancellationToken Ct => CancellationToken.None;

    /// <summary>A completed upload's file: three parts, their blobs, their rows as segments.</summary>
    private (FileRecord File, byte[] Content, List<string> PartIds) PartBuiltFile() =>
        PartBuiltFiles.Add(_ids, _files, _uploads, _blobs, Ws, Start.ToUnixTimeSeconds());

    /// <summary>What the SQLite catalog's delete does with the segments' rows (the fake file catalog keeps them).</summary>
    private void DropSegmentRows(string fileId) => _uploads.Parts.RemoveAll(r => r.FileId == fileId);

    [Fact]
    public async Task DeletedWhileReadItsPartsStayUntilTheReadEndsAndTheSweepLeavesThemAlone()
    {
        var (file, content, partIds) = PartBuiltFile();
        var opened = await _service.OpenContentAsync(Ws, file.Id, Ct);
        Assert.True(opened.IsOk);
        byte[] received = new byte[content.Length];
        await using (var stream = opened.Value.Content)
        {
            await stream.ReadExactlyAsync(received.AsMemory(0, 10));

            Assert.True((await _service.DeleteAsync(Ws, file.Id, Ct)).IsOk);
            DropSegmentRows(file.Id);
            Assert.Equal(404, (await _service.OpenContentAsync(Ws, file.Id, Ct)).ErrorOf().Status);
            Assert.All(partIds, id => Assert.True(_blobs.Blobs.ContainsKey(id)));
            Assert.Equal(0, await _service.SweepOrphansAsync(DateTimeOffset.MaxValue, Ct));

            await stream.ReadExactlyAsync(received.AsMemory(10));
            Assert.Equal(content, received);
        }
        Assert.All(partIds, id => Assert.False(_blobs.Blobs.ContainsKey(id)));
    }

    [Fact]
    public async Task TwoReadsTheLastOneRemovesTheParts()
    {
        var (file, _, partIds) = PartBuiltFile();
        var first = (await _service.OpenContentAsync(Ws, file.Id, Ct)).Value.Content;
        var second = (await _service.OpenContentAsync(Ws, file.Id, Ct)).Value.Content;
        Assert.True((await _service.DeleteAsync(Ws, file.Id, Ct)).IsOk);
        DropSegmentRows(file.Id);

        await first.DisposeAsync();
        Assert.All(partIds, id => Assert.True(_blobs.Blobs.ContainsKey(id)));
        second.Dispose();
        Assert.All(partIds, id => Assert.False(_blobs.Blobs.ContainsKey(id)));
    }

    [Fact]
    public async Task NotReadTheyGoAtOnceAndNothingStaysKeptAfterwards()
    {
        var (file, _, partIds) = PartBuiltFile();
        // A read that ended before the delete holds nothing.
        await (await _service.OpenContentAsync(Ws, file.Id, Ct)).Value.Content.DisposeAsync();
        Assert.True((await _service.DeleteAsync(Ws, file.Id, Ct)).IsOk);
        Assert.All(partIds, id => Assert.False(_blobs.Blobs.ContainsKey(id)));
        Assert.Equal(404, (await _service.DeleteAsync(Ws, file.Id, Ct)).ErrorOf().Status);

        // Blobs that a delete marked but did not remove (no such row any more) are orphans again for the sweep.
        DropSegmentRows(file.Id);
        foreach (string id in partIds)
        {
            _blobs.Blobs[id] = [1];
        }
        Assert.Equal(partIds.Count, await _service.SweepOrphansAsync(DateTimeOffset.MaxValue, Ct));
    }
}
