using Microsoft.Extensions.Options;
using Wharf.Core.Auth;
using Wharf.Core.Ports;

namespace Wharf.Server.Hosting;

/// <summary>
/// Runs before the server accepts requests: removes staged bytes a crash left behind and makes sure an API key exists.
/// In a store this process owns (the data directory) nothing is being staged yet, so every staged blob goes; in a
/// shared store (a bucket of several nodes) another node's upload may be staging right now, so only staged blobs older
/// than <c>Wharf:Sweeper:OrphanGraceSeconds</c> go, as in the periodic sweep.
/// </summary>
internal sealed partial class StartupTasks(
    IBlobStore blobs,
    KeyService keys,
    IOptions<WharfOptions> options,
    TimeProvider time,
    ILogger<StartupTasks> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var olderThan = blobs.SharedByNodes ? now.AddSeconds(-options.Value.Sweeper.OrphanGraceSeconds) : now;
        int staged = await blobs.SweepStagingAsync(olderThan, cancellationToken);
        if (staged > 0)
        {
            LogStagingSwept(logger, staged, olderThan);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed {Count} partial upload(s) staged before {OlderThan:O} that no request holds.")]
    private static partial void LogStagingSwept(ILogger logger, int count, DateTimeOffset olderThan);
}
