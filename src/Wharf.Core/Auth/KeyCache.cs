using System.Collections.Concurrent;

namespace Wharf.Core.Auth;

/// <summary>
/// Remembers keys that authenticated, for a few seconds, so a busy key costs one hash and no catalog query per
/// request. Unknown keys are never cached (a guess always costs its lookup). Every admin change that could make a
/// cached key wrong (revocation, workspace deletion or change) clears the cache at once on this node; on a shared
/// catalog that announces its changes, every node's cache is cleared by the announcement, and while a node cannot
/// hear them its cache is suspended (<see cref="Suspend"/>). Without announcements another node sees such a change
/// within the cache's lifetime.
/// </summary>
public sealed class KeyCache(TimeProvider time, TimeSpan lifetime)
{
    private const int MaxEntries = 100_000;
    private readonly ConcurrentDictionary<string, (KeyLookup Lookup, long Until)> _entries = new(StringComparer.Ordinal);
    // Moved on by every Clear: a lookup that read the catalog before a clear does not store what it read after it.
    private long _generation;
    private volatile bool _suspended;

    public bool Enabled => lifetime > TimeSpan.Zero;

    /// <summary>
    /// The cache's generation now: read it before looking a key up in the catalog and give it to <see cref="Set"/>,
    /// so that an entry read before a <see cref="Clear"/> is not kept after it.
    /// </summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>Whether entries are neither served nor kept (see <see cref="Suspend"/>).</summary>
    public bool Suspended => _suspended;

    public KeyLookup? Get(byte[] hash)
    {
        if (!Enabled || _suspended || !_entries.TryGetValue(Convert.ToBase64String(hash), out var entry))
        {
            return null;
        }
        return entry.Until > time.GetTimestamp() ? entry.Lookup : null;
    }

    /// <summary>
    /// Keeps <paramref name="lookup"/> unless the cache was cleared or suspended since <paramref name="generation"/>
    /// (the <see cref="Generation"/> read before the lookup) or is suspended now.
    /// </summary>
    public void Set(byte[] hash, KeyLookup lookup, long generation)
    {
        if (!Enabled || _suspended || Generation != generation)
        {
            return;
        }
        if (_entries.Count >= MaxEntries)
        {
            _entries.Clear();
        }
        string entryKey = Convert.ToBase64String(hash);
        long until = time.GetTimestamp() + (long)(lifetime.TotalSeconds * time.TimestampFrequency);
        _entries[entryKey] = (lookup, until);
        // A clear that ran between the check above and this write moved the generation before emptying the entries:
        // seen here, the entry is taken back out; not seen, the clear's emptying came after the write.
        if (Generation != generation || _suspended)
        {
            _entries.TryRemove(entryKey, out _);
        }
    }

    /// <summary>Forgets every cached key: the next request of each key is looked up again.</summary>
    public void Clear()
    {
        Interlocked.Increment(ref _generation);
        _entries.Clear();
    }

    /// <summary>
    /// Stops serving and keeping entries until <see cref="Resume"/>: for a node that cannot hear the changes other
    /// nodes announce (it may miss one), so that every key is looked up in the catalog meanwhile.
    /// </summary>
    public void Suspend()
    {
        _suspended = true;
        Clear();
    }

    /// <summary>
    /// Clears the cache and serves and keeps entries again: for a node that hears every change announced from now on.
    /// </summary>
    public void Resume()
    {
        Clear();
        _suspended = false;
    }
}
