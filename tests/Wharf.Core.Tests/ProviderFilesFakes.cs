using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Providers;

namespace Wharf.Core.Tests;

/// <summary>
/// Copies, intents and upstream deletions in memory, with the real catalogs' rules: the file and its copy are written
/// together (through <see cref="FakeFileCatalog"/>), a copy needs its file's row, and a file's delete turns its copies
/// into deletions due at once (wired by <see cref="Attach"/>).
/// </summary>
internal sealed class FakeFileCopyCatalog(CallLog? log = null) : IFileCopyCatalog
{
    private readonly object _gate = new();
    private FakeFileCatalog? _files;
    private TimeProvider _time = TimeProvider.System;

    public List<FileCopy> Copies { get; } = [];

    public List<UpstreamDeletion> Deletions { get; } = [];

    public Dictionary<(string FileId, string Provider), CopyIntent> Intents { get; } = [];

    /// <summary>Makes the file catalog's inserts and deletes go through this one, as one transaction would.</summary>
    public FakeFileCopyCatalog Attach(FakeFileCatalog files, TimeProvider time)
    {
        _files = files;
        _time = time;
        files.Deleted = (ws, id) =>
        {
            lock (_gate)
            {
                foreach (var copy in Copies.Where(c => c.WorkspaceId == ws && c.FileId == id).ToList())
                {
                    Copies.Remove(copy);
                    Deletions.Add(new UpstreamDeletion(copy.Provider, copy.UpstreamId, id, 0, time.GetUtcNow().ToUnixTimeSeconds()));
                }
            }
        };
        return this;
    }

    public UpstreamDeletions Deleter(TimeProvider time, IProviderRegistry? providers = null, ProviderFilesOptions? options = null) =>
        new(this, providers ?? new FakeProviderRegistry("local"), Options.Create(options ?? new ProviderFilesOptions()), time, NullLogger<UpstreamDeletions>.Instance);

    public Task RecordIntentAsync(CopyIntent intent, CancellationToken cancellationToken)
    {
        log?.Add($"intent:{intent.FileId}:{intent.Provider}");
        lock (_gate)
        {
            Intents[(intent.FileId, intent.Provider)] = intent;
        }
        return Task.CompletedTask;
    }

    public Task RemoveIntentAsync(string fileId, string provider, CancellationToken cancellationToken)
    {
        log?.Add($"intent-removed:{fileId}:{provider}");
        lock (_gate)
        {
            Intents.Remove((fileId, provider));
        }
        return Task.CompletedTask;
    }

    public Task<FileInsertOutcome> InsertFileWithCopyAsync(FileRecord file, FileCopy copy, CancellationToken cancellationToken)
    {
        var files = _files ?? throw new InvalidOperationException("Attach a file catalog first.");
        log?.Add($"insert-with-copy:{file.Id}:{copy.Provider}:{copy.UpstreamId}");
        lock (_gate)
        {
            var outcome = files.Insert(file, 0);
            if (outcome == FileInsertOutcome.Inserted)
            {
                Copies.Add(copy);
                Intents.Remove((copy.FileId, copy.Provider));
            }
            return Task.FromResult(outcome);
        }
    }

    public Task<bool> InsertCopyAsync(FileCopy copy, CancellationToken cancellationToken)
    {
        log?.Add($"copy:{copy.FileId}:{copy.Provider}:{copy.UpstreamId}");
        lock (_gate)
        {
            bool exists = _files is null || _files.Files.TryGetValue(copy.FileId, out var f) && f.WorkspaceId == copy.WorkspaceId;
            if (!exists || Copies.Exists(c => c.FileId == copy.FileId && c.Provider == copy.Provider))
            {
                return Task.FromResult(false);
            }
            Copies.Add(copy);
            Intents.Remove((copy.FileId, copy.Provider));
            return Task.FromResult(true);
        }
    }

    public Task<FileCopy?> GetCopyAsync(string workspaceId, string fileId, string provider, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(Copies.FirstOrDefault(c => c.WorkspaceId == workspaceId && c.FileId == fileId && c.Provider == provider));
        }
    }

    public Task<bool> RetireCopyAsync(FileCopy copy, long nowUnixSeconds, CancellationToken cancellationToken)
    {
        log?.Add($"retire:{copy.FileId}:{copy.Provider}:{copy.UpstreamId}");
        lock (_gate)
        {
            if (Copies.RemoveAll(c => c.WorkspaceId == copy.WorkspaceId && c.FileId == copy.FileId && c.Provider == copy.Provider && c.UpstreamId == copy.UpstreamId) == 0)
            {
                return Task.FromResult(false);
            }
            if (!Deletions.Exists(d => d.Provider == copy.Provider && d.UpstreamId == copy.UpstreamId))
            {
                Deletions.Add(new UpstreamDeletion(copy.Provider, copy.UpstreamId, copy.FileId, 0, nowUnixSeconds));
            }
            return Task.FromResult(true);
        }
    }

    public Task QueueDeletionAsync(UpstreamDeletion deletion, CancellationToken cancellationToken)
    {
        log?.Add($"queue-deletion:{deletion.Provider}:{deletion.UpstreamId}");
        lock (_gate)
        {
            if (!Deletions.Exists(d => d.Provider == deletion.Provider && d.UpstreamId == deletion.UpstreamId))
            {
                Deletions.Add(deletion);
            }
            Intents.Remove((deletion.FileId, deletion.Provider));
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<UpstreamDeletion>> ListDeletionsOfFileAsync(string fileId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<UpstreamDeletion>>(Deletions.Where(d => d.FileId == fileId).ToList());
        }
    }

    public Task<IReadOnlyList<UpstreamDeletion>> ListDueDeletionsAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<UpstreamDeletion>>(
                Deletions.Where(d => d.NextAttemptAt <= nowUnixSeconds).OrderBy(d => d.NextAttemptAt).Take(max).ToList());
        }
    }

    public Task CompleteDeletionAsync(string provider, string upstreamId, CancellationToken cancellationToken)
    {
        log?.Add($"deletion-done:{provider}:{upstreamId}");
        lock (_gate)
        {
            Deletions.RemoveAll(d => d.Provider == provider && d.UpstreamId == upstreamId);
        }
        return Task.CompletedTask;
    }

    public Task RescheduleDeletionAsync(string provider, string upstreamId, int attempts, long nextAttemptAt, CancellationToken cancellationToken)
    {
        log?.Add($"deletion-rescheduled:{provider}:{upstreamId}:{attempts}");
        lock (_gate)
        {
            int i = Deletions.FindIndex(d => d.Provider == provider && d.UpstreamId == upstreamId);
            if (i >= 0)
            {
                Deletions[i] = Deletions[i] with { Attempts = attempts, NextAttemptAt = nextAttemptAt };
            }
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<CopyIntent>> ListStaleIntentsAsync(long startedBefore, int max, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<CopyIntent>>(Intents.Values.Where(i => i.StartedAt < startedBefore).OrderBy(i => i.StartedAt).Take(max).ToList());
        }
    }

    public Task<IReadOnlySet<string>> FindKnownUpstreamIdsAsync(string provider, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlySet<string> known = upstreamIds
                .Where(id => Copies.Exists(c => c.Provider == provider && c.UpstreamId == id) || Deletions.Exists(d => d.Provider == provider && d.UpstreamId == id))
                .ToHashSet(StringComparer.Ordinal);
            return Task.FromResult(known);
        }
    }

    public Task<IReadOnlySet<string>> FindWorkspaceUpstreamIdsAsync(string workspaceId, string provider, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlySet<string> own = upstreamIds
                .Where(id => Copies.Exists(c => c.WorkspaceId == workspaceId && c.Provider == provider && c.UpstreamId == id))
                .ToHashSet(StringComparer.Ordinal);
            return Task.FromResult(own);
        }
    }
}

/// <summary>
/// A provider with a Files API in memory: it keeps what is uploaded (reading the stream to its end), and answers
/// what the test scripts: a refusal or a failure for uploads, deletes and listings. Uploads can be held at a gate.
/// </summary>
internal sealed class FakeFilesProvider(string id, CallLog? log = null, TimeProvider? time = null) : IProvider
{
    private int _next;

    public string Id => id;

    public string Type => "fake-files";

    public IReadOnlySet<ProviderCapability> Capabilities { get; } = new HashSet<ProviderCapability> { ProviderCapability.Files, ProviderCapability.ChatCompletions };

    /// <summary>Files the provider holds, by its id.</summary>
    public ConcurrentDictionary<string, (UpstreamFile File, byte[] Content)> Files { get; } = new(StringComparer.Ordinal);

    public UpstreamFailure? UploadFailure { get; set; }

    /// <summary>Failures to answer to the next deletes, one each; then deletes succeed.</summary>
    public ConcurrentQueue<UpstreamFailure> DeleteFailures { get; } = new();

    public UpstreamFailure? ListFailure { get; set; }

    /// <summary>When set, an upload waits for it after reading the content.</summary>
    public TaskCompletionSource? UploadGate { get; set; }

    public int Uploads;
    public int Deletes;

    public Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<ModelResponse>>(UpstreamFailure.Unsupported("fake"));

    public async Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Uploads);
        using var buffer = new MemoryStream();
        await upload.Content.CopyToAsync(buffer, cancellationToken);
        log?.Add($"upstream-upload:{id}:{upload.Filename}:{buffer.Length}");
        if (UploadGate is { } gate)
        {
            await gate.Task.WaitAsync(cancellationToken);
        }
        if (UploadFailure is { } failure)
        {
            return failure;
        }
        string upstreamId = $"{id}-file-{Interlocked.Increment(ref _next)}";
        var file = new UpstreamFile(upstreamId, buffer.Length, (time ?? TimeProvider.System).GetUtcNow().ToUnixTimeSeconds(), upload.Filename, upload.Purpose, "processed");
        Files[upstreamId] = (file, buffer.ToArray());
        return file;
    }

    /// <summary>Whether the provider says it drops copies (then they are checked); false: records are trusted.</summary>
    public bool DropsCopies { get; set; }

    /// <summary>Copies the provider says it no longer keeps (as Gemini does after 48 hours).</summary>
    public ConcurrentBag<string> UnusableCopies { get; } = [];

    /// <summary>When set, the check of a recorded copy fails with it.</summary>
    public UpstreamFailure? CopyCheckFailure { get; set; }

    public Task<UpstreamOutcome<bool>> IsCopyUsableAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<bool>>(CopyCheckFailure is { } failure ? failure : !UnusableCopies.Contains(upstreamFileId));

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Deletes);
        log?.Add($"upstream-delete:{id}:{upstreamFileId}");
        if (DeleteFailures.TryDequeue(out var failure))
        {
            return Task.FromResult<UpstreamOutcome<bool>>(failure);
        }
        Files.TryRemove(upstreamFileId, out _);
        return Task.FromResult<UpstreamOutcome<bool>>(true);
    }

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken)
    {
        log?.Add($"upstream-list:{id}:{query.After}");
        if (ListFailure is { } failure)
        {
            return Task.FromResult<UpstreamOutcome<UpstreamFilePage>>(failure);
        }
        var all = Files.Values.Select(f => f.File).OrderByDescending(f => f.CreatedAt).ThenByDescending(f => f.Id, StringComparer.Ordinal).ToList();
        int start = query.After is null ? 0 : all.FindIndex(f => f.Id == query.After) + 1;
        int limit = query.Limit ?? 10_000;
        var page = all.Skip(start).Take(limit).ToList();
        return Task.FromResult<UpstreamOutcome<UpstreamFilePage>>(new UpstreamFilePage(page, start + page.Count < all.Count));
    }
}

/// <summary>A registry over the given providers (<c>local</c> first), each enabled.</summary>
internal sealed class ProviderList(params IProvider[] providers) : IProviderRegistry
{
    public IReadOnlyList<RegisteredProvider> All { get; } =
        [new RegisteredProvider(new FakeProvider("local"), true, null), .. providers.Select(p => new RegisteredProvider(p, true, null))];

    public bool TryGet(string id, out RegisteredProvider provider)
    {
        provider = All.FirstOrDefault(p => p.Id == id)!;
        return provider is not null;
    }
}
