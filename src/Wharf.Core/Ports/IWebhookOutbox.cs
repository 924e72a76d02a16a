namespace Wharf.Core.Ports;

/// <summary>
/// The outbox of webhook events: each is queued in the same transaction as what it reports (a batch's final status)
/// and stays until it is delivered or given up, with its schedule, so a restart loses none and sends what was due.
/// A sender claims due events for a while (their next attempt moves to the claim's end), so that another sender, or
/// this one after a crash, sends an event again only once the claim has run out.
/// </summary>
public interface IWebhookOutbox
{
    /// <summary>
    /// Claims at most <paramref name="max"/> events due at <paramref name="nowUnixSeconds"/> (oldest schedule first)
    /// until <paramref name="claimUntilUnixSeconds"/>, with at most <paramref name="maxPerWorkspace"/> of one
    /// workspace counting those it already has in flight (<paramref name="inFlightWorkspaces"/>: a workspace's id once
    /// per event of it in flight). Each comes with its workspace's webhook URL and secret as they are now: null when
    /// the URL was removed or the workspace deleted.
    /// </summary>
    Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(
        long nowUnixSeconds, long claimUntilUnixSeconds, int max, int maxPerWorkspace, IReadOnlyCollection<string> inFlightWorkspaces,
        CancellationToken cancellationToken);

    /// <summary>Records the event delivered (a 2xx) after <paramref name="attempts"/> attempts.</summary>
    Task MarkDeliveredAsync(string eventId, int attempts, long nowUnixSeconds, CancellationToken cancellationToken);

    /// <summary>
    /// Records a failed attempt and the next one's time, while the claim (<paramref name="claimedUntil"/>) is still the
    /// event's; false (nothing written) when it is not, or the event was delivered meanwhile.
    /// </summary>
    Task<bool> RescheduleAsync(string eventId, long claimedUntil, int attempts, long nextAttemptUnixSeconds, string lastError, CancellationToken cancellationToken);

    /// <summary>
    /// Gives the event up with <paramref name="reason"/> (kept), while the claim is still the event's; false (nothing
    /// written) when it is not, or the event was delivered meanwhile.
    /// </summary>
    Task<bool> GiveUpAsync(string eventId, long claimedUntil, int attempts, long nowUnixSeconds, string reason, CancellationToken cancellationToken);

    /// <summary>An event's delivery state; null when unknown.</summary>
    Task<WebhookEventState?> GetAsync(string eventId, CancellationToken cancellationToken);
}

/// <summary>A claimed event, with where and how to send it as its workspace says now.</summary>
/// <param name="Payload">The JSON body, sent and signed as it is.</param>
/// <param name="Attempts">Attempts made before this one.</param>
/// <param name="ClaimedUntil">The claim's end: what fences the sender's writes about this attempt.</param>
/// <param name="Url">The workspace's webhook URL; null when it was removed or the workspace deleted.</param>
/// <param name="Secret">The workspace's webhook secret (<c>whsec_...</c>).</param>
public sealed record WebhookDelivery(
    string EventId, string WorkspaceId, string Type, long CreatedAt, string Payload, int Attempts, long ClaimedUntil,
    string? Url, string? Secret);

/// <summary>An event's delivery state in the outbox.</summary>
public sealed record WebhookEventState(
    string EventId, string WorkspaceId, string Type, long CreatedAt, string Payload, int Attempts, long NextAttemptAt,
    string? LastError, long? DeliveredAt, long? GivenUpAt);
