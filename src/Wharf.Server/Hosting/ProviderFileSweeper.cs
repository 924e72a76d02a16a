using Microsoft.Extensions.Options;
using Wharf.Core.Files;

namespace Wharf.Server.Hosting;

/// <summary>
/// Deletes upstream copies that no file needs any more, retrying with backoff until each provider confirms, and
/// looks for what copies cut by a stop of the process left upstream. Apart from the request paths: a slow or failing
/// provider only delays this loop.
/// </summary>
internal sealed partial class ProviderFileSweeper(
    UpstreamDeletions deletions,
    IOptions<ProviderFilesOptions> options,
    TimeProvider time,
    ILogger<ProviderFileSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.SweepIntervalSeconds), time);
        do
        {
            try
            {
                int done = await deletions.SweepAsync(stoppingToken);
                if (done > 0)
                {
                    LogSwept(logger, done);
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogSweepFailed(logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Provider file sweep deleted {Count} upstream copies.")]
    private static partial void LogSwept(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Provider file sweep failed; it will run again.")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
