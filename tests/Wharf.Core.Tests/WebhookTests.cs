using System.Text;
using Wharf.Core.Webhooks;

namespace Wharf.Core.Tests;

/// <summary>Webhook secrets, signatures, URLs and the retry schedule.</summary>
public sealed class WebhookTests
{
    [Fact]
    public void TheSignatureReproducesTheStandardWebhooksTestVector()
    {
        // The vector published with the Standard Webhooks reference libraries.
        Assert.True(WebhookSecrets.TryGetKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", out byte[] key));
        string signature = WebhookSecrets.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, Encoding.UTF8.GetBytes("{\"test\": 2432232314}"));
        Assert.Equal("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", signature);
    }

    [Fact]
    public void ANewSecretIsWhsecAndTheBase64Of32RandomBytes()
    {
        string first = WebhookSecrets.NewSecret();
        string second = WebhookSecrets.NewSecret();
        Assert.StartsWith("whsec_", first);
        Assert.Equal(32, Convert.FromBase64String(first["whsec_".Length..]).Length);
        Assert.NotEqual(first, second);
        Assert.True(WebhookSecrets.TryGetKey(first, out byte[] key));
        Assert.Equal(Convert.FromBase64String(first["whsec_".Length..]), key);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    [InlineData("whsec_")]
    [InlineData("whsec_not base64!")]
    public void AMalformedSecretHoldsNoKey(string? secret) => Assert.False(WebhookSecrets.TryGetKey(secret, out _));

    [Theory]
    [InlineData("http://127.0.0.1:9000/hook")]
    [InlineData("http://localhost/hook")]
    [InlineData("https://hooks.example.com/wharf?token=abc#frag")]
    [InlineData("https://[::1]:8443/")]
    [InlineData("HTTPS://Example.COM")]
    public void AnAbsoluteHttpOrHttpsUrlIsAWebhookUrl(string url) => Assert.Null(WebhookUrls.Check(url));

    [Theory]
    [InlineData("")]
    [InlineData("hooks.example.com/wharf")]
    [InlineData("/relative/path")]
    [InlineData("ftp://example.com/hook")]
    [InlineData("file:///etc/passwd")]
    [InlineData("javascript:alert(1)")]
    [InlineData("mailto:ops@example.com")]
    [InlineData("http://")]
    [InlineData(" http://example.com/")]
    [InlineData("http://example.com/a b")]
    [InlineData("http://example.com/\n")]
    public void AnythingElseIsRefusedNamingWebhookUrl(string url)
    {
        var error = WebhookUrls.Check(url);
        Assert.NotNull(error);
        Assert.Equal(400, error.Status);
        Assert.Equal("webhook_url", error.Param);
        Assert.Equal("invalid_webhook_url", error.Code);
    }

    [Fact]
    public void AnOverlongUrlIsRefused()
    {
        string url = "https://example.com/" + new string('a', WebhookUrls.MaxLength);
        Assert.Equal("webhook_url", WebhookUrls.Check(url)?.Param);
    }

    [Fact]
    public void ALoggedUrlShowsNeitherItsUserInfoNorItsPathNorItsQuery()
    {
        string shown = WebhookUrls.ForLog(new Uri("https://user:pass@hooks.example.com:8443/services/T0/B0/s3cret?token=abc#x"));
        Assert.Equal("https://hooks.example.com:8443", shown);
    }

    [Fact]
    public void RetriesStartWithinTenSecondsDoubleAndEndTwentyFourHoursAfterTheEvent()
    {
        var options = new WebhooksOptions(); // FirstRetrySeconds 5, GiveUpAfterHours 24
        const long created = 1_000_000;
        long now = created;
        var delays = new List<long>();
        for (int failed = 1; ; failed++)
        {
            long? next = options.NextAttemptAt(created, failed, now);
            if (next is null)
            {
                break;
            }
            delays.Add(next.Value - now);
            now = next.Value;
        }
        Assert.Equal(5, delays[0]);
        Assert.True(delays[0] <= 10);
        // Doubling, until the doubling passes the end: the last attempt is made at the end itself.
        for (int i = 1; i < delays.Count - 1; i++)
        {
            Assert.Equal(delays[i - 1] * 2, delays[i]);
        }
        Assert.Equal(created + 24 * 3600, now);
        Assert.Equal(15, delays.Count); // 14 doublings from 5 s (81,915 s) and the last at 86,400 s
        Assert.Null(options.NextAttemptAt(created, 16, created + 24 * 3600));
    }

    [Fact]
    public void AnAttemptThatFailsAfterTheEndGivesTheEventUp()
    {
        var options = new WebhooksOptions { FirstRetrySeconds = 10, GiveUpAfterHours = 1 };
        Assert.Equal(1010, options.NextAttemptAt(1000, 1, 1000));
        Assert.Equal(1000 + 3600, options.NextAttemptAt(1000, 9, 3000)); // 2,560 s would pass the end
        Assert.Null(options.NextAttemptAt(1000, 10, 4600));
        Assert.Null(options.NextAttemptAt(1000, 1, 100_000));
        Assert.Equal(4600, options.NextAttemptAt(1000, 1000, 4598)); // no overflow: capped at the end
    }
}
