using System.Collections.Concurrent;

namespace Wharf.Core.Auth;

/// <summary>
/// Remembers keys that authenticated, for a few seconds, so a busy key costs one hash and no catalog query per
/// request. Unknown keys are never cached (a guess always costs its lookup). Every admin change that could make a
/// cached key wrong (revocation, workspace deletion or change) clears the cache at once on this node; another node
/// sees such a change within the cache's lifetime.
/// </summary>
public sealed class KeyCache(TimeProvider time, TimeSpan lifetime)
{
    private const int MaxEntries = 100_000;
    private readonly ConcurrentDictionary<string, (KeyLookup Lookup, long Until)> _entries = new(StringComparer.Ordinal);

    public bool Enabled => lifetime > TimeSpan.Zero;

    public KeyLookup? Get(byte[] hash)
    {
        if (!Enabled || !_entries.TryGetValue(Convert.ToBase64String(hash), out var entry))
        {
            return null;
        }
        return entry.Until > time.GetTimestamp() ? entry.Lookup : null;
    }

    public void Set(byte[] hash, KeyLookup lookup)
    {
        if (!Enabled)
        {
            return;
        }
        if (_entries.Count >= MaxEntries)
        {
            _entries.Clear();
        }
        long until = time.GetTimestamp() + (long)(lifetime.TotalSeconds * time.TimestampFrequency);
        _entries[Convert.ToBase64String(hash)] = (lookup, until);
    }

    /// <summary>Forgets every cached key: the next request of each key is looked up again.</summary>
    public void Clear() => _entries.Clear();
}
