using Wharf.Core.Streams;

namespace Wharf.Providers.Http;

/// <summary>What was read of a body already (<paramref name="first"/>), then the rest of it (<paramref name="rest"/>).</summary>
internal sealed class ConcatenatedStream(Stream first, Stream rest) : ForwardReadStream
{
    private bool _firstDone;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_firstDone)
        {
            int read = await first.ReadAsync(buffer, cancellationToken);
            if (read > 0 || buffer.IsEmpty)
            {
                return read;
            }
            _firstDone = true;
        }
        return await rest.ReadAsync(buffer, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            first.Dispose();
            rest.Dispose();
        }
        base.Dispose(disposing);
    }
}
