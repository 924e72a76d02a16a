using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Ports;
using Wharf.Core.Providers;

namespace Wharf.Core.Files;

/// <summary>
/// Deletes upstream copies that no file needs any more: at once (for a short while) when a file is deleted, then
/// from the sweeper, with exponential backoff, until the provider confirms. Also finds what a copy cut by a stop of
/// the process may have left upstream.
/// </summary>
public sealed partial class UpstreamDeletions(
    IFileCopyCatalog copies,
    IProviderRegistry providers,
    IOptions<ProviderFilesOptions> options,
    TimeProvider time,
    ILogger<UpstreamDeletions> logger)
{
    private const int BatchSize = 100;
    private const int MaxParallelAttempts = 4;

    /// <summary>Upstream clocks may differ from Wharf's by this much.</summary>
    private const long ClockSkewSeconds = 300;

    /// <summary>An upstream file younger than this may belong to a copy whose record is being written right now.</summary>
    private const long RecordingWindowSeconds = 120;

    private const int MaxListingPages = 20;

    /// <summary>
    /// Tries the deletions queued for a deleted file's copies, for at most <see cref="ProviderFilesOptions.DeleteWaitSeconds"/>
    /// (or until <paramref name="cancellationToken"/>); what is not done by then stays queued for the sweeper.
    /// </summary>
    public async Task AttemptForFileAsync(string fileId, CancellationToken cancellationToken)
    {
        var queued = await copies.ListDeletionsOfFileAsync(fileId, cancellationToken);
        if (queued.Count == 0)
        {
            return;
        }
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(options.Value.DeleteWaitSeconds), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(budget.Token, cancellationToken);
        await Task.WhenAll(queued.Select(deletion => AttemptAsync(deletion, linked.Token)));
    }

    /// <summary>Queues an upstream copy for deletion (removing its intent) and tries it once, briefly.</summary>
    public async Task QueueAndAttemptAsync(string provider, string upstreamId, string fileId, CancellationToken cancellationToken)
    {
        await copies.QueueDeletionAsync(new UpstreamDeletion(provider, upstreamId, fileId, 0, time.GetUtcNow().ToUnixTimeSeconds()), CancellationToken.None);
        await AttemptForFileAsync(fileId, cancellationToken);
    }

    /// <summary>
    /// One pass of the sweeper: every deletion that is due is tried, and copies cut by a stop of the process are
    /// looked for upstream. Returns how many deletions were done.
    /// </summary>
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        int done = 0;
        while (true)
        {
            var due = await copies.ListDueDeletionsAsync(time.GetUtcNow().ToUnixTimeSeconds(), BatchSize, cancellationToken);
            var outcomes = new bool[due.Count];
            await Parallel.ForEachAsync(Enumerable.Range(0, due.Count), new ParallelOptions { MaxDegreeOfParallelism = MaxParallelAttempts, CancellationToken = cancellationToken },
                async (i, ct) => outcomes[i] = await AttemptAsync(due[i], ct));
            done += outcomes.Count(o => o);
            // A failed attempt is rescheduled into the future, so the next batch holds only deletions not tried yet.
            if (due.Count < BatchSize)
            {
                break;
            }
        }
        await ResolveInterruptedCopiesAsync(cancellationToken);
        return done;
    }

    /// <summary>The wait before attempt number <paramref name="attempts"/> + 1: doubling from the base, capped, plus up to 10 % jitter.</summary>
    public TimeSpan Backoff(int attempts)
    {
        var o = options.Value;
        double seconds = Math.Min(o.RetryMaxSeconds, o.RetryBaseSeconds * Math.Pow(2, Math.Clamp(attempts - 1, 0, 30)));
        return TimeSpan.FromSeconds(seconds * (1 + Random.Shared.NextDouble() * 0.1));
    }

    /// <summary>One attempt: true when the provider has the copy deleted (or never had it), else it is rescheduled.</summary>
    internal async Task<bool> AttemptAsync(UpstreamDeletion deletion, CancellationToken cancellationToken)
    {
        UpstreamFailure? failure;
        if (!providers.TryGet(deletion.Provider, out var provider))
        {
            failure = UpstreamFailure.Unsupported("The provider is no longer configured.");
        }
        else
        {
            try
            {
                var outcome = await provider.Provider.DeleteFileAsync(deletion.UpstreamId, cancellationToken);
                failure = outcome.IsOk || outcome.Failure.Status == 404 ? null : outcome.Failure;
            }
            catch (OperationCanceledException)
            {
                // The wait given to this attempt ran out, or a timeout inside the call: tried again later either way.
                failure = UpstreamFailure.Timeout();
            }
        }
        if (failure is null)
        {
            await copies.CompleteDeletionAsync(deletion.Provider, deletion.UpstreamId, CancellationToken.None);
            LogDeleted(logger, deletion.Provider, deletion.FileId, deletion.Attempts + 1);
            return true;
        }
        int attempts = deletion.Attempts + 1;
        var next = time.GetUtcNow() + Backoff(attempts);
        await copies.RescheduleDeletionAsync(deletion.Provider, deletion.UpstreamId, attempts, next.ToUnixTimeSeconds(), CancellationToken.None);
        LogDeleteFailed(logger, deletion.Provider, deletion.FileId, attempts, failure.Status, failure.Kind, next);
        return false;
    }

    /// <summary>
    /// Intents older than the grace belong to copies cut by a stop of the process between the upstream's answer and
    /// the record. Each one's provider is listed, newest first, back to the intent's time: a file of the same name and
    /// size, created in the intent's window, older than the recording window and named by no record, is what it left;
    /// it is queued for deletion. A provider that cannot be listed now is tried again at the next pass.
    /// </summary>
    private async Task ResolveInterruptedCopiesAsync(CancellationToken cancellationToken)
    {
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        int grace = options.Value.InterruptedCopyGraceSeconds;
        foreach (var intent in await copies.ListStaleIntentsAsync(now - grace, BatchSize, cancellationToken))
        {
            if (!providers.TryGet(intent.Provider, out var provider) || !provider.Provider.Capabilities.Contains(ProviderCapability.Files))
            {
                await copies.RemoveIntentAsync(intent.FileId, intent.Provider, cancellationToken);
                continue;
            }
            var left = await FindLeftoversAsync(provider.Provider, intent, now, grace, cancellationToken);
            if (left is null)
            {
                continue;
            }
            foreach (string upstreamId in left)
            {
                await copies.QueueDeletionAsync(new UpstreamDeletion(intent.Provider, upstreamId, intent.FileId, 0, now), cancellationToken);
            }
            await copies.RemoveIntentAsync(intent.FileId, intent.Provider, cancellationToken);
            LogInterruptedCopy(logger, intent.Provider, intent.FileId, left.Count);
        }
    }

    private async Task<List<string>?> FindLeftoversAsync(IProvider provider, CopyIntent intent, long now, int grace, CancellationToken cancellationToken)
    {
        long from = intent.StartedAt - ClockSkewSeconds;
        long to = Math.Min(intent.StartedAt + grace + ClockSkewSeconds, now - RecordingWindowSeconds);
        var candidates = new List<string>();
        string? after = null;
        for (int page = 0; page < MaxListingPages; page++)
        {
            var listed = await provider.ListFilesAsync(new UpstreamFileQuery(BatchSize, after, "desc", null), cancellationToken);
            if (!listed.IsOk)
            {
                return null;
            }
            var files = listed.Value.Data;
            candidates.AddRange(files
                .Where(f => f.Filename == intent.Filename && f.Bytes == intent.Bytes && f.CreatedAt >= from && f.CreatedAt <= to)
                .Select(f => f.Id));
            if (!listed.Value.HasMore || files.Count == 0 || files[^1].CreatedAt < from)
            {
                break;
            }
            after = listed.Value.Cursor ?? files[^1].Id;
        }
        if (candidates.Count == 0)
        {
            return candidates;
        }
        var known = await copies.FindKnownUpstreamIdsAsync(intent.Provider, candidates, cancellationToken);
        return [.. candidates.Where(id => !known.Contains(id))];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Upstream copy on {Provider} of deleted file {FileId} deleted (attempt {Attempt}).")]
    private static partial void LogDeleted(ILogger logger, string provider, string fileId, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream delete on {Provider} of a copy of file {FileId} failed (attempt {Attempt}, status {Status}, {Kind}); next attempt at {Next:O}.")]
    private static partial void LogDeleteFailed(ILogger logger, string provider, string fileId, int attempt, int? status, UpstreamFailureKind kind, DateTimeOffset next);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A copy of file {FileId} to {Provider} was cut by a stop; {Count} upstream file(s) it left queued for deletion.")]
    private static partial void LogInterruptedCopy(ILogger logger, string provider, string fileId, int count);
}
