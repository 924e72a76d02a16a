using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Wharf.Core.Leases;
using Wharf.Core.Ports;

namespace Wharf.Server.Hosting;

/// <summary>
/// Which node runs a sweep: the holder of the sweep's named lease in the catalog. A node takes the lease at a round
/// when it is free or ran out (or keeps it, when it holds it already) for the sweep's interval plus
/// <c>Wharf:Sweeper:LeaseSeconds</c>, so the holder keeps it from one round to the next; it is renewed while a long
/// round runs, and a round whose lease passed to another node meanwhile is cancelled. Other nodes skip their rounds.
/// A node that stops gives its leases up; one that dies leaves them to run out, and the next node to ask takes them.
/// The lease only decides who sweeps: every step of a round stays right if two nodes overlap (each deletion is one
/// conditional catalog write), so a paused holder that wakes up late does no harm. A round that fails gives the lease
/// up and its node sits the next round out, so that a node that cannot sweep (a bad credential, a broken mount) does
/// not keep the sweep from the others.
/// </summary>
internal sealed partial class SweepLeases(
    ILeaseCatalog leases, NodeIdentity node, IOptions<WharfOptions> options, TimeProvider time, ILogger<SweepLeases> logger)
{
    private readonly ConcurrentDictionary<string, bool> _held = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _resting = new(StringComparer.Ordinal);

    /// <summary>
    /// Every <paramref name="interval"/> until the node stops: a <paramref name="round"/> of sweep
    /// <paramref name="name"/> when this node holds its lease, then <paramref name="everyNode"/> (work of this node's
    /// own, lease or not). A failure is logged and the loop goes on; at stop the lease is given up.
    /// </summary>
    public async Task RunRoundsAsync(
        string name, TimeSpan interval, Func<CancellationToken, Task> round, Func<CancellationToken, Task>? everyNode,
        Action<Exception> logFailure, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            do
            {
                try
                {
                    await RunAsync(name, interval, round, stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    logFailure(ex);
                }
                if (everyNode is not null)
                {
                    try
                    {
                        await everyNode(stoppingToken);
                    }
                    catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                    {
                        logFailure(ex);
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await ReleaseAsync(name);
        }
    }

    /// <summary>
    /// Runs <paramref name="round"/> when this node holds lease <paramref name="name"/> or can take it; false (and
    /// nothing run) when another node holds it. The round's token is cancelled when the node stops or the lease is lost.
    /// </summary>
    public async Task<bool> RunAsync(string name, TimeSpan interval, Func<CancellationToken, Task> round, CancellationToken stoppingToken)
    {
        if (_resting.TryRemove(name, out _))
        {
            return false; // the last round here failed: this one is another node's to take
        }
        var length = interval + TimeSpan.FromSeconds(options.Value.Sweeper.LeaseSeconds);
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (!await leases.TryAcquireAsync(name, node.Id, now, now + (long)length.TotalMilliseconds, stoppingToken))
        {
            if (_held.TryRemove(name, out _))
            {
                LogLost(logger, name, node.Id);
            }
            return false;
        }
        if (_held.TryAdd(name, true))
        {
            LogTaken(logger, name, node.Id);
        }
        using var work = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        bool lost = false;
        var renewal = LeaseRenewal.KeepAsync(
            ct => leases.RenewAsync(name, node.Id, time.GetUtcNow().ToUnixTimeMilliseconds() + (long)length.TotalMilliseconds, ct),
            length / 3, time, work,
            ex => LogRenewalFailed(logger, ex, name),
            () =>
            {
                lost = true;
                _held.TryRemove(name, out _);
                LogLost(logger, name, node.Id);
            });
        try
        {
            await round(work.Token);
        }
        catch (Exception) when (lost && !stoppingToken.IsCancellationRequested)
        {
            // Another node holds the sweep now: the rest of this round is its to do.
        }
        catch (Exception) when (!stoppingToken.IsCancellationRequested)
        {
            await work.CancelAsync();
            await renewal;
            _resting[name] = true;
            await ReleaseAsync(name);
            throw;
        }
        finally
        {
            await work.CancelAsync();
            await renewal;
        }
        return true;
    }

    /// <summary>Gives lease <paramref name="name"/> up if this node holds it (at stop), so another node takes the sweep at once.</summary>
    public async Task ReleaseAsync(string name)
    {
        if (!_held.TryRemove(name, out _))
        {
            return;
        }
        try
        {
            await leases.ReleaseAsync(name, node.Id, CancellationToken.None);
            LogReleased(logger, name, node.Id);
        }
        catch (Exception ex)
        {
            LogReleaseFailed(logger, ex, name);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} took the lease of sweep '{Lease}': it runs its rounds.")]
    private static partial void LogTaken(ILogger logger, string lease, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {Node} lost the lease of sweep '{Lease}' to another node.")]
    private static partial void LogLost(ILogger logger, string lease, string node);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} gave up the lease of sweep '{Lease}'.")]
    private static partial void LogReleased(ILogger logger, string lease, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewing the lease of sweep '{Lease}' failed; trying again.")]
    private static partial void LogRenewalFailed(ILogger logger, Exception exception, string lease);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Giving up the lease of sweep '{Lease}' failed; it runs out by itself.")]
    private static partial void LogReleaseFailed(ILogger logger, Exception exception, string lease);
}
