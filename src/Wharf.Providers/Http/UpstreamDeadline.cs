namespace Wharf.Providers.Http;

/// <summary>
/// A provider's timeout for one wait, on the injected <see cref="TimeProvider"/>: armed when the wait starts, its
/// token cancelled when it runs out. Kept apart from the caller's token, so that a timeout (the upstream's fault)
/// is never mistaken for a cancellation (the caller's choice).
/// </summary>
internal sealed class UpstreamDeadline : IDisposable
{
    private readonly CancellationTokenSource _expired = new();
    private readonly ITimer _timer;
    private readonly TimeSpan _timeout;

    public UpstreamDeadline(TimeProvider time, TimeSpan timeout)
    {
        _timeout = timeout;
        _timer = time.CreateTimer(static state => ((UpstreamDeadline)state!).Expire(), this, System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan);
    }

    public TimeSpan Length => _timeout;

    public CancellationToken Token => _expired.Token;

    public bool Expired => _expired.IsCancellationRequested;

    /// <summary>Starts (or restarts) the wait.</summary>
    public void Arm() => _timer.Change(_timeout, System.Threading.Timeout.InfiniteTimeSpan);

    /// <summary>Stops the wait; a deadline that already ran out stays expired.</summary>
    public void Disarm() => _timer.Change(System.Threading.Timeout.InfiniteTimeSpan, System.Threading.Timeout.InfiniteTimeSpan);

    private void Expire()
    {
        try
        {
            _expired.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The call ended as the timer fired.
        }
    }

    public void Dispose()
    {
        _timer.Dispose();
        _expired.Dispose();
    }
}
