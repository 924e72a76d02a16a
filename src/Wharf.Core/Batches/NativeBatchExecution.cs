using System.Buffers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Batches;

/// <summary>
/// <c>"execution": "native"</c>: the batch runs on a provider's own batch API, and Wharf mirrors it. From whatever the
/// catalog says (a batch taken over after a crash resumes there): choose the provider and record it; copy the input
/// file there (lazily, through the copy records) and create the upstream batch, recording its id at once; poll it
/// with a doubling backoff whose next time is stored; mirror its status, counts and usage; pass a cancel asked in
/// Wharf on to it; and when it ends, copy its output and error files into the store as the batch's chunks and end
/// the batch with the upstream's status.
/// </summary>
/// <remarks>
/// A crash between the upstream's create and the write of its id would leave an upstream batch no record names, and
/// a resume would create a second one. So the upstream batch carries Wharf's batch id in its metadata
/// (<see cref="MetadataKey"/>), and whenever a create may have happened without its id being recorded, the
/// provider's batch list is searched for it before anything is created.
/// </remarks>
public sealed partial class NativeBatchExecution(
    IBatchCatalog catalog,
    IProviderRegistry providers,
    IWorkspaceCatalog workspaces,
    FileService files,
    ProviderFileCopies copies,
    ModelRouter router,
    IBlobStore blobs,
    BatchFinalizer finalizer,
    IdGenerator ids,
    IOptions<BatchesOptions> options,
    TimeProvider time,
    ILogger<NativeBatchExecution> logger) : IBatchExecution
{
    private readonly IBatchCatalog _catalog = catalog;
    private readonly IProviderRegistry _providers = providers;
    private readonly IWorkspaceCatalog _workspaces = workspaces;
    private readonly FileService _files = files;
    private readonly ProviderFileCopies _copies = copies;
    private readonly ModelRouter _router = router;
    private readonly IBlobStore _blobs = blobs;
    private readonly BatchFinalizer _finalizer = finalizer;
    private readonly IdGenerator _ids = ids;
    private readonly IOptions<BatchesOptions> _options = options;
    private readonly TimeProvider _time = time;
    private readonly ILogger<NativeBatchExecution> _logger = logger;

    /// <summary>The metadata key that names Wharf's batch on the upstream batch.</summary>
    public const string MetadataKey = "wharf_batch_id";

    /// <summary>Most metadata pairs a batch may carry (OpenAI's limit); Wharf's own comes first.</summary>
    public const int MaxMetadataPairs = 16;

    /// <summary>Most pages of the provider's batch list searched for a batch created before a crash.</summary>
    public const int MaxLookupPages = 20;

    /// <summary>Batches the provider lists per page in that search.</summary>
    public const int LookupPageSize = 100;

    /// <summary>
    /// How much earlier than Wharf's batch an upstream batch may say it was created and still be looked at (the two
    /// clocks differ); the search stops at older ones.
    /// </summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(10);

    /// <summary>Upstream failures in a row, the last one past the batch's window, that fail the batch.</summary>
    public const int FailuresBeforeGivingUp = 3;

    public string Name => BatchExecution.Native;

    public async Task RunAsync(BatchLease lease, CancellationToken cancellationToken)
    {
        var run = new Run(this, lease, cancellationToken);
        try
        {
            await run.RunAsync();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The lease was lost or the node stops: the next owner resumes from the catalog.
        }
    }

    /// <summary>The wait before poll number <paramref name="polls"/> (0-based): the minimum, doubled each time, up to the maximum.</summary>
    public static TimeSpan PollInterval(BatchesOptions options, int polls)
    {
        double seconds = options.NativePollMinSeconds * Math.Pow(2, Math.Min(polls, 30));
        return TimeSpan.FromSeconds(Math.Min(seconds, Math.Max(options.NativePollMinSeconds, options.NativePollMaxSeconds)));
    }

    /// <summary>One claimed batch being worked on: what the catalog holds of it, and what this run learnt.</summary>
    private sealed class Run(NativeBatchExecution owner, BatchLease lease, CancellationToken cancellationToken)
    {
        private BatchRecord _batch = lease.Batch;

        /// <summary>The upstream may hold a batch for this one whose id was never recorded: look before creating.</summary>
        private bool _mayExistUpstream;

        /// <summary>The upstream accepted a cancel in this run: a cancel asked here no longer cuts a wait short.</summary>
        private bool _cancelSent;

        /// <summary>Upstream calls that failed since the last one that did not (in this run).</summary>
        private int _failuresInARow;

        private BatchesOptions Options => owner._options.Value;

        private long Now => owner._time.GetUtcNow().ToUnixTimeSeconds();

        private bool CancelWanted => _batch.Status == BatchStatus.Cancelling || lease.CancelRequested.IsCancellationRequested;

        public async Task RunAsync()
        {
            _batch = await owner._catalog.GetAsync(lease.Batch.WorkspaceId, lease.Batch.Id, cancellationToken) ?? lease.Batch;
            _mayExistUpstream = _batch.Native is { UpstreamBatchId: null };
            while (!_batch.IsFinal && await StepAsync())
            {
            }
        }

        /// <summary>One step: choose the provider, or start upstream, or poll. False: stop (ended, or the lease is lost).</summary>
        private async Task<bool> StepAsync()
        {
            if (_batch.Native is not { } native)
            {
                return await ChooseProviderAsync();
            }
            if (!owner._providers.TryGet(native.Provider, out var registered) || !registered.Provider.Capabilities.Contains(ProviderCapability.Batches))
            {
                return await FailAsync(new BatchError("provider_unavailable",
                    $"The provider '{native.Provider}' this batch runs on is no longer configured with a batch API.", null, null));
            }
            var provider = registered.Provider;
            await WaitUntilAsync(native.NextPollAt);
            // What another node may have written meanwhile (a cancel asked there).
            if (await owner._catalog.GetAsync(_batch.WorkspaceId, _batch.Id, cancellationToken) is not { } current || current.IsFinal)
            {
                return false;
            }
            _batch = current;
            UpstreamBatch seen;
            if (native.UpstreamBatchId is null)
            {
                var started = await StartUpstreamAsync(provider, native);
                if (started.Stop)
                {
                    return false;
                }
                if (started.Batch is null)
                {
                    return true; // retried later, or ended
                }
                seen = started.Batch;
            }
            else
            {
                var polled = await provider.GetBatchAsync(native.UpstreamBatchId, cancellationToken);
                if (!polled.IsOk)
                {
                    LogPollFailed(owner._logger, _batch.Id, provider.Id, polled.Failure.Status, polled.Failure.Kind);
                    return await RetryLaterAsync(polled.Failure, "polling it");
                }
                seen = polled.Value;
            }
            _failuresInARow = 0;
            bool cancelSentNow = false;
            if (CancelWanted && !seen.IsFinal && seen.Status != BatchStatus.Cancelling)
            {
                var cancelled = await provider.CancelBatchAsync(seen.Id, cancellationToken);
                if (cancelled.IsOk)
                {
                    _cancelSent = cancelSentNow = true;
                    seen = cancelled.Value;
                    LogCancelSent(owner._logger, _batch.Id, provider.Id);
                }
                // Otherwise it is asked again at the next poll.
            }
            if (!await MirrorAsync(seen))
            {
                return false;
            }
            if (seen.IsFinal)
            {
                return await CopyResultsAndEndAsync(provider, seen);
            }
            // Right after a cancel was passed on, the backoff starts again: the upstream ends a cancelled batch soon.
            return await ScheduleAsync(cancelSentNow ? 0 : _batch.Native!.Polls);
        }

        /// <summary>
        /// The batch's provider: the one it names, else the first candidate with a batch API of the route of its first
        /// line's model. Recorded before anything happens upstream.
        /// </summary>
        private async Task<bool> ChooseProviderAsync()
        {
            if (CancelWanted)
            {
                return await EndAsync(BatchStatus.Cancelled);
            }
            var workspace = await owner._workspaces.GetWorkspaceAsync(_batch.WorkspaceId, cancellationToken);
            if (workspace is null)
            {
                return await FailAsync(new BatchError("workspace_deleted", "The batch's workspace was deleted.", null, null));
            }
            RegisteredProvider? chosen;
            if (_batch.Provider is { } named)
            {
                if (!owner._providers.TryGet(named, out var registered) || !registered.Enabled || !registered.IsUsableBy(workspace)
                    || !registered.Provider.Capabilities.Contains(ProviderCapability.Batches))
                {
                    return await FailAsync(new BatchError("provider_without_batches",
                        $"The provider '{named}' is not configured with a batch API for this workspace: run the batch with \"execution\": \"gateway\".", "provider", null));
                }
                chosen = registered;
            }
            else
            {
                var model = await ReadFirstModelAsync();
                if (model.Error is { } unreadable)
                {
                    return await FailAsync(unreadable);
                }
                if (!BatchEndpoints.TryParse(_batch.Endpoint, out var endpoint))
                {
                    return await FailAsync(new BatchError("invalid_endpoint", $"The batch's endpoint '{_batch.Endpoint}' is not one a batch may call.", "endpoint", null));
                }
                var plan = owner._router.Route(endpoint, model.Model!, null, workspace);
                if (!plan.IsOk)
                {
                    return await FailAsync(new BatchError("no_batch_provider",
                        $"No provider for the batch's model (from its first line): {plan.Error.Message}", "provider", 1));
                }
                chosen = plan.Value.Candidates.FirstOrDefault(c => c.Provider.Capabilities.Contains(ProviderCapability.Batches));
                if (chosen is null)
                {
                    string candidates = string.Join(", ", plan.Value.Candidates.Select(c => $"'{c.Id}'"));
                    return await FailAsync(new BatchError("no_batch_provider",
                        $"None of the providers that serve model '{Echo.Safe(model.Model!)}' ({candidates}) has a batch API: run the batch with \"execution\": \"gateway\", or name a provider that has one.",
                        "provider", 1));
                }
            }
            _mayExistUpstream = false;
            return await UpdateAsync(_batch with { Native = new NativeBatchState(chosen.Id, null, 0, 0) });
        }

        /// <summary>The <c>body.model</c> of the input file's first line, read alone (the rest of the file is not).</summary>
        private async Task<(string? Model, BatchError? Error)> ReadFirstModelAsync()
        {
            var content = await owner._files.OpenContentAsync(_batch.WorkspaceId, _batch.InputFileId, cancellationToken);
            if (!content.IsOk)
            {
                return (null, InputFileGone());
            }
            int max = owner._options.Value.MaxLineBytes;
            byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Min(max, 64 * 1024) + 1);
            try
            {
                int filled = 0;
                int end = -1;
                await using (content.Value)
                {
                    while (end < 0 && filled <= max)
                    {
                        if (filled == buffer.Length)
                        {
                            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, max + 1));
                            buffer.AsSpan(0, filled).CopyTo(larger);
                            ArrayPool<byte>.Shared.Return(buffer);
                            buffer = larger;
                        }
                        int read = await content.Value.Content.ReadAsync(buffer.AsMemory(filled), cancellationToken);
                        if (read == 0)
                        {
                            end = filled;
                            break;
                        }
                        int newline = buffer.AsSpan(filled, read).IndexOf((byte)'\n');
                        filled += read;
                        if (newline >= 0)
                        {
                            end = filled - read + newline;
                        }
                    }
                }
                if (end < 0 || end > max)
                {
                    return (null, new BatchError("line_too_large", $"The input file's first line is longer than {max} bytes.", null, 1));
                }
                var line = buffer.AsSpan(0, end);
                if (line.StartsWith("\uFEFF"u8))
                {
                    line = line[3..];
                }
                if (line.EndsWith("\r"u8))
                {
                    line = line[..^1];
                }
                return ModelOf(line) is { } model
                    ? (model, null)
                    : (null, new BatchError("invalid_request", "The input file's first line is not a JSON object with a 'body' holding a string 'model'.", "body.model", 1));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        private static string? ModelOf(ReadOnlySpan<byte> line)
        {
            try
            {
                var reader = new Utf8JsonReader(line);
                using var document = JsonDocument.ParseValue(ref reader);
                return document.RootElement is { ValueKind: JsonValueKind.Object } root
                    && root.TryGetProperty("body", out var body) && body.ValueKind == JsonValueKind.Object
                    && body.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String
                    && model.GetString() is { Length: > 0 } name ? name : null;
            }
            catch (JsonException)
            {
                return null;
            }
        }

        /// <summary>
        /// Finds the upstream batch a run before a crash may have created, else copies the input file and creates it,
        /// recording its id at once. Null batch and no stop: retried later (or the batch ended).
        /// </summary>
        private async Task<(UpstreamBatch? Batch, bool Stop)> StartUpstreamAsync(IProvider provider, NativeBatchState native)
        {
            if (_mayExistUpstream)
            {
                var found = await FindUpstreamAsync(provider);
                if (!found.IsOk)
                {
                    return (null, !await RetryLaterAsync(found.Failure, "looking for it"));
                }
                if (found.Value is { } existing)
                {
                    LogFoundUpstream(owner._logger, _batch.Id, provider.Id);
                    _mayExistUpstream = false;
                    return await RecordUpstreamAsync(native, existing) ? (existing, false) : (null, true);
                }
                _mayExistUpstream = false;
            }
            if (CancelWanted)
            {
                return (null, !await EndAsync(BatchStatus.Cancelled));
            }
            var copy = await owner._copies.EnsureCopyAsync(_batch.WorkspaceId, _batch.InputFileId, provider, "input_file_id", cancellationToken);
            if (!copy.IsOk)
            {
                return (null, !await FailAsync(InputFileGone()));
            }
            if (!copy.Value.IsOk)
            {
                return (null, !await RetryOrFailAsync(copy.Value.Failure, "copying the input file there"));
            }
            // From here a failed answer may still have left a batch upstream: the next attempt looks first.
            _mayExistUpstream = true;
            var created = await provider.CreateBatchAsync(
                new UpstreamBatchCreate(copy.Value.Value, _batch.Endpoint, _batch.CompletionWindow, UpstreamMetadata()), cancellationToken);
            if (!created.IsOk)
            {
                return (null, !await RetryOrFailAsync(created.Failure, "creating the batch there"));
            }
            _mayExistUpstream = false;
            LogCreated(owner._logger, _batch.Id, provider.Id);
            return await RecordUpstreamAsync(native, created.Value) ? (created.Value, false) : (null, true);
        }

        private async Task<bool> RecordUpstreamAsync(NativeBatchState native, UpstreamBatch upstream) =>
            await UpdateAsync(_batch with { Native = native with { UpstreamBatchId = upstream.Id, NextPollAt = Now, Polls = 0 } });

        /// <summary>Wharf's batch id first, then the client's metadata, at most <see cref="MaxMetadataPairs"/> pairs.</summary>
        private Dictionary<string, string> UpstreamMetadata()
        {
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { [MetadataKey] = _batch.Id };
            foreach (var (key, value) in _batch.Metadata ?? new Dictionary<string, string>())
            {
                if (metadata.Count >= MaxMetadataPairs)
                {
                    break;
                }
                metadata.TryAdd(key, value);
            }
            return metadata;
        }

        /// <summary>
        /// The provider's batch that names this one in its metadata, searched newest first down to those created a
        /// little before Wharf's batch; null when there is none.
        /// </summary>
        private async Task<UpstreamOutcome<UpstreamBatch?>> FindUpstreamAsync(IProvider provider)
        {
            long oldest = _batch.CreatedAt - (long)ClockSkew.TotalSeconds;
            string? after = null;
            for (int page = 0; page < MaxLookupPages; page++)
            {
                var listed = await provider.ListBatchesAsync(new UpstreamBatchQuery(LookupPageSize, after), cancellationToken);
                if (!listed.IsOk)
                {
                    return listed.Failure;
                }
                foreach (var upstream in listed.Value.Data)
                {
                    if (upstream.Metadata is { } metadata && metadata.TryGetValue(MetadataKey, out string? id) && id == _batch.Id)
                    {
                        return upstream;
                    }
                }
                if (!listed.Value.HasMore || listed.Value.Data.Count == 0 || listed.Value.Data.Any(b => b.CreatedAt > 0 && b.CreatedAt < oldest))
                {
                    break;
                }
                after = listed.Value.Data[^1].Id;
            }
            return (UpstreamBatch?)null;
        }

        /// <summary>Mirrors the upstream's counts and usage (when they changed) and its status (while it has not ended).</summary>
        private async Task<bool> MirrorAsync(UpstreamBatch seen)
        {
            var counts = seen.RequestCounts ?? _batch.RequestCounts;
            var usage = seen.Usage ?? _batch.Usage;
            if (counts != _batch.RequestCounts || usage != _batch.Usage)
            {
                if (!await owner._catalog.MirrorProgressAsync(_batch.Id, lease.Owner, counts, usage, cancellationToken))
                {
                    return false;
                }
                _batch = _batch with { RequestCounts = counts, Usage = usage };
            }
            string status = seen.IsFinal ? BatchStatus.Finalizing : seen.Status;
            long now = Now;
            var mirrored = status switch
            {
                BatchStatus.InProgress => _batch with { Status = status, InProgressAt = _batch.InProgressAt ?? now },
                BatchStatus.Finalizing => _batch with { Status = status, InProgressAt = _batch.InProgressAt ?? now, FinalizingAt = _batch.FinalizingAt ?? now },
                BatchStatus.Cancelling => _batch with { Status = status, CancellingAt = _batch.CancellingAt ?? now },
                _ => _batch, // validating, or a status Wharf does not know: left as it is
            };
            return mirrored == _batch || await UpdateAsync(mirrored);
        }

        /// <summary>
        /// Copies the upstream's output and error files into the store (each one chunk, streamed; one already copied
        /// before a crash is not copied again), then ends the batch with the upstream's status.
        /// </summary>
        private async Task<bool> CopyResultsAndEndAsync(IProvider provider, UpstreamBatch seen)
        {
            var errors = new List<BatchError>();
            if (seen.Status == BatchStatus.Failed)
            {
                errors.AddRange(seen.Errors.Count > 0 ? seen.Errors
                    : [new BatchError("upstream_failed", $"The batch failed on provider '{provider.Id}', which gave no reason.", null, null)]);
            }
            foreach (var (kind, fileId) in new[] { (BatchFileKind.Output, seen.OutputFileId), (BatchFileKind.Error, seen.ErrorFileId) })
            {
                if (fileId is null || await owner._catalog.CountChunksAsync(_batch.Id, kind, cancellationToken) > 0)
                {
                    continue;
                }
                var copied = await CopyResultFileAsync(provider, kind, fileId);
                if (copied.Failure is { } failure)
                {
                    if (failure.Retryable)
                    {
                        return await RetryLaterAsync(failure, "copying its results");
                    }
                    errors.Add(new BatchError("result_file_unavailable",
                        $"The batch's {(kind == BatchFileKind.Output ? "output" : "error")} file could not be copied from provider '{provider.Id}' (status {failure.Status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}).",
                        null, null));
                }
                else if (!copied.Recorded)
                {
                    return false;
                }
            }
            LogEnded(owner._logger, _batch.Id, provider.Id, seen.Status);
            return await EndAsync(seen.Status, errors);
        }

        /// <summary>Streams one upstream file into the store and records it as the batch's chunk of <paramref name="kind"/>.</summary>
        private async Task<(UpstreamFailure? Failure, bool Recorded)> CopyResultFileAsync(IProvider provider, BatchFileKind kind, string fileId)
        {
            var download = await provider.DownloadFileAsync(fileId, cancellationToken);
            if (!download.IsOk)
            {
                return (download.Failure, false);
            }
            await using var content = download.Value;
            StagedBlob? staged;
            try
            {
                staged = await owner._blobs.StageAsync(content.Content, long.MaxValue, cancellationToken);
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                // The upstream's body broke off or went silent.
                return (UpstreamFailure.ConnectionFailed("The upstream's file content broke off."), false);
            }
            if (staged is null)
            {
                return (UpstreamFailure.Malformed(200, "The upstream's file content is too large."), false);
            }
            await using (staged)
            {
                string partId = WharfIds.Hex(WharfIds.PartPrefix, owner._ids.Next());
                await staged.CommitAsync(partId, cancellationToken);
                var chunk = new BatchChunk
                {
                    BatchId = _batch.Id,
                    WorkspaceId = _batch.WorkspaceId,
                    Kind = kind,
                    PartId = partId,
                    Bytes = staged.Length,
                    Sha256 = staged.Sha256,
                    CreatedAt = Now,
                    Lines = [],
                };
                if (!await owner._catalog.RecordChunkAsync(chunk, lease.Owner, cancellationToken))
                {
                    await owner._blobs.DeleteAsync(partId, CancellationToken.None);
                    return (null, false);
                }
            }
            return (null, true);
        }

        /// <summary>
        /// A failure while starting upstream: retried later when the upstream may answer otherwise, else the batch
        /// fails with the upstream's words (its verdict on the batch, or on Wharf's credential).
        /// </summary>
        private async Task<bool> RetryOrFailAsync(UpstreamFailure failure, string doing)
        {
            if (failure.Retryable)
            {
                return await RetryLaterAsync(failure, doing);
            }
            _mayExistUpstream = false; // the upstream refused: nothing was created
            string said = failure.Error?.Message is { Length: > 0 } message ? $": {message}" : ".";
            return await FailAsync(new BatchError(failure.Error?.Code ?? "upstream_refused",
                $"The provider refused {doing} (status {failure.Status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, {failure.Category.WireName()}){said}",
                failure.Error?.Param, null));
        }

        /// <summary>
        /// An upstream failure is the upstream's, never the batch's: the step is tried again at the next poll time
        /// (with the backoff). Only failures that persist past the batch's window (<see cref="FailuresBeforeGivingUp"/>
        /// in a row, the last one after the window's end) fail the batch.
        /// </summary>
        private async Task<bool> RetryLaterAsync(UpstreamFailure failure, string doing)
        {
            _failuresInARow++;
            if (Now >= _batch.ExpiresAt && _failuresInARow >= FailuresBeforeGivingUp)
            {
                return await FailAsync(new BatchError("upstream_unavailable",
                    $"The provider '{_batch.Native!.Provider}' kept failing ({failure.Kind.WireName()}, status {failure.Status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}) while {doing}, past the batch's completion window."
                    + (_batch.Native.UpstreamBatchId is { } id ? $" Its batch there is {id}." : ""),
                    null, null));
            }
            return await ScheduleAsync(_batch.Native!.Polls);
        }

        /// <summary>Stores the next poll's time: after <see cref="PollInterval"/> for <paramref name="polls"/>, which then counts one more.</summary>
        private async Task<bool> ScheduleAsync(int polls)
        {
            long next = Now + (long)PollInterval(Options, polls).TotalSeconds;
            return await UpdateAsync(_batch with { Native = _batch.Native! with { NextPollAt = next, Polls = polls + 1 } });
        }

        /// <summary>
        /// Waits on the injected clock until <paramref name="nextPollAt"/> (unix seconds); a cancel asked on this node
        /// cuts the wait short, once.
        /// </summary>
        private async Task WaitUntilAsync(long nextPollAt)
        {
            var wait = DateTimeOffset.FromUnixTimeSeconds(nextPollAt) - owner._time.GetUtcNow();
            if (wait <= TimeSpan.Zero)
            {
                return;
            }
            bool cutShortByCancel = !_cancelSent && !CancelWanted;
            using var linked = cutShortByCancel
                ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lease.CancelRequested)
                : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            try
            {
                await Task.Delay(wait, owner._time, linked.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // A cancel was asked: act on it now.
            }
        }

        private async Task<bool> UpdateAsync(BatchRecord batch)
        {
            var stored = await owner._catalog.UpdateAsync(batch, lease.Owner, cancellationToken);
            if (stored is null)
            {
                return false;
            }
            _batch = stored;
            return true;
        }

        private async Task<bool> FailAsync(BatchError error)
        {
            LogFailed(owner._logger, _batch.Id, error.Code);
            return await EndAsync(BatchStatus.Failed, [error]);
        }

        /// <summary>Ends the batch (its chunks become its files); false, as a step ends the run either way.</summary>
        private async Task<bool> EndAsync(string status, IReadOnlyList<BatchError>? errors = null)
        {
            var ended = await owner._finalizer.FinalizeAsync(errors is { Count: > 0 } ? _batch with { Errors = errors } : _batch, status, lease.Owner, cancellationToken);
            if (ended is not null)
            {
                _batch = ended;
            }
            return false;
        }

        private BatchError InputFileGone() =>
            new("input_file_unavailable", $"The input file {_batch.InputFileId} no longer exists.", "input_file_id", null);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Native batch {BatchId}: created on {Provider}.")]
    private static partial void LogCreated(ILogger logger, string batchId, string provider);

    [LoggerMessage(Level = LogLevel.Information, Message = "Native batch {BatchId}: found on {Provider}, created before a restart.")]
    private static partial void LogFoundUpstream(ILogger logger, string batchId, string provider);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Native batch {BatchId}: polling {Provider} failed (status {Status}, {Kind}); polled again later.")]
    private static partial void LogPollFailed(ILogger logger, string batchId, string provider, int? status, UpstreamFailureKind kind);

    [LoggerMessage(Level = LogLevel.Information, Message = "Native batch {BatchId}: cancel passed on to {Provider}.")]
    private static partial void LogCancelSent(ILogger logger, string batchId, string provider);

    [LoggerMessage(Level = LogLevel.Information, Message = "Native batch {BatchId}: ended on {Provider} as {Status}.")]
    private static partial void LogEnded(ILogger logger, string batchId, string provider, string status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Native batch {BatchId} failed: {Code}.")]
    private static partial void LogFailed(ILogger logger, string batchId, string code);
}
