using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Ports;

namespace Wharf.Server.Hosting;

/// <summary>
/// Runs before the server accepts requests: removes staged bytes a crash left behind (this process owns the data
/// directory, so nothing is being staged yet) and makes sure an API key exists.
/// </summary>
internal sealed class StartupTasks(
    IBlobStore blobs,
    KeyService keys,
    IOptions<WharfOptions> options,
    TimeProvider time,
    ILogger<StartupTasks> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        int staged = await blobs.SweepStagingAsync(time.GetUtcNow(), cancellationToken);
        if (staged > 0)
        {
            logger.LogInformation("Removed {Count} partial upload(s) left by an earlier run.", staged);
        }

        string? generated = await keys.BootstrapAsync(options.Value.Auth.BootstrapKey, cancellationToken);
        if (generated is not null)
        {
            // Printed once, to the console only (never to the log): it is not stored anywhere in clear.
            Console.WriteLine();
            Console.WriteLine("Wharf created an API key for workspace 'default'. It is shown only this once:");
            Console.WriteLine();
            Console.WriteLine("    " + generated);
            Console.WriteLine();
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
