using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Wharf.Core.Errors;
using Wharf.Server.Errors;
using Wharf.Server.Hosting;

namespace Wharf.Server.Auth;

/// <summary>
/// Failed authentications per client address: the framework's token bucket, <c>Wharf:Auth:FailureBurst</c> deep,
/// refilled at <c>Wharf:Auth:FailuresPerMinute</c>. A failure past the allowance is a 429 with <c>Retry-After</c>
/// instead of a 401. Only failures are counted and only failures are refused: a correct key from the same address
/// (a NAT, a proxy) is served as always.
/// </summary>
/// <remarks>
/// Memory is bounded by construction: an address (an IPv6 one by its /64, what one host holds) is hashed with the
/// process's random seed into one of <see cref="Slots"/> buckets, so the limiter never holds more than that many
/// partitions, however many addresses fail. Two addresses in one bucket share its allowance; as only failing requests
/// are refused, that costs a wrong key a 429 in place of a 401, never a correct key its answer.
/// </remarks>
internal sealed class FailedAuthenticationLimiter : IDisposable
{
    public const int Slots = 4096;

    private readonly PartitionedRateLimiter<int> _limiter;
    private readonly TimeSpan _refillPeriod;

    public FailedAuthenticationLimiter(IOptions<WharfOptions> options)
    {
        var auth = options.Value.Auth;
        // As for keys: from 60 a minute up, a refill every second; below, one token every 60/rate seconds.
        (int tokensPerPeriod, _refillPeriod) = auth.FailuresPerMinute >= 60
            ? (auth.FailuresPerMinute / 60, TimeSpan.FromSeconds(1))
            : (1, TimeSpan.FromSeconds(60.0 / auth.FailuresPerMinute));
        var bucket = new TokenBucketRateLimiterOptions
        {
            TokenLimit = auth.FailureBurst,
            TokensPerPeriod = tokensPerPeriod,
            ReplenishmentPeriod = _refillPeriod,
            QueueLimit = 0,
            AutoReplenishment = true,
        };
        _limiter = PartitionedRateLimiter.Create<int, int>(slot => RateLimitPartition.GetTokenBucketLimiter(slot, _ => bucket));
    }

    /// <summary>
    /// Counts one failed authentication of this request's client. True when it is within the allowance (answer 401);
    /// false when it is over, with the time after which another attempt is counted again.
    /// </summary>
    public bool TryCount(HttpContext context, out TimeSpan retryAfter)
    {
        using var lease = _limiter.AttemptAcquire(SlotOf(context.Connection.RemoteIpAddress));
        if (lease.IsAcquired)
        {
            retryAfter = TimeSpan.Zero;
            return true;
        }
        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan after) ? after : _refillPeriod;
        return false;
    }

    /// <summary>The 429 for a client over its allowance of failed authentications.</summary>
    public static Task RefuseAsync(HttpContext context, TimeSpan retryAfter)
    {
        int seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return ErrorResult.WriteAsync(context, new WharfError(429,
            $"Too many failed authentications from this address. Check the API key; retry after {seconds}s.", null, "too_many_failed_authentications"));
    }

    public void Dispose() => _limiter.Dispose();

    internal static int SlotOf(IPAddress? address)
    {
        if (address is null)
        {
            return 0;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int length);
        // An IPv6 host is given a whole /64: count its addresses as one.
        ulong key = address.AddressFamily == AddressFamily.InterNetworkV6
            ? BitConverter.ToUInt64(bytes[..8])
            : BitConverter.ToUInt32(bytes[..length]);
        return (int)((uint)HashCode.Combine(address.AddressFamily, key) % Slots);
    }
}
