using Wharf.Core.Streams;

namespace Wharf.Providers.Http;

/// <summary>
/// A streamed upstream body (server-sent events) as handed on: each read must bring something within the provider's
/// timeout, else it fails with an <see cref="IOException"/> (a stalled upstream ends the stream like a dropped one).
/// The caller's token cancels a read as such.
/// </summary>
internal sealed class UpstreamBodyStream(Stream inner, UpstreamDeadline idle) : ForwardReadStream
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        idle.Arm();
        try
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, idle.Token);
            return await inner.ReadAsync(buffer, linked.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested && idle.Expired)
        {
            throw new IOException($"The upstream sent nothing for {idle.Length.TotalSeconds:0.#} s.", new TimeoutException(e.Message));
        }
        finally
        {
            idle.Disarm();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            idle.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        idle.Dispose();
        await base.DisposeAsync();
    }
}
