using System.Globalization;
using System.Threading.RateLimiting;
using Wharf.Core.Errors;
using Wharf.Server.Errors;

namespace Wharf.Server.Auth;

/// <summary>
/// Requests per minute per API key, with the framework's token-bucket limiter partitioned by key (and by the
/// key's limit, so a changed limit takes effect on the next request). Every limited response carries OpenAI's
/// <c>x-ratelimit-*-requests</c> headers; a refused one is a 429 with <c>Retry-After</c>.
/// </summary>
internal sealed class KeyRateLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter = PartitionedRateLimiter.Create<string, string>(
        partitionKey => RateLimitPartition.GetTokenBucketLimiter(partitionKey, key => Bucket(RpmOf(key)).Options));

    /// <summary>
    /// Takes one request from the key's bucket and writes the <c>x-ratelimit-*</c> headers; false once it has
    /// answered 429. A limit of 0 means none: no headers, always true.
    /// </summary>
    public async Task<bool> AcquireAsync(HttpContext context, string keyId, int rpm)
    {
        if (rpm <= 0)
        {
            return true;
        }
        string partition = rpm.ToString(CultureInfo.InvariantCulture) + "|" + keyId;
        using var lease = _limiter.AttemptAcquire(partition);
        var bucket = Bucket(rpm);
        long remaining = _limiter.GetStatistics(partition)?.CurrentAvailablePermits ?? 0;
        var headers = context.Response.Headers;
        headers["x-ratelimit-limit-requests"] = rpm.ToString(CultureInfo.InvariantCulture);
        headers["x-ratelimit-remaining-requests"] = remaining.ToString(CultureInfo.InvariantCulture);
        headers["x-ratelimit-reset-requests"] = Format(bucket.TimeToFull(rpm - remaining));
        if (lease.IsAcquired)
        {
            return true;
        }
        TimeSpan retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan after) ? after : bucket.Period;
        headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        await ErrorResult.WriteAsync(context, new WharfError(429,
            $"Rate limit reached for this API key: {rpm} requests per minute. Retry after {headers.RetryAfter}s.",
            null, "rate_limit_exceeded"));
        return false;
    }

    public void Dispose() => _limiter.Dispose();

    private static int RpmOf(string partition) => int.Parse(partition.AsSpan(0, partition.IndexOf('|', StringComparison.Ordinal)), CultureInfo.InvariantCulture);

    /// <summary>A bucket of <paramref name="rpm"/> tokens refilled evenly: every second from 60 rpm up, else one token per 60/rpm s.</summary>
    private static BucketShape Bucket(int rpm) => rpm >= 60
        ? new BucketShape(rpm, rpm / 60, TimeSpan.FromSeconds(1))
        : new BucketShape(rpm, 1, TimeSpan.FromSeconds(60.0 / rpm));

    private static string Format(TimeSpan span) =>
        span.TotalMinutes >= 1
            ? $"{(int)span.TotalMinutes}m{span.Seconds}s"
            : span.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s";

    private sealed record BucketShape(int Limit, int TokensPerPeriod, TimeSpan Period)
    {
        public TokenBucketRateLimiterOptions Options => new()
        {
            TokenLimit = Limit,
            TokensPerPeriod = TokensPerPeriod,
            ReplenishmentPeriod = Period,
            QueueLimit = 0,
            AutoReplenishment = true,
        };

        public TimeSpan TimeToFull(long missing) =>
            missing <= 0 ? TimeSpan.Zero : Period * Math.Ceiling((double)missing / TokensPerPeriod);
    }
}
