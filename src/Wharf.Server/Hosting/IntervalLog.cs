namespace Wharf.Server.Hosting;

/// <summary>
/// A log that counts events and writes what it counted once per interval (and once more at stop), rather than a line
/// per event: a client that causes events in a loop cannot flood the log.
/// </summary>
internal abstract class IntervalLog(TimeProvider time) : BackgroundService
{
    /// <summary>Seconds between lines.</summary>
    protected abstract int IntervalSeconds { get; }

    /// <summary>Takes the counts gathered since the last call and logs them, if there were any.</summary>
    protected abstract void Flush(int seconds);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        int seconds = IntervalSeconds;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(seconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Flush(seconds);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        Flush(seconds);
    }
}
