using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Telemetry;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Batches;

/// <summary>
/// <c>"execution": "native"</c>: the batch runs on a provider's own batch API, and Wharf mirrors it. From whatever the
/// catalog says (a batch taken over after a crash resumes there): check the input file as the gateway execution does
/// and every line's model against the provider, chosen and recorded then; copy the input file there (lazily, through
/// the copy records) and create the upstream batch, recording its id at once; poll it with a doubling backoff whose
/// next time is stored, returning between polls (the engine gives the lease up, and the catalog's claim hands the
/// batch out again when the poll is due); mirror its status, counts and usage; pass a cancel asked in Wharf on to it;
/// and when it ends, copy its output and error files into the store as the batch's chunks and end the batch with the
/// upstream's status.
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
    ILogger<NativeBatchExecution> logger,
    WharfMetrics? metrics = null) : IBatchExecution
{
    private readonly WharfMetrics? _metrics = metrics;
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

    /// <summary>
    /// Upstream calls of each batch that failed in a row on this node (a batch's runs end at each poll, so the count
    /// outlives them); cleared by a call that answers and when the batch ends. A restart counts again from zero,
    /// which only delays giving up.
    /// </summary>
    private readonly ConcurrentDictionary<string, int> _failuresInARow = new(StringComparer.Ordinal);

    /// <summary>The metadata key that names Wharf's batch on the upstream batch.</summary>
    public const string MetadataKey = "wharf_batch_id";

    /// <summary>Most metadata pairs a batch may carry upstream (OpenAI's limit); Wharf's own comes first.</summary>
    public const int MaxMetadataPairs = 16;

    /// <summary>Most metadata pairs a client may give a native batch: one of the upstream's is Wharf's.</summary>
    public const int MaxClientMetadataPairs = MaxMetadataPairs - 1;

    /// <summary>A line's model does not route to the provider the native batch runs on.</summary>
    public const string ModelNotOnProvider = "model_not_on_provider";

    /// <summary>A line's model has a Wharf <c>provider/</c> prefix, which the upstream would not understand.</summary>
    public const string ModelHasProviderPrefix = "model_has_provider_prefix";

    /// <summary>A line's body names a file: a native batch's lines go upstream as they are, with no file id rewritten or checked.</summary>
    public const string FileReferenceInNativeBatch = "file_reference_in_native_batch";

    /// <summary>
    /// A create on a provider whose batches carry no metadata went unanswered: it may have been done, and a batch
    /// there cannot be found again.
    /// </summary>
    public const string UpstreamBatchUnknown = "upstream_batch_unknown";

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

        /// <summary>This run acted on a cancel (passed it on, or saw the upstream cancelling): it does not poll again for it.</summary>
        private bool _cancelActedOn;

        private BatchesOptions Options => owner._options.Value;

        private long Now => owner._time.GetUtcNow().ToUnixTimeSeconds();

        private bool CancelWanted => _batch.Status == BatchStatus.Cancelling || lease.CancelRequested.IsCancellationRequested;

        /// <summary>
        /// Steps until the batch ends or its next poll is in the future: then the run returns and the engine gives the
        /// lease up (the catalog's claim hands the batch out again when that poll is due, or at once when it is
        /// cancelled meanwhile). A cancel seen during a step (asked on this node, or written by another while this run
        /// wrote) is acted on before returning.
        /// </summary>
        public async Task RunAsync()
        {
            _batch = await owner._catalog.GetAsync(lease.Batch.WorkspaceId, lease.Batch.Id, cancellationToken) ?? lease.Batch;
            _mayExistUpstream = _batch.Native is { UpstreamBatchId: null };
            while (!_batch.IsFinal)
            {
                if (_batch.Native is { } native && native.NextPollAt > Now && !(CancelWanted && !_cancelActedOn))
                {
                    return;
                }
                if (!await StepAsync())
                {
                    return;
                }
            }
        }

        /// <summary>One step: validate and choose the provider, or start upstream, or poll. False: stop (ended, or the lease is lost).</summary>
        private async Task<bool> StepAsync()
        {
            if (_batch.Native is not { } native)
            {
                return await ValidateAndChooseAsync();
            }
            if (!owner._providers.TryGet(native.Provider, out var registered) || !registered.Provider.Capabilities.Contains(ProviderCapability.Batches))
            {
                return await FailAsync(new BatchError("provider_unavailable",
                    $"The provider '{native.Provider}' this batch runs on is no longer configured with a batch API.", null, null));
            }
            var provider = registered.Provider;
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
            owner._failuresInARow.TryRemove(_batch.Id, out _);
            bool cancelSentNow = false;
            if (CancelWanted)
            {
                _cancelActedOn = true;
                if (!seen.IsFinal && seen.Status != BatchStatus.Cancelling)
                {
                    var cancelled = await provider.CancelBatchAsync(seen.Id, cancellationToken);
                    if (cancelled.IsOk)
                    {
                        cancelSentNow = true;
                        seen = cancelled.Value;
                        LogCancelSent(owner._logger, _batch.Id, provider.Id);
                    }
                    // Otherwise it is asked again at the next poll.
                }
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
        /// <c>validating</c>, before anything is sent: the input file is checked in one streamed pass exactly as the
        /// gateway execution checks it (<see cref="BatchInputValidator"/>), and every line's model must route to the
        /// provider the batch runs on (<see cref="LineModels"/>), and no line may name a file (<see cref="FileReference"/>). That provider is the one the batch names, else the
        /// first candidate with a batch API of the route of its first request line's model. A bad line fails the
        /// batch with its line number and nothing is sent; a good file records the provider, before anything happens
        /// upstream.
        /// </summary>
        private async Task<bool> ValidateAndChooseAsync()
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
            if (!BatchEndpoints.TryParse(_batch.Endpoint, out var endpoint))
            {
                return await FailAsync(new BatchError("invalid_endpoint", $"The batch's endpoint '{_batch.Endpoint}' is not one a batch may call.", "endpoint", null));
            }
            RegisteredProvider? named = null;
            if (_batch.Provider is { } provider)
            {
                if (!owner._providers.TryGet(provider, out named) || !named.Enabled || !named.IsUsableBy(workspace)
                    || !named.Provider.Capabilities.Contains(ProviderCapability.Batches))
                {
                    return await FailAsync(new BatchError("provider_without_batches",
                        $"The provider '{provider}' is not configured with a batch API for this workspace: run the batch with \"execution\": \"gateway\".", "provider", null));
                }
            }
            var content = await owner._files.OpenContentAsync(_batch.WorkspaceId, _batch.InputFileId, cancellationToken);
            if (!content.IsOk)
            {
                return await FailAsync(InputFileGone());
            }
            var models = new LineModels(owner._router, endpoint, workspace, named);
            BatchInputCheck check;
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lease.CancelRequested);
            await using (content.Value)
            {
                try
                {
                    check = await BatchInputValidator.ValidateAsync(content.Value.Content, _batch.Endpoint, Options,
                        (line, model, bytes) => models.Check(line, model) ?? FileReference(line, bytes), cancel.Token);
                }
                catch (OperationCanceledException) when (lease.CancelRequested.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    return await EndAsync(BatchStatus.Cancelled);
                }
            }
            if (check.Errors.Count > 0)
            {
                LogInvalid(owner._logger, _batch.Id, check.Errors.Count);
                return await EndAsync(BatchStatus.Failed, check.Errors);
            }
            _mayExistUpstream = false;
            return await UpdateAsync(_batch with { Native = new NativeBatchState(models.Chosen!.Id, null, 0, 0) });
        }

        /// <summary>
        /// Finds the upstream batch a run before a crash may have created, else copies the input file and creates it,
        /// recording its id at once. Null batch and no stop: retried later (or the batch ended).
        /// </summary>
        private async Task<(UpstreamBatch? Batch, bool Stop)> StartUpstreamAsync(IProvider provider, NativeBatchState native)
        {
            if (_mayExistUpstream && provider.BatchesCarryMetadata)
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
            string? inputCopy = null;
            if (provider.BatchInputForm == BatchInputForm.ProviderFile)
            {
                var copy = await owner._copies.EnsureCopyAsync(_batch.WorkspaceId, _batch.InputFileId, provider, "input_file_id", cancellationToken);
                if (!copy.IsOk)
                {
                    return (null, !await FailAsync(InputFileGone()));
                }
                if (!copy.Value.IsOk)
                {
                    return (null, !await RetryOrFailAsync(copy.Value.Failure, "copying the input file there"));
                }
                inputCopy = copy.Value.Value;
            }
            // From here a failed answer may still have left a batch upstream: the next attempt looks first.
            _mayExistUpstream = true;
            var created = await provider.CreateBatchAsync(
                new UpstreamBatchCreate(inputCopy, _batch.Endpoint, _batch.CompletionWindow, UpstreamMetadata()) { Input = OpenInputAsync },
                cancellationToken);
            if (!created.IsOk)
            {
                if (!provider.BatchesCarryMetadata && MayHaveBeenCreated(created.Failure))
                {
                    // The create may have been done: a batch there could not be told from another's, and creating
                    // again could run and bill the work twice.
                    return (null, !await FailAsync(CreateOutcomeUnknown(provider, created.Failure)));
                }
                return (null, !await RetryOrFailAsync(created.Failure, "creating the batch there"));
            }
            _mayExistUpstream = false;
            LogCreated(owner._logger, _batch.Id, provider.Id);
            return await RecordUpstreamAsync(native, created.Value) ? (created.Value, false) : (null, true);
        }

        /// <summary>Wharf's input file, for an adapter that reads it itself; null once it is gone.</summary>
        private async Task<UpstreamFileContent?> OpenInputAsync(CancellationToken cancellation)
        {
            var content = await owner._files.OpenContentAsync(_batch.WorkspaceId, _batch.InputFileId, cancellation);
            return content.IsOk ? new UpstreamFileContent(content.Value.Content, content.Value.File.Bytes, content.Value) : null;
        }

        private async Task<bool> RecordUpstreamAsync(NativeBatchState native, UpstreamBatch upstream) =>
            await UpdateAsync(_batch with { Native = native with { UpstreamBatchId = upstream.Id, NextPollAt = Now, Polls = 0 } });

        /// <summary>
        /// Wharf's batch id first, then every pair of the client's metadata: the create refused a native batch with
        /// more than <see cref="MaxClientMetadataPairs"/> of them, or with Wharf's key, so nothing is dropped.
        /// </summary>
        private Dictionary<string, string> UpstreamMetadata()
        {
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { [MetadataKey] = _batch.Id };
            foreach (var (key, value) in _batch.Metadata ?? new Dictionary<string, string>())
            {
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
                after = listed.Value.Cursor ?? listed.Value.Data[^1].Id;
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
                // The lines that ended since the counts this node last saw stored: the write is fenced by the lease, so
                // the counts it replaced are those (read at the claim, or written here), and a node that takes the
                // batch over starts from what was stored. Counted once each, whichever node mirrors them.
                owner._metrics?.BatchLinesEnded(
                    Math.Max(0, counts.Completed - _batch.RequestCounts.Completed), Math.Max(0, counts.Failed - _batch.RequestCounts.Failed));
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
                var copied = await CopyResultFileAsync(provider, seen, kind, fileId);
                if (copied.StoreFailed)
                {
                    // Wharf's store failed, not the upstream: the copy is tried again at the next poll, and does not
                    // count as one of the upstream's failures.
                    return await ScheduleAsync(_batch.Native!.Polls);
                }
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

        /// <summary>
        /// Streams one upstream file into the store and records it as the batch's chunk of <paramref name="kind"/>.
        /// A failure of the store (<see cref="BlobStoreException"/>, <see cref="InsufficientStorageException"/>) is
        /// told apart from the upstream's body breaking off (what reading the content throws: the store wraps its own).
        /// </summary>
        private async Task<(UpstreamFailure? Failure, bool StoreFailed, bool Recorded)> CopyResultFileAsync(IProvider provider, UpstreamBatch seen, BatchFileKind kind, string fileId)
        {
            var download = await provider.OpenBatchResultsAsync(new UpstreamBatchResults(seen, kind, fileId, OpenInputAsync), cancellationToken);
            if (!download.IsOk)
            {
                return (download.Failure, false, false);
            }
            await using var content = download.Value;
            // A provider that gives no usage on the batch (Anthropic, Gemini) gives it on each output line.
            using var counted = kind == BatchFileKind.Output && seen.Usage is null ? new UsageCountingStream(content.Content) : null;
            StagedBlob? staged;
            try
            {
                staged = await owner._blobs.StageAsync(counted ?? content.Content, long.MaxValue, cancellationToken);
            }
            catch (Exception e) when (e is BlobStoreException or InsufficientStorageException)
            {
                LogStoreFailed(owner._logger, e, _batch.Id);
                return (null, true, false);
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                // The upstream's body broke off or went silent.
                return (UpstreamFailure.ConnectionFailed("The upstream's file content broke off."), false, false);
            }
            if (staged is null)
            {
                return (UpstreamFailure.Malformed(200, "The upstream's file content is too large."), false, false);
            }
            await using (staged)
            {
                string partId = WharfIds.Hex(WharfIds.PartPrefix, owner._ids.Next());
                try
                {
                    await staged.CommitAsync(partId, cancellationToken);
                }
                catch (Exception e) when (e is BlobStoreException or InsufficientStorageException)
                {
                    LogStoreFailed(owner._logger, e, _batch.Id);
                    return (null, true, false);
                }
                // The usage first: written again whole by whoever copies the file again, it is never lost with a chunk
                // recorded before it (a resume does not copy a recorded chunk again).
                if (!await MirrorUsageAsync(counted))
                {
                    await owner._blobs.DeleteAsync(partId, CancellationToken.None);
                    return (null, false, false);
                }
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
                    return (null, false, false);
                }
            }
            return (null, false, true);
        }

        /// <summary>The usage summed from the output lines just copied, when the provider gave none; false when the lease is lost.</summary>
        private async Task<bool> MirrorUsageAsync(UsageCountingStream? counted)
        {
            if (counted is not { Usage: var usage } || usage == BatchUsage.None || usage == _batch.Usage)
            {
                return true;
            }
            if (!counted.Complete)
            {
                LogUsageIncomplete(owner._logger, _batch.Id, UsageCountingStream.MaxLineBytes);
            }
            if (!await owner._catalog.MirrorProgressAsync(_batch.Id, lease.Owner, _batch.RequestCounts, usage, cancellationToken))
            {
                return false;
            }
            _batch = _batch with { Usage = usage };
            return true;
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
            int failures = owner._failuresInARow.AddOrUpdate(_batch.Id, 1, (_, count) => count + 1);
            if (Now >= _batch.ExpiresAt && failures >= FailuresBeforeGivingUp)
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
            owner._failuresInARow.TryRemove(_batch.Id, out _);
            var ended = await owner._finalizer.FinalizeAsync(errors is { Count: > 0 } ? _batch with { Errors = errors } : _batch, status, lease.Owner, cancellationToken);
            if (ended is not null)
            {
                _batch = ended;
            }
            return false;
        }

        /// <summary>
        /// Whether a failed create may still have made the batch: no readable answer, or a server error (a 5xx may
        /// come after the work was accepted). A 4xx (429 included) and Anthropic's 529 "overloaded" say nothing was
        /// done; an answer refused before sending was never sent.
        /// </summary>
        private static bool MayHaveBeenCreated(UpstreamFailure failure) => failure.Kind switch
        {
            UpstreamFailureKind.Timeout or UpstreamFailureKind.ConnectionFailed or UpstreamFailureKind.Malformed => true,
            UpstreamFailureKind.Answered => failure.Status is >= 500 and not 529,
            _ => false,
        };

        private BatchError CreateOutcomeUnknown(IProvider provider, UpstreamFailure failure) => new(UpstreamBatchUnknown,
            $"Provider '{provider.Id}' did not confirm the batch's create ({failure.Kind.WireName()}, status {failure.Status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}), so a batch may have been made there at "
            + $"{DateTimeOffset.FromUnixTimeSeconds(Now):u}. Its batches carry no metadata by which Wharf could find it, and Wharf did not create another, "
            + "which could run and be billed twice: look for that batch on the provider and cancel it, then create this batch again.",
            null, null);

        private BatchError InputFileGone() =>
            new("input_file_unavailable", $"The input file {_batch.InputFileId} no longer exists.", "input_file_id", null);
    }

    /// <summary>
    /// A line whose body names a file (a <c>file_id</c>, Wharf's or a provider's), refused: a native batch's lines go
    /// upstream as they are, so a Wharf file id would not be rewritten to the provider's copy, and a provider's id would
    /// not be checked against the other workspaces' copies in the provider's shared account. The gateway execution
    /// sends each line as a model request, where both happen.
    /// </summary>
    private static BatchError? FileReference(int line, ReadOnlySpan<byte> bytes)
    {
        if (!FileIdRewriter.MayNameAFile(bytes) || !BatchInputLine.TryRead(bytes, out _, out var body) || FileIdRewriter.FirstFileReference(bytes[body]) is not { } path)
        {
            return null;
        }
        return new BatchError(FileReferenceInNativeBatch,
            $"The line's body names a file (body.{path}): a native batch sends its lines to the provider as they are, without Wharf's file handling. Run the batch with \"execution\": \"gateway\".",
            "body", line);
    }

    /// <summary>
    /// Whether a line's model routes to the provider the batch runs on. A native batch's file goes upstream as it is,
    /// so each line must be one that provider would be sent by a model request of the workspace: its route (the
    /// workspace's allowed providers, the providers' <c>Models</c>, the batch's named provider) must include that
    /// provider, and its model must be the name the provider knows, without a Wharf <c>provider/</c> prefix (which
    /// the upstream would not understand). The provider is chosen at the first request line when the batch names none.
    /// </summary>
    private sealed class LineModels(ModelRouter router, ProviderCapability endpoint, Workspace workspace, RegisteredProvider? named)
    {
        /// <summary>No provider could be chosen (reported once, at the line that should have chosen it).</summary>
        private bool _noProvider;

        private readonly string? _named = named?.Id;

        public RegisteredProvider? Chosen { get; private set; } = named;

        public BatchError? Check(int line, string model)
        {
            if (_noProvider)
            {
                return null;
            }
            var plan = router.Route(endpoint, model, _named, workspace);
            if (Chosen is null)
            {
                if (!plan.IsOk)
                {
                    _noProvider = true;
                    return new BatchError("no_batch_provider", $"No provider for the batch's model (from its first request line): {plan.Error.Message}", "body.model", line);
                }
                Chosen = plan.Value.Candidates.FirstOrDefault(c => c.Provider.Capabilities.Contains(ProviderCapability.Batches));
                if (Chosen is null)
                {
                    _noProvider = true;
                    string candidates = string.Join(", ", plan.Value.Candidates.Select(c => $"'{c.Id}'"));
                    return new BatchError("no_batch_provider",
                        $"None of the providers that serve model '{Echo.Safe(model)}' ({candidates}) has a batch API: run the batch with \"execution\": \"gateway\", or name a provider that has one.",
                        "provider", line);
                }
            }
            if (!plan.IsOk || !plan.Value.Candidates.Any(c => c.Id == Chosen.Id))
            {
                string why = plan.IsOk
                    ? $"it routes to {string.Join(", ", plan.Value.Candidates.Select(c => $"'{c.Id}'"))}"
                    : plan.Error.Message;
                return new BatchError(ModelNotOnProvider,
                    $"The model '{Echo.Safe(model)}' is not one provider '{Chosen.Id}', where this native batch runs, may be sent for this workspace ({why}): every line of a native batch must route to that provider.",
                    "body.model", line);
            }
            if (!string.Equals(plan.Value.Model, model, StringComparison.Ordinal))
            {
                return new BatchError(ModelHasProviderPrefix,
                    $"The model '{Echo.Safe(model)}' has a provider prefix: a native batch's lines go to provider '{Chosen.Id}' as they are, so write the model as it knows it ('{Echo.Safe(plan.Value.Model)}').",
                    "body.model", line);
            }
            return null;
        }
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Native batch {BatchId} failed validation with {Errors} error(s); nothing was sent upstream.")]
    private static partial void LogInvalid(ILogger logger, string batchId, int errors);

    [LoggerMessage(Level = LogLevel.Error, Message = "Native batch {BatchId}: Wharf's store failed while copying a result file in; copied again at the next poll.")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, string batchId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Native batch {BatchId}: an output line longer than {MaxBytes} bytes was copied but not counted in the batch's usage.")]
    private static partial void LogUsageIncomplete(ILogger logger, string batchId, int maxBytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Native batch {BatchId} failed: {Code}.")]
    private static partial void LogFailed(ILogger logger, string batchId, string code);
}
