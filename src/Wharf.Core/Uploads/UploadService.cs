using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Providers;

namespace Wharf.Core.Uploads;

/// <summary>The fields of <c>POST /v1/uploads</c>, as the client sent them.</summary>
public sealed record UploadCreateRequest
{
    public string? Filename { get; init; }
    public string? Purpose { get; init; }
    public long? Bytes { get; init; }
    public string? MimeType { get; init; }
    public string? ExpiresAfterAnchor { get; init; }
    public long? ExpiresAfterSeconds { get; init; }
    /// <summary>Wharf's extension: the file's metadata, as JSON text (an object of string values).</summary>
    public string? Metadata { get; init; }
    /// <summary>Wharf's extension: the file's collection.</summary>
    public string? Collection { get; init; }
    /// <summary>Wharf's extension: the provider the file is kept on (copied there when the upload completes).</summary>
    public string? Provider { get; init; }
}

/// <summary>A part being received: its upload, its place in the running hash, and (once kept) its id.</summary>
public sealed class PartTicket(UploadHasher hasher, UploadRecord upload, long sequence) : IDisposable
{
    public UploadRecord Upload => upload;

    public string? PartId { get; set; }

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            hasher.Finish(upload.WorkspaceId, upload.Id, sequence, PartId);
        }
    }
}

/// <summary>An upload with the parts received so far.</summary>
public sealed record UploadView(UploadRecord Upload, IReadOnlyList<UploadPartRecord> Parts, FileRecord? File);

/// <summary>The Uploads API: files up to 8 GB in parts of up to 64 MB, sent in any order and in parallel.</summary>
public sealed class UploadService(
    IUploadCatalog uploads,
    IFileCatalog files,
    IBlobStore blobs,
    UploadHasher hasher,
    DeferredFileHasher deferred,
    IOptions<FilesOptions> options,
    FilePurposes purposes,
    IdGenerator ids,
    TimeProvider time,
    ILogger<UploadService> logger,
    IProviderRegistry providers,
    IWorkspaceCatalog workspaces,
    IFileCopyCatalog copies,
    UpstreamDeletions deletions)
{
    public const long MaxUploadBytes = 8L * 1024 * 1024 * 1024;
    public const long MaxPartBytes = 64L * 1024 * 1024;
    public const long UploadLifetimeSeconds = 3600;

    public static WharfError NoSuchUpload(string id) => new(404, $"No such Upload object: {id}", "id");

    /// <summary>
    /// The most bytes a pending upload's parts may add up to: its size plus room to re-send parts whose answer was
    /// lost (one part of the largest size, or an eighth of the upload when that is more), not an unbounded sink.
    /// What it holds beyond its size counts against the quota like the rest.
    /// </summary>
    public static long MaxHeldBytes(long bytes) => bytes + Math.Max(MaxPartBytes, bytes / 8);

    public async Task<Result<UploadRecord>> CreateAsync(string workspaceId, UploadCreateRequest request, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(request.Purpose))
        {
            return WharfErrors.Missing("purpose");
        }
        if (!purposes.CanUpload(request.Purpose))
        {
            return WharfErrors.Invalid("purpose", $"Invalid 'purpose'. Expected one of {string.Join(", ", purposes.Uploadable)}.", "invalid_purpose");
        }
        var filename = FileFieldRules.Filename(request.Filename);
        if (!filename.IsOk)
        {
            return WharfErrors.Invalid("filename", filename.Error.Message, filename.Error.Code);
        }
        if (request.Bytes is not { } bytes)
        {
            return WharfErrors.Missing("bytes");
        }
        if (bytes < 0 || bytes > MaxUploadBytes)
        {
            return WharfErrors.Invalid("bytes", $"'bytes' must be between 0 and {MaxUploadBytes} (8 GB).", "invalid_bytes");
        }
        if (!FileFieldRules.IsSendableContentType(request.MimeType))
        {
            return WharfErrors.Invalid("mime_type", $"'mime_type' is required: at most {FileFieldRules.MaxContentTypeLength} printable ASCII characters, e.g. 'application/jsonl'.", "invalid_mime_type");
        }
        var expiry = FileFieldRules.ExpirySeconds(
            request.ExpiresAfterAnchor,
            request.ExpiresAfterSeconds?.ToString(System.Globalization.CultureInfo.InvariantCulture),
            request.Purpose);
        if (!expiry.IsOk)
        {
            return expiry.Error;
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
        string provider = string.IsNullOrEmpty(request.Provider) ? FileService.LocalProvider : request.Provider;
        var keeper = await FileService.ResolveKeeperAsync(providers, workspaces, workspaceId, provider, cancellationToken);
        if (!keeper.IsOk)
        {
            return keeper.Error;
        }

        long now = time.GetUtcNow().ToUnixTimeSeconds();
        var upload = new UploadRecord
        {
            Id = WharfIds.Hex(WharfIds.UploadPrefix, ids.Next()),
            WorkspaceId = workspaceId,
            Filename = filename.Value,
            Purpose = request.Purpose,
            Bytes = bytes,
            MimeType = request.MimeType,
            CreatedAt = now,
            ExpiresAt = now + UploadLifetimeSeconds,
            Status = UploadStatus.Pending,
            FileExpiresAfterSeconds = request.ExpiresAfterAnchor is null ? null : expiry.Value,
            Metadata = metadata.Value,
            Collection = collection.Value,
            Provider = provider,
        };
        // The announced size is reserved in the workspace's usage at once: an upload that was created can complete,
        // whatever else the workspace uploads meanwhile.
        int maxPending = options.Value.MaxPendingUploadsPerWorkspace;
        return await uploads.InsertUploadAsync(upload, maxPending, cancellationToken) switch
        {
            UploadInsertOutcome.Inserted => upload,
            UploadInsertOutcome.QuotaExceeded => WharfErrors.QuotaExceeded("bytes"),
            UploadInsertOutcome.TooManyPending => WharfErrors.TooManyPendingUploads(maxPending),
            _ => WharfErrors.WorkspaceDeleted(),
        };
    }

    public async Task<Result<UploadView>> GetAsync(string workspaceId, string uploadId, CancellationToken cancellationToken)
    {
        var upload = await FindAsync(workspaceId, uploadId, cancellationToken);
        if (!upload.IsOk)
        {
            return upload.Error;
        }
        var parts = upload.Value.Status == UploadStatus.Pending
            ? await uploads.ListPartsAsync(workspaceId, uploadId, cancellationToken)
            : [];
        var file = upload.Value.FileId is { } fileId ? await files.GetAsync(workspaceId, fileId, cancellationToken) : null;
        return new UploadView(upload.Value, parts, file);
    }

    /// <summary>
    /// Starts a part: checks the upload takes parts before any byte is read (so a refused part costs nothing) and
    /// gives the part its place in the running hash. Dispose the ticket when the request ends, kept or not.
    /// </summary>
    public async Task<Result<PartTicket>> BeginPartAsync(string workspaceId, string uploadId, CancellationToken cancellationToken)
    {
        if (!WharfIds.IsHexId(uploadId, WharfIds.UploadPrefix))
        {
            return NoSuchUpload(uploadId);
        }
        // The place in the hash is taken first of all: parts sent in file order keep that order here.
        long sequence = hasher.Reserve(workspaceId, uploadId);
        var upload = await FindAsync(workspaceId, uploadId, cancellationToken);
        var refused = upload.IsOk ? CheckPending(upload.Value) : upload.Error;
        if (refused is not null)
        {
            // Unknown, or no longer pending: nothing of it may stay in the running hash (its end already forgot it,
            // and this request must not bring it back).
            hasher.Forget(workspaceId, uploadId);
            return refused;
        }
        return new PartTicket(hasher, upload.Value, sequence);
    }

    /// <summary>Streams a part's bytes to staging, hashing them; refused (413, nothing kept) past 64 MB.</summary>
    public async Task<Result<StagedBlob>> StagePartAsync(Stream content, CancellationToken cancellationToken) =>
        await blobs.StageAsync(content, MaxPartBytes, cancellationToken) is { } staged
            ? staged
            : new WharfError(413, $"A part may hold at most {MaxPartBytes} bytes (64 MB).", "data", "part_too_large");

    /// <summary>Keeps a staged part (≤ 64 MB) under a new part id; nothing is kept when the upload is no longer pending.</summary>
    public async Task<Result<UploadPartRecord>> AddPartAsync(PartTicket ticket, StagedBlob content, CancellationToken cancellationToken)
    {
        var upload = ticket.Upload;
        if (content.Length == 0)
        {
            return WharfErrors.Invalid("data", "A part must hold at least one byte.", "empty_part");
        }
        var part = new UploadPartRecord
        {
            Id = WharfIds.Hex(WharfIds.PartPrefix, ids.Next()),
            UploadId = upload.Id,
            WorkspaceId = upload.WorkspaceId,
            Bytes = content.Length,
            Sha256 = content.Sha256,
            CreatedAt = time.GetUtcNow().ToUnixTimeSeconds(),
        };
        await content.CommitAsync(part.Id, cancellationToken);
        PartInsertOutcome inserted;
        try
        {
            inserted = await uploads.InsertPartAsync(part, part.CreatedAt, MaxHeldBytes(upload.Bytes), cancellationToken);
        }
        catch
        {
            // No row (a full disk, a catalog failure): the committed bytes are nobody's; removed now, not by the sweep.
            await DeleteBlobsAsync([part.Id], CancellationToken.None);
            throw;
        }
        if (inserted == PartInsertOutcome.Inserted)
        {
            ticket.PartId = part.Id;
            return part;
        }
        await blobs.DeleteAsync(part.Id, cancellationToken);
        switch (inserted)
        {
            case PartInsertOutcome.OverAllowance:
                return WharfErrors.Invalid("data", $"The parts received would exceed what an upload of {upload.Bytes} bytes can need.", "too_many_parts");
            case PartInsertOutcome.QuotaExceeded:
                return WharfErrors.QuotaExceeded("data");
            case PartInsertOutcome.WorkspaceDeleted:
                return WharfErrors.WorkspaceDeleted();
        }
        var current = await uploads.GetUploadAsync(upload.WorkspaceId, upload.Id, cancellationToken);
        return (current is null ? null : CheckPending(current)) ?? NotPending(upload.Id, UploadStatus.Expired);
    }

    /// <summary>
    /// Assembles the listed parts, in order, into a file without copying them: the parts become the file's segments.
    /// The whole file's SHA-256 and MD5 come from the running hash when the parts were hashed in this order while
    /// they streamed. Otherwise one pass over the parts computes them now when an MD5 is given to check or the upload
    /// is small (<see cref="FilesOptions.HashAtCompletionMaxBytes"/>); else the file is kept at once and its SHA-256
    /// computed in the background. A wrong size or MD5 is a 400 and leaves the upload pending so the client can fix it.
    /// </summary>
    public async Task<Result<UploadView>> CompleteAsync(string workspaceId, string uploadId, IReadOnlyList<string>? partIds, string? md5, CancellationToken cancellationToken)
    {
        var found = await FindAsync(workspaceId, uploadId, cancellationToken);
        if (!found.IsOk)
        {
            return found.Error;
        }
        var upload = found.Value;
        if (CheckPending(upload) is { } notPending)
        {
            hasher.Forget(workspaceId, uploadId);
            return notPending;
        }
        if (partIds is null)
        {
            return WharfErrors.Missing("part_ids");
        }
        var parts = (await uploads.ListPartsAsync(workspaceId, uploadId, cancellationToken)).ToDictionary(p => p.Id, StringComparer.Ordinal);
        var ordered = new List<UploadPartRecord>(partIds.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string partId in partIds)
        {
            if (!seen.Add(partId))
            {
                return WharfErrors.Invalid("part_ids", $"Part {partId} is listed twice.", "duplicate_part");
            }
            if (!parts.TryGetValue(partId, out var part))
            {
                return WharfErrors.Invalid("part_ids", $"No such part in this upload: {partId}.", "unknown_part");
            }
            ordered.Add(part);
        }
        long total = ordered.Sum(p => p.Bytes);
        if (total != upload.Bytes)
        {
            return WharfErrors.Invalid("part_ids", $"The parts hold {total} bytes but the upload was created with bytes={upload.Bytes}.", "size_mismatch");
        }
        if (md5 is not null && (md5.Length != 32 || !md5.All(char.IsAsciiHexDigit)))
        {
            return WharfErrors.Invalid("md5", "'md5' must be 32 hexadecimal characters.", "invalid_md5");
        }

        var segments = ordered.Select(p => new BlobSegment(p.Id, p.Bytes)).ToList();
        (string Sha256, string? Md5)? digests = await hasher.TryGetAsync(workspaceId, uploadId, partIds, cancellationToken);
        if (digests is null && (md5 is not null || total <= options.Value.HashAtCompletionMaxBytes))
        {
            digests = await HashAsync(uploadId, segments, md5 is not null, cancellationToken);
        }
        // No digests: the SHA-256 is computed after completion, in the background.
        var (sha256, actualMd5) = digests is { } known ? known : (null, null);
        if (md5 is not null && !string.Equals(md5, actualMd5, StringComparison.OrdinalIgnoreCase))
        {
            return WharfErrors.Invalid("md5", $"The MD5 of the assembled parts is {actualMd5}, not {md5.ToLowerInvariant()}.", "md5_mismatch");
        }

        UInt128 value = ids.Next();
        long createdAt = IdGenerator.TimestampOf(value) / 1000;
        long? expiresAfter = upload.FileExpiresAfterSeconds
            ?? (upload.Purpose == FilePurposes.Batch ? FileFieldRules.BatchDefaultExpirySeconds : null);
        var file = new FileRecord
        {
            Id = WharfIds.File(value),
            WorkspaceId = workspaceId,
            Bytes = total,
            CreatedAt = createdAt,
            Filename = upload.Filename,
            Purpose = upload.Purpose,
            Status = FileStatus.Processed,
            ExpiresAt = createdAt + expiresAfter,
            Metadata = upload.Metadata,
            Collection = upload.Collection,
            Provider = upload.Provider,
            Sha256 = sha256,
            ContentType = upload.MimeType,
            Segmented = true,
        };
        FileCopy? copy = null;
        if (upload.Provider != FileService.LocalProvider)
        {
            var sent = await CopyToProviderAsync(upload, file, segments, cancellationToken);
            if (!sent.IsOk)
            {
                return sent.Error;
            }
            copy = sent.Value;
        }
        var (outcome, dropped) = await uploads.CompleteAsync(uploadId, file, partIds, cancellationToken);
        if (outcome != CompleteOutcome.Completed && copy is not null)
        {
            // No file: the provider's copy is nobody's.
            await deletions.QueueAndAttemptAsync(copy.Provider, copy.UpstreamId, file.Id, CancellationToken.None);
        }
        switch (outcome)
        {
            case CompleteOutcome.QuotaExceeded:
                return WharfErrors.QuotaExceeded("file");
            case CompleteOutcome.NotPending:
                hasher.Forget(workspaceId, uploadId);
                var current = await uploads.GetUploadAsync(workspaceId, uploadId, cancellationToken);
                return NotPending(uploadId, current?.Status ?? UploadStatus.Expired);
            case CompleteOutcome.WorkspaceDeleted:
                hasher.Forget(workspaceId, uploadId);
                return WharfErrors.WorkspaceDeleted();
        }
        if (copy is not null && !await copies.InsertCopyAsync(copy, cancellationToken))
        {
            // The file went between its completion and here (deleted at once): its copy is nobody's.
            await deletions.QueueAndAttemptAsync(copy.Provider, copy.UpstreamId, file.Id, CancellationToken.None);
        }
        hasher.Forget(workspaceId, uploadId);
        if (sha256 is null)
        {
            deferred.Enqueue(workspaceId, file.Id);
        }
        await DeleteBlobsAsync(dropped, cancellationToken);
        return new UploadView(upload with { Status = UploadStatus.Completed, FileId = file.Id }, [], file);
    }

    /// <summary>
    /// For an upload created with a <c>provider</c>: streams the listed parts, in order, to the provider before the
    /// upload completes, as <c>POST /v1/files</c> sends a file before its row is written. A refusal or failure upstream
    /// is answered as for files and leaves the upload pending (the client may complete it again). The intent recorded
    /// first lets the deletion sweeper find a copy made upstream whose record never followed (a stop of the process
    /// between the provider's answer and the catalog's).
    /// </summary>
    private async Task<Result<FileCopy>> CopyToProviderAsync(
        UploadRecord upload, FileRecord file, IReadOnlyList<BlobSegment> segments, CancellationToken cancellationToken)
    {
        var keeper = await FileService.ResolveKeeperAsync(providers, workspaces, upload.WorkspaceId, upload.Provider, cancellationToken);
        if (!keeper.IsOk)
        {
            return keeper.Error;
        }
        var provider = keeper.Value!;
        await copies.RecordIntentAsync(
            new CopyIntent(file.Id, provider.Id, file.WorkspaceId, file.Filename, file.Bytes, time.GetUtcNow().ToUnixTimeSeconds()), cancellationToken);
        UpstreamOutcome<UpstreamFile> sent;
        await using (var content = new SegmentedStream(segments, blobs.OpenReadAsync))
        {
            sent = await provider.UploadFileAsync(new UpstreamFileUpload(content, file.Bytes, file.Filename, file.Purpose, file.ContentType), cancellationToken);
        }
        if (!sent.IsOk)
        {
            await copies.RemoveIntentAsync(file.Id, provider.Id, CancellationToken.None);
            return ProviderFileErrors.FromFailure(provider.Id, sent.Failure, "upload");
        }
        return new FileCopy(file.WorkspaceId, file.Id, provider.Id, sent.Value.Id, time.GetUtcNow().ToUnixTimeSeconds());
    }

    public async Task<Result<UploadView>> CancelAsync(string workspaceId, string uploadId, CancellationToken cancellationToken)
    {
        var found = await FindAsync(workspaceId, uploadId, cancellationToken);
        if (!found.IsOk)
        {
            return found.Error;
        }
        if (CheckPending(found.Value) is { } notPending)
        {
            hasher.Forget(workspaceId, uploadId);
            return notPending;
        }
        var dropped = await uploads.EndAsync(workspaceId, uploadId, UploadStatus.Cancelled, cancellationToken);
        hasher.Forget(workspaceId, uploadId);
        if (dropped is null)
        {
            var current = await uploads.GetUploadAsync(workspaceId, uploadId, cancellationToken);
            return NotPending(uploadId, current?.Status ?? UploadStatus.Expired);
        }
        await DeleteBlobsAsync(dropped, cancellationToken);
        return new UploadView(found.Value with { Status = UploadStatus.Cancelled }, [], null);
    }

    /// <summary>Marks pending uploads past their hour expired and removes their parts; returns how many.</summary>
    public async Task<int> ExpirePendingAsync(CancellationToken cancellationToken)
    {
        int expired = 0;
        foreach (var upload in await uploads.ListExpiredAsync(time.GetUtcNow().ToUnixTimeSeconds(), 500, cancellationToken))
        {
            if (await uploads.EndAsync(upload.WorkspaceId, upload.Id, UploadStatus.Expired, cancellationToken) is { } dropped)
            {
                hasher.Forget(upload.WorkspaceId, upload.Id);
                await DeleteBlobsAsync(dropped, cancellationToken);
                expired++;
            }
        }
        return expired;
    }

    private async Task<Result<UploadRecord>> FindAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) =>
        WharfIds.IsHexId(uploadId, WharfIds.UploadPrefix) && await uploads.GetUploadAsync(workspaceId, uploadId, cancellationToken) is { } upload
            ? upload
            : NoSuchUpload(uploadId);

    private WharfError? CheckPending(UploadRecord upload)
    {
        if (upload.Status == UploadStatus.Pending && upload.ExpiresAt <= time.GetUtcNow().ToUnixTimeSeconds())
        {
            return NotPending(upload.Id, UploadStatus.Expired);
        }
        return upload.Status == UploadStatus.Pending ? null : NotPending(upload.Id, upload.Status);
    }

    private static WharfError NotPending(string uploadId, string status) =>
        new(400, $"Upload {uploadId} is {status}: it takes no more parts and cannot be completed or cancelled.", "id", $"upload_already_{status}");

    /// <summary>The pass over the parts at completion, when the running hash did not follow the listed order.</summary>
    private async Task<(string Sha256, string? Md5)> HashAsync(string uploadId, IReadOnlyList<BlobSegment> segments, bool withMd5, CancellationToken cancellationToken)
    {
        logger.LogInformation("Upload {UploadId} is hashed at completion: its parts were not hashed in this order while they streamed.", uploadId);
        return await SegmentHashing.HashAsync(blobs, segments, withMd5, cancellationToken);
    }

    private async Task DeleteBlobsAsync(IEnumerable<string> blobIds, CancellationToken cancellationToken)
    {
        foreach (string id in blobIds)
        {
            try
            {
                await blobs.DeleteAsync(id, cancellationToken);
            }
            catch (IOException ex)
            {
                logger.LogWarning(ex, "Part blob {PartId} could not be removed yet; the sweeper will retry.", id);
            }
        }
    }
}
