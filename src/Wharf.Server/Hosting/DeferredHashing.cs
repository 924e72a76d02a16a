using Wharf.Core.Uploads;

namespace Wharf.Server.Hosting;

/// <summary>Runs the background pass that sets the SHA-256 of files completed from out-of-order parts.</summary>
internal sealed class DeferredHashing(DeferredFileHasher hasher) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the start-up path: the host waits for the synchronous start of every ExecuteAsync before it listens.
        await Task.Yield();
        try
        {
            await hasher.RunAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
