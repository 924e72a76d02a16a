using Microsoft.Extensions.Options;
using Wharf.Server.Hosting;

namespace Wharf.Server.Auth;

/// <summary>
/// Counts failed authentications and logs them as one line per interval (<c>Wharf:Auth:FailureLogSeconds</c>), with
/// the first request id of the interval to find it by, rather than one line per failure: a client sending wrong keys
/// in a loop cannot flood the log. Neither a key nor an address is logged.
/// </summary>
internal sealed partial class AuthenticationFailureLog(IOptions<WharfOptions> options, TimeProvider time, ILogger<AuthenticationFailureLog> logger)
    : IntervalLog(time)
{
    private long _failed;
    private long _refused;
    private string? _firstRequestId;

    /// <summary>One failed authentication; <paramref name="refused"/> when it was answered 429.</summary>
    public void Add(string requestId, bool refused)
    {
        Interlocked.Increment(ref _failed);
        if (refused)
        {
            Interlocked.Increment(ref _refused);
        }
        Interlocked.CompareExchange(ref _firstRequestId, requestId, null);
    }

    protected override int IntervalSeconds => options.Value.Auth.FailureLogSeconds;

    protected override void Flush(int seconds)
    {
        string? first = Interlocked.Exchange(ref _firstRequestId, null);
        long failed = Interlocked.Exchange(ref _failed, 0);
        long refused = Interlocked.Exchange(ref _refused, 0);
        if (failed > 0)
        {
            FailedAuthentications(logger, failed, seconds, refused, first ?? "none");
        }
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "{Failed} request(s) failed authentication in the last {Seconds} s ({Refused} of them answered 429 for too many failures); first: {FirstRequestId}.")]
    private static partial void FailedAuthentications(ILogger logger, long failed, int seconds, long refused, string firstRequestId);
}
