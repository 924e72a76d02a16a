using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Wharf.Server.Tests.Infrastructure;

namespace Wharf.Server.Tests;

/// <summary>A server that allows an address 5 failed authentications, refilled at one a minute, and logs them every second.</summary>
public sealed class FewFailuresServerFixture : ServerFixture
{
    public const int Burst = 5;

    protected override string[] Args =>
    [
        "--Wharf:Auth:FailureBurst=" + Burst,
        "--Wharf:Auth:FailuresPerMinute=1",
        "--Wharf:Auth:FailureLogSeconds=1",
    ];
}

/// <summary>Wrong keys are rate-limited per client address and logged as a count, never one line each.</summary>
public sealed partial class FailedAuthenticationTests(FewFailuresServerFixture fixture) : IClassFixture<FewFailuresServerFixture>
{
    [Fact]
    public async Task An_address_that_keeps_failing_gets_429_but_a_correct_key_from_it_is_served_and_the_log_counts()
    {
        using var wrong = fixture.Server.CreateClient("sk-wh-WrongKeyWrongKeyWrongKeyWrongKey0000");
        using var anonymous = fixture.Server.CreateClient(key: null);
        using var admin = fixture.Server.CreateClient("not-the-admin-key-at-all");
        using var right = fixture.Server.CreateClient();

        // Every kind of failure draws from the address's one allowance: wrong keys, no key, a wrong admin key.
        for (int i = 0; i < FewFailuresServerFixture.Burst; i++)
        {
            using var response = await ((i % 3) switch
            {
                0 => wrong.GetAsync("/v1/files"),
                1 => anonymous.GetAsync("/v1/files"),
                _ => admin.GetAsync("/admin/workspaces"),
            });
            await Wire.AssertErrorAsync(response, 401);
        }

        using (var refused = await wrong.GetAsync("/v1/files"))
        {
            var error = await Wire.AssertErrorAsync(refused, 429, code: "too_many_failed_authentications");
            Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
            Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "429 carries Retry-After");
        }
        using (var refusedAdmin = await admin.GetAsync("/admin/workspaces"))
        {
            await Wire.AssertErrorAsync(refusedAdmin, 429, code: "too_many_failed_authentications");
        }

        // A correct key from the same address is not locked out by the failures of others behind it (NAT, proxy).
        using (var served = await right.GetAsync("/v1/files?limit=1"))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }
        using (var adminServed = await fixture.Server.CreateClient(WharfServer.AdminKey).GetAsync("/admin/workspaces"))
        {
            Assert.Equal(HttpStatusCode.OK, adminServed.StatusCode);
        }

        // ... and serving it does not reset the address's allowance.
        const int flood = 200;
        for (int i = 0; i < flood; i++)
        {
            using var response = await wrong.GetAsync("/v1/files");
            Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        }

        // The log holds a few lines counting the failures, not a line per failure.
        int expected = FewFailuresServerFixture.Burst + 2 + flood;
        int logged = 0;
        MatchCollection lines = null!;
        for (int attempt = 0; attempt < 50 && logged < expected; attempt++)
        {
            await Task.Delay(100);
            lines = CountLine().Matches(fixture.Server.Output);
            logged = lines.Sum(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }
        Assert.Equal(expected, logged);
        Assert.InRange(lines.Count, 1, 15);
        Assert.DoesNotContain("WrongKey", fixture.Server.Output);
        Assert.DoesNotContain("not-the-admin-key", fixture.Server.Output);
    }

    [GeneratedRegex(@"(\d+) request\(s\) failed authentication in the last 1 s")]
    private static partial Regex CountLine();
}
