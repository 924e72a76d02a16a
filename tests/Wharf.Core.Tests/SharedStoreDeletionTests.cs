using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Uploads;

namespace Wharf.Core.Tests;

/// <summary>
/// Deletes on a blob store several nodes share: a node cannot see the other nodes' downloads, so a deleted file's
/// bytes are recorded for removal after the grace, before its row goes; a download another node started completes,
/// the orphan sweep leaves them alone, and the sweep removes them once the grace is over.
/// </summary>
public sealed class SharedStoreDeletionTests
{
    private const string Ws = "ws_00000000000000000000000000000001";
    private const int Grace = 60;
    private static readonly DateTimeOffset Start = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly CallLog _log = new();
    private readonly FakeWorkspaceCatalog _workspaces = new();
    private readonly FakeFileCatalog _files;
    private readonly FakeUploadCatalog _uploads;
    private readonly FakeBlobStore _blobs;
    private readonly FakeDeferredBlobDeletions _deferred;
    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeFileCopyCatalog _copies = new();
    private readonly IdGenerator _ids;
    private readonly FileService _nodeA;
    private readonly FileService _nodeB;

    public SharedStoreDeletionTests()
    {
        _files = new FakeFileCatalog(_log, _workspaces, _time);
        _workspaces.FileCatalog = _files;
        _uploads = new FakeUploadCatalog(_log, _files);
        _blobs = new FakeBlobStore(_log) { Shared = true };
        _deferred = new FakeDeferredBlobDeletions(_log);
        _ids = new IdGenerator(_time);
        _files.Deleted = (_, fileId) => _uploads.Parts.RemoveAll(r => r.FileId == fileId); // the real catalogs drop a file's segments with it
        _nodeA = NewNode();
        _nodeB = NewNode();
    }

    private FileService NewNode()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new FilesOptions { DeletedContentGraceSeconds = Grace });
        return new FileService(_files, _workspaces, _uploads, _blobs, new FakeProviderRegistry("local"), _copies, _deferred, _copies.Deleter(_time),
            new FilePurposes(options), _ids, options, _time, NullLogger<FileService>.Instance);
    }

    private static CancellationToken Ct => CancellationToken.None;

    /// <summary>A completed upload's file: three parts, their blobs, their rows as segments.</summary>
    private (FileRecord File, byte[] Content, List<string> PartIds) PartBuiltFile(long? expiresAt = null) =>
        PartBuiltFiles.Add(_ids, _files, _uploads, _blobs, Ws, Start.ToUnixTimeSeconds(), expiresAt);

    [Fact]
    public async Task A_file_deleted_on_one_node_while_another_reads_it_downloads_whole_there()
    {
        var (file, content, partIds) = PartBuiltFile();
        var opened = await _nodeB.OpenContentAsync(Ws, file.Id, Ct);
        Assert.True(opened.IsOk);
        byte[] received = new byte[content.Length];
        await using (var stream = opened.Value.Content)
        {
            await stream.ReadExactlyAsync(received.AsMemory(0, 10)); // node B is in its first part

            Assert.True((await _nodeA.DeleteAsync(Ws, file.Id, Ct)).IsOk); // node A knows nothing of that read
            Assert.Equal(404, (await _nodeA.OpenContentAsync(Ws, file.Id, Ct)).ErrorOf().Status);
            Assert.Equal(404, (await _nodeB.OpenContentAsync(Ws, file.Id, Ct)).ErrorOf().Status);
            Assert.All(partIds, id => Assert.True(_blobs.Blobs.ContainsKey(id)));
            // The record of the blobs came before the row went: no sweep in between can take them for orphans.
            lock (_log.Calls)
            {
                Assert.True(_log.Calls.IndexOf("defer:" + partIds[^1]) < _log.Calls.IndexOf("delete:" + file.Id));
            }
            Assert.Equal(0, await _nodeA.SweepOrphansAsync(DateTimeOffset.MaxValue, Ct));
            Assert.Equal(0, await _nodeB.SweepOrphansAsync(DateTimeOffset.MaxValue, Ct));

            await stream.ReadExactlyAsync(received.AsMemory(10)); // the later parts open as the read reaches them
            Assert.Equal(content, received);
        }
        Assert.All(partIds, id => Assert.True(_blobs.Blobs.ContainsKey(id))); // the end of a read removes nothing here
        Assert.All(partIds, id => Assert.Equal(Start.ToUnixTimeSeconds() + Grace, _deferred.Deferred[id]));
    }

    [Fact]
    public async Task The_bytes_of_a_deleted_file_go_when_the_grace_is_over_and_not_before()
    {
        var (file, _, partIds) = PartBuiltFile();
        Assert.True((await _nodeA.DeleteAsync(Ws, file.Id, Ct)).IsOk);

        _time.Advance(TimeSpan.FromSeconds(Grace - 1));
        Assert.Equal(0, await _nodeB.RemoveDeferredBlobsAsync(Ct));
        Assert.All(partIds, id => Assert.True(_blobs.Blobs.ContainsKey(id)));

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(partIds.Count, await _nodeB.RemoveDeferredBlobsAsync(Ct)); // any node's sweep may do it
        Assert.All(partIds, id => Assert.False(_blobs.Blobs.ContainsKey(id)));
        Assert.Empty(_deferred.Deferred);
        Assert.Equal(0, await _nodeB.RemoveDeferredBlobsAsync(Ct));
    }

    [Fact]
    public async Task An_expired_file_swept_on_a_shared_store_keeps_its_bytes_for_the_grace_too()
    {
        var (expired, _, partIds) = PartBuiltFile(expiresAt: Start.ToUnixTimeSeconds() - 1);
        var plain = new FileRecord
        {
            Id = WharfIds.File(_ids.Next()), WorkspaceId = Ws, Bytes = 3, CreatedAt = 1, Filename = "p", Purpose = "assistants",
            Status = FileStatus.Processed, Provider = "local", Sha256 = null, ExpiresAt = Start.ToUnixTimeSeconds() - 1,
        };
        _files.Files[plain.Id] = plain;
        _blobs.Blobs[plain.Id] = [1, 2, 3];

        Assert.Equal(2, await _nodeA.DeleteExpiredAsync(Ct));
        Assert.Empty(_files.Files);
        Assert.All(partIds.Append(plain.Id), id => Assert.True(_blobs.Blobs.ContainsKey(id)));
        _time.Advance(TimeSpan.FromSeconds(Grace));
        Assert.Equal(partIds.Count + 1, await _nodeA.RemoveDeferredBlobsAsync(Ct));
        Assert.Empty(_blobs.Blobs);
    }

    [Fact]
    public async Task A_recorded_blob_that_a_row_still_names_is_kept_and_its_record_dropped()
    {
        // A delete that recorded the blobs, then failed before the row went: the file is still there, whole.
        var (file, content, partIds) = PartBuiltFile();
        await _deferred.DeferAsync(partIds, Start.ToUnixTimeSeconds(), Ct);
        // And a real orphan, recorded by nobody.
        string orphan = WharfIds.Hex(WharfIds.PartPrefix, _ids.Next());
        _blobs.Blobs[orphan] = [9];

        Assert.Equal(0, await _nodeA.RemoveDeferredBlobsAsync(Ct));
        Assert.Empty(_deferred.Deferred);
        Assert.Equal(1, await _nodeA.SweepOrphansAsync(DateTimeOffset.MaxValue, Ct));
        Assert.False(_blobs.Blobs.ContainsKey(orphan));
        var opened = await _nodeB.OpenContentAsync(Ws, file.Id, Ct);
        await using var stream = opened.Value.Content;
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(content, copy.ToArray());
    }
}
