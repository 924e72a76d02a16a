using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Core.Ports;

namespace Wharf.Storage.S3;

/// <summary>
/// Blobs in a bucket of an S3-compatible store, under the configured prefix: committed blobs at
/// <c>blobs/&lt;id&gt;</c>, staged bytes at <c>staging/&lt;random&gt;</c>. Staging streams the content as a multipart
/// upload (a few parts in memory, never the file); a commit is a server-side copy to the blob's key, never a download.
/// Like the disk store, the store knows what requests in flight hold (staged bytes being sent or waiting for their
/// commit, and blobs committed by a staged blob not yet disposed), and its sweeps never see them. Other nodes sharing
/// the bucket hold their own: the sweeps leave anything younger than the age they are given.
/// </summary>
internal sealed partial class S3BlobStore : IBlobStore, IDisposable
{
    private const string BlobsFolder = "blobs/";
    private const string StagingFolder = "staging/";

    private readonly IAmazonS3 _s3;
    private readonly S3StorageOptions _options;
    private readonly string _bucket;
    private readonly string _blobsPrefix;
    private readonly string _stagingPrefix;
    private readonly ILogger _logger;
    private readonly bool _unsignedPayloads;
    // Keys of staged objects and multipart uploads that a request of this process is writing or holds.
    private readonly ConcurrentDictionary<string, bool> _held = new(StringComparer.Ordinal);
    // Blobs committed by a staged blob not yet disposed: their catalog row may still be on its way.
    private readonly ConcurrentDictionary<string, bool> _unrecorded = new(StringComparer.Ordinal);
    private int _uploadListingWarned;

    public S3BlobStore(IAmazonS3 s3, S3StorageOptions options, ILogger<S3BlobStore>? logger = null)
    {
        _s3 = s3;
        _options = options;
        _bucket = options.Bucket ?? throw new ArgumentException("No bucket.", nameof(options));
        _blobsPrefix = options.KeyPrefix + BlobsFolder;
        _stagingPrefix = options.KeyPrefix + StagingFolder;
        _logger = logger ?? NullLogger<S3BlobStore>.Instance;
        // Over TLS the transport protects the bytes, so they are not hashed a second time for the signature.
        _unsignedPayloads = options.ServiceUrl is null || options.ServiceUrl.StartsWith("https:", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Objects up to this size are committed with one CopyObject (S3's limit for it); larger ones by a multipart copy.</summary>
    internal long MaxSingleCopyBytes { get; init; } = 5L * 1024 * 1024 * 1024;

    /// <summary>The size of each part of a multipart copy (at most 5 GiB, S3's limit for a part).</summary>
    internal long CopyPartBytes { get; init; } = 1024L * 1024 * 1024;

    /// <summary>
    /// Whether nodes other than this one read these blobs: true when they share the catalog too (PostgreSQL). Behind
    /// the embedded catalog, which one process owns, the bucket's blobs are this node's alone.
    /// </summary>
    public bool SharedByNodes { get; init; } = true;

    public async Task<Stream?> OpenReadAsync(string blobId, CancellationToken cancellationToken)
    {
        string key = KeyOf(blobId);
        GetObjectMetadataResponse head;
        try
        {
            head = await _s3.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = _bucket, Key = key }, cancellationToken);
        }
        catch (AmazonS3Exception ex) when (S3Failures.IsNotFound(ex))
        {
            return null;
        }
        catch (Exception ex) when (S3Failures.IsStoreFailure(ex, cancellationToken))
        {
            throw S3Failures.Wrap(ex, "open a blob");
        }
        return new S3ReadStream(_s3, _bucket, key, head.ContentLength, head.ETag);
    }

    public Task DeleteAsync(string blobId, CancellationToken cancellationToken)
    {
        string key = KeyOf(blobId);
        // S3 answers a delete of a missing key as a success.
        return S3Failures.CallAsync(() => _s3.DeleteObjectAsync(_bucket, key, cancellationToken), "delete a blob", cancellationToken);
    }

    public async IAsyncEnumerable<BlobEntry> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entry in ListObjectsAsync(_blobsPrefix, cancellationToken))
        {
            string blobId = entry.Key[_blobsPrefix.Length..];
            // Checked after the object was seen: it is marked before its copy, so one whose request may still be
            // writing its row is never listed. A key that is not a blob id is not Wharf's.
            if (IsBlobId(blobId) && !_unrecorded.ContainsKey(blobId))
            {
                yield return new BlobEntry(blobId, entry.LastWrite);
            }
        }
    }

    public async Task<int> SweepStagingAsync(DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        int removed = 0;
        var stale = new List<string>();
        await foreach (var entry in ListObjectsAsync(_stagingPrefix, cancellationToken))
        {
            if (entry.LastWrite < olderThan && !_held.ContainsKey(entry.Key))
            {
                stale.Add(entry.Key);
            }
        }
        foreach (string key in stale)
        {
            // A request that started after the listing uses a new key: these are never held again.
            await S3Failures.CallAsync(() => _s3.DeleteObjectAsync(_bucket, key, cancellationToken), "remove a staged object", cancellationToken);
            removed++;
        }
        removed += await SweepUploadsAsync(olderThan, cancellationToken);
        return removed;
    }

    /// <summary>
    /// Aborts the incomplete multipart uploads under the prefix (staging, or a multipart copy a crash interrupted) whose
    /// last part was sent before <paramref name="olderThan"/> and that no request of this process holds. A store that
    /// cannot list multipart uploads is told once in the log: its bucket needs a lifecycle rule to abort them.
    /// </summary>
    private async Task<int> SweepUploadsAsync(DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        var stale = new List<(string Key, string UploadId)>();
        var request = new ListMultipartUploadsRequest { BucketName = _bucket, Prefix = _options.KeyPrefix };
        while (true)
        {
            ListMultipartUploadsResponse page;
            try
            {
                page = await _s3.ListMultipartUploadsAsync(request, cancellationToken);
            }
            catch (AmazonS3Exception ex) when (S3Failures.IsNotImplemented(ex))
            {
                if (Interlocked.Exchange(ref _uploadListingWarned, 1) == 0)
                {
                    _logger.LogWarning(
                        "The S3 store does not list multipart uploads ({Error}): uploads abandoned by a crash are not swept by Wharf; give the bucket a lifecycle rule that aborts incomplete multipart uploads.",
                        S3Failures.Describe(ex));
                }
                return 0;
            }
            catch (Exception ex) when (S3Failures.IsStoreFailure(ex, cancellationToken))
            {
                throw S3Failures.Wrap(ex, "list multipart uploads");
            }
            foreach (var upload in page.MultipartUploads ?? [])
            {
                if (_held.ContainsKey(upload.Key) || Utc(upload.Initiated) >= olderThan)
                {
                    continue;
                }
                if (await LastPartWriteAsync(upload.Key, upload.UploadId, cancellationToken) is { } lastPart && lastPart >= olderThan)
                {
                    continue;
                }
                stale.Add((upload.Key, upload.UploadId));
            }
            if (page.IsTruncated != true)
            {
                break;
            }
            request.KeyMarker = page.NextKeyMarker;
            request.UploadIdMarker = page.NextUploadIdMarker;
        }
        foreach (var (key, uploadId) in stale)
        {
            await AbortUploadAsync(key, uploadId, cancellationToken);
        }
        return stale.Count;
    }

    /// <summary>When the upload's last part was written, or null when it has none (or the store cannot tell).</summary>
    private async Task<DateTimeOffset?> LastPartWriteAsync(string key, string uploadId, CancellationToken cancellationToken)
    {
        DateTimeOffset? last = null;
        var request = new ListPartsRequest { BucketName = _bucket, Key = key, UploadId = uploadId };
        while (true)
        {
            ListPartsResponse page;
            try
            {
                page = await _s3.ListPartsAsync(request, cancellationToken);
            }
            catch (AmazonS3Exception ex) when (S3Failures.IsNotImplemented(ex) || ex.ErrorCode == "NoSuchUpload")
            {
                return last;
            }
            catch (Exception ex) when (S3Failures.IsStoreFailure(ex, cancellationToken))
            {
                throw S3Failures.Wrap(ex, "list the parts of a multipart upload");
            }
            foreach (var part in page.Parts ?? [])
            {
                var written = Utc(part.LastModified);
                if (last is null || written > last)
                {
                    last = written;
                }
            }
            if (page.IsTruncated != true)
            {
                return last;
            }
            request.PartNumberMarker = page.NextPartNumberMarker?.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>
    /// A cheap request to the bucket (a listing of at most one key under the prefix): throws a
    /// <see cref="BlobStoreException"/> naming the settings when the bucket cannot be reached or used.
    /// </summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _s3.ListObjectsV2Async(
                new ListObjectsV2Request { BucketName = _bucket, Prefix = _options.KeyPrefix, MaxKeys = 1 }, cancellationToken);
        }
        catch (Exception ex) when (S3Failures.IsStoreFailure(ex, cancellationToken))
        {
            throw new BlobStoreException(
                $"The bucket '{_bucket}' ({S3StorageOptions.Section}:Bucket) at {_options.Location} ({S3StorageOptions.Section}:ServiceUrl, "
                + $"{S3StorageOptions.Section}:Region) cannot be used: {S3Failures.Describe(ex)}. Check those settings and "
                + $"{S3StorageOptions.Section}:AccessKey, {S3StorageOptions.Section}:SecretKey and {S3StorageOptions.Section}:ForcePathStyle.",
                ex);
        }
    }

    /// <summary>The committed blob's key; the id is checked to be an id (letters, digits, '-' and '_'), never a path.</summary>
    internal string KeyOf(string blobId) =>
        IsBlobId(blobId) ? _blobsPrefix + blobId : throw new ArgumentException("Not a blob id.", nameof(blobId));

    private static bool IsBlobId(string blobId) => blobId.Length >= 3 && !blobId.AsSpan().ContainsAnyExcept(SafeIdChars);

    private static readonly SearchValues<char> SafeIdChars =
        SearchValues.Create("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_");

    /// <summary>Every object under <paramref name="prefix"/>, a page (up to 1,000 keys) at a time.</summary>
    private async IAsyncEnumerable<(string Key, DateTimeOffset LastWrite)> ListObjectsAsync(
        string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = prefix };
        while (true)
        {
            var page = await S3Failures.CallAsync(() => _s3.ListObjectsV2Async(request, cancellationToken), "list blobs", cancellationToken);
            foreach (var entry in page.S3Objects ?? [])
            {
                yield return (entry.Key, Utc(entry.LastModified));
            }
            if (page.IsTruncated != true || string.IsNullOrEmpty(page.NextContinuationToken))
            {
                yield break;
            }
            request.ContinuationToken = page.NextContinuationToken;
        }
    }

    private static DateTimeOffset Utc(DateTime? time) => time is { } t
        ? new DateTimeOffset(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime())
        : DateTimeOffset.MinValue;

    /// <summary>Aborts a multipart upload; one already gone (completed or aborted meanwhile) is fine.</summary>
    private Task AbortUploadAsync(string key, string uploadId, CancellationToken cancellationToken) => S3Failures.CallAsync(
        async () =>
        {
            try
            {
                await _s3.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = key, UploadId = uploadId }, cancellationToken);
            }
            catch (AmazonS3Exception ex) when (ex.ErrorCode == "NoSuchUpload")
            {
            }
        },
        "abort a multipart upload",
        cancellationToken);

    /// <summary>Removes a staged object for a request that ends; a failure is logged and left to the staging sweep.</summary>
    private async Task DeleteStagedQuietlyAsync(string key)
    {
        try
        {
            await _s3.DeleteObjectAsync(_bucket, key, CancellationToken.None);
        }
        catch (Exception ex) when (S3Failures.IsStoreFailure(ex, CancellationToken.None))
        {
            _logger.LogWarning("A staged object could not be removed ({Error}); the staging sweep removes it later.", S3Failures.Describe(ex));
        }
    }

    public void Dispose() => _s3.Dispose();
}
