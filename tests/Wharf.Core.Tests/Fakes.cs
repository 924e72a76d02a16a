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

internal sealed class FakeFileCatalog(CallLog log) : IFileCatalog
{
    public Dictionary<string, FileRecord> Files { get; } = new(StringComparer.Ordinal);

    public Task InsertAsync(FileRecord file, CancellationToken cancellationToken)
    {
        log.Add("insert:" + file.Id);
        Files.Add(file.Id, file);
        return Task.CompletedTask;
    }

    public Task<FileRecord?> GetAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        log.Add("get:" + fileId);
        return Task.FromResult(Files.TryGetValue(fileId, out var f) && f.WorkspaceId == workspaceId ? f : null);
    }

    public Task<Page<FileRecord>> ListAsync(FileListQuery query, CancellationToken cancellationToken)
    {
        log.Add("list");
        var items = Files.Values.Where(f => f.WorkspaceId == query.WorkspaceId).OrderByDescending(f => f.Id, StringComparer.Ordinal).Take(query.Limit).ToList();
        return Task.FromResult(new Page<FileRecord>(items, false));
    }

    public Task<bool> DeleteAsync(string workspaceId, string fileId, CancellationToken cancellationToken)
    {
        log.Add("delete:" + fileId);
        bool removed = Files.TryGetValue(fileId, out var f) && f.WorkspaceId == workspaceId && Files.Remove(fileId);
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

    public Task CheckAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

internal sealed class FakeBlobStore(CallLog log) : IBlobStore
{
    public Dictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);
    public int Staged { get; set; }

    public async Task<StagedBlob?> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken);
        if (buffer.Length > maxBytes)
        {
            return null;
        }
        byte[] bytes = buffer.ToArray();
        Staged++;
        return new FakeStagedBlob(this, log, bytes)
        {
            Length = bytes.Length,
            Sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes)),
        };
    }

    public Task<Stream?> OpenReadAsync(string blobId, CancellationToken cancellationToken) =>
        Task.FromResult<Stream?>(Blobs.TryGetValue(blobId, out var b) ? new MemoryStream(b, writable: false) : null);

    public Task DeleteAsync(string blobId, CancellationToken cancellationToken)
    {
        log.Add("blob-delete:" + blobId);
        Blobs.Remove(blobId);
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
            store.Blobs.Add(blobId, bytes);
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
}

internal sealed class FakeProviderRegistry(params string[] ids) : IProviderRegistry
{
    public bool TryGet(string id, out IProvider provider)
    {
        if (ids.Contains(id, StringComparer.Ordinal))
        {
            provider = new FakeProvider(id);
            return true;
        }
        provider = null!;
        return false;
    }
}

internal sealed class FakeKeyCatalog : IKeyCatalog
{
    public List<Workspace> Workspaces { get; } = [];
    public List<ApiKeyRecord> Keys { get; } = [];

    public Task<ApiKeyRecord?> FindKeyByHashAsync(byte[] hash, CancellationToken cancellationToken) =>
        Task.FromResult(Keys.FirstOrDefault(k => k.Hash.AsSpan().SequenceEqual(hash)));

    public Task<bool> AnyKeyAsync(CancellationToken cancellationToken) => Task.FromResult(Keys.Count > 0);

    public Task<Workspace?> FindWorkspaceByNameAsync(string name, CancellationToken cancellationToken) =>
        Task.FromResult(Workspaces.FirstOrDefault(w => w.Name == name));

    public Task InsertWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken)
    {
        Workspaces.Add(workspace);
        return Task.CompletedTask;
    }

    public Task InsertKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken)
    {
        if (Keys.Any(k => k.Hash.AsSpan().SequenceEqual(key.Hash)))
        {
            throw new InvalidOperationException("duplicate hash");
        }
        Keys.Add(key);
        return Task.CompletedTask;
    }
}
