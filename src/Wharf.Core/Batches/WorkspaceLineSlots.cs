namespace Wharf.Core.Batches;

/// <summary>
/// How many lines of one workspace's batches are in flight on this node at once, over all its batches
/// (<c>Wharf:Batches:MaxConcurrencyPerWorkspace</c>): one semaphore per workspace with a batch running here, kept
/// while any of its batches holds it.
/// </summary>
internal sealed class WorkspaceLineSlots(int perWorkspace)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>The workspace's semaphore, held until the lease is disposed.</summary>
    public Lease Acquire(string workspaceId)
    {
        lock (_gate)
        {
            if (!_entries.TryGetValue(workspaceId, out var entry))
            {
                entry = new Entry(new SemaphoreSlim(perWorkspace, perWorkspace));
                _entries.Add(workspaceId, entry);
            }
            entry.Holders++;
            return new Lease(this, workspaceId, entry.Slots);
        }
    }

    private void Release(string workspaceId)
    {
        lock (_gate)
        {
            var entry = _entries[workspaceId];
            if (--entry.Holders == 0)
            {
                _entries.Remove(workspaceId);
                entry.Slots.Dispose();
            }
        }
    }

    private sealed class Entry(SemaphoreSlim slots)
    {
        public SemaphoreSlim Slots { get; } = slots;

        public int Holders { get; set; }
    }

    public sealed class Lease(WorkspaceLineSlots owner, string workspaceId, SemaphoreSlim slots) : IDisposable
    {
        private int _disposed;

        public SemaphoreSlim Slots => slots;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Release(workspaceId);
            }
        }
    }
}
