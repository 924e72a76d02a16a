using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Wharf.Server.Hosting;

/// <summary>
/// Counts the connections Kestrel refuses at <see cref="ServerLimitsOptions.MaxConcurrentConnections"/> (its
/// <c>kestrel.rejected_connections</c> counter) and logs them as one line per interval: Kestrel's own warning, one
/// per connection, is silenced in appsettings.json, since a client opening connections in a loop would flood the log.
/// </summary>
internal sealed partial class RefusedConnectionLog(
    IOptions<ServerLimitsOptions> options,
    IOptions<KestrelServerOptions> kestrel,
    TimeProvider time,
    ILogger<RefusedConnectionLog> logger) : IntervalLog(time)
{
    private long _refused;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var listener = new MeterListener();
        listener.InstrumentPublished = static (instrument, meters) =>
        {
            if (instrument.Meter.Name == "Microsoft.AspNetCore.Server.Kestrel" && instrument.Name == "kestrel.rejected_connections")
            {
                meters.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref _refused, value));
        listener.Start();

        await base.ExecuteAsync(stoppingToken);
    }

    protected override int IntervalSeconds => options.Value.RefusedConnectionsLogSeconds;

    protected override void Flush(int seconds)
    {
        long refused = Interlocked.Exchange(ref _refused, 0);
        if (refused > 0)
        {
            RefusedConnections(logger, refused, seconds, kestrel.Value.Limits.MaxConcurrentConnections ?? 0);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "{Refused} connection(s) refused in the last {Seconds} s: the server already held its maximum of {Max} (Wharf:Server:MaxConcurrentConnections).")]
    private static partial void RefusedConnections(ILogger logger, long refused, int seconds, long max);
}
