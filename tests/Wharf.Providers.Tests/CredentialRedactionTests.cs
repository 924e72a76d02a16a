using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Wharf.Providers.Http;

namespace Wharf.Providers.Tests;

public sealed class CredentialRedactionTests
{
    [Theory]
    [InlineData("Incorrect API key provided: sk-proj-abc***************wxyz.", "Incorrect API key provided: [redacted].")]
    [InlineData("header was Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0", "header was Authorization: Bearer [redacted]")]
    [InlineData("""{"api-key": "0123abcd"}""", """{"api-key": "[redacted]"}""")]
    [InlineData("""{"api_key":"xyz987"}""", """{"api_key":"[redacted]"}""")]
    [InlineData("GET /v1beta/models?key=AIzaSyFAKE&alt=sse", "GET /v1beta/models?key=[redacted]&alt=sse")]
    [InlineData("x-goog-api-key=abc123", "x-goog-api-key=[redacted]")]
    [InlineData("token: tok_77", "token: [redacted]")]
    [InlineData("key 9f8e7d6c5b4a39281706f5e4d3c2b1a0 is unknown", "key [redacted] is unknown")]
    [InlineData("The model gpt-4o-mini does not exist", "The model gpt-4o-mini does not exist")]
    [InlineData("Rate limit reached for requests per min (RPM): Limit 3, Used 3", "Rate limit reached for requests per min (RPM): Limit 3, Used 3")]
    public void CredentialLikePartsAreRemovedAndOrdinaryTextKept(string text, string expected)
    {
        Assert.Equal(expected, CredentialRedaction.Redact(text, []));
    }

    [Fact]
    public void TheConfiguredSecretsAreRemovedWhateverTheyLookLike()
    {
        Assert.Equal("key [redacted] and org [redacted] and x", CredentialRedaction.Redact("key plainword and org acme-org and x", ["plainword", "acme-org", "x"]));
    }

    [Fact]
    public void APreviewIsRedactedBeforeItIsTruncatedSoACutNeverLeavesPartOfASecret()
    {
        string secret = "abcdefghij";
        string body = new string('.', 505) + secret + new string('.', 100);
        string preview = CredentialRedaction.Preview(Encoding.UTF8.GetBytes(body), [secret])!;
        Assert.Equal(512, preview.Length);
        Assert.DoesNotContain("abcdef", preview, StringComparison.Ordinal);
        Assert.StartsWith(new string('.', 505) + "[redac", preview, StringComparison.Ordinal);
        Assert.Null(CredentialRedaction.Preview([], []));
    }

    [Fact]
    public void TruncationNeverSplitsASurrogatePair()
    {
        string text = new string('a', 510) + "😀😀";
        string cut = CredentialRedaction.Truncate(text, 512);
        Assert.Equal(new string('a', 510) + "…", cut);
    }

    [Theory]
    [InlineData("""{"error":{"message":"m","type":"t","param":"p","code":"c"}}""", "c", "m", "t", "p")]
    [InlineData("""{"error":{"message":"m","type":"t","param":null,"code":null}}""", "t", "m", "t", null)]
    [InlineData("""{"error":{"code":"429","message":"slow down"}}""", "429", "slow down", null, null)]
    [InlineData("""{"error":{"code":429,"message":"slow down"}}""", "429", "slow down", null, null)]
    [InlineData("""{"error":"plain words"}""", null, "plain words", null, null)]
    [InlineData("""{"message":"top level"}""", null, "top level", null, null)]
    public void ErrorBodiesOfOpenAIAzureAndLookalikesAreRead(string body, string? code, string? message, string? description, string? param)
    {
        var error = UpstreamAnswers.ParseError(Encoding.UTF8.GetBytes(body), [])!;
        Assert.Equal((code, message, description, param), (error.Code, error.Message, error.Description, error.Param));
    }

    [Theory]
    [InlineData("")]
    [InlineData("<html>502 Bad Gateway</html>")]
    [InlineData("[1,2]")]
    [InlineData("""{"other":1}""")]
    [InlineData("""{"error":{"message":"cut""")]
    public void AnythingElseHasNoErrorFields(string body)
    {
        Assert.Null(UpstreamAnswers.ParseError(Encoding.UTF8.GetBytes(body), []));
    }

    [Fact]
    public void RetryAfterIsReadInSecondsAsADateOrInMilliseconds()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));
        using var seconds = new HttpResponseMessage();
        seconds.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(20));
        Assert.Equal(TimeSpan.FromSeconds(20), UpstreamAnswers.RetryAfter(seconds.Headers, time));

        using var date = new HttpResponseMessage();
        date.Headers.RetryAfter = new RetryConditionHeaderValue(time.GetUtcNow().AddSeconds(90));
        Assert.Equal(TimeSpan.FromSeconds(90), UpstreamAnswers.RetryAfter(date.Headers, time));

        using var past = new HttpResponseMessage();
        past.Headers.RetryAfter = new RetryConditionHeaderValue(time.GetUtcNow().AddSeconds(-90));
        Assert.Equal(TimeSpan.Zero, UpstreamAnswers.RetryAfter(past.Headers, time));

        using var ms = new HttpResponseMessage();
        ms.Headers.TryAddWithoutValidation("retry-after-ms", "250");
        ms.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.FromMilliseconds(250), UpstreamAnswers.RetryAfter(ms.Headers, time));

        using var none = new HttpResponseMessage();
        none.Headers.TryAddWithoutValidation("retry-after-ms", "soon");
        Assert.Null(UpstreamAnswers.RetryAfter(none.Headers, time));
    }
}
