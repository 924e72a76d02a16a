using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Wharf.Core.Telemetry;

namespace Wharf.Core.Tests.Batches;

/// <summary>
/// A meter factory of a test's own: the meters it makes are scoped to it, so a listener on them hears only this test's
/// services, whatever other tests of the assembly measure meanwhile.
/// </summary>
internal sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
        lock (_meters)
        {
            _meters.Add(meter);
        }
        return meter;
    }

    public void Dispose()
    {
        lock (_meters)
        {
            _meters.ForEach(m => m.Dispose());
            _meters.Clear();
        }
    }
}

/// <summary>Adds up <c>wharf.batch.lines</c> by state, as measured by the meters of one <see cref="TestMeterFactory"/>.</summary>
internal sealed class BatchLineCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _byState = new(StringComparer.Ordinal);

    public BatchLineCounter(TestMeterFactory factory)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Scope == factory && instrument.Meter.Name == WharfMetrics.MeterName && instrument.Name == "wharf.batch.lines")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "wharf.batch.line.state" && tag.Value is string state)
                {
                    _byState.AddOrUpdate(state, value, (_, sum) => sum + value);
                }
            }
        });
        _listener.Start();
    }

    public long Completed => _byState.GetValueOrDefault("completed");

    public long Failed => _byState.GetValueOrDefault("failed");

    public void Dispose() => _listener.Dispose();
}
