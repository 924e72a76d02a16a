using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Wharf.Core.Ports;
using Wharf.Core.Telemetry;

namespace Wharf.Server.Hosting;

/// <summary>
/// Bytes stored and files held per workspace, as observable gauges on the <c>Wharf</c> meter, tagged by workspace id.
/// The series stay bounded: only the <c>Wharf:Metrics:WorkspaceSeries</c> workspaces that hold the most bytes are
/// measured, read from the catalog every <c>Wharf:Metrics:WorkspaceRefreshSeconds</c> (never on a scrape, so a
/// scrape costs the catalog nothing and a slow catalog never slows a scrape).
/// </summary>
internal sealed partial class WorkspaceUsageGauges : BackgroundService
{
    private readonly IWorkspaceUsageReader _reader;
    private readonly MetricsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkspaceUsageGauges> _logger;
    private volatile IReadOnlyList<WorkspaceStorage> _latest = [];

    public WorkspaceUsageGauges(
        IWorkspaceUsageReader reader, IMeterFactory meters, IOptions<WharfOptions> options, TimeProvider time, ILogger<WorkspaceUsageGauges> logger)
    {
        _reader = reader;
        _options = options.Value.Metrics;
        _time = time;
        _logger = logger;
        var meter = meters.Create(WharfMetrics.MeterName);
        meter.CreateObservableGauge("wharf.workspace.stored_bytes", () => Measure(static s => s.Bytes), "By",
            "Bytes a workspace holds (its usage, as the storage quota counts it), for the workspaces that hold the most.");
        meter.CreateObservableGauge("wharf.workspace.files", () => Measure(static s => s.Files), "{file}",
            "Files a workspace holds, for the workspaces that hold the most bytes.");
    }

    private IEnumerable<Measurement<long>> Measure(Func<WorkspaceStorage, long> value)
    {
        foreach (var workspace in _latest)
        {
            yield return new Measurement<long>(value(workspace), new KeyValuePair<string, object?>("wharf.workspace.id", workspace.WorkspaceId));
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.WorkspaceSeries == 0)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_options.WorkspaceRefreshSeconds), _time);
        do
        {
            try
            {
                _latest = await _reader.ListLargestAsync(_options.WorkspaceSeries, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ReadFailed(_logger, e); // the last values stay until a read succeeds
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading the workspaces' usage for the metrics failed; the gauges keep their last values.")]
    private static partial void ReadFailed(ILogger logger, Exception exception);
}
