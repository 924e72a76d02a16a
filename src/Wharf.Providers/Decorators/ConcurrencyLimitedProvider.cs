using Wharf.Core.Providers;

namespace Wharf.Providers.Decorators;

/// <summary>
/// <c>MaxConcurrency</c>: at most that many calls to the provider in flight from this node. A call over the limit
/// waits for a slot (never refused); the wait ends with the caller's cancellation. A model answer holds its slot
/// until it is disposed, so a stream being relayed counts as in flight.
/// </summary>
internal sealed class ConcurrencyLimitedProvider(IProvider inner, int maxConcurrency) : IProvider, IDisposable
{
    private readonly SemaphoreSlim _slots = new(maxConcurrency, maxConcurrency);
    private int _waiting;

    public string Id => inner.Id;

    public string Type => inner.Type;

    public IReadOnlySet<ProviderCapability> Capabilities => inner.Capabilities;

    public int MaxConcurrency => maxConcurrency;

    /// <summary>Calls waiting for a slot now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Calls holding a slot now.</summary>
    public int InFlight => maxConcurrency - _slots.CurrentCount;

    public async Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken);
        bool handedOn = false;
        try
        {
            var outcome = await inner.SendModelRequestAsync(call, cancellationToken);
            if (!outcome.IsOk)
            {
                return outcome;
            }
            var response = outcome.Value;
            handedOn = true;
            return new ModelResponse(response.Status, response.ContentType, response.Content, new SlotRelease(response, _slots));
        }
        finally
        {
            if (!handedOn)
            {
                _slots.Release();
            }
        }
    }

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.UploadFileAsync(upload, ct), cancellationToken);

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.DeleteFileAsync(upstreamFileId, ct), cancellationToken);

    public bool DropsCopies => inner.DropsCopies;

    public Task<UpstreamOutcome<bool>> IsCopyUsableAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.IsCopyUsableAsync(upstreamFileId, ct), cancellationToken);

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.ListFilesAsync(query, ct), cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.CreateBatchAsync(batch, ct), cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.GetBatchAsync(upstreamBatchId, ct), cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.CancelBatchAsync(upstreamBatchId, ct), cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.ListBatchesAsync(query, ct), cancellationToken);

    /// <summary>A slot until the headers come, as for the other file calls; the content is read after it is given back.</summary>
    public Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.DownloadFileAsync(upstreamFileId, ct), cancellationToken);

    public BatchInputForm BatchInputForm => inner.BatchInputForm;

    public bool BatchesCarryMetadata => inner.BatchesCarryMetadata;

    /// <summary>A slot until the headers come, as for a file's content.</summary>
    public Task<UpstreamOutcome<UpstreamFileContent>> OpenBatchResultsAsync(UpstreamBatchResults results, CancellationToken cancellationToken) =>
        WithSlotAsync(ct => inner.OpenBatchResultsAsync(results, ct), cancellationToken);

    private async Task<T> WithSlotAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken);
        try
        {
            return await call(cancellationToken);
        }
        finally
        {
            _slots.Release();
        }
    }

    private async Task EnterAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            await _slots.WaitAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    public void Dispose() => _slots.Dispose();

    /// <summary>Disposes the upstream's answer, then gives its slot back, once.</summary>
    private sealed class SlotRelease(ModelResponse response, SemaphoreSlim slots) : IAsyncDisposable
    {
        private int _released;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }
            try
            {
                await response.DisposeAsync();
            }
            finally
            {
                slots.Release();
            }
        }
    }
}
