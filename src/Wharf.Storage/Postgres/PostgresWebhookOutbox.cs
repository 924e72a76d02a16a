using Npgsql;
using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>
/// The webhook outbox in PostgreSQL (<c>webhook_events</c>, filled by <see cref="PostgresBatchCatalog.FinalizeAsync"/>).
/// A claim chooses the due events it may take, locks them with <c>FOR UPDATE SKIP LOCKED</c> (checking again, on the
/// newest version of each, that it is still due) and moves their next attempt to the claim's end, in one statement:
/// senders on several nodes polling at once never take the same event (one that another claim holds is skipped, to be
/// taken at a later poll if that claim did not move it), and an event being sent is not due for anyone until its claim
/// has run out. A sender's writes about an attempt hold only
/// while that claim is still the event's.
/// </summary>
internal sealed class PostgresWebhookOutbox(PostgresDatabase database) : IWebhookOutbox
{
    private const string Pending = "delivered_at IS NULL AND given_up_at IS NULL";

    public async Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(
        long nowUnixSeconds, long claimUntilUnixSeconds, int max, int maxPerWorkspace, IReadOnlyCollection<string> inFlightWorkspaces,
        CancellationToken cancellationToken)
    {
        // Polled every second on every node: a read on the due index first, so that an empty outbox costs no lock.
        if (max <= 0 || (await database.QueryAsync(
                $"SELECT 1 FROM webhook_events WHERE {Pending} AND next_attempt_at <= @now LIMIT 1;",
                p => p.AddInt64("@now", nowUnixSeconds), r => r.GetInt32(0), cancellationToken)).Count == 0)
        {
            return [];
        }
        // Each due event's place in its workspace's queue, after the workspace's events already in flight: only places
        // within the per-workspace bound are claimed, so one slow endpoint cannot take every slot. The workspace's URL
        // and secret are read as they are now: a removed URL or a deleted workspace reads as null.
        return await database.QueryAsync(
            $"""
            WITH busy AS (
                SELECT b.workspace_id, count(*) AS n FROM unnest(@busy) AS b(workspace_id) GROUP BY b.workspace_id),
            ranked AS (
                SELECT e.id, e.next_attempt_at,
                    row_number() OVER (PARTITION BY e.workspace_id ORDER BY e.next_attempt_at, e.id) + coalesce(busy.n, 0) AS place
                FROM webhook_events e LEFT JOIN busy ON busy.workspace_id = e.workspace_id
                WHERE e.delivered_at IS NULL AND e.given_up_at IS NULL AND e.next_attempt_at <= @now),
            chosen AS (
                SELECT id FROM ranked WHERE place <= @perWorkspace ORDER BY next_attempt_at, id LIMIT @max),
            locked AS (
                SELECT e.id FROM webhook_events e JOIN chosen ON chosen.id = e.id
                WHERE e.delivered_at IS NULL AND e.given_up_at IS NULL AND e.next_attempt_at <= @now
                FOR UPDATE OF e SKIP LOCKED),
            claimed AS (
                UPDATE webhook_events e SET next_attempt_at = @until FROM locked WHERE e.id = locked.id
                RETURNING e.id, e.workspace_id, e.type, e.created_at, e.payload, e.attempts)
            SELECT c.id, c.workspace_id, c.type, c.created_at, c.payload, c.attempts, w.webhook_url, w.webhook_secret
            FROM claimed c LEFT JOIN workspaces w ON w.id = c.workspace_id AND w.deleted_at IS NULL
            ORDER BY c.created_at, c.id;
            """,
            p =>
            {
                p.AddInt64("@now", nowUnixSeconds);
                p.AddInt64("@until", claimUntilUnixSeconds);
                p.AddInt64("@perWorkspace", maxPerWorkspace);
                p.AddInt32("@max", max);
                p.AddTextArray("@busy", inFlightWorkspaces);
            },
            r => new WebhookDelivery(
                r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetString(4), r.GetInt32(5), claimUntilUnixSeconds,
                r.NullableString(6), r.NullableString(7)),
            cancellationToken);
    }

    public Task MarkDeliveredAsync(string eventId, int attempts, long nowUnixSeconds, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            $"UPDATE webhook_events SET delivered_at = @now, attempts = @attempts, last_error = NULL WHERE id = @id AND {Pending};",
            p => { p.AddText("@id", eventId); p.AddInt32("@attempts", attempts); p.AddInt64("@now", nowUnixSeconds); },
            cancellationToken);

    public async Task<bool> RescheduleAsync(
        string eventId, long claimedUntil, int attempts, long nextAttemptUnixSeconds, string lastError, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            $"""
            UPDATE webhook_events SET next_attempt_at = @next, attempts = @attempts, last_error = @error
            WHERE id = @id AND next_attempt_at = @claim AND {Pending};
            """,
            p =>
            {
                p.AddText("@id", eventId);
                p.AddInt64("@claim", claimedUntil);
                p.AddInt32("@attempts", attempts);
                p.AddInt64("@next", nextAttemptUnixSeconds);
                p.AddText("@error", lastError);
            },
            cancellationToken) > 0;

    public async Task<bool> GiveUpAsync(
        string eventId, long claimedUntil, int attempts, long nowUnixSeconds, string reason, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            $"""
            UPDATE webhook_events SET given_up_at = @now, attempts = @attempts, last_error = @reason
            WHERE id = @id AND next_attempt_at = @claim AND {Pending};
            """,
            p =>
            {
                p.AddText("@id", eventId);
                p.AddInt64("@claim", claimedUntil);
                p.AddInt32("@attempts", attempts);
                p.AddInt64("@now", nowUnixSeconds);
                p.AddText("@reason", reason);
            },
            cancellationToken) > 0;

    public Task<WebhookEventState?> GetAsync(string eventId, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            """
            SELECT id, workspace_id, type, created_at, payload, attempts, next_attempt_at, last_error, delivered_at, given_up_at
            FROM webhook_events WHERE id = @id;
            """,
            p => p.AddText("@id", eventId),
            r => new WebhookEventState(
                r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetString(4), r.GetInt32(5), r.GetInt64(6),
                r.NullableString(7), r.NullableInt64(8), r.NullableInt64(9)),
            cancellationToken);
}
