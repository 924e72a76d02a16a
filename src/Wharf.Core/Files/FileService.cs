using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Errors;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Providers;
using Wharf.Core.Uploads;

namespace Wharf.Core.Files;

/// <summary>The Files API: create, list, read and delete files of one workspace.</summary>
public sealed partial class FileService(
    IFileCatalog catalog,
    IWorkspaceCatalog workspaces,
    IUploadCatalog uploads,
    IBlobStore blobs,
    IProviderRegistry providers,
    IFileCopyCatalog copies,
    IDeferredBlobDeletions deferred,
    UpstreamDeletions deletions,
    FilePurposes purposes,
    IdGenerator ids,
    IOptions<FilesOptions> options,
    TimeProvider time,
    ILogger<FileService> logger)
{
    public const string LocalProvider = "local";

    private readonly ContentReads _reads = new();

    public long MaxUploadBytes => options.Value.MaxUploadBytes;

    /// <summary>
    /// Stages bytes for a new file of the workspace: streamed to the store and hashed, nothing kept in memory.
    /// Refused while streaming (and nothing kept) once it passes the size limit or the workspace's free quota.
    /// </summary>
    public async Task<Result<StagedBlob>> StageAsync(string workspaceId, Stream content, CancellationToken cancellationToken)
    {
        long maxBytes = options.Value.MaxUploadBytes;
        long? free = null;
        if (await workspaces.GetWorkspaceAsync(workspaceId, cancellationToken) is { StorageQuotaBytes: { } quota } workspace)
        {
            free = Math.Max(0, quota - workspace.UsageBytes);
            maxBytes = Math.Min(maxBytes, free.Value);
        }
        var staged = await blobs.StageAsync(content, maxBytes, cancellationToken);
        if (staged is not null)
        {
            return staged;
        }
        return free is { } f && f < options.Value.MaxUploadBytes ? WharfErrors.QuotaExceeded("file") : WharfErrors.FileTooLarge(options.Value.MaxUploadBytes);
    }

    /// <summary>
    /// Checks the fields, then commits the staged bytes under a new id and writes the catalog row (in that order,
    /// so an acknowledged file is always whole). On any error the staged bytes are left to the caller to dispose.
    /// </summary>
    public async Task<Result<FileRecord>> CreateAsync(string workspaceId, FileUploadRequest request, StagedBlob content, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(request.Purpose))
        {
            return WharfErrors.Missing("purpose");
        }
        if (!purposes.CanUpload(request.Purpose))
        {
            return WharfErrors.Invalid("purpose", $"Invalid 'purpose': '{Truncate(request.Purpose)}'. Expected one of {string.Join(", ", purposes.Uploadable)}.", "invalid_purpose");
        }
        var filename = FileFieldRules.Filename(request.Filename);
        if (!filename.IsOk)
        {
            return filename.Error;
        }
        var metadata = FileMetadata.Parse(request.Metadata);
        if (!metadata.IsOk)
        {
            return metadata.Error;
        }
        var collection = FileFieldRules.Collection(request.Collection);
        if (!collection.IsOk)
        {
            return collection.Error;
        }
        var expiry = FileFieldRules.ExpirySeconds(request.ExpiresAfterAnchor, request.ExpiresAfterSeconds, request.Purpose);
        if (!expiry.IsOk)
        {
            return expiry.Error;
        }
        var contentType = FileFieldRules.ContentType(request.ContentType, "file");
        if (!contentType.IsOk)
        {
            return contentType.Error;
        }
        string provider = string.IsNullOrEmpty(request.Provider) ? LocalProvider : request.Provider;
        var target = await ResolveKeeperAsync(providers, workspaces, workspaceId, provider, cancellationToken);
        if (!target.IsOk)
        {
            return target.Error;
        }
        IProvider? upstream = target.Value;

        UInt128 value = ids.Next();
        long createdAt = IdGenerator.TimestampOf(value) / 1000;
        var file = new FileRecord
        {
            Id = WharfIds.File(value),
            WorkspaceId = workspaceId,
            Bytes = content.Length,
            CreatedAt = createdAt,
            Filename = filename.Value,
            Purpose = request.Purpose,
            Status = FileStatus.Processed,
            ExpiresAt = createdAt + expiry.Value,
            Metadata = metadata.Value,
            Collection = collection.Value,
            Provider = provider,
            Sha256 = content.Sha256,
            ContentType = contentType.Value,
        };

        await content.CommitAsync(file.Id, cancellationToken);
        if (upstream is not null)
        {
            return await CreateOnProviderAsync(file, upstream, cancellationToken);
        }
        FileInsertOutcome inserted;
        try
        {
            inserted = await catalog.InsertAsync(file, cancellationToken);
        }
        catch
        {
            // No row (a full disk, a catalog failure): the committed bytes are nobody's; removed now, not by the sweep.
            await DeleteBlobQuietlyAsync(file.Id, CancellationToken.None);
            throw;
        }
        if (inserted != FileInsertOutcome.Inserted)
        {
            // Another upload took the quota while this one streamed, or the workspace was deleted meanwhile.
            await DeleteBlobQuietlyAsync(file.Id, cancellationToken);
            return inserted == FileInsertOutcome.WorkspaceDeleted ? WharfErrors.WorkspaceDeleted() : WharfErrors.QuotaExceeded("file");
        }
        return file;
    }

    /// <summary>
    /// The provider a new file is to be kept on (<paramref name="provider"/>, named by the client): null for
    /// <c>local</c>, else a configured provider with a Files API that the workspace may use; else a 400 naming
    /// <c>provider</c>. Shared by <c>POST /v1/files</c> and <c>POST /v1/uploads</c>, so both check it alike.
    /// </summary>
    public static async Task<Result<IProvider?>> ResolveKeeperAsync(
        IProviderRegistry providers, IWorkspaceCatalog workspaces, string workspaceId, string provider, CancellationToken cancellationToken)
    {
        if (!providers.TryGet(provider, out var registered))
        {
            return ProviderFileErrors.UnknownProvider(provider);
        }
        if (provider == LocalProvider)
        {
            return Result<IProvider?>.From(null);
        }
        if (!registered.Provider.Capabilities.Contains(ProviderCapability.Files))
        {
            return ProviderFileErrors.NoFilesApi(provider);
        }
        if (await workspaces.GetWorkspaceAsync(workspaceId, cancellationToken) is { } workspace && !registered.IsUsableBy(workspace))
        {
            return ProviderFileErrors.NotEnabled(provider);
        }
        return Result<IProvider?>.From(registered.Provider);
    }

    /// <summary>
    /// The rest of an upload to a provider, its bytes committed under the file's id: the intent is recorded, the bytes
    /// are streamed to the provider from the store, then the row and the copy are written in one transaction. A
    /// refusal or failure upstream keeps nothing (no row, no blob, no usage); a row refused after the upstream kept
    /// the bytes queues the upstream copy for deletion. A stop of the process in between leaves a blob without a row
    /// (the orphan sweep removes it) and the intent, by which the deletion sweeper finds the upstream's copy.
    /// </summary>
    private async Task<Result<FileRecord>> CreateOnProviderAsync(FileRecord file, IProvider provider, CancellationToken cancellationToken)
    {
        UpstreamOutcome<UpstreamFile> sent;
        try
        {
            await copies.RecordIntentAsync(
                new CopyIntent(file.Id, provider.Id, file.WorkspaceId, file.Filename, file.Bytes, time.GetUtcNow().ToUnixTimeSeconds()), cancellationToken);
            await using var stream = await blobs.OpenReadAsync(file.Id, cancellationToken)
                ?? throw new InvalidOperationException("A blob committed for an upload cannot be opened.");
            sent = await provider.UploadFileAsync(new UpstreamFileUpload(stream, file.Bytes, file.Filename, file.Purpose, file.ContentType), cancellationToken);
        }
        catch
        {
            // The upstream may or may not hold the bytes: the intent stays for the sweeper to look.
            await DeleteBlobQuietlyAsync(file.Id, CancellationToken.None);
            throw;
        }
        if (!sent.IsOk)
        {
            await DeleteBlobQuietlyAsync(file.Id, CancellationToken.None);
            await copies.RemoveIntentAsync(file.Id, provider.Id, CancellationToken.None);
            return ProviderFileErrors.FromFailure(provider.Id, sent.Failure, "upload");
        }

        var copy = new FileCopy(file.WorkspaceId, file.Id, provider.Id, sent.Value.Id, time.GetUtcNow().ToUnixTimeSeconds());
        FileInsertOutcome inserted;
        try
        {
            inserted = await copies.InsertFileWithCopyAsync(file, copy, cancellationToken);
        }
        catch
        {
            await DeleteBlobQuietlyAsync(file.Id, CancellationToken.None);
            await deletions.QueueAndAttemptAsync(provider.Id, copy.UpstreamId, file.Id, CancellationToken.None);
            throw;
        }
        if (inserted != FileInsertOutcome.Inserted)
        {
            await DeleteBlobQuietlyAsync(file.Id, CancellationToken.None);
            await deletions.QueueAndAttemptAsync(provider.Id, copy.UpstreamId, file.Id, cancellationToken);
            return inserted == FileInsertOutcome.WorkspaceDeleted ? WharfErrors.WorkspaceDeleted() : WharfErrors.QuotaExceeded("file");
        }
        return file;
    }

    public async Task<Result<Page<FileRecord>>> ListAsync(string workspaceId, FileListRequest request, CancellationToken cancellationToken)
    {
        var query = FileListQuery.Parse(workspaceId, request, options.Value, purposes);
        if (!query.IsOk)
        {
            return query.Error;
        }
        var listing = query.Value;
        if (listing.Provider == LocalProvider)
        {
            // Every file is kept by Wharf: 'local' lists them all.
            listing = listing with { Provider = null };
        }
        else if (listing.Provider is { } provider && !providers.TryGet(provider, out _))
        {
            return ProviderFileErrors.UnknownProvider(provider);
        }
        return await catalog.ListAsync(listing, cancellationToken);
    }

    public async Task<Result<FileRecord>> GetAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        var file = WharfIds.IsFileId(fileId) ? await catalog.GetAsync(workspaceId, fileId, cancellationToken) : null;
        if (file is null || IsExpired(file))
        {
            return WharfErrors.NoSuchFile(fileId);
        }
        return file;
    }

    /// <summary>
    /// Opens a file's content. A file made from upload parts opens each part when the read reaches it, so the read
    /// is registered before the row is read: a delete meanwhile leaves the parts until the read ends, and a download
    /// that started always completes. A plain file's blob is opened here and stays readable once deleted.
    /// </summary>
    public async Task<Result<FileContent>> OpenContentAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        if (!WharfIds.IsFileId(fileId))
        {
            return WharfErrors.NoSuchFile(fileId);
        }
        _reads.BeginRead(fileId);
        var read = new ContentRead(this, fileId);
        try
        {
            var file = await GetAsync(workspaceId, fileId, cancellationToken);
            if (!file.IsOk)
            {
                await read.DisposeAsync();
                return file.Error;
            }
            if (file.Value.Segmented)
            {
                var segments = await uploads.GetSegmentsAsync(file.Value.Id, cancellationToken);
                return new FileContent(file.Value, new SegmentedStream(segments, blobs.OpenReadAsync, read));
            }
            var stream = await blobs.OpenReadAsync(file.Value.Id, cancellationToken);
            await read.DisposeAsync();
            if (stream is null)
            {
                // A row without its blob means the blob was lost: never serve a partial answer.
                logger.LogError("File {FileId} has a catalog row but no blob.", file.Value.Id);
                return WharfErrors.NoSuchFile(fileId);
            }
            return new FileContent(file.Value, stream);
        }
        catch
        {
            await read.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Removes the row first (queuing the file's upstream copies for deletion), then the blob; a blob left behind is
    /// removed by the sweeper. The upstream copies are deleted before the answer, for at most
    /// <see cref="ProviderFilesOptions.DeleteWaitSeconds"/>; the sweeper retries what is left.
    /// </summary>
    public async Task<Result<FileRecord>> DeleteAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        var file = await GetAsync(workspaceId, fileId, cancellationToken);
        if (!file.IsOk)
        {
            return file.Error;
        }
        if (!await RemoveAsync(file.Value, cancellationToken))
        {
            return WharfErrors.NoSuchFile(fileId);
        }
        // The file is gone from Wharf; its upstream copies were queued for deletion with its row. They are tried here
        // for a short while, and what is not done by then is left to the sweeper.
        await deletions.AttemptForFileAsync(file.Value.Id, cancellationToken);
        return file;
    }

    /// <summary>Deletes every expired file (row, then blob); returns how many.</summary>
    public async Task<int> DeleteExpiredAsync(CancellationToken cancellationToken)
    {
        int deleted = 0;
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        while (true)
        {
            var batch = await catalog.ListExpiredAsync(now, 500, cancellationToken);
            foreach (var file in batch)
            {
                // Only the delete that removed the row counts it and removes its bytes: another node's sweep may race.
                if (await RemoveAsync(file, cancellationToken))
                {
                    LogExpiredDeleted(logger, file.Id, file.WorkspaceId);
                    deleted++;
                }
            }
            if (batch.Count < 500)
            {
                return deleted;
            }
        }
    }

    /// <summary>Removes the files and blobs of deleted workspaces, then their rows; returns how many files.</summary>
    public async Task<int> PurgeDeletedWorkspacesAsync(CancellationToken cancellationToken)
    {
        int deleted = 0;
        foreach (string workspaceId in await workspaces.ListDeletedWorkspacesAsync(100, cancellationToken))
        {
            while (true)
            {
                var page = await catalog.ListAsync(new FileListQuery { WorkspaceId = workspaceId, Limit = 500 }, cancellationToken);
                foreach (var file in page.Items)
                {
                    if (await RemoveAsync(file, cancellationToken))
                    {
                        deleted++;
                    }
                }
                if (!page.HasMore)
                {
                    break;
                }
            }
            // Expired rows that listing skips are left to the expiry sweep; the row goes once none remain.
            await workspaces.PurgeWorkspaceAsync(workspaceId, cancellationToken);
        }
        return deleted;
    }

    /// <summary>
    /// Deletes blobs that have no catalog row (a crash between the blob and the row, or a failed blob delete)
    /// and were last written before <paramref name="olderThan"/>, and stale staged bytes; returns how many.
    /// </summary>
    public async Task<int> SweepOrphansAsync(DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        int removed = await blobs.SweepStagingAsync(olderThan, cancellationToken);
        var candidates = new List<string>(500);
        await foreach (var blob in blobs.ListAsync(cancellationToken))
        {
            if (blob.LastWrite < olderThan
                && (blob.BlobId.StartsWith(WharfIds.FilePrefix, StringComparison.Ordinal) || blob.BlobId.StartsWith(WharfIds.PartPrefix, StringComparison.Ordinal)))
            {
                candidates.Add(blob.BlobId);
            }
            if (candidates.Count == 500)
            {
                removed += await RemoveWithoutRowAsync(candidates, cancellationToken);
                candidates.Clear();
            }
        }
        removed += await RemoveWithoutRowAsync(candidates, cancellationToken);
        return removed;
    }

    /// <summary>
    /// Removes blobs of deleted files whose time has come (<see cref="IDeferredBlobDeletions"/>), except any a row
    /// names again (their delete did not happen); returns how many were removed.
    /// </summary>
    public async Task<int> RemoveDeferredBlobsAsync(CancellationToken cancellationToken)
    {
        const int Batch = 500;
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        int removed = 0;
        while (true)
        {
            var due = await deferred.ListDueAsync(now, Batch, cancellationToken);
            var named = await FindNamedAsync(due, cancellationToken);
            foreach (string blobId in due.Where(id => !named.Contains(id)))
            {
                await blobs.DeleteAsync(blobId, cancellationToken);
                removed++;
            }
            await deferred.ForgetAsync(due, cancellationToken);
            if (due.Count < Batch)
            {
                return removed;
            }
        }
    }

    /// <summary>
    /// Removes the row (which also releases a segmented file's parts), then the blob or segments. On a node's own
    /// store: at once or, while the file is being read, when the last read ends; the blobs are kept from the orphan
    /// sweep from before the row goes until they are removed, and a blob left behind by a failure is removed later by
    /// the orphan sweep. On a store other nodes share, whose reads this node cannot see: recorded, before the row goes,
    /// for removal by the sweep after <see cref="FilesOptions.DeletedContentGraceSeconds"/>.
    /// </summary>
    private async Task<bool> RemoveAsync(FileRecord file, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> blobIds = file.Segmented
            ? (await uploads.GetSegmentsAsync(file.Id, cancellationToken)).Select(s => s.BlobId).ToList()
            : [file.Id];
        if (blobs.SharedByNodes)
        {
            await deferred.DeferAsync(blobIds, time.GetUtcNow().ToUnixTimeSeconds() + options.Value.DeletedContentGraceSeconds, cancellationToken);
            return await catalog.DeleteAsync(file.WorkspaceId, file.Id, cancellationToken);
        }
        _reads.Keep(blobIds);
        bool deleted = false;
        try
        {
            deleted = await catalog.DeleteAsync(file.WorkspaceId, file.Id, cancellationToken);
        }
        finally
        {
            if (!deleted)
            {
                _reads.Unkeep(blobIds);
            }
        }
        if (!deleted)
        {
            return false;
        }
        foreach (string blobId in _reads.Remove(file.Id, blobIds))
        {
            await DeleteBlobQuietlyAsync(blobId, cancellationToken);
        }
        return true;
    }

    private async Task<int> RemoveWithoutRowAsync(List<string> blobIds, CancellationToken cancellationToken)
    {
        if (blobIds.Count == 0)
        {
            return 0;
        }
        var existing = await FindNamedAsync(blobIds, cancellationToken);
        // Checked after the rows: a delete marks its blobs kept (or records them for later) before its row goes, so a
        // blob without a row here is either kept by now (a delete under way, or waiting for a download to end, here or
        // on another node) or no longer needed by anyone.
        var withoutRow = blobIds.Where(id => !existing.Contains(id)).ToList();
        var deferredIds = await deferred.FindDeferredAsync(withoutRow, cancellationToken);
        int removed = 0;
        foreach (string id in withoutRow.Where(id => !_reads.IsKept(id) && !deferredIds.Contains(id)))
        {
            await blobs.DeleteAsync(id, cancellationToken);
            removed++;
        }
        return removed;
    }

    /// <summary>Which of <paramref name="blobIds"/> a catalog row names: file blobs by file id, parts (also segments) by part id.</summary>
    private async Task<HashSet<string>> FindNamedAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken)
    {
        var files = blobIds.Where(id => id.StartsWith(WharfIds.FilePrefix, StringComparison.Ordinal)).ToList();
        var parts = blobIds.Where(id => id.StartsWith(WharfIds.PartPrefix, StringComparison.Ordinal)).ToList();
        var named = new HashSet<string>(await catalog.FindExistingAsync(files, cancellationToken), StringComparer.Ordinal);
        named.UnionWith(await uploads.FindExistingPartsAsync(parts, cancellationToken));
        return named;
    }

    /// <summary>The end of a read registered with <see cref="ContentReads"/>: removes what a delete left to it.</summary>
    private sealed class ContentRead(FileService owner, string fileId) : IAsyncDisposable
    {
        private int _ended;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                foreach (string blobId in owner._reads.EndRead(fileId))
                {
                    await owner.DeleteBlobQuietlyAsync(blobId, CancellationToken.None);
                }
            }
        }
    }

    private async Task DeleteBlobQuietlyAsync(string fileId, CancellationToken cancellationToken)
    {
        try
        {
            await blobs.DeleteAsync(fileId, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or BlobStoreException)
        {
            // The row is gone: what the client asked for is done, and the orphan sweep removes the bytes later.
            LogBlobNotRemovedYet(logger, ex, fileId);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Blob of deleted file {FileId} could not be removed yet; the sweeper will retry.")]
    private static partial void LogBlobNotRemovedYet(ILogger logger, Exception exception, string fileId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Expired file {FileId} of workspace {WorkspaceId} deleted.")]
    private static partial void LogExpiredDeleted(ILogger logger, string fileId, string workspaceId);

    private bool IsExpired(FileRecord file) => file.ExpiresAt is { } at && at <= time.GetUtcNow().ToUnixTimeSeconds();

    private static string Truncate(string value) => value.Length > 64 ? value[..64] + "..." : value;
}
