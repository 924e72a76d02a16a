using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// The webhook outbox in SQLite (<c>webhook_events</c>, filled by <see cref="SqliteBatchCatalog.FinalizeAsync"/>). A
/// claim moves the events' next attempt to the claim's end, so an event being sent is not due for anyone else until
/// then; the sender's writes about an attempt hold only while that claim is still the event's.
/// </summary>
internal sealed class SqliteWebhookOutbox(SqliteDatabase database) : IWebhookOutbox
{
    private const string Pending = "delivered_at IS NULL AND given_up_at IS NULL";

    public Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(
        long nowUnixSeconds, long claimUntilUnixSeconds, int max, int maxPerWorkspace, IReadOnlyCollection<string> inFlightWorkspaces,
        CancellationToken cancellationToken)
    {
        // Polled every second on every node: a read on the due index first, so that an empty outbox costs no write
        // transaction in the queue the batch engine's writes share.
        if (max <= 0 || database.Query(
                $"SELECT 1 FROM webhook_events WHERE {Pending} AND next_attempt_at <= $now LIMIT 1;",
                [new("$now", nowUnixSeconds)], r => r.Int64(0), cancellationToken).Count == 0)
        {
            return Task.FromResult<IReadOnlyList<WebhookDelivery>>([]);
        }
        return database.WriteAsync<IReadOnlyList<WebhookDelivery>>(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            // Each due event's place in its workspace's queue, after the workspace's events already in flight: only
            // places within the per-workspace bound are claimed, so one slow endpoint cannot take every slot.
            command.CommandText = $"""
                UPDATE webhook_events SET next_attempt_at = $until
                WHERE id IN (
                    SELECT id FROM (
                        SELECT e.id, e.next_attempt_at,
                            row_number() OVER (PARTITION BY e.workspace_id ORDER BY e.next_attempt_at, e.id) + coalesce(busy.n, 0) AS place
                        FROM webhook_events e
                        LEFT JOIN (SELECT value AS workspace_id, count(*) AS n FROM json_each($busy) GROUP BY value) busy
                            ON busy.workspace_id = e.workspace_id
                        WHERE e.delivered_at IS NULL AND e.given_up_at IS NULL AND e.next_attempt_at <= $now)
                    WHERE place <= $perWorkspace
                    ORDER BY next_attempt_at, id {SqliteDatabase.Limit(max)})
                RETURNING id;
                """;
            command.Parameters.AddWithValue("$until", claimUntilUnixSeconds);
            command.Parameters.AddWithValue("$now", nowUnixSeconds);
            command.Parameters.AddWithValue("$perWorkspace", maxPerWorkspace);
            command.Parameters.AddWithValue("$busy", JsonSerializer.Serialize(inFlightWorkspaces, StorageJsonContext.Default.IReadOnlyCollectionString));
            var ids = new List<string>();
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    ids.Add(reader.GetString(0));
                }
            }
            if (ids.Count == 0)
            {
                return [];
            }
            // The workspace's URL and secret as they are now: a removed URL or a deleted workspace reads as null.
            command.Parameters.Clear();
            command.CommandText = """
                SELECT e.id, e.workspace_id, e.type, e.created_at, e.payload, e.attempts, w.webhook_url, w.webhook_secret
                FROM webhook_events e LEFT JOIN workspaces w ON w.id = e.workspace_id AND w.deleted_at IS NULL
                WHERE e.id IN (SELECT value FROM json_each($ids))
                ORDER BY e.created_at, e.id;
                """;
            command.Parameters.AddWithValue("$ids", JsonSerializer.Serialize(ids, StorageJsonContext.Default.IReadOnlyListString));
            var claimed = new List<WebhookDelivery>(ids.Count);
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    claimed.Add(new WebhookDelivery(
                        reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetString(4),
                        reader.GetInt32(5), claimUntilUnixSeconds,
                        reader.IsDBNull(6) ? null : reader.GetString(6),
                        reader.IsDBNull(7) ? null : reader.GetString(7)));
                }
            }
            return claimed;
        }, cancellationToken);
    }

    public Task MarkDeliveredAsync(string eventId, int attempts, long nowUnixSeconds, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            $"UPDATE webhook_events SET delivered_at = $now, attempts = $attempts, last_error = NULL WHERE id = $id AND {Pending};",
            p =>
            {
                p.AddWithValue("$id", eventId);
                p.AddWithValue("$attempts", attempts);
                p.AddWithValue("$now", nowUnixSeconds);
            },
            cancellationToken);

    public async Task<bool> RescheduleAsync(
        string eventId, long claimedUntil, int attempts, long nextAttemptUnixSeconds, string lastError, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            $"""
            UPDATE webhook_events SET next_attempt_at = $next, attempts = $attempts, last_error = $error
            WHERE id = $id AND next_attempt_at = $claim AND {Pending};
            """,
            p =>
            {
                p.AddWithValue("$id", eventId);
                p.AddWithValue("$claim", claimedUntil);
                p.AddWithValue("$attempts", attempts);
                p.AddWithValue("$next", nextAttemptUnixSeconds);
                p.AddWithValue("$error", lastError);
            },
            cancellationToken) > 0;

    public async Task<bool> GiveUpAsync(
        string eventId, long claimedUntil, int attempts, long nowUnixSeconds, string reason, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            $"""
            UPDATE webhook_events SET given_up_at = $now, attempts = $attempts, last_error = $reason
            WHERE id = $id AND next_attempt_at = $claim AND {Pending};
            """,
            p =>
            {
                p.AddWithValue("$id", eventId);
                p.AddWithValue("$claim", claimedUntil);
                p.AddWithValue("$attempts", attempts);
                p.AddWithValue("$now", nowUnixSeconds);
                p.AddWithValue("$reason", reason);
            },
            cancellationToken) > 0;

    public Task<WebhookEventState?> GetAsync(string eventId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            """
            SELECT id, workspace_id, type, created_at, payload, attempts, next_attempt_at, last_error, delivered_at, given_up_at
            FROM webhook_events WHERE id = $id;
            """,
            [new("$id", eventId)],
            r => new WebhookEventState(
                r.String(0), r.String(1), r.String(2), r.Int64(3), r.String(4), (int)r.Int64(5), r.Int64(6),
                r.NullableString(7), r.NullableInt64(8), r.NullableInt64(9)),
            cancellationToken);
}
