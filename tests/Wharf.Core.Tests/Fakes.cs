using Wharf.Core.Providers;
using Wharf.Core.Uploads;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Core.Tests;

/// <summary>What the fakes were asked to do, in order.</summary>
internal sealed class CallLog
{
    public List<string> Calls { get; } = [];

    public void Add(string call)
    {
        lock (Calls)
        {
            Calls.Add(call);
        }
    }
}

/// <summary>
/// Files in memory. When given a <see cref="FakeWorkspaceCatalog"/>, inserts and deletes keep the workspace's usage
/// and an insert that would take it over its quota is refused, as the real catalogs do; a file whose workspace has
/// no row is inserted without any quota. Listing hides expired files when given a clock.
/// </summary>
internal sealed class FakeFileCatalog(CallLog log, FakeWorkspaceCatalog? workspaces = null, TimeProvider? time = null) : IFileCatalog
{
    public Dictionary<string, FileRecord> Files { get; } = new(StringComparer.Ordinal);

    /// <summary>Called with every row removed, inside the delete (as the real catalogs queue its copies' deletions there).</summary>
    public Action<string, string>? Deleted { get; set; }

    /// <summary>The workspaces whose usage this catalog keeps, if any.</summary>
    public FakeWorkspaceCatalog? Workspaces => workspaces;

    public Task<FileInsertOutcome> InsertAsync(FileRecord file, CancellationToken cancellationToken) => Task.FromResult(Insert(file, 0));

    /// <summary>The insert, with the bytes it replaces in the usage (a completed upload's).</summary>
    public FileInsertOutcome Insert(FileRecord file, long releasedBytes)
    {
        log.Add("insert:" + file.Id);
        var outcome = workspaces?.TryCount(file.WorkspaceId, file.Bytes - releasedBytes, quotaApplies: file.Bytes > releasedBytes)
            ?? FileInsertOutcome.Inserted;
        if (outcome != FileInsertOutcome.Inserted)
        {
            log.Add("insert-refused:" + file.Id);
            return outcome;
        }
        Files.Add(file.Id, file);
        return outcome;
    }

    public Task<FileRecord?> GetAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        log.Add("get:" + fileId);
        return Task.FromResult(Files.TryGetValue(fileId, out var f) && f.WorkspaceId == workspaceId ? f : null);
    }

    public Task<Page<FileRecord>> ListAsync(FileListQuery query, CancellationToken cancellationToken)
    {
        log.Add("list");
        long? now = time?.GetUtcNow().ToUnixTimeSeconds();
        var matching = Files.Values
            .Where(f => f.WorkspaceId == query.WorkspaceId)
            .Where(f => now is null || f.ExpiresAt is null || f.ExpiresAt > now)
            .OrderByDescending(f => f.Id, StringComparer.Ordinal)
            .Where(f => query.After is null || string.CompareOrdinal(f.Id, query.After) < 0)
            .Take(query.Limit + 1)
            .ToList();
        bool hasMore = matching.Count > query.Limit;
        return Task.FromResult(new Page<FileRecord>(matching.Take(query.Limit).ToList(), hasMore));
    }

    public Task<bool> DeleteAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        log.Add("delete:" + fileId);
        bool removed = Files.TryGetValue(fileId, out var f) && f.WorkspaceId == workspaceId && Files.Remove(fileId);
        if (removed)
        {
            workspaces?.TryAddUsage(workspaceId, -f!.Bytes);
            Deleted?.Invoke(workspaceId, fileId);
        }
        return Task.FromResult(removed);
    }

    public Task<IReadOnlyList<FileRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken)
    {
        IReadOnlyList<FileRecord> expired = Files.Values.Where(f => f.ExpiresAt <= nowUnixSeconds).OrderBy(f => f.ExpiresAt).Take(max).ToList();
        return Task.FromResult(expired);
    }

    public Task<IReadOnlySet<string>> FindExistingAsync(IReadOnlyCollection<string> fileIds, CancellationToken cancellationToken)
    {
        IReadOnlySet<string> found = fileIds.Where(Files.ContainsKey).ToHashSet(StringComparer.Ordinal);
        return Task.FromResult(found);
    }

    public Task<bool> SetSha256Async(string workspaceId, string fileId, string sha256, CancellationToken cancellationToken)
    {
        log.Add("set-sha256:" + fileId);
        if (!Files.TryGetValue(fileId, out var f) || f.WorkspaceId != workspaceId || f.Sha256 is not null)
        {
            return Task.FromResult(false);
        }
        Files[fileId] = f with { Sha256 = sha256 };
        return Task.FromResult(true);
    }

    /// <summary>Claims on computing a file's SHA-256: owner and deadline (unix ms), by file id.</summary>
    public Dictionary<string, (string Owner, long Until)> HashClaims { get; } = new(StringComparer.Ordinal);

    public Task<IReadOnlyList<FileRecord>> ListUnhashedAsync(string? afterId, int max, long nowUnixMilliseconds, CancellationToken cancellationToken)
    {
        lock (HashClaims)
        {
            IReadOnlyList<FileRecord> unhashed = Files.Values
                .Where(f => f.Sha256 is null && string.CompareOrdinal(f.Id, afterId ?? "") > 0)
                .Where(f => !HashClaims.TryGetValue(f.Id, out var claim) || claim.Until <= nowUnixMilliseconds)
                .OrderBy(f => f.Id, StringComparer.Ordinal).Take(max).ToList();
            return Task.FromResult(unhashed);
        }
    }

    public Task<bool> ClaimHashingAsync(string workspaceId, string fileId, string owner, long nowUnixMilliseconds, long untilUnixMilliseconds, CancellationToken cancellationToken)
    {
        lock (HashClaims)
        {
            log.Add($"claim-hashing:{fileId}:{owner}");
            if (!Files.TryGetValue(fileId, out var f) || f.WorkspaceId != workspaceId || f.Sha256 is not null
                || HashClaims.TryGetValue(fileId, out var claim) && claim.Owner != owner && claim.Until > nowUnixMilliseconds)
            {
                return Task.FromResult(false);
            }
            HashClaims[fileId] = (owner, untilUnixMilliseconds);
            return Task.FromResult(true);
        }
    }

    public Task ReleaseHashingAsync(string workspaceId, string fileId, string owner, CancellationToken cancellationToken)
    {
        lock (HashClaims)
        {
            log.Add($"release-hashing:{fileId}:{owner}");
            if (HashClaims.TryGetValue(fileId, out var claim) && claim.Owner == owner)
            {
                HashClaims.Remove(fileId);
            }
            return Task.CompletedTask;
        }
    }

    public Task CheckAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

internal sealed class FakeBlobStore(CallLog log) : IBlobStore
{
    /// <summary>Whether the store plays one that several nodes share (a bucket).</summary>
    public bool Shared { get; set; }

    bool IBlobStore.SharedByNodes => Shared;

    /// <summary>Committed blobs; concurrent, as the upload hasher reads parts back on another thread.</summary>
    public ConcurrentDictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);
    public int Staged { get; set; }
    private int _opens;

    /// <summary>How many times a blob was opened for reading.</summary>
    public int Opens => Volatile.Read(ref _opens);

    /// <summary>When set, staged content is counted and hashed but not kept (for tests that stream tens of MB).</summary>
    public bool DiscardContent { get; set; }

    public async Task<StagedBlob?> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var buffer = new MemoryStream();
        byte[] chunk = new byte[81920];
        long total = 0;
        int read;
        while ((read = await content.ReadAsync(chunk, cancellationToken)) > 0)
        {
            total += read;
            if (total > maxBytes)
            {
                return null;
            }
            hash.AppendData(chunk, 0, read);
            if (!DiscardContent)
            {
                buffer.Write(chunk, 0, read);
            }
        }
        Staged++;
        return new FakeStagedBlob(this, log, buffer.ToArray())
        {
            Length = total,
            Sha256 = Convert.ToHexStringLower(hash.GetHashAndReset()),
        };
    }

    public Task<Stream?> OpenReadAsync(string blobId, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _opens);
        return Task.FromResult<Stream?>(Blobs.TryGetValue(blobId, out var b) ? new MemoryStream(b, writable: false) : null);
    }

    /// <summary>When set, removing a blob fails as a store that cannot be reached does.</summary>
    public bool DeletesFail { get; set; }

    public Task DeleteAsync(string blobId, CancellationToken cancellationToken)
    {
        log.Add("blob-delete:" + blobId);
        if (DeletesFail)
        {
            throw new BlobStoreException("The store cannot be reached.", new IOException("refused"));
        }
        Blobs.TryRemove(blobId, out _);
        return Task.CompletedTask;
    }

    public async IAsyncEnumerable<BlobEntry> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var id in Blobs.Keys.ToList())
        {
            await Task.Yield();
            yield return new BlobEntry(id, DateTimeOffset.UnixEpoch);
        }
    }

    public Task<int> SweepStagingAsync(DateTimeOffset olderThan, CancellationToken cancellationToken) => Task.FromResult(0);

    public Task CheckAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private sealed class FakeStagedBlob(FakeBlobStore store, CallLog log, byte[] bytes) : StagedBlob
    {
        private bool _done;

        public override Task CommitAsync(string blobId, CancellationToken cancellationToken)
        {
            log.Add("commit:" + blobId);
            if (!store.Blobs.TryAdd(blobId, bytes))
            {
                throw new IOException("blob exists: " + blobId);
            }
            _done = true;
            return Task.CompletedTask;
        }

        public override ValueTask DisposeAsync()
        {
            if (!_done)
            {
                store.Staged--;
                _done = true;
            }
            return ValueTask.CompletedTask;
        }
    }
}

internal sealed class FakeProvider(string id) : IProvider
{
    public string Id { get; } = id;

    public string Type => "fake";

    public IReadOnlySet<ProviderCapability> Capabilities { get; } = new HashSet<ProviderCapability>();

    public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<ModelResponse>>(UpstreamFailure.Unsupported("fake"));

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFile>>(UpstreamFailure.Unsupported("fake"));

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<bool>>(UpstreamFailure.Unsupported("fake"));

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFilePage>>(UpstreamFailure.Unsupported("fake"));
}

internal sealed class FakeProviderRegistry(params string[] ids) : IProviderRegistry
{
    public IReadOnlyList<RegisteredProvider> All { get; } = [.. ids.Select(id => new RegisteredProvider(new FakeProvider(id), true, null))];

    public bool TryGet(string id, out RegisteredProvider provider)
    {
        provider = All.FirstOrDefault(p => p.Id == id)!;
        return provider is not null;
    }
}

/// <summary>Keys in memory; a key is found only while its workspace is live in <see cref="FakeWorkspaceCatalog"/>.</summary>
internal sealed class FakeKeyCatalog(FakeWorkspaceCatalog workspaces) : IKeyCatalog
{
    public List<ApiKeyRecord> Keys { get; } = [];

    /// <summary>Every batch written by <see cref="TouchKeysAsync"/>, in order.</summary>
    public List<KeyValuePair<string, long>[]> Touches { get; } = [];

    public int Lookups { get; private set; }

    /// <summary>Runs once a lookup has read its answer, before it is returned (what happens meanwhile elsewhere).</summary>
    public Action? AfterLookup { get; set; }

    public Task<KeyLookup?> FindKeyByHashAsync(byte[] hash, CancellationToken cancellationToken)
    {
        Lookups++;
        var key = Keys.FirstOrDefault(k => k.Hash.AsSpan().SequenceEqual(hash));
        var workspace = key is null ? null : workspaces.Live(key.WorkspaceId);
        AfterLookup?.Invoke();
        return Task.FromResult(key is null || workspace is null ? null : new KeyLookup(key, workspace));
    }

    public Task<bool> AnyKeyAsync(CancellationToken cancellationToken) => Task.FromResult(Keys.Count > 0);

    public Task InsertKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken)
    {
        if (Keys.Any(k => k.Hash.AsSpan().SequenceEqual(key.Hash)))
        {
            throw new InvalidOperationException("duplicate hash");
        }
        Keys.Add(key);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<ApiKeyRecord>> ListKeysAsync(string workspaceId, CancellationToken cancellationToken)
    {
        IReadOnlyList<ApiKeyRecord> keys = Keys.Where(k => k.WorkspaceId == workspaceId).OrderBy(k => k.Id, StringComparer.Ordinal).ToList();
        return Task.FromResult(keys);
    }

    public Task<bool> DeleteKeyAsync(string keyId, CancellationToken cancellationToken) =>
        Task.FromResult(Keys.RemoveAll(k => k.Id == keyId) > 0);

    public Task TouchKeysAsync(IReadOnlyCollection<KeyValuePair<string, long>> lastUsed, CancellationToken cancellationToken)
    {
        Touches.Add(lastUsed.ToArray());
        foreach (var (id, at) in lastUsed)
        {
            int i = Keys.FindIndex(k => k.Id == id);
            if (i >= 0)
            {
                Keys[i] = Keys[i] with { LastUsedAt = Math.Max(Keys[i].LastUsedAt ?? 0, at) };
            }
        }
        return Task.CompletedTask;
    }
}

/// <summary>Workspaces in memory, with soft deletion; deleting one drops its keys from <see cref="KeyCatalog"/>.</summary>
internal sealed class FakeWorkspaceCatalog : IWorkspaceCatalog
{
    private readonly Dictionary<string, Workspace> _rows = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _deleted = new(StringComparer.Ordinal);

    public FakeKeyCatalog? KeyCatalog { get; set; }

    /// <summary>Whether a workspace still holds files (for <see cref="PurgeWorkspaceAsync"/>).</summary>
    public FakeFileCatalog? FileCatalog { get; set; }

    /// <summary>Live workspaces, in insertion order.</summary>
    public IReadOnlyList<Workspace> All => _rows.Values.Where(w => !_deleted.ContainsKey(w.Id)).ToList();

    public List<string> Calls { get; } = [];

    public Workspace? Live(string id) => _rows.TryGetValue(id, out var w) && !_deleted.ContainsKey(id) ? w : null;

    public bool HasRow(string id) => _rows.ContainsKey(id);

    public void Add(Workspace workspace) => _rows.Add(workspace.Id, workspace);

    public void SetUsage(string id, long usage) => _rows[id] = _rows[id] with { UsageBytes = usage };

    /// <summary>
    /// Adds (or, negative, subtracts) bytes to a live workspace's usage, as the real catalogs do; changes nothing when
    /// the workspace is deleted, or when <paramref name="quotaApplies"/> and that would pass the quota. A workspace
    /// without a row has no quota.
    /// </summary>
    public FileInsertOutcome TryCount(string id, long bytes, bool quotaApplies)
    {
        if (_deleted.ContainsKey(id))
        {
            return FileInsertOutcome.WorkspaceDeleted;
        }
        if (!_rows.TryGetValue(id, out var w))
        {
            return FileInsertOutcome.Inserted;
        }
        if (quotaApplies && w.StorageQuotaBytes is { } quota && w.UsageBytes + bytes > quota)
        {
            return FileInsertOutcome.QuotaExceeded;
        }
        _rows[id] = w with { UsageBytes = w.UsageBytes + bytes };
        return FileInsertOutcome.Inserted;
    }

    /// <summary>Adds (or, negative, subtracts) bytes; false, changing nothing, when that would pass the quota.</summary>
    public bool TryAddUsage(string id, long bytes)
    {
        if (!_rows.TryGetValue(id, out var w))
        {
            return true;
        }
        if (bytes > 0 && w.StorageQuotaBytes is { } quota && w.UsageBytes + bytes > quota)
        {
            return false;
        }
        _rows[id] = w with { UsageBytes = w.UsageBytes + bytes };
        return true;
    }

    /// <summary>Each workspace's webhook secret, as the catalog keeps it apart from the record.</summary>
    public Dictionary<string, string> WebhookSecrets { get; } = new(StringComparer.Ordinal);

    public Task InsertWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken, string? webhookSecret = null)
    {
        Calls.Add("insert:" + workspace.Id);
        _rows.Add(workspace.Id, workspace with { UsageBytes = 0 });
        if (workspace.WebhookUrl is not null && webhookSecret is not null)
        {
            WebhookSecrets[workspace.Id] = webhookSecret;
        }
        return Task.CompletedTask;
    }

    public Task<Workspace?> GetWorkspaceAsync(string workspaceId, CancellationToken cancellationToken)
    {
        Calls.Add("get:" + workspaceId);
        return Task.FromResult(Live(workspaceId));
    }

    public Task<Workspace?> FindWorkspaceByNameAsync(string name, CancellationToken cancellationToken) =>
        Task.FromResult(All.Where(w => w.Name == name).OrderBy(w => w.Id, StringComparer.Ordinal).FirstOrDefault());

    public Task<Page<Workspace>> ListWorkspacesAsync(int limit, string? after, CancellationToken cancellationToken)
    {
        Calls.Add($"list:{limit}:{after}");
        var items = All.OrderBy(w => w.Id, StringComparer.Ordinal)
            .Where(w => after is null || string.CompareOrdinal(w.Id, after) > 0)
            .Take(limit + 1)
            .ToList();
        return Task.FromResult(new Page<Workspace>(items.Take(limit).ToList(), items.Count > limit));
    }

    public Task<bool> UpdateWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken, string? newWebhookSecret = null)
    {
        Calls.Add("update:" + workspace.Id);
        if (Live(workspace.Id) is not { } current)
        {
            return Task.FromResult(false);
        }
        _rows[workspace.Id] = current with
        {
            Name = workspace.Name,
            StorageQuotaBytes = workspace.StorageQuotaBytes,
            RateLimitRpm = workspace.RateLimitRpm,
            WebhookUrl = workspace.WebhookUrl,
        };
        if (workspace.WebhookUrl is null)
        {
            WebhookSecrets.Remove(workspace.Id);
        }
        else if (newWebhookSecret is not null)
        {
            WebhookSecrets[workspace.Id] = newWebhookSecret;
        }
        return Task.FromResult(true);
    }

    public Task<bool> DeleteWorkspaceAsync(string workspaceId, long deletedAt, CancellationToken cancellationToken)
    {
        Calls.Add("delete:" + workspaceId);
        if (Live(workspaceId) is null)
        {
            return Task.FromResult(false);
        }
        _deleted[workspaceId] = deletedAt;
        KeyCatalog?.Keys.RemoveAll(k => k.WorkspaceId == workspaceId);
        return Task.FromResult(true);
    }

    public Task<IReadOnlyList<string>> ListDeletedWorkspacesAsync(int max, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> ids = _deleted.OrderBy(p => p.Value).Select(p => p.Key).Where(_rows.ContainsKey).Take(max).ToList();
        return Task.FromResult(ids);
    }

    public Task<bool> PurgeWorkspaceAsync(string workspaceId, CancellationToken cancellationToken)
    {
        Calls.Add("purge:" + workspaceId);
        if (!_deleted.ContainsKey(workspaceId) || !_rows.ContainsKey(workspaceId)
            || FileCatalog?.Files.Values.Any(f => f.WorkspaceId == workspaceId) == true)
        {
            return Task.FromResult(false);
        }
        _rows.Remove(workspaceId);
        _deleted.Remove(workspaceId);
        return Task.FromResult(true);
    }
}

/// <summary>An upload catalog holding nothing: the file tests store every file as one blob.</summary>
internal sealed class EmptyUploadCatalog : IUploadCatalog
{
    public Task<UploadInsertOutcome> InsertUploadAsync(UploadRecord upload, int maxPending, CancellationToken cancellationToken) => throw new NotSupportedException();
    public Task<UploadRecord?> GetUploadAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) => Task.FromResult<UploadRecord?>(null);
    public Task<PartInsertOutcome> InsertPartAsync(UploadPartRecord part, long nowUnixSeconds, long maxHeldBytes, CancellationToken cancellationToken) => throw new NotSupportedException();
    public Task<IReadOnlyList<UploadPartRecord>> ListPartsAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<UploadPartRecord>>([]);
    public Task<(CompleteOutcome Outcome, IReadOnlyList<string> DroppedParts)> CompleteAsync(string uploadId, FileRecord file, IReadOnlyList<string> partIds, CancellationToken cancellationToken) => throw new NotSupportedException();
    public Task<IReadOnlyList<string>?> EndAsync(string workspaceId, string uploadId, string status, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>?>(null);
    public Task<IReadOnlyList<UploadRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<UploadRecord>>([]);
    public Task<IReadOnlyList<BlobSegment>> GetSegmentsAsync(string fileId, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<BlobSegment>>([]);
    public Task<IReadOnlySet<string>> FindExistingPartsAsync(IReadOnlyCollection<string> partIds, CancellationToken cancellationToken) => Task.FromResult<IReadOnlySet<string>>(new HashSet<string>());
}

/// <summary>
/// Uploads and parts in memory, with the SQLite catalog's rules: creating one reserves its size in the workspace's usage
/// (refused past the quota or the pending count); a part is accepted only while its upload is pending and unexpired,
/// within what the upload may hold, and counted when the parts pass the upload's size; completing inserts the file
/// through <see cref="FakeFileCatalog"/> in place of what the upload counted, makes the listed parts its segments in
/// order and drops the rest; ending releases what it counted.
/// </summary>
internal sealed class FakeUploadCatalog(CallLog log, FakeFileCatalog files) : IUploadCatalog
{
    public Dictionary<string, UploadRecord> Uploads { get; } = new(StringComparer.Ordinal);

    /// <summary>What each pending upload counts in its workspace's usage.</summary>
    public Dictionary<string, long> Counted { get; } = new(StringComparer.Ordinal);

    /// <summary>Every part row, in arrival order.</summary>
    public List<PartRow> Parts { get; } = [];

    internal sealed class PartRow(UploadPartRecord part)
    {
        public UploadPartRecord Part { get; } = part;
        public string? FileId { get; set; }
        public int Seq { get; set; }
    }

    public Task<UploadInsertOutcome> InsertUploadAsync(UploadRecord upload, int maxPending, CancellationToken cancellationToken)
    {
        log.Add("upload-insert:" + upload.Id);
        var workspaces = files.Workspaces;
        if (workspaces?.HasRow(upload.WorkspaceId) == true && workspaces.Live(upload.WorkspaceId) is null)
        {
            return Task.FromResult(UploadInsertOutcome.WorkspaceDeleted);
        }
        if (workspaces?.Live(upload.WorkspaceId) is { StorageQuotaBytes: { } quota } limited && limited.UsageBytes + upload.Bytes > quota)
        {
            return Task.FromResult(UploadInsertOutcome.QuotaExceeded);
        }
        if (Counted.Keys.Count(id => Uploads[id].WorkspaceId == upload.WorkspaceId) >= maxPending)
        {
            return Task.FromResult(UploadInsertOutcome.TooManyPending);
        }
        workspaces?.TryCount(upload.WorkspaceId, upload.Bytes, quotaApplies: false);
        Uploads.Add(upload.Id, upload);
        Counted[upload.Id] = upload.Bytes;
        return Task.FromResult(UploadInsertOutcome.Inserted);
    }

    public Task<UploadRecord?> GetUploadAsync(string workspaceId, string uploadId, CancellationToken cancellationToken) =>
        Task.FromResult(Uploads.TryGetValue(uploadId, out var u) && u.WorkspaceId == workspaceId ? u : null);

    public Task<PartInsertOutcome> InsertPartAsync(UploadPartRecord part, long nowUnixSeconds, long maxHeldBytes, CancellationToken cancellationToken)
    {
        log.Add("part-insert:" + part.Id);
        if (!Uploads.TryGetValue(part.UploadId, out var u) || u.WorkspaceId != part.WorkspaceId
            || u.Status != UploadStatus.Pending || u.ExpiresAt <= nowUnixSeconds)
        {
            return Task.FromResult(PartInsertOutcome.NotPending);
        }
        if (files.Workspaces?.HasRow(u.WorkspaceId) == true && files.Workspaces.Live(u.WorkspaceId) is null)
        {
            return Task.FromResult(PartInsertOutcome.WorkspaceDeleted);
        }
        long held = Pending(part.UploadId).Sum(r => r.Part.Bytes);
        if (held + part.Bytes > maxHeldBytes)
        {
            return Task.FromResult(PartInsertOutcome.OverAllowance);
        }
        long counted = Math.Max(u.Bytes, held + part.Bytes);
        if (files.Workspaces?.TryCount(u.WorkspaceId, counted - Counted.GetValueOrDefault(u.Id), quotaApplies: true) == FileInsertOutcome.QuotaExceeded)
        {
            return Task.FromResult(PartInsertOutcome.QuotaExceeded);
        }
        Counted[u.Id] = counted;
        Parts.Add(new PartRow(part));
        return Task.FromResult(PartInsertOutcome.Inserted);
    }

    public Task<IReadOnlyList<UploadPartRecord>> ListPartsAsync(string workspaceId, string uploadId, CancellationToken cancellationToken)
    {
        IReadOnlyList<UploadPartRecord> parts = Pending(uploadId).Where(r => r.Part.WorkspaceId == workspaceId).Select(r => r.Part).ToList();
        return Task.FromResult(parts);
    }

    public Task<(CompleteOutcome Outcome, IReadOnlyList<string> DroppedParts)> CompleteAsync(
        string uploadId, FileRecord file, IReadOnlyList<string> partIds, CancellationToken cancellationToken) =>
        Task.FromResult(Complete(uploadId, file, partIds));

    private (CompleteOutcome Outcome, IReadOnlyList<string> DroppedParts) Complete(string uploadId, FileRecord file, IReadOnlyList<string> partIds)
    {
        log.Add("upload-complete:" + uploadId);
        if (!Uploads.TryGetValue(uploadId, out var u) || u.WorkspaceId != file.WorkspaceId || u.Status != UploadStatus.Pending)
        {
            return (CompleteOutcome.NotPending, []);
        }
        switch (files.Insert(file, Counted.GetValueOrDefault(uploadId)))
        {
            case FileInsertOutcome.QuotaExceeded:
                return (CompleteOutcome.QuotaExceeded, []);
            case FileInsertOutcome.WorkspaceDeleted:
                return (CompleteOutcome.WorkspaceDeleted, []);
        }
        Counted.Remove(uploadId);
        Uploads[uploadId] = u with { Status = UploadStatus.Completed, FileId = file.Id };
        var rows = Pending(uploadId).ToList();
        for (int i = 0; i < partIds.Count; i++)
        {
            var row = rows.Single(r => r.Part.Id == partIds[i]);
            row.FileId = file.Id;
            row.Seq = i;
        }
        return (CompleteOutcome.Completed, Drop(uploadId));
    }

    public Task<IReadOnlyList<string>?> EndAsync(string workspaceId, string uploadId, string status, CancellationToken cancellationToken)
    {
        log.Add($"upload-end:{uploadId}:{status}");
        if (!Uploads.TryGetValue(uploadId, out var u) || u.WorkspaceId != workspaceId || u.Status != UploadStatus.Pending)
        {
            return Task.FromResult<IReadOnlyList<string>?>(null);
        }
        Uploads[uploadId] = u with { Status = status };
        files.Workspaces?.TryCount(u.WorkspaceId, -Counted.GetValueOrDefault(uploadId), quotaApplies: false);
        Counted.Remove(uploadId);
        return Task.FromResult<IReadOnlyList<string>?>(Drop(uploadId));
    }

    public Task<IReadOnlyList<UploadRecord>> ListExpiredAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken)
    {
        IReadOnlyList<UploadRecord> expired = Uploads.Values
            .Where(u => u.Status == UploadStatus.Pending && u.ExpiresAt <= nowUnixSeconds)
            .OrderBy(u => u.ExpiresAt)
            .Take(max)
            .ToList();
        return Task.FromResult(expired);
    }

    public Task<IReadOnlyList<BlobSegment>> GetSegmentsAsync(string fileId, CancellationToken cancellationToken)
    {
        IReadOnlyList<BlobSegment> segments = Parts.Where(r => r.FileId == fileId).OrderBy(r => r.Seq).Select(r => new BlobSegment(r.Part.Id, r.Part.Bytes)).ToList();
        return Task.FromResult(segments);
    }

    public Task<IReadOnlySet<string>> FindExistingPartsAsync(IReadOnlyCollection<string> partIds, CancellationToken cancellationToken)
    {
        IReadOnlySet<string> found = partIds.Where(id => Parts.Exists(r => r.Part.Id == id)).ToHashSet(StringComparer.Ordinal);
        return Task.FromResult(found);
    }

    private IEnumerable<PartRow> Pending(string uploadId) => Parts.Where(r => r.Part.UploadId == uploadId && r.FileId is null);

    private List<string> Drop(string uploadId)
    {
        var dropped = Pending(uploadId).Select(r => r.Part.Id).ToList();
        Parts.RemoveAll(r => r.Part.UploadId == uploadId && r.FileId is null);
        return dropped;
    }
}

/// <summary>A non-seekable stream of <c>length</c> zero bytes, made as they are read (nothing is held in memory).</summary>
internal sealed class ZeroStream(long length) : Stream
{
    public long BytesRead { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = (int)Math.Min(buffer.Length, length - BytesRead);
        buffer[..n].Clear();
        BytesRead += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Blobs of deleted files waiting for their removal, in memory: blob id to the time it may go.</summary>
internal sealed class FakeDeferredBlobDeletions(CallLog log) : IDeferredBlobDeletions
{
    public ConcurrentDictionary<string, long> Deferred { get; } = new(StringComparer.Ordinal);

    public Task DeferAsync(IReadOnlyCollection<string> blobIds, long removeAtUnixSeconds, CancellationToken cancellationToken)
    {
        foreach (string id in blobIds)
        {
            log.Add("defer:" + id);
            Deferred.AddOrUpdate(id, removeAtUnixSeconds, (_, at) => Math.Max(at, removeAtUnixSeconds));
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> ListDueAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> due = Deferred.Where(d => d.Value <= nowUnixSeconds).OrderBy(d => d.Value).Take(max).Select(d => d.Key).ToList();
        return Task.FromResult(due);
    }

    public Task ForgetAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken)
    {
        foreach (string id in blobIds)
        {
            Deferred.TryRemove(id, out _);
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlySet<string>> FindDeferredAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken)
    {
        IReadOnlySet<string> found = blobIds.Where(Deferred.ContainsKey).ToHashSet(StringComparer.Ordinal);
        return Task.FromResult(found);
    }
}
