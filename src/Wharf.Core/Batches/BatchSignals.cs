using System.Collections.Concurrent;

namespace Wharf.Core.Batches;

/// <summary>
/// In-process news for the batch engine on this node: a batch was created (claim it now rather than at the next
/// poll) or a cancel was asked (stop its dispatch now). Other nodes learn both from the catalog when they poll.
/// </summary>
public sealed class BatchSignals : PollWakeUp
{
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _cancels = new(StringComparer.Ordinal);

    public void WorkAdded() => Wake();

    /// <summary>A token cancelled when a cancel of the batch is asked on this node, until <see cref="Forget"/>.</summary>
    public CancellationToken Watch(string batchId) => _cancels.GetOrAdd(batchId, _ => new CancellationTokenSource()).Token;

    public void Forget(string batchId)
    {
        if (_cancels.TryRemove(batchId, out var source))
        {
            source.Dispose();
        }
    }

    public void CancelRequested(string batchId)
    {
        if (_cancels.TryGetValue(batchId, out var source))
        {
            try
            {
                source.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Forgotten meanwhile: the batch is no longer worked on here.
            }
        }
    }
}
