namespace Wharf.Core.Webhooks;

/// <summary>
/// In-process news for the webhook sender on this node: an event was queued, send it now rather than at the next
/// poll. Events queued on other nodes are found by polling the outbox.
/// </summary>
public sealed class WebhookSignals : PollWakeUp
{
    public void EventQueued() => Wake();
}
