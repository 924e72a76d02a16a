using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Wharf.Core.Telemetry;

/// <summary>
/// The <c>Wharf</c> meter: what the gateway itself does, beside the framework's HTTP meters and the upstream calls of
/// <c>Wharf.Providers</c>. Every tag has a bounded set of values (a provider id, an endpoint, a status, an outcome):
/// never a file, batch or key id, never anything from a request.
/// </summary>
public sealed class WharfMetrics : IDisposable
{
    public const string MeterName = "Wharf";

    private readonly Meter _meter;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _fallbacks;
    private readonly Counter<long> _batches;
    private readonly Counter<long> _batchLines;
    private readonly UpDownCounter<long> _uploadsInFlight;
    private readonly Counter<long> _webhookDeliveries;

    public WharfMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        _retries = _meter.CreateCounter<long>("wharf.routing.retries", "{retry}", "Upstream calls retried on the same provider, by provider and endpoint.");
        _fallbacks = _meter.CreateCounter<long>("wharf.routing.fallbacks", "{fallback}",
            "Model requests moved on to a next candidate provider after one failed, by the provider fallen back to and endpoint.");
        _batches = _meter.CreateCounter<long>("wharf.batches.ended", "{batch}", "Batches that ended, by final status.");
        _batchLines = _meter.CreateCounter<long>("wharf.batch.lines", "{line}",
            "Batch lines as they end, by state (completed, failed): each counted once, when the catalog records it.");
        _uploadsInFlight = _meter.CreateUpDownCounter<long>("wharf.uploads.in_flight", "{upload}",
            "Request bodies being streamed to storage now, by kind (file, part).");
        _webhookDeliveries = _meter.CreateCounter<long>("wharf.webhook.deliveries", "{delivery}",
            "Webhook delivery attempts, by outcome (delivered, retry, gave_up).");
    }

    public void Retried(string provider, string endpoint) =>
        _retries.Add(1, new TagList { { "wharf.provider.id", provider }, { "wharf.endpoint", endpoint } });

    public void FellBack(string provider, string endpoint) =>
        _fallbacks.Add(1, new TagList { { "wharf.provider.id", provider }, { "wharf.endpoint", endpoint } });

    public void BatchEnded(string status) =>
        _batches.Add(1, new KeyValuePair<string, object?>("wharf.batch.status", status));

    /// <summary>
    /// Counts lines that ended, at the write that recorded them in the catalog (a gateway chunk, a native batch's
    /// mirrored counts): that write happens once per line, whichever node holds the batch, so a line is counted once
    /// across crashes and lease handovers, and progress shows while a batch runs.
    /// </summary>
    public void BatchLinesEnded(int completed, int failed)
    {
        if (completed > 0)
        {
            _batchLines.Add(completed, new KeyValuePair<string, object?>("wharf.batch.line.state", "completed"));
        }
        if (failed > 0)
        {
            _batchLines.Add(failed, new KeyValuePair<string, object?>("wharf.batch.line.state", "failed"));
        }
    }

    /// <summary>Counts a body being streamed to storage until the returned value is disposed.</summary>
    public InFlight UploadStarted(string kind)
    {
        var tag = new KeyValuePair<string, object?>("wharf.upload.kind", kind);
        _uploadsInFlight.Add(1, tag);
        return new InFlight(_uploadsInFlight, tag);
    }

    public void WebhookDelivery(string outcome) =>
        _webhookDeliveries.Add(1, new KeyValuePair<string, object?>("wharf.webhook.outcome", outcome));

    public void Dispose() => _meter.Dispose();

    /// <summary>One body in flight; disposing it ends the count.</summary>
    public readonly struct InFlight(UpDownCounter<long> counter, KeyValuePair<string, object?> tag) : IDisposable
    {
        public void Dispose() => counter?.Add(-1, tag);
    }
}
