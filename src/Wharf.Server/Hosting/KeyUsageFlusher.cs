using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Ports;

namespace Wharf.Server.Hosting;

/// <summary>Writes keys' last-used times to the catalog every few seconds, and once more at shutdown.</summary>
internal sealed class KeyUsageFlusher(
    KeyUsageTracker tracker,
    IKeyCatalog keys,
    IOptions<WharfOptions> options,
    TimeProvider time,
    ILogger<KeyUsageFlusher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.Auth.LastUsedFlushSeconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        await FlushAsync(CancellationToken.None);
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            await tracker.FlushAsync(keys, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "Could not record when keys were last used; will try again.");
        }
    }
}
