using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Wharf.Core.Batches;
using Wharf.Core.Leases;
using Wharf.Core.Ports;

namespace Wharf.Server.Hosting;

/// <summary>
/// Runs batches on this node. Each process start is a new lease owner (<see cref="NodeIdentity"/>). The engine claims
/// batches in an active status whose lease is free or ran out (a new batch at once, through <see cref="BatchSignals"/>;
/// others at each poll), up to <c>MaxConcurrentBatches</c>, and hands each to the <see cref="IBatchExecution"/> its
/// <c>execution</c> names. While one works, its lease is renewed every third of <c>LeaseSeconds</c>; a renewal that
/// fails means another owner took the batch, and the execution is cancelled at once. At shutdown the executions are
/// cancelled and their leases released, so that a restart or another node takes over without waiting.
/// </summary>
internal sealed partial class BatchEngine(
    IBatchCatalog catalog,
    IEnumerable<IBatchExecution> executions,
    BatchSignals signals,
    NodeIdentity node,
    IOptions<BatchesOptions> options,
    TimeProvider time,
    ILogger<BatchEngine> logger) : BackgroundService
{
    private readonly Dictionary<string, IBatchExecution> _executions = executions
        .GroupBy(e => e.Name, StringComparer.Ordinal)
        .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, Task> _running = new(StringComparer.Ordinal);

    /// <summary>Batches claimed here whose execution this node does not have: left alone for a node that has it.</summary>
    private readonly ConcurrentDictionary<string, bool> _unrunnable = new(StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, bool> _missingLogged = new(StringComparer.Ordinal);

    /// <summary>This process's lease owner id.</summary>
    public string Owner => node.Id;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var poll = TimeSpan.FromMilliseconds(options.Value.PollIntervalMilliseconds);
        LogStarted(logger, Owner, string.Join(",", _executions.Keys.Order(StringComparer.Ordinal)));
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await ClaimAsync(stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    LogClaimFailed(logger, ex);
                }
                await signals.WaitAsync(poll, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            // Each run cancels its execution and releases its lease as it ends (it is linked to the stopping token).
            await Task.WhenAll(_running.Values);
        }
    }

    private async Task ClaimAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        while (_running.Count < settings.MaxConcurrentBatches && !stoppingToken.IsCancellationRequested)
        {
            long now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var skip = _running.Keys.Concat(_unrunnable.Keys).ToList();
            var batch = await catalog.ClaimAsync(Owner, now, now + settings.LeaseSeconds * 1000L, skip, stoppingToken);
            if (batch is null)
            {
                return;
            }
            if (!_executions.TryGetValue(batch.Execution, out var execution))
            {
                // Not released: its lease runs out, and a node that has this execution claims it then.
                _unrunnable[batch.Id] = true;
                if (_missingLogged.TryAdd(batch.Execution, true))
                {
                    LogNoExecution(logger, batch.Id, batch.Execution);
                }
                continue;
            }
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _running[batch.Id] = RunAsync(batch, execution, started.Task, stoppingToken);
            started.SetResult();
        }
    }

    /// <summary>Runs one claimed batch with its lease renewed, until its execution returns or the lease is lost.</summary>
    private async Task RunAsync(BatchRecord batch, IBatchExecution execution, Task registered, CancellationToken stoppingToken)
    {
        await registered;
        await Task.Yield();
        using var work = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var lease = new BatchLease(batch, Owner, signals.Watch(batch.Id));
        var renewal = RenewAsync(batch.Id, work);
        bool clean = false;
        try
        {
            LogClaimed(logger, batch.Id, batch.Status, execution.Name);
            await execution.RunAsync(lease, work.Token);
            clean = true;
        }
        catch (OperationCanceledException) when (work.IsCancellationRequested)
        {
            // The lease was lost or the node stops.
        }
        catch (Exception ex)
        {
            // Left to its lease: it runs out and the batch is claimed again (here or elsewhere) after LeaseSeconds.
            LogRunFailed(logger, ex, batch.Id);
        }
        finally
        {
            await work.CancelAsync();
            await renewal;
            signals.Forget(batch.Id);
            if (stoppingToken.IsCancellationRequested || clean)
            {
                // A finished batch's lease is already released; an unfinished one is handed over at once.
                try
                {
                    await catalog.ReleaseLeaseAsync(batch.Id, Owner, CancellationToken.None);
                }
                catch (Exception ex)
                {
                    LogReleaseFailed(logger, ex, batch.Id);
                }
            }
            _running.TryRemove(batch.Id, out _);
            signals.WorkAdded(); // a slot is free: claim the next batch now
        }
    }

    /// <summary>Renews the lease every third of its length; cancels the work when a renewal finds it lost.</summary>
    private Task RenewAsync(string batchId, CancellationTokenSource work)
    {
        long leaseMilliseconds = options.Value.LeaseSeconds * 1000L;
        return LeaseRenewal.KeepAsync(
            ct => catalog.RenewLeaseAsync(batchId, Owner, time.GetUtcNow().ToUnixTimeMilliseconds() + leaseMilliseconds, ct),
            TimeSpan.FromMilliseconds(leaseMilliseconds / 3.0), time, work,
            ex => LogRenewFailed(logger, ex, batchId),
            () => LogLeaseLost(logger, batchId));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Batch engine started as {Owner} with executions {Executions}.")]
    private static partial void LogStarted(ILogger logger, string owner, string executions);

    [LoggerMessage(Level = LogLevel.Information, Message = "Batch {BatchId} claimed ({Status}), run by the {Execution} execution.")]
    private static partial void LogClaimed(ILogger logger, string batchId, string status, string execution);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Batch {BatchId} asks for the '{Execution}' execution, which this node does not have: left to another node.")]
    private static partial void LogNoExecution(ILogger logger, string batchId, string execution);

    [LoggerMessage(Level = LogLevel.Error, Message = "Claiming batches failed; the engine tries again at its next poll.")]
    private static partial void LogClaimFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Batch {BatchId} stopped on an error; it is taken up again once its lease runs out.")]
    private static partial void LogRunFailed(ILogger logger, Exception exception, string batchId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewing the lease of batch {BatchId} failed; trying again.")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception, string batchId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Batch {BatchId}: its lease was taken over; this node stops working on it.")]
    private static partial void LogLeaseLost(ILogger logger, string batchId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Releasing the lease of batch {BatchId} failed; it runs out by itself.")]
    private static partial void LogReleaseFailed(ILogger logger, Exception exception, string batchId);
}
