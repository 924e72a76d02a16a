using System.Buffers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ports;
using Wharf.Core.Telemetry;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Batches;

/// <summary>
/// Runs a batch through Wharf's own model dispatch (<c>"execution": "gateway"</c>), resuming from whatever status the
/// catalog holds. <c>validating</c>: the input file is streamed once and every line checked (a bad one fails the
/// batch, with its 1-based line, and nothing is sent). <c>in_progress</c>: the file is streamed again and each line
/// not done yet is routed and dispatched exactly as a model request is (retries, <c>Retry-After</c>, fallback, the
/// providers' own concurrency limits), with at most <c>LineConcurrency</c> lines of the batch and
/// <c>MaxConcurrencyPerWorkspace</c> lines of its workspace in flight on this node. Each result goes to a chunk of the
/// output or the error file; a line is done once its chunk is recorded, so a crash re-sends at most the lines whose
/// chunk was not, and no <c>custom_id</c> is written twice. A cancel stops the dispatch at once and ends the batch
/// <c>cancelled</c> with what finished; the end of the 24 h window ends it <c>expired</c>, with every line never done
/// in the error file as <c>batch_expired</c>.
/// </summary>
public sealed partial class GatewayBatchExecution : IBatchExecution
{
    private readonly IBatchCatalog _catalog;
    private readonly FileService _files;
    private readonly IWorkspaceCatalog _workspaces;
    private readonly IBlobStore _blobs;
    private readonly ModelRouter _router;
    private readonly ModelDispatcher _dispatcher;
    private readonly BatchFinalizer _finalizer;
    private readonly Ids.IdGenerator _ids;
    private readonly IOptions<BatchesOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<GatewayBatchExecution> _logger;
    private readonly WorkspaceLineSlots _workspaceSlots;
    private readonly WharfMetrics? _metrics;

    public GatewayBatchExecution(
        IBatchCatalog catalog,
        FileService files,
        IWorkspaceCatalog workspaces,
        IBlobStore blobs,
        ModelRouter router,
        ModelDispatcher dispatcher,
        BatchFinalizer finalizer,
        Ids.IdGenerator ids,
        IOptions<BatchesOptions> options,
        TimeProvider time,
        ILogger<GatewayBatchExecution> logger,
        WharfMetrics? metrics = null)
    {
        _metrics = metrics;
        _catalog = catalog;
        _files = files;
        _workspaces = workspaces;
        _blobs = blobs;
        _router = router;
        _dispatcher = dispatcher;
        _finalizer = finalizer;
        _ids = ids;
        _options = options;
        _time = time;
        _logger = logger;
        _workspaceSlots = new WorkspaceLineSlots(options.Value.MaxConcurrencyPerWorkspace);
    }

    public string Name => BatchExecution.Gateway;

    public async Task RunAsync(BatchLease lease, CancellationToken cancellationToken)
    {
        var batch = lease.Batch;
        if (await _workspaces.GetWorkspaceAsync(batch.WorkspaceId, cancellationToken) is not { } workspace)
        {
            await EndAsync(lease, batch, BatchStatus.Failed, [WorkspaceGone(batch)], cancellationToken);
            return;
        }
        if (batch.Status == BatchStatus.Validating)
        {
            if (await ValidateAsync(lease, batch, cancellationToken) is not { } validated)
            {
                return;
            }
            batch = validated;
        }
        if (batch.Status == BatchStatus.Finalizing)
        {
            await EndAsync(lease, batch, BatchStatus.Completed, null, cancellationToken);
            return;
        }
        await DispatchAsync(lease, batch, workspace, cancellationToken);
    }

    /// <summary>
    /// Checks every line of the input file, streamed. A good file moves the batch to <c>in_progress</c> (returned);
    /// a bad one, a cancel or a lost lease ends here (null).
    /// </summary>
    private async Task<BatchRecord?> ValidateAsync(BatchLease lease, BatchRecord batch, CancellationToken cancellationToken)
    {
        var options = _options.Value;
        var opened = await _files.OpenContentAsync(batch.WorkspaceId, batch.InputFileId, cancellationToken);
        if (!opened.IsOk)
        {
            await EndAsync(lease, batch, BatchStatus.Failed, [InputFileGone(batch)], cancellationToken);
            return null;
        }
        BatchInputCheck check;
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lease.CancelRequested);
        await using (opened.Value)
        {
            try
            {
                check = await BatchInputValidator.ValidateAsync(opened.Value.Content, batch.Endpoint, options, null, cancel.Token);
            }
            catch (OperationCanceledException) when (lease.CancelRequested.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                await EndAsync(lease, batch, BatchStatus.Cancelled, null, cancellationToken);
                return null;
            }
        }
        var (errors, total) = (check.Errors, check.Total);
        if (errors.Count > 0)
        {
            LogInvalid(_logger, batch.Id, errors.Count);
            await EndAsync(lease, batch, BatchStatus.Failed, errors, cancellationToken);
            return null;
        }
        var started = await _catalog.UpdateAsync(batch with
        {
            Status = BatchStatus.InProgress,
            InProgressAt = _time.GetUtcNow().ToUnixTimeSeconds(),
            RequestCounts = new BatchRequestCounts(total, 0, 0),
        }, lease.Owner, cancellationToken);
        if (started is not null)
        {
            LogValidated(_logger, batch.Id, total);
        }
        return started;
    }

    /// <summary>Sends every line not done yet, then ends the batch as the run ended: completed, cancelled or expired.</summary>
    private async Task DispatchAsync(BatchLease lease, BatchRecord batch, Workspace workspace, CancellationToken cancellationToken)
    {
        var options = _options.Value;
        using var output = new ResultChunks(batch, lease.Owner, BatchFileKind.Output, options.ChunkLines, options.ChunkBytes, _catalog, _blobs, _ids, _time, _metrics);
        using var errors = new ResultChunks(batch, lease.Owner, BatchFileKind.Error, options.ChunkLines, options.ChunkBytes, _catalog, _blobs, _ids, _time, _metrics);
        using var run = new Run(workspace, cancellationToken);
        if (batch.Status == BatchStatus.Cancelling || lease.CancelRequested.IsCancellationRequested)
        {
            run.Stop(StopReason.Cancel);
        }
        else if (IsExpired(batch))
        {
            run.Stop(StopReason.Expire);
        }
        using (lease.CancelRequested.Register(static state => ((Run)state!).Stop(StopReason.Cancel), run))
        {
            if (!run.Stopping)
            {
                var opened = await _files.OpenContentAsync(batch.WorkspaceId, batch.InputFileId, cancellationToken);
                if (!opened.IsOk)
                {
                    await EndAsync(lease, batch, BatchStatus.Failed, [InputFileGone(batch)], cancellationToken);
                    return;
                }
                var done = await _catalog.ListDoneLinesAsync(batch.Id, cancellationToken);
                using var tickerStop = new CancellationTokenSource();
                var ticker = TickAsync(run, batch, output, errors, tickerStop.Token);
                try
                {
                    await using (opened.Value)
                    {
                        await SendLinesAsync(run, batch, opened.Value.Content, done, output, errors);
                    }
                }
                finally
                {
                    await tickerStop.CancelAsync();
                    await ticker;
                }
            }
        }

        // What finished is written, whatever stopped the run (a lost lease writes nothing: the catalog fences it).
        if (run.Fault is null)
        {
            try
            {
                await output.FlushAsync(CancellationToken.None);
                await errors.FlushAsync(CancellationToken.None);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                run.Fail(ex);
            }
        }
        if (run.Fault is { } fault)
        {
            throw new InvalidOperationException($"Batch {batch.Id} stopped: its input could not be read or its results could not be written.", fault);
        }
        if (output.LeaseLost || errors.LeaseLost || cancellationToken.IsCancellationRequested)
        {
            return; // the lease was lost or the node stops: the next owner resumes from the lines recorded
        }
        switch (run.Reason)
        {
            case StopReason.Cancel:
                await EndAsync(lease, batch, BatchStatus.Cancelled, null, cancellationToken);
                break;
            case StopReason.WorkspaceDeleted:
                await EndAsync(lease, batch, BatchStatus.Failed, [WorkspaceGone(batch)], cancellationToken);
                break;
            case StopReason.Expire:
                if (await WriteExpiredLinesAsync(lease, batch, errors, cancellationToken))
                {
                    await EndAsync(lease, batch, BatchStatus.Expired, null, cancellationToken);
                }
                break;
            default:
                await EndAsync(lease, batch, BatchStatus.Completed, null, cancellationToken);
                break;
        }
    }

    /// <summary>
    /// One pass over the input file: each line not done is copied to a pooled buffer and sent on its own task, once a
    /// slot of the batch and one of its workspace are free. Returns when every line sent has its result appended.
    /// </summary>
    private async Task SendLinesAsync(
        Run run, BatchRecord batch, Stream content, IReadOnlyList<int> done, ResultChunks output, ResultChunks errors)
    {
        var options = _options.Value;
        if (!BatchEndpoints.TryParse(batch.Endpoint, out var endpoint))
        {
            throw new InvalidOperationException($"Batch {batch.Id} has an endpoint the Batches API does not accept.");
        }
        using var batchSlots = new SemaphoreSlim(options.LineConcurrency, options.LineConcurrency);
        using var workspaceSlots = _workspaceSlots.Acquire(batch.WorkspaceId);
        var context = new LineContext(run, batch, endpoint, output, errors, batchSlots, workspaceSlots.Slots);
        using var reader = new JsonlLineReader(content, options.MaxLineBytes);
        var pending = new PendingLines(done);
        try
        {
            while (await reader.ReadAsync(run.Token))
            {
                int number = reader.Number;
                if (!pending.IsPending(reader))
                {
                    continue;
                }
                await batchSlots.WaitAsync(run.Token);
                try
                {
                    await context.WorkspaceSlots.WaitAsync(run.Token);
                }
                catch
                {
                    batchSlots.Release();
                    throw;
                }
                int length = reader.Line.Length;
                byte[] copy = ArrayPool<byte>.Shared.Rent(length);
                reader.Line.Span.CopyTo(copy);
                _ = SendLineAsync(context, number, copy, length);
            }
        }
        catch (OperationCanceledException) when (run.Token.IsCancellationRequested)
        {
            // Stopped: the lines in flight end (or are cancelled) below.
        }
        catch (Exception ex)
        {
            // The input could not be read further (a store failure): the run stops, its lines in flight are cancelled.
            run.Fail(ex);
        }
        finally
        {
            // Every line in flight has ended (and appended its result) before the run's chunks and slots go.
            for (int i = 0; i < options.LineConcurrency; i++)
            {
                await batchSlots.WaitAsync(CancellationToken.None);
            }
        }
    }

    /// <summary>Sends one line and appends its result; never throws (a fault stops the run).</summary>
    private async Task SendLineAsync(LineContext context, int number, byte[] line, int length)
    {
        var run = context.Run;
        try
        {
            ResultChunks? full = await SendAsync(context, number, line.AsMemory(0, length));
            if (full is not null && !await full.FlushAsync(CancellationToken.None))
            {
                run.Stop(StopReason.LeaseLost);
            }
        }
        catch (OperationCanceledException) when (run.Token.IsCancellationRequested)
        {
            // Cancelled in flight: the line is not done, and is sent again if the batch resumes.
        }
        catch (Exception ex)
        {
            LogLineFault(_logger, context.Batch.Id, number, ex);
            run.Fail(ex);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(line);
            context.WorkspaceSlots.Release();
            context.BatchSlots.Release();
        }
    }

    /// <summary>Dispatches a line and appends its result; returns the result file whose chunk is full, if any.</summary>
    private async Task<ResultChunks?> SendAsync(LineContext context, int number, ReadOnlyMemory<byte> line)
    {
        var errors = context.Errors;
        if (!BatchInputLine.TryRead(line.Span, out string? customId, out var bodyRange))
        {
            return errors.AppendFailure(number, customId ?? "", "invalid_request", "The line is not a valid batch request.") ? errors : null;
        }
        var parsed = ModelRequest.Parse(context.Endpoint, line[bodyRange]);
        if (!parsed.IsOk)
        {
            return errors.AppendFailure(number, customId!, parsed.Error.Reason, parsed.Error.Message) ? errors : null;
        }
        using var request = parsed.Value;
        var workspace = context.Run.Workspace;
        var plan = _router.Route(request, context.Batch.Provider, workspace);
        if (!plan.IsOk)
        {
            return errors.AppendFailure(number, customId!, plan.Error.Reason, plan.Error.Message) ? errors : null;
        }
        var result = await _dispatcher.DispatchAsync(workspace.Id, request, plan.Value, context.Run.Token);
        if (!result.IsOk)
        {
            var error = result.Error;
            bool full;
            if (error.FromUpstream)
            {
                // The upstream's verdict on the request, passed back.
                full = errors.AppendUpstreamError(number, customId!, error.Status, error.Message, error.Type, error.Param, error.Code);
            }
            else if (error.Upstream?.FailureSample is { Count: > 0 } samples && samples[^1] is { Status: { } status } last)
            {
                // Every candidate failed, the last one with an answer: its final status and error body.
                full = errors.AppendUpstreamError(number, customId!, status, last.UpstreamErrorMessage ?? error.Message,
                    WharfError.TypeOf(status), last.UpstreamErrorParam, last.UpstreamErrorCode);
            }
            else
            {
                full = errors.AppendFailure(number, customId!, error.Reason, error.Message);
            }
            return full ? errors : null;
        }
        await using var answer = result.Value;
        return await AppendAnswerAsync(context, number, customId!, answer);
    }

    /// <summary>Reads an answer whole (up to <c>MaxResultBytes</c>) and appends it to the output file, or a failure to the error file.</summary>
    private async Task<ResultChunks?> AppendAnswerAsync(LineContext context, int number, string customId, ModelAnswer answer)
    {
        var errors = context.Errors;
        int max = _options.Value.MaxResultBytes;
        if (answer.IsEventStream || !ModelDispatcher.IsJson(answer.ContentType))
        {
            return errors.AppendFailure(number, customId, "invalid_upstream_response",
                $"The provider '{answer.Provider}' answered with a body that is not JSON.") ? errors : null;
        }
        if (answer.IsComplete)
        {
            if (answer.Head.Length > max)
            {
                return errors.AppendFailure(number, customId, "response_too_large", TooLarge(answer.Provider, max)) ? errors : null;
            }
            var head = answer.Head.Span;
            return context.Output.AppendAnswer(number, customId, answer.Status, head, AnswerUsage.Read(head)) ? context.Output : null;
        }
        // Longer than what the dispatcher reads ahead: the rest is read here, up to the bound.
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Min(max + 1, Math.Max(answer.Head.Length * 2, 64 * 1024)));
        int length = answer.Head.Length;
        try
        {
            answer.Head.CopyTo(buffer);
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > max)
                    {
                        return errors.AppendFailure(number, customId, "response_too_large", TooLarge(answer.Provider, max)) ? errors : null;
                    }
                    byte[] larger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, max + 1L));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                int read = await answer.Rest.ReadAsync(buffer.AsMemory(length), context.Run.Token);
                if (read == 0)
                {
                    break;
                }
                length += read;
            }
            if (length > max)
            {
                return errors.AppendFailure(number, customId, "response_too_large", TooLarge(answer.Provider, max)) ? errors : null;
            }
            var body = buffer.AsSpan(0, length);
            if (!ModelDispatcher.TryReadJson(body, out _, out _))
            {
                return errors.AppendFailure(number, customId, "invalid_upstream_response",
                    $"The provider '{answer.Provider}' answered with a body that is not valid JSON.") ? errors : null;
            }
            return context.Output.AppendAnswer(number, customId, answer.Status, body, AnswerUsage.Read(body)) ? context.Output : null;
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException && !context.Run.Token.IsCancellationRequested)
        {
            return errors.AppendFailure(number, customId, "upstream_connection_failed",
                $"The connection to the provider '{answer.Provider}' broke while its answer was read.") ? errors : null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Every <c>ChunkFlushMilliseconds</c>: writes what finished since the last chunk, and reads the batch again for a
    /// cancel asked on another node; stops the run at the end of the window.
    /// </summary>
    private async Task TickAsync(Run run, BatchRecord batch, ResultChunks output, ResultChunks errors, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(_options.Value.ChunkFlushMilliseconds), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (!await output.FlushAsync(CancellationToken.None) || !await errors.FlushAsync(CancellationToken.None))
                {
                    run.Stop(StopReason.LeaseLost);
                    return;
                }
                var current = await _catalog.GetAsync(batch.WorkspaceId, batch.Id, cancellationToken);
                if (current?.Status == BatchStatus.Cancelling)
                {
                    run.Stop(StopReason.Cancel);
                }
                else if (IsExpired(batch))
                {
                    run.Stop(StopReason.Expire);
                }
                else if (await _workspaces.GetWorkspaceAsync(batch.WorkspaceId, cancellationToken) is { } workspace)
                {
                    run.Workspace = workspace; // a change of its allowed providers applies to the lines sent from now on
                }
                else
                {
                    run.Stop(StopReason.WorkspaceDeleted); // its keys are revoked: nothing more is sent on its behalf
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            run.Fail(ex);
        }
    }

    /// <summary>
    /// At the end of the window: every request line still not done goes to the error file as <c>batch_expired</c>
    /// (as OpenAI writes them). False when the lease was lost or the input is gone.
    /// </summary>
    private async Task<bool> WriteExpiredLinesAsync(BatchLease lease, BatchRecord batch, ResultChunks errors, CancellationToken cancellationToken)
    {
        var opened = await _files.OpenContentAsync(batch.WorkspaceId, batch.InputFileId, cancellationToken);
        if (!opened.IsOk)
        {
            return true; // nothing left to list: the batch still expires with what it has
        }
        var done = await _catalog.ListDoneLinesAsync(batch.Id, cancellationToken);
        await using (opened.Value)
        {
            using var reader = new JsonlLineReader(opened.Value.Content, _options.Value.MaxLineBytes);
            var pending = new PendingLines(done);
            while (await reader.ReadAsync(cancellationToken))
            {
                int number = reader.Number;
                if (!pending.IsPending(reader))
                {
                    continue;
                }
                BatchInputLine.TryRead(reader.Line.Span, out string? customId, out _);
                if (errors.AppendFailure(number, customId ?? "", "batch_expired",
                        "This request could not be executed before the completion window expired.")
                    && !await errors.FlushAsync(cancellationToken))
                {
                    return false;
                }
            }
        }
        return await errors.FlushAsync(cancellationToken);
    }

    /// <summary>
    /// Ends the batch with <paramref name="status"/> through the finaliser (a completed batch passes through
    /// <c>finalizing</c> first; a cancel asked meanwhile makes it <c>cancelled</c>).
    /// </summary>
    private async Task EndAsync(BatchLease lease, BatchRecord batch, string status, IReadOnlyList<BatchError>? errors, CancellationToken cancellationToken)
    {
        var current = await _catalog.GetAsync(batch.WorkspaceId, batch.Id, cancellationToken) ?? batch;
        if (status == BatchStatus.Completed)
        {
            var finalizing = await _catalog.UpdateAsync(
                current with { Status = BatchStatus.Finalizing, FinalizingAt = current.FinalizingAt ?? _time.GetUtcNow().ToUnixTimeSeconds() },
                lease.Owner, cancellationToken);
            if (finalizing is null)
            {
                return;
            }
            if (finalizing.Status == BatchStatus.Cancelling)
            {
                status = BatchStatus.Cancelled;
            }
            current = finalizing;
        }
        var ended = await _finalizer.FinalizeAsync(errors is null ? current : current with { Errors = errors }, status, lease.Owner, cancellationToken);
        if (ended is not null)
        {
            LogEnded(_logger, ended.Id, ended.Status, ended.RequestCounts.Completed, ended.RequestCounts.Failed);
        }
    }

    private bool IsExpired(BatchRecord batch) => _time.GetUtcNow().ToUnixTimeSeconds() >= batch.ExpiresAt;

    private static BatchError WorkspaceGone(BatchRecord batch) =>
        new("workspace_not_found", $"The batch's workspace {batch.WorkspaceId} no longer exists.", null, null);

    private static BatchError InputFileGone(BatchRecord batch) =>
        new("input_file_not_found", $"The batch's input file {batch.InputFileId} no longer exists.", "input_file_id", null);

    private static string TooLarge(string provider, int max) =>
        $"The provider '{provider}' answered with more than {max} bytes, the most a batch result may hold.";

    private enum StopReason
    {
        None,
        Cancel,
        Expire,
        WorkspaceDeleted,
        LeaseLost,
        Fault,
    }

    /// <summary>One dispatch run of a batch: what stopped it (the first reason wins) and the fault, if one happened.</summary>
    private sealed class Run(Workspace workspace, CancellationToken outer) : IDisposable
    {
        private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(outer);
        private Workspace _workspace = workspace;

        /// <summary>The batch's workspace as last read (its allowed providers route the lines).</summary>
        public Workspace Workspace
        {
            get => Volatile.Read(ref _workspace);
            set => Volatile.Write(ref _workspace, value);
        }
        private int _reason;
        private Exception? _fault;

        /// <summary>Cancelled when the run stops: the dispatch and the calls in flight.</summary>
        public CancellationToken Token => _stop.Token;

        public StopReason Reason => (StopReason)Volatile.Read(ref _reason);

        public bool Stopping => Reason != StopReason.None || _stop.IsCancellationRequested;

        public Exception? Fault => Volatile.Read(ref _fault);

        public void Stop(StopReason reason)
        {
            Interlocked.CompareExchange(ref _reason, (int)reason, (int)StopReason.None);
            try
            {
                _stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public void Fail(Exception fault)
        {
            Interlocked.CompareExchange(ref _fault, fault, null);
            Stop(StopReason.Fault);
        }

        public void Dispose() => _stop.Dispose();
    }

    /// <summary>Walks the batch's done lines (ascending) along the input file, which is read in line order.</summary>
    private sealed class PendingLines(IReadOnlyList<int> done)
    {
        private int _index;

        /// <summary>Whether the reader's current line is a request still to be done (not done, not blank, not too long).</summary>
        public bool IsPending(JsonlLineReader reader)
        {
            while (_index < done.Count && done[_index] < reader.Number)
            {
                _index++;
            }
            bool isDone = _index < done.Count && done[_index] == reader.Number;
            return !isDone && !reader.TooLong && !BatchInputLine.IsBlank(reader.Line.Span);
        }
    }

    private sealed record LineContext(
        Run Run, BatchRecord Batch, ProviderCapability Endpoint, ResultChunks Output, ResultChunks Errors,
        SemaphoreSlim BatchSlots, SemaphoreSlim WorkspaceSlots);

    [LoggerMessage(Level = LogLevel.Information, Message = "Batch {BatchId} validated: {Total} requests.")]
    private static partial void LogValidated(ILogger logger, string batchId, int total);

    [LoggerMessage(Level = LogLevel.Information, Message = "Batch {BatchId} failed validation with {Errors} error(s).")]
    private static partial void LogInvalid(ILogger logger, string batchId, int errors);

    [LoggerMessage(Level = LogLevel.Information, Message = "Batch {BatchId} ended {Status}: {Completed} completed, {Failed} failed.")]
    private static partial void LogEnded(ILogger logger, string batchId, string status, int completed, int failed);

    [LoggerMessage(Level = LogLevel.Error, Message = "Batch {BatchId}: line {Line} could not be processed; the run stops and resumes later.")]
    private static partial void LogLineFault(ILogger logger, string batchId, int line, Exception exception);
}
