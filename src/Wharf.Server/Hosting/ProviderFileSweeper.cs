using Microsoft.Extensions.Options;
using Wharf.Core.Files;

namespace Wharf.Server.Hosting;

/// <summary>
/// Deletes upstream copies that no file needs any more, retrying with backoff until each provider confirms, and
/// looks for what copies cut by a stop of the process left upstream. Apart from the request paths: a slow or failing
/// provider only delays this loop. With several nodes, one at a time runs it: the holder of the
/// <see cref="LeaseName"/> lease (<see cref="SweepLeases"/>).
/// </summary>
internal sealed partial class ProviderFileSweeper(
    UpstreamDeletions deletions,
    SweepLeases leases,
    IOptions<ProviderFilesOptions> options,
    ILogger<ProviderFileSweeper> logger) : BackgroundService
{
    /// <summary>The lease that decides which node sweeps upstream deletions and interrupted copies.</summary>
    public const string LeaseName = "provider-file-sweep";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        await leases.RunRoundsAsync(
            LeaseName, TimeSpan.FromSeconds(options.Value.SweepIntervalSeconds), SweepAsync, null, ex => LogSweepFailed(logger, ex), stoppingToken);
    }

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        int done = await deletions.SweepAsync(cancellationToken);
        if (done > 0)
        {
            LogSwept(logger, done);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Provider file sweep deleted {Count} upstream copies.")]
    private static partial void LogSwept(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Provider file sweep failed; it will run again.")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
