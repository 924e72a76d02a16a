using System.Diagnostics;
using System.Diagnostics.Metrics;
using Wharf.Core.Providers;

namespace Wharf.Providers.Decorators;

/// <summary>
/// The <c>Wharf.Providers</c> activity source and meter: one activity per upstream call, a counter of calls and a
/// histogram of their durations, tagged by provider id and type, operation, outcome and status. Tags never hold
/// a URL, a header, a body or anything from the request.
/// </summary>
internal sealed class ProviderTelemetry : IDisposable
{
    public const string Name = "Wharf.Providers";

    public static readonly ActivitySource Source = new(Name);

    private readonly Meter _meter;

    public ProviderTelemetry(IMeterFactory meters, RecentUpstreamOutcomes recent)
    {
        Recent = recent;
        _meter = meters.Create(Name);
        Calls = _meter.CreateCounter<long>("wharf.provider.calls", "{call}", "Upstream calls by provider, operation, outcome and status.");
        Duration = _meter.CreateHistogram<double>("wharf.provider.call.duration", "s",
            "Time from sending an upstream call to its outcome (for a streamed answer, its headers).",
            tags: null,
            // Seconds, from a fast local model to a slow long completion (an exporter's defaults are for milliseconds).
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] });
    }

    public Counter<long> Calls { get; }

    public Histogram<double> Duration { get; }

    /// <summary>The last outcomes of each provider, for the operator (<c>GET /admin/providers/{id}/outcomes</c>).</summary>
    public RecentUpstreamOutcomes Recent { get; }

    public void Dispose() => _meter.Dispose();
}
