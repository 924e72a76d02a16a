namespace Wharf.Core.Files;

/// <summary>
/// The files whose content is being read, and the blobs a delete must leave alone for now. A file made from upload
/// parts is read one segment at a time, each opened when the read reaches it, so a delete that removed the segments
/// at once would cut a download already under way. Here a delete marks its blobs as kept before the row goes, then
/// removes them at once, or hands them to the last read of that file to remove when it ends. The orphan sweep leaves
/// kept blobs alone. One lock guards everything: each call is a few dictionary operations.
/// </summary>
internal sealed class ContentReads
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Reads> _reads = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _kept = new(StringComparer.Ordinal);

    /// <summary>Starts a read of <paramref name="fileId"/>; call it before the file's row is read.</summary>
    public void BeginRead(string fileId)
    {
        lock (_gate)
        {
            if (!_reads.TryGetValue(fileId, out var reads))
            {
                reads = new Reads();
                _reads.Add(fileId, reads);
            }
            reads.Count++;
        }
    }

    /// <summary>Ends a read; returns the blobs to remove now (those of a delete that waited for the last read).</summary>
    public IReadOnlyList<string> EndRead(string fileId)
    {
        lock (_gate)
        {
            var reads = _reads[fileId];
            if (--reads.Count > 0)
            {
                return [];
            }
            _reads.Remove(fileId);
            if (reads.Removal is not { } removal)
            {
                return [];
            }
            UnkeepLocked(removal);
            return removal;
        }
    }

    /// <summary>Marks the blobs of a file about to be deleted as kept; call it before the row is deleted.</summary>
    public void Keep(IReadOnlyList<string> blobIds)
    {
        lock (_gate)
        {
            foreach (string blobId in blobIds)
            {
                _kept[blobId] = _kept.GetValueOrDefault(blobId) + 1;
            }
        }
    }

    /// <summary>The row was not deleted (no such row, or a failure): the blobs are no longer kept for this delete.</summary>
    public void Unkeep(IReadOnlyList<string> blobIds)
    {
        lock (_gate)
        {
            UnkeepLocked(blobIds);
        }
    }

    /// <summary>
    /// The row is deleted: returns the blobs to remove now, or none when the file is being read (they stay kept and
    /// the last read's <see cref="EndRead"/> returns them).
    /// </summary>
    public IReadOnlyList<string> Remove(string fileId, IReadOnlyList<string> blobIds)
    {
        lock (_gate)
        {
            if (_reads.TryGetValue(fileId, out var reads))
            {
                (reads.Removal ??= []).AddRange(blobIds);
                return [];
            }
            UnkeepLocked(blobIds);
            return blobIds;
        }
    }

    /// <summary>Whether a delete under way or waiting for a read holds this blob.</summary>
    public bool IsKept(string blobId)
    {
        lock (_gate)
        {
            return _kept.ContainsKey(blobId);
        }
    }

    private void UnkeepLocked(IReadOnlyList<string> blobIds)
    {
        foreach (string blobId in blobIds)
        {
            if (_kept.TryGetValue(blobId, out int count) && count > 1)
            {
                _kept[blobId] = count - 1;
            }
            else
            {
                _kept.Remove(blobId);
            }
        }
    }

    private sealed class Reads
    {
        public int Count;
        public List<string>? Removal;
    }
}
