using System.Threading.Channels;

namespace Wharf.Core.Webhooks;

/// <summary>
/// In-process news for the webhook sender on this node: an event was queued, send it now rather than at the next
/// poll. Events queued on other nodes are found by polling the outbox.
/// </summary>
public sealed class WebhookSignals
{
    private readonly Channel<bool> _queued = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    public void EventQueued() => _queued.Writer.TryWrite(true);

    /// <summary>Waits for <see cref="EventQueued"/> or for <paramref name="timeout"/> on <paramref name="time"/>, whichever comes first.</summary>
    public async Task WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        try
        {
            await _queued.Reader.WaitToReadAsync(linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return; // the timeout: time to poll the outbox
        }
        _queued.Reader.TryRead(out _);
    }
}
