using Wharf.Core.Providers;

namespace Wharf.Core.Tests;

public sealed class UpstreamFailureTests
{
    [Theory]
    [InlineData(401, FailureCategory.CredentialsInvalidOrForbidden, false)]
    [InlineData(403, FailureCategory.CredentialsInvalidOrForbidden, false)]
    [InlineData(402, FailureCategory.ProviderAccessMissing, false)]
    [InlineData(404, FailureCategory.ModelUnavailableForEndpoint, false)]
    [InlineData(408, FailureCategory.ServerError, true)]
    [InlineData(409, FailureCategory.ServerError, true)]
    [InlineData(429, FailureCategory.RateLimited, true)]
    [InlineData(500, FailureCategory.ServerError, true)]
    [InlineData(503, FailureCategory.ServerError, true)]
    [InlineData(400, FailureCategory.RequestRejected, false)]
    [InlineData(413, FailureCategory.RequestRejected, false)]
    [InlineData(422, FailureCategory.RequestRejected, false)]
    [InlineData(301, FailureCategory.ServerError, false)]
    [InlineData(405, FailureCategory.ServerError, false)]
    [InlineData(415, FailureCategory.ServerError, false)]
    public void AnswersAreClassifiedOnce(int status, FailureCategory category, bool retryable)
    {
        var failure = UpstreamFailure.FromAnswer(status, TimeSpan.FromSeconds(3), new("c", "m", null, "p"), "preview");
        Assert.Equal((UpstreamFailureKind.Answered, category, status, retryable), (failure.Kind, failure.Category, failure.Status, failure.Retryable));
        Assert.Equal(TimeSpan.FromSeconds(3), failure.RetryAfter);
    }

    [Fact]
    public void TimeoutsAndConnectionFailuresAreRetryableServerErrorsWithoutAStatus()
    {
        foreach (var failure in new[] { UpstreamFailure.Timeout(), UpstreamFailure.ConnectionFailed("reset") })
        {
            Assert.True(failure.Retryable);
            Assert.Equal(FailureCategory.ServerError, failure.Category);
            Assert.Null(failure.Status);
        }
        Assert.False(UpstreamFailure.Unsupported("x").Retryable);
        Assert.Equal(FailureCategory.CredentialsNotConfigured, UpstreamFailure.CredentialsNotConfigured().Category);
    }

    [Fact]
    public void AnOutcomeIsAValueOrAFailureNeverNeither()
    {
        UpstreamOutcome<int> ok = 3;
        Assert.True(ok.IsOk);
        Assert.Equal(3, ok.Value);
        UpstreamOutcome<int> failed = UpstreamFailure.Timeout();
        Assert.False(failed.IsOk);
        Assert.Equal(UpstreamFailureKind.Timeout, failed.Failure.Kind);
        Assert.Throws<InvalidOperationException>(() => failed.Value);
        UpstreamFailure? none = null;
        Assert.Throws<ArgumentNullException>(() => { UpstreamOutcome<int> o = none!; return o; });
    }
}
