using Wharf.Core.Ports;

namespace Wharf.Core.Tests.Batches;

/// <summary>A blob store whose next stagings fail as the disk store's own failures do (a <see cref="BlobStoreException"/>).</summary>
internal sealed class FailingStore(IBlobStore inner) : IBlobStore
{
    private int _toFail;
    private int _failed;

    /// <summary>Stagings that failed so far.</summary>
    public int Failed => Volatile.Read(ref _failed);

    public void FailStages(int count) => Volatile.Write(ref _toFail, count);

    public Task<StagedBlob?> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        if (Interlocked.Decrement(ref _toFail) >= 0)
        {
            Interlocked.Increment(ref _failed);
            throw new BlobStoreException("The disk blob store could not write.", new IOException("Input/output error"));
        }
        return inner.StageAsync(content, maxBytes, cancellationToken);
    }

    public Task<Stream?> OpenReadAsync(string blobId, CancellationToken cancellationToken) => inner.OpenReadAsync(blobId, cancellationToken);

    public Task DeleteAsync(string blobId, CancellationToken cancellationToken) => inner.DeleteAsync(blobId, cancellationToken);

    public IAsyncEnumerable<BlobEntry> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

    public bool SharedByNodes => inner.SharedByNodes;

    public Task<int> SweepStagingAsync(DateTimeOffset olderThan, CancellationToken cancellationToken) => inner.SweepStagingAsync(olderThan, cancellationToken);

    public Task CheckAsync(CancellationToken cancellationToken) => inner.CheckAsync(cancellationToken);
}
