using System.Text.Json;
using Wharf.Core.Ids;
using Wharf.Core.Ports;
using Wharf.Core.Telemetry;
using Wharf.Core.Webhooks;

namespace Wharf.Core.Batches;

/// <summary>
/// Ends a batch for either execution: its result files (made of its chunks), its final status and timestamps, and
/// OpenAI's webhook event (<c>batch.completed</c>, <c>batch.failed</c>, <c>batch.expired</c>,
/// <c>batch.cancelled</c>), written in one transaction so the event is queued only once the status is stored.
/// </summary>
/// <param name="webhooks">Told when an event is queued, so this node's sender sends it at once.</param>
/// <param name="metrics">Counts ended batches (their lines are counted as they end); none when the host measures nothing.</param>
public sealed class BatchFinalizer(IBatchCatalog catalog, IdGenerator ids, TimeProvider time, WebhookSignals? webhooks = null, WharfMetrics? metrics = null)
{
    /// <summary>
    /// Ends <paramref name="batch"/> with <paramref name="status"/> (completed, failed, expired or cancelled), setting
    /// that status's timestamp. Returns the batch as stored, or null when the lease was lost (nothing written).
    /// </summary>
    public async Task<BatchRecord?> FinalizeAsync(BatchRecord batch, string status, string owner, CancellationToken cancellationToken)
    {
        if (!BatchStatus.IsFinal(status))
        {
            throw new ArgumentException($"'{status}' is not a final batch status.", nameof(status));
        }
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        var ended = batch with
        {
            Status = status,
            CompletedAt = status == BatchStatus.Completed ? now : batch.CompletedAt,
            FailedAt = status == BatchStatus.Failed ? now : batch.FailedAt,
            ExpiredAt = status == BatchStatus.Expired ? now : batch.ExpiredAt,
            CancelledAt = status == BatchStatus.Cancelled ? now : batch.CancelledAt,
        };
        var stored = await catalog.FinalizeAsync(new BatchFinal
        {
            Batch = ended,
            OutputFileId = WharfIds.File(ids.Next()),
            ErrorFileId = WharfIds.File(ids.Next()),
            FilesCreatedAt = now,
            Event = Event(ended, now),
        }, owner, cancellationToken);
        if (stored is not null)
        {
            webhooks?.EventQueued(); // queued only when the workspace has a webhook URL; a wake-up for nothing costs a poll
            metrics?.BatchEnded(stored.Status);
        }
        return stored;
    }

    private WebhookEvent Event(BatchRecord batch, long now)
    {
        string id = WharfIds.Hex(WharfIds.EventPrefix, ids.Next());
        string type = "batch." + batch.Status;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", "event");
            json.WriteNumber("created_at", now);
            json.WriteString("type", type);
            json.WriteStartObject("data");
            json.WriteString("id", batch.Id);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return new WebhookEvent(id, batch.WorkspaceId, type, now, System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
    }
}
