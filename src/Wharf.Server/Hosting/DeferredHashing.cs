using Wharf.Core.Uploads;

namespace Wharf.Server.Hosting;

/// <summary>Runs the background pass that sets the SHA-256 of files completed from out-of-order parts.</summary>
internal sealed class DeferredHashing(DeferredFileHasher hasher) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await hasher.RunAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
