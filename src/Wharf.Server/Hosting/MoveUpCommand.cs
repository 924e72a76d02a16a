using System.Runtime.InteropServices;
using Microsoft.Extensions.Options;
using Wharf.Storage;
using Wharf.Storage.MoveUp;
using Wharf.Storage.S3;

namespace Wharf.Server.Hosting;

/// <summary>
/// <c>Wharf.Server move-up [--Wharf:DataDir=...] [--Wharf:Storage:Postgres:ConnectionString=...] [--Wharf:Storage:S3:...]</c>:
/// copies the embedded store of <c>Wharf:DataDir</c> into the PostgreSQL catalog and S3 bucket configured as for a
/// scale-out node, and verifies it (docs/moving-up.md). Settings come from the same places as the server's
/// (appsettings.json, <c>Wharf__...</c> environment variables, the command line). Progress goes to stdout, problems
/// to stderr; the exit code says how it ended.
/// </summary>
internal static class MoveUpCommand
{
    public const string Name = "move-up";

    /// <summary>Everything was copied and verified.</summary>
    public const int ExitVerified = 0;

    /// <summary>Refused (nothing copied), a verification that found a difference, or a failure of a service on the way.</summary>
    public const int ExitFailed = 1;

    /// <summary>A setting is missing or invalid; nothing was touched.</summary>
    public const int ExitBadSettings = 2;

    /// <summary>Stopped by Ctrl-C or SIGTERM; running it again continues.</summary>
    public const int ExitInterrupted = 130;

    private static IEnumerable<string> Validate<T>(IServiceProvider services) where T : class
    {
        try
        {
            _ = services.GetRequiredService<IOptions<T>>().Value;
            return [];
        }
        catch (OptionsValidationException ex)
        {
            return ex.Failures;
        }
    }

    public static bool IsRequested(string[] args) => args.Length > 0 && args[0] == Name;

    public static async Task<int> RunAsync(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args[1..], ContentRootPath = AppContext.BaseDirectory });
        // Log lines (a warning of the S3 client, say) go to stderr, so that stdout holds the progress alone.
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.AddOptions<MoveUpOptions>().BindConfiguration(MoveUpOptions.Section).ValidateDataAnnotations();
        builder.Services.AddMoveUp(builder.Configuration);
        using var host = builder.Build();

        // Every setting is checked before anything is touched, and every problem named at once.
        List<string> failures = [.. Validate<MoveUpOptions>(host.Services), .. Validate<PostgresCatalogOptions>(host.Services), .. Validate<S3StorageOptions>(host.Services)];
        if (failures.Count > 0)
        {
            foreach (string failure in failures)
            {
                await Console.Error.WriteLineAsync("move-up: " + failure);
            }
            return ExitBadSettings;
        }
        var mover = host.Services.GetRequiredService<IEmbeddedStoreMover>();

        using var stop = new CancellationTokenSource();
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal => { signal.Cancel = true; stop.Cancel(); });
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal => { signal.Cancel = true; stop.Cancel(); });
        var progress = new MoveUpConsole(Console.Out, TimeProvider.System);
        try
        {
            var result = await mover.RunAsync(progress, stop.Token);
            progress.Finished(result, Console.Error);
            return result.Outcome == MoveUpOutcome.Verified ? ExitVerified : ExitFailed;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("move-up: interrupted. What was copied stays; run the same command again to continue.");
            return ExitInterrupted;
        }
        catch (InvalidDataException ex)
        {
            // The store holds something Wharf never writes: running again would stop at the same place.
            await Console.Error.WriteLineAsync("move-up: stopped: " + ex.Message);
            return ExitFailed;
        }
        catch (Exception ex)
        {
            // A service failed on the way (the database or the bucket went away, the disk could not be read): the message
            // says which; the stack is not for the operator.
            await Console.Error.WriteLineAsync($"move-up: stopped: {ex.Message}{(ex.InnerException is { } inner ? " (" + inner.Message + ")" : "")}");
            await Console.Error.WriteLineAsync("move-up: what was copied stays; run the same command again to continue.");
            return ExitFailed;
        }
    }
}
