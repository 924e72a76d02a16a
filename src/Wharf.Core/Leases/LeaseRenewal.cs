namespace Wharf.Core.Leases;

/// <summary>
/// Keeps a lease alive while work runs under it: renews it at a fixed interval (a third of its length, so that a
/// renewal that fails has two more chances before the lease runs out) and, when a renewal finds the lease in other
/// hands, cancels the work at once. A renewal that throws (the catalog out of reach) is reported and tried again at
/// the next interval. Ends when the work is cancelled, which is also how the caller stops it once the work is done.
/// </summary>
public static class LeaseRenewal
{
    public static async Task KeepAsync(
        Func<CancellationToken, Task<bool>> renew, TimeSpan interval, TimeProvider time, CancellationTokenSource work,
        Action<Exception> renewalFailed, Action lost)
    {
        try
        {
            while (true)
            {
                await Task.Delay(interval, time, work.Token);
                bool held;
                try
                {
                    held = await renew(work.Token);
                }
                catch (Exception ex) when (!work.IsCancellationRequested)
                {
                    renewalFailed(ex);
                    continue;
                }
                if (!held)
                {
                    lost();
                    await work.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (work.IsCancellationRequested)
        {
        }
    }
}
