using System.Threading.Channels;

namespace Wharf.Core;

/// <summary>
/// Wakes a background service that polls the catalog when work was added on this node, so it need not wait for its
/// next poll; work added on other nodes is found by the poll. Wake-ups while it works collapse into one.
/// </summary>
public abstract class PollWakeUp
{
    private readonly Channel<bool> _wakeUps = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    protected void Wake() => _wakeUps.Writer.TryWrite(true);

    /// <summary>Waits for a wake-up or for <paramref name="timeout"/> on <paramref name="time"/>, whichever comes first.</summary>
    public async Task WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        try
        {
            await _wakeUps.Reader.WaitToReadAsync(linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return; // the timeout: time to poll
        }
        _wakeUps.Reader.TryRead(out _);
    }
}
