using System.Collections.Concurrent;
using Wharf.Core.Ports;

namespace Wharf.Core.Auth;

/// <summary>
/// Remembers when each key was last used, in memory, and writes it to the catalog in one batch per flush, so a
/// request costs no write.
/// </summary>
public sealed class KeyUsageTracker
{
    private ConcurrentDictionary<string, long> _pending = new(StringComparer.Ordinal);

    public void Touch(string keyId, long unixSeconds) =>
        _pending.AddOrUpdate(keyId, unixSeconds, (_, previous) => Math.Max(previous, unixSeconds));

    /// <summary>Writes what was recorded since the last flush; returns how many keys.</summary>
    public async Task<int> FlushAsync(IKeyCatalog keys, CancellationToken cancellationToken)
    {
        var batch = Interlocked.Exchange(ref _pending, new ConcurrentDictionary<string, long>(StringComparer.Ordinal));
        if (batch.IsEmpty)
        {
            return 0;
        }
        await keys.TouchKeysAsync(batch.ToArray(), cancellationToken);
        return batch.Count;
    }
}
