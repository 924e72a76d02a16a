using System.Buffers;
using System.Security.Cryptography;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging;
using Wharf.Core.Ports;

namespace Wharf.Storage.S3;

internal sealed partial class S3BlobStore
{
    /// <summary>The size of each part of a staging upload (S3 takes parts of 5 MiB to 5 GiB, the last one smaller).</summary>
    internal const int PartBytes = 8 * 1024 * 1024;

    /// <summary>Parts of one upload in memory at once: those being sent and the one being filled.</summary>
    internal const int PartsInFlight = 3;

    /// <summary>S3's limit of parts per upload: at <see cref="PartBytes"/> each, 80 GB per blob.</summary>
    internal const int MaxParts = 10_000;

    /// <summary>
    /// The part buffers of every upload, kept for the next ones (at most 8 idle, 64 MiB): an upload takes at most
    /// <see cref="PartsInFlight"/> of them at a time.
    /// </summary>
    private static readonly ArrayPool<byte> PartBuffers = ArrayPool<byte>.Create(PartBytes, 8);

    public async Task<StagedBlob?> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        string key = _stagingPrefix + Guid.NewGuid().ToString("N");
        _held.TryAdd(key, true);
        var upload = new StagingUpload(this, key);
        bool keep = false;
        try
        {
            if (!await upload.SendAsync(content, maxBytes, cancellationToken))
            {
                return null;
            }
            keep = true;
            return new S3StagedBlob(this, key) { Length = upload.Length, Sha256 = upload.Sha256 };
        }
        finally
        {
            if (!keep)
            {
                await upload.DiscardAsync();
                _held.TryRemove(key, out _);
            }
            await upload.DisposeAsync();
        }
    }

    /// <summary>
    /// Sends one content to its staging key while hashing it: content that ends within the first part is sent with one
    /// PUT; longer content as a multipart upload whose parts are sent as they fill, up to <see cref="PartsInFlight"/>
    /// buffers in use (the reader waits for the oldest part to be sent), so memory does not grow with the content.
    /// </summary>
    private sealed class StagingUpload(S3BlobStore store, string key) : IAsyncDisposable
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly Queue<(byte[] Buffer, Task<PartETag> Sent)> _inFlight = new(PartsInFlight);
        private readonly List<Task<PartETag>> _parts = [];
        private byte[]? _held;
        private string? _uploadId;
        private bool _completed;

        public long Length { get; private set; }

        public string Sha256 { get; private set; } = "";

        /// <summary>Sends the whole content; false (nothing kept once discarded) when it is longer than <paramref name="maxBytes"/>.</summary>
        public async Task<bool> SendAsync(Stream content, long maxBytes, CancellationToken cancellationToken)
        {
            while (true)
            {
                byte[] buffer = await NextBufferAsync();
                // A failure reading the content is the sender's; a failure sending it is the store's.
                int filled = await FillAsync(content, buffer.AsMemory(0, PartBytes), cancellationToken);
                if (Length + filled > maxBytes)
                {
                    return false;
                }
                Length += filled;
                _hash.AppendData(buffer, 0, filled);
                bool last = filled < PartBytes;
                if (_uploadId is null && last)
                {
                    await PutWholeAsync(buffer, filled, cancellationToken);
                    break;
                }
                if (filled == 0)
                {
                    break; // the content ended with the previous part
                }
                if (_parts.Count == MaxParts)
                {
                    throw new BlobStoreException($"The content is longer than the S3 store takes ({MaxParts} parts of {PartBytes} bytes).",
                        new InvalidOperationException("too many parts"));
                }
                _uploadId ??= await StartUploadAsync(cancellationToken);
                SendPart(buffer, filled, _parts.Count + 1, cancellationToken);
                if (last)
                {
                    break;
                }
            }
            if (_uploadId is { } uploadId)
            {
                var parts = await Task.WhenAll(_parts);
                await S3Failures.CallAsync(
                    () => store._s3.CompleteMultipartUploadAsync(
                        new CompleteMultipartUploadRequest { BucketName = store._bucket, Key = key, UploadId = uploadId, PartETags = [.. parts] },
                        cancellationToken),
                    "stage content",
                    cancellationToken);
                _completed = true;
            }
            Sha256 = Convert.ToHexStringLower(_hash.GetHashAndReset());
            return true;
        }

        /// <summary>Removes what was sent of a content not kept: its multipart upload, or its object.</summary>
        public async Task DiscardAsync()
        {
            await DrainAsync();
            try
            {
                if (_uploadId is { } uploadId && !_completed)
                {
                    await store.AbortUploadAsync(key, uploadId, CancellationToken.None);
                }
                else
                {
                    await store._s3.DeleteObjectAsync(store._bucket, key, CancellationToken.None);
                }
            }
            catch (Exception ex) when (ex is BlobStoreException || S3Failures.IsStoreFailure(ex, CancellationToken.None))
            {
                // The key is let go by its request: the staging sweep removes it once it is old enough.
                store._logger.LogWarning("A staging upload not kept could not be removed ({Error}); the staging sweep removes it later.",
                    S3Failures.Describe(ex.InnerException ?? ex));
            }
        }

        /// <summary>
        /// A buffer for the next part: a new one while fewer than <see cref="PartsInFlight"/> are in use, else the
        /// oldest part's once it is sent (a failed send is thrown here).
        /// </summary>
        private async ValueTask<byte[]> NextBufferAsync()
        {
            if (_held is null)
            {
                if (_inFlight.Count < PartsInFlight)
                {
                    _held = PartBuffers.Rent(PartBytes);
                }
                else
                {
                    var (buffer, sent) = _inFlight.Peek();
                    await sent;
                    _inFlight.Dequeue();
                    _held = buffer;
                }
            }
            return _held;
        }

        private Task<string> StartUploadAsync(CancellationToken cancellationToken) => S3Failures.CallAsync(
            async () => (await store._s3.InitiateMultipartUploadAsync(
                new InitiateMultipartUploadRequest { BucketName = store._bucket, Key = key }, cancellationToken)).UploadId,
            "stage content",
            cancellationToken);

        private void SendPart(byte[] buffer, int count, int partNumber, CancellationToken cancellationToken)
        {
            string uploadId = _uploadId!;
            // On the thread pool: signing a part over plain http hashes it, which overlaps with reading the next one.
            var sent = Task.Run(
                () => S3Failures.CallAsync(
                    async () =>
                    {
                        using var body = new MemoryStream(buffer, 0, count, writable: false);
                        var response = await store._s3.UploadPartAsync(
                            new UploadPartRequest
                            {
                                BucketName = store._bucket,
                                Key = key,
                                UploadId = uploadId,
                                PartNumber = partNumber,
                                PartSize = count,
                                InputStream = body,
                                UseChunkEncoding = false,
                                DisablePayloadSigning = store._unsignedPayloads,
                            },
                            cancellationToken);
                        return new PartETag(partNumber, response.ETag);
                    },
                    "stage content",
                    cancellationToken),
                CancellationToken.None);
            _parts.Add(sent);
            _inFlight.Enqueue((buffer, sent));
            _held = null;
        }

        private Task PutWholeAsync(byte[] buffer, int count, CancellationToken cancellationToken) => S3Failures.CallAsync(
            async () =>
            {
                using var body = new MemoryStream(buffer, 0, count, writable: false);
                await store._s3.PutObjectAsync(
                    new PutObjectRequest
                    {
                        BucketName = store._bucket,
                        Key = key,
                        InputStream = body,
                        AutoCloseStream = false,
                        UseChunkEncoding = false,
                        DisablePayloadSigning = store._unsignedPayloads,
                    },
                    cancellationToken);
            },
            "stage content",
            cancellationToken);

        /// <summary>Waits for every part being sent, whatever its outcome (reported where it is awaited).</summary>
        private async Task DrainAsync()
        {
            foreach (var part in _parts)
            {
                try
                {
                    await part;
                }
                catch (Exception)
                {
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            // Parts may still be using their buffers (an upload left by an exception or a refusal): wait for them
            // before the buffers go back to the pool.
            await DrainAsync();
            _hash.Dispose();
            if (_held is not null)
            {
                PartBuffers.Return(_held);
                _held = null;
            }
            while (_inFlight.TryDequeue(out var entry))
            {
                PartBuffers.Return(entry.Buffer);
            }
        }
    }

    /// <summary>Fills the buffer as far as the stream allows, so parts are whole.</summary>
    private static async ValueTask<int> FillAsync(Stream content, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int filled = 0;
        while (filled < buffer.Length)
        {
            int read = await content.ReadAsync(buffer[filled..], cancellationToken);
            if (read == 0)
            {
                break;
            }
            filled += read;
        }
        return filled;
    }

    /// <summary>
    /// A staged object held by its request until disposed: while staged (the staging sweep skips its key) and once
    /// committed (the listing skips the blob: its catalog row may still be on its way).
    /// </summary>
    private sealed class S3StagedBlob(S3BlobStore store, string stagingKey) : StagedBlob
    {
        private bool _committed;
        private string? _blobId;

        /// <summary>A server-side copy of the staged object to the blob's key, then the staged object is removed.</summary>
        public override async Task CommitAsync(string blobId, CancellationToken cancellationToken)
        {
            string target = store.KeyOf(blobId);
            // Marked before the copy, so the sweep can never list the blob unmarked while the request runs.
            _blobId = blobId;
            store._unrecorded.TryAdd(blobId, true);
            await store.CopyAsync(stagingKey, target, Length, cancellationToken);
            _committed = true;
            await store.DeleteStagedQuietlyAsync(stagingKey);
            store._held.TryRemove(stagingKey, out _);
        }

        public override async ValueTask DisposeAsync()
        {
            if (!_committed)
            {
                await store.DeleteStagedQuietlyAsync(stagingKey);
                store._held.TryRemove(stagingKey, out _);
            }
            if (_blobId is { } blobId)
            {
                store._unrecorded.TryRemove(blobId, out _);
            }
        }
    }

    /// <summary>
    /// Copies an object within the bucket without its bytes passing through Wharf: one CopyObject up to
    /// <see cref="MaxSingleCopyBytes"/>, else a multipart upload of UploadPartCopy parts (aborted if it fails).
    /// </summary>
    private async Task CopyAsync(string source, string target, long length, CancellationToken cancellationToken)
    {
        if (length <= MaxSingleCopyBytes)
        {
            await S3Failures.CallAsync(
                () => _s3.CopyObjectAsync(
                    new CopyObjectRequest { SourceBucket = _bucket, SourceKey = source, DestinationBucket = _bucket, DestinationKey = target },
                    cancellationToken),
                "commit a blob",
                cancellationToken);
            return;
        }
        _held.TryAdd(target, true);
        string? uploadId = null;
        bool completed = false;
        try
        {
            uploadId = await S3Failures.CallAsync(
                async () => (await _s3.InitiateMultipartUploadAsync(
                    new InitiateMultipartUploadRequest { BucketName = _bucket, Key = target }, cancellationToken)).UploadId,
                "commit a blob",
                cancellationToken);
            var parts = new List<Task<CopyPartResponse>>();
            // Not disposed: parts still running when a cancellation ends the loop release it afterwards.
            var slots = new SemaphoreSlim(4);
            for (long first = 0, number = 1; first < length; first += CopyPartBytes, number++)
            {
                var request = new CopyPartRequest
                {
                    SourceBucket = _bucket,
                    SourceKey = source,
                    DestinationBucket = _bucket,
                    DestinationKey = target,
                    UploadId = uploadId,
                    PartNumber = (int)number,
                    FirstByte = first,
                    LastByte = Math.Min(first + CopyPartBytes, length) - 1,
                };
                await slots.WaitAsync(cancellationToken);
                if (parts.Exists(p => p.IsFaulted))
                {
                    break; // thrown below
                }
                parts.Add(CopyPartAsync(request, slots, cancellationToken));
            }
            var copied = await Task.WhenAll(parts);
            var complete = new CompleteMultipartUploadRequest { BucketName = _bucket, Key = target, UploadId = uploadId };
            complete.AddPartETags(copied);
            await S3Failures.CallAsync(() => _s3.CompleteMultipartUploadAsync(complete, cancellationToken), "commit a blob", cancellationToken);
            completed = true;
        }
        finally
        {
            if (uploadId is not null && !completed)
            {
                try
                {
                    await AbortUploadAsync(target, uploadId, CancellationToken.None);
                }
                catch (BlobStoreException ex)
                {
                    _logger.LogWarning("An interrupted copy could not be aborted ({Error}); the staging sweep aborts it later.", S3Failures.Describe(ex.InnerException ?? ex));
                }
            }
            _held.TryRemove(target, out _);
        }
    }

    private async Task<CopyPartResponse> CopyPartAsync(CopyPartRequest request, SemaphoreSlim slots, CancellationToken cancellationToken)
    {
        try
        {
            return await S3Failures.CallAsync(() => _s3.CopyPartAsync(request, cancellationToken), "commit a blob", cancellationToken);
        }
        finally
        {
            slots.Release();
        }
    }
}
