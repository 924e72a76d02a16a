namespace Wharf.Core.Ports;

/// <summary>Where file bytes live. Bytes are streamed in and out, never held whole in memory.</summary>
public interface IBlobStore
{
    /// <summary>
    /// Whether other nodes use the same blobs (a bucket behind a catalog they share): what one node deletes is then gone
    /// for every node, its orphan sweep sees every node's blobs, and a staged blob this process does not hold may be
    /// another node's upload in flight, told from an abandoned one only by its age. False for a store only this process
    /// uses (its own data directory, or a bucket behind the embedded catalog, which one process owns).
    /// </summary>
    bool SharedByNodes => false;

    /// <summary>
    /// Streams <paramref name="content"/> into the store's staging area while hashing it, and makes it durable.
    /// Returns null (and keeps nothing) when the content is longer than <paramref name="maxBytes"/>; throws an
    /// <see cref="InsufficientStorageException"/> (keeping nothing) when the store has no room for it.
    /// </summary>
    Task<StagedBlob?> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken);

    /// <summary>Opens a committed blob for reading (seekable), or null when there is none.</summary>
    Task<Stream?> OpenReadAsync(string blobId, CancellationToken cancellationToken);

    /// <summary>Removes a committed blob; a missing blob is not an error.</summary>
    Task DeleteAsync(string blobId, CancellationToken cancellationToken);

    /// <summary>
    /// Every committed blob, for the sweeper, except those committed by a <see cref="StagedBlob"/> not yet disposed:
    /// their request may not have written their catalog row yet.
    /// </summary>
    IAsyncEnumerable<BlobEntry> ListAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Removes staged blobs last written before <paramref name="olderThan"/> that no request holds (a staged blob not
    /// yet disposed is never removed, however long its sender pauses); returns how many.
    /// </summary>
    Task<int> SweepStagingAsync(DateTimeOffset olderThan, CancellationToken cancellationToken);

    /// <summary>
    /// Throws when the store cannot be used (readiness probe): an <see cref="InsufficientStorageException"/> when it
    /// has no room left to write.
    /// </summary>
    Task CheckAsync(CancellationToken cancellationToken);
}

/// <summary>A committed blob as listed by the store.</summary>
public sealed record BlobEntry(string BlobId, DateTimeOffset LastWrite);

/// <summary>
/// Bytes written durably to the staging area, with their length and SHA-256. Commit it under an id to keep it;
/// disposing it uncommitted removes it.
/// </summary>
public abstract class StagedBlob : IAsyncDisposable
{
    public required long Length { get; init; }

    /// <summary>Lowercase hex SHA-256 of the bytes.</summary>
    public required string Sha256 { get; init; }

    /// <summary>Makes the bytes the blob <paramref name="blobId"/>, atomically and durably.</summary>
    public abstract Task CommitAsync(string blobId, CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();
}

/// <summary>
/// The blob store itself failed (disk full, I/O error, permissions): a fault of the server, never of the request.
/// Failures reading the content handed to the store are not wrapped: they stay the sender's.
/// </summary>
public sealed class BlobStoreException(string message, Exception innerException) : Exception(message, innerException);
