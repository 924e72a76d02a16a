using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Wharf.Core.Errors;
using Wharf.Core.Ports;
using Wharf.Core.Providers;

namespace Wharf.Core.Files;

/// <summary>
/// Wharf files on providers, after their upload: the lazy copy of a file to a provider that a request there needs
/// (once per file and provider, however many requests ask at once), and the provider's own file list.
/// </summary>
public sealed partial class ProviderFileCopies(
    FileService files,
    IFileCopyCatalog copies,
    IProviderRegistry providers,
    IWorkspaceCatalog workspaces,
    UpstreamDeletions deletions,
    TimeProvider time,
    ILogger<ProviderFileCopies> logger)
{
    public const int MaxUpstreamListLimit = 10_000;

    /// <summary>The longest <c>after</c> passed to a provider: a file id, or a provider's own page token (Gemini's).</summary>
    public const int MaxUpstreamCursorLength = 2048;

    private readonly ConcurrentDictionary<(string FileId, string Provider), Task<Result<UpstreamOutcome<string>>>> _inFlight = new();

    /// <summary>
    /// The id <paramref name="provider"/> knows the workspace's file <paramref name="fileId"/> by, copying the file
    /// there first when it has no copy yet. Concurrent callers for the same file and provider share one copy, which
    /// runs to its end even if they go away (it is recorded for the next request). A file that is not the
    /// workspace's (unknown, expired, another workspace's) is the request's fault: a 400 naming
    /// <paramref name="param"/>. A copy the provider refused or failed is an upstream failure.
    /// </summary>
    public async Task<Result<UpstreamOutcome<string>>> EnsureCopyAsync(string workspaceId, string fileId, IProvider provider, string param, CancellationToken cancellationToken)
    {
        var file = await files.GetAsync(workspaceId, fileId, cancellationToken);
        if (!file.IsOk)
        {
            return FileNotFound(fileId, param);
        }
        string? stale = null;
        if (await copies.GetCopyAsync(workspaceId, fileId, provider.Id, cancellationToken) is { } existing)
        {
            if (!provider.DropsCopies)
            {
                return Result<UpstreamOutcome<string>>.From(existing.UpstreamId);
            }
            // A provider that drops files on its own (Gemini after 48 hours) is asked whether the copy is still there.
            var usable = await provider.IsCopyUsableAsync(existing.UpstreamId, cancellationToken);
            if (!usable.IsOk)
            {
                return Result<UpstreamOutcome<string>>.From(usable.Failure);
            }
            if (usable.Value)
            {
                return Result<UpstreamOutcome<string>>.From(existing.UpstreamId);
            }
            stale = existing.UpstreamId;
        }
        var key = (fileId, provider.Id);
        while (true)
        {
            if (_inFlight.TryGetValue(key, out var running))
            {
                return await running.WaitAsync(cancellationToken);
            }
            var start = new TaskCompletionSource<Result<UpstreamOutcome<string>>>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_inFlight.TryAdd(key, start.Task))
            {
                continue;
            }
            _ = RunCopyAsync(file.Value, provider, stale, key, start);
            return await start.Task.WaitAsync(cancellationToken);
        }
    }

    private async Task RunCopyAsync(FileRecord file, IProvider provider, string? stale, (string, string) key, TaskCompletionSource<Result<UpstreamOutcome<string>>> done)
    {
        try
        {
            done.TrySetResult(await CopyAsync(file, provider, stale, CancellationToken.None));
        }
        catch (Exception ex)
        {
            done.TrySetException(ex);
        }
        finally
        {
            _inFlight.TryRemove(KeyValuePair.Create(key, done.Task));
        }
    }

    /// <summary>
    /// Records the intent, streams the file from Wharf's store to the provider and records the copy. A file deleted
    /// meanwhile (or copied there by another node first) leaves an upstream copy nobody needs: it is queued for deletion.
    /// A <paramref name="stale"/> copy (one the provider no longer keeps) is retired first: its record goes and its
    /// upstream id is queued for deletion.
    /// </summary>
    private async Task<Result<UpstreamOutcome<string>>> CopyAsync(FileRecord file, IProvider provider, string? stale, CancellationToken cancellationToken)
    {
        // Another request may have recorded it between the caller's look and this flight's start.
        if (await copies.GetCopyAsync(file.WorkspaceId, file.Id, provider.Id, cancellationToken) is { } recorded)
        {
            if (recorded.UpstreamId != stale)
            {
                return Result<UpstreamOutcome<string>>.From(recorded.UpstreamId);
            }
            await copies.RetireCopyAsync(recorded, time.GetUtcNow().ToUnixTimeSeconds(), cancellationToken);
            LogStaleCopyRetired(logger, file.Id, provider.Id);
        }
        await copies.RecordIntentAsync(
            new CopyIntent(file.Id, provider.Id, file.WorkspaceId, file.Filename, file.Bytes, time.GetUtcNow().ToUnixTimeSeconds()), cancellationToken);
        var opened = await files.OpenContentAsync(file.WorkspaceId, file.Id, cancellationToken);
        if (!opened.IsOk)
        {
            await copies.RemoveIntentAsync(file.Id, provider.Id, cancellationToken);
            return FileNotFound(file.Id, "file_id");
        }
        UpstreamOutcome<UpstreamFile> sent;
        await using (opened.Value)
        {
            sent = await provider.UploadFileAsync(
                new UpstreamFileUpload(opened.Value.Content, file.Bytes, file.Filename, file.Purpose, file.ContentType), cancellationToken);
        }
        if (!sent.IsOk)
        {
            await copies.RemoveIntentAsync(file.Id, provider.Id, cancellationToken);
            LogCopyFailed(logger, file.Id, provider.Id, sent.Failure.Status, sent.Failure.Kind);
            return Result<UpstreamOutcome<string>>.From(sent.Failure);
        }
        var copy = new FileCopy(file.WorkspaceId, file.Id, provider.Id, sent.Value.Id, time.GetUtcNow().ToUnixTimeSeconds());
        if (await copies.InsertCopyAsync(copy, cancellationToken))
        {
            LogCopied(logger, file.Id, provider.Id);
            return Result<UpstreamOutcome<string>>.From(copy.UpstreamId);
        }
        await deletions.QueueAndAttemptAsync(provider.Id, copy.UpstreamId, file.Id, cancellationToken);
        if (await copies.GetCopyAsync(file.WorkspaceId, file.Id, provider.Id, cancellationToken) is { } other)
        {
            return Result<UpstreamOutcome<string>>.From(other.UpstreamId);
        }
        return FileNotFound(file.Id, "file_id");
    }

    /// <summary>
    /// The workspace's own copies on the provider, live, as it lists them (its ids), one page with its cursor passed
    /// through: files of the provider's account that no copy of the workspace names (another workspace's, or made
    /// outside Wharf) are left out. The provider must be configured, have a Files API and be enabled for the workspace.
    /// </summary>
    public async Task<Result<UpstreamFilePage>> ListUpstreamAsync(string workspaceId, string providerId, UpstreamListRequest request, CancellationToken cancellationToken)
    {
        var provider = await ResolveAsync(workspaceId, providerId, cancellationToken);
        if (!provider.IsOk)
        {
            return provider.Error;
        }
        int? limit = null;
        if (request.Limit is not null)
        {
            if (!int.TryParse(request.Limit, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value is < 1 or > MaxUpstreamListLimit)
            {
                return WharfErrors.Invalid("limit", $"Invalid 'limit': expected an integer between 1 and {MaxUpstreamListLimit}.", "invalid_limit");
            }
            limit = value;
        }
        if (request.Order is not null and not ("asc" or "desc"))
        {
            return WharfErrors.Invalid("order", "Invalid 'order': expected 'asc' or 'desc'.", "invalid_order");
        }
        if (request.After is { Length: 0 or > MaxUpstreamCursorLength })
        {
            return WharfErrors.Invalid("after", "Invalid 'after': expected the id of a file the provider listed.", "invalid_cursor");
        }
        if (request.Before is not null)
        {
            return WharfErrors.Invalid("before", "'before' is not supported with source=upstream: providers page forward with 'after'.", "invalid_cursor");
        }
        var listed = await provider.Value.ListFilesAsync(new UpstreamFileQuery(limit, request.After, request.Order, request.Purpose), cancellationToken);
        if (!listed.IsOk)
        {
            return ProviderFileErrors.FromFailure(provider.Value.Id, listed.Failure, "listing");
        }
        // The provider's account is shared by every workspace: only the workspace's own copies are shown. The page
        // may come out shorter; its cursor stays the provider's, so the next page starts where this one ended.
        var page = listed.Value;
        var own = await copies.FindWorkspaceUpstreamIdsAsync(workspaceId, provider.Value.Id, [.. page.Data.Select(f => f.Id)], cancellationToken);
        var kept = page.Data.Where(f => own.Contains(f.Id)).ToList();
        // A provider that pages by a token of its own (Gemini's pageToken) gives it as the cursor; it is kept as it is.
        return new UpstreamFilePage(kept, page.HasMore) { Cursor = page.Cursor ?? (page.Data.Count > 0 ? page.Data[^1].Id : null) };
    }

    /// <summary>
    /// Which of <paramref name="upstreamIds"/> (ids a request names as they are on the provider) Wharf knows as
    /// copies that are not the workspace's: another workspace's copy, or one queued for deletion. The provider's
    /// account is shared, so such an id would reach another workspace's file.
    /// </summary>
    public async Task<IReadOnlySet<string>> FindForeignUpstreamIdsAsync(string workspaceId, string providerId, IReadOnlyCollection<string> upstreamIds, CancellationToken cancellationToken)
    {
        var known = await copies.FindKnownUpstreamIdsAsync(providerId, upstreamIds, cancellationToken);
        if (known.Count == 0)
        {
            return known;
        }
        var own = await copies.FindWorkspaceUpstreamIdsAsync(workspaceId, providerId, [.. known], cancellationToken);
        return known.Where(id => !own.Contains(id)).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The request names a file its workspace does not have, by its id on the provider.</summary>
    public static WharfError UpstreamFileNotFound(string upstreamId, string param) => FileNotFound(upstreamId, param);

    /// <summary>A provider that can hold files for the workspace: configured, with a Files API, enabled for it.</summary>
    public async Task<Result<IProvider>> ResolveAsync(string workspaceId, string providerId, CancellationToken cancellationToken)
    {
        if (!providers.TryGet(providerId, out var registered))
        {
            return ProviderFileErrors.UnknownProvider(providerId);
        }
        if (!registered.Provider.Capabilities.Contains(ProviderCapability.Files))
        {
            return ProviderFileErrors.NoFilesApi(registered.Id);
        }
        if (await workspaces.GetWorkspaceAsync(workspaceId, cancellationToken) is { } workspace && !registered.IsUsableBy(workspace))
        {
            return ProviderFileErrors.NotEnabled(registered.Id);
        }
        return Result<IProvider>.From(registered.Provider);
    }

    /// <summary>The request names a file its workspace does not have: its fault, never looked for elsewhere.</summary>
    private static WharfError FileNotFound(string fileId, string param) =>
        WharfErrors.Invalid(param, $"No such File object: {Json.ClientJson.Printable(fileId, 64)}", "file_not_found");

    [LoggerMessage(Level = LogLevel.Information, Message = "File {FileId} copied to {Provider}.")]
    private static partial void LogCopied(ILogger logger, string fileId, string provider);

    [LoggerMessage(Level = LogLevel.Information, Message = "Copy of file {FileId} on {Provider} is gone or about to go; it is made again.")]
    private static partial void LogStaleCopyRetired(ILogger logger, string fileId, string provider);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Copy of file {FileId} to {Provider} failed (status {Status}, {Kind}).")]
    private static partial void LogCopyFailed(ILogger logger, string fileId, string provider, int? status, UpstreamFailureKind kind);
}

/// <summary>The raw parameters of <c>GET /v1/files?source=upstream</c>, as the client sent them.</summary>
public sealed record UpstreamListRequest(string? Limit, string? After, string? Before, string? Order, string? Purpose);
