using Wharf.Core.Ports;

namespace Wharf.Server.Hosting;

/// <summary>
/// Runs first when blobs live in another service (S3): a bucket that cannot be reached or used stops the start, with
/// the store's message naming the settings to check, instead of failing the first upload.
/// </summary>
internal sealed class BlobStoreStartCheck(IBlobStore blobs) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => blobs.CheckAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
