using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Wharf.Server.Tests.Infrastructure;
using Wharf.Simulators;

namespace Wharf.Server.Tests.Models;

/// <summary>
/// Upstream failures through the real server: retries and fallback against simulated faults, the statuses and
/// diagnostics DESIGN defines, and no upstream key in any answer or log line.
/// </summary>
[Collection(UpstreamsCollection.Name)]
public sealed class ModelFailureTests(UpstreamsFixture upstreams) : IDisposable
{
    private readonly HttpClient _client = upstreams.Server.CreateClient();

    public void Dispose() => _client.Dispose();

    private Task<HttpResponseMessage> ChatAsync(string model, bool stream = false) =>
        _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json(
            $"{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]{(stream ? ",\"stream\":true" : "")}}}"));

    private static string Header(HttpResponseMessage response, string name) => response.Headers.GetValues(name).Single();

    private static void AssertNoKey(string text)
    {
        foreach (string key in UpstreamsFixture.Keys)
        {
            Assert.DoesNotContain(key, text, StringComparison.Ordinal);
            Assert.DoesNotContain(key[^12..], text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Every_candidate_answering_500_is_a_502_with_every_call_counted()
    {
        upstreams.Sim.SetRule("all-fail-model", Fault.Status(500));
        upstreams.Backup.SetRule("all-fail-model", Fault.Status(503));

        using var response = await ChatAsync("all-fail-model");

        var error = await Wire.AssertErrorAsync(response, 502, code: "all_candidates_failed");
        Assert.Equal("upstream_error", error.GetProperty("type").GetString());
        var json = await Wire.JsonAsync(response);
        Assert.Equal(("system", "upstream", "all_candidates_failed"), (json.GetProperty("error_type").GetString(), json.GetProperty("error_origin").GetString(), json.GetProperty("reason").GetString()));
        Assert.Equal(6, json.GetProperty("attempt_count").GetInt32());
        Assert.Equal(["sim", "backup"], json.GetProperty("failed_providers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal([500, 500, 500, 503, 503, 503], json.GetProperty("failed_statuses").EnumerateArray().Select(e => e.GetInt32()));
        var samples = json.GetProperty("failure_sample").EnumerateArray().ToList();
        Assert.Equal(6, samples.Count);
        Assert.All(samples, s => Assert.True(s.GetProperty("retryable").GetBoolean()));
        Assert.Equal(("backup", 503), (samples[^1].GetProperty("provider").GetString(), samples[^1].GetProperty("status").GetInt32()));
        Assert.Contains("overloaded", samples[^1].GetProperty("upstream_payload_preview").GetString(), StringComparison.Ordinal);
        Assert.Equal("The engine is currently overloaded, please try again later.", json.GetProperty("upstream_error").GetProperty("message").GetString());
        Assert.Equal(("server_error", "backup"), (json.GetProperty("provider_failure_diagnostics").GetProperty("category").GetString(), json.GetProperty("provider_failure_diagnostics").GetProperty("provider").GetString()));
        Assert.Equal("backup", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(("backup", "all-fail-model", "6"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-model"), Header(response, "x-wharf-attempts")));
        Assert.Equal(3, UpstreamsFixture.CallsFor(upstreams.Sim, "all-fail-model").Count);
        Assert.Equal(3, UpstreamsFixture.CallsFor(upstreams.Backup, "all-fail-model").Count);
    }

    [Fact]
    public async Task A_429_is_retried_after_its_Retry_After()
    {
        upstreams.Backup.Enqueue(Fault.RateLimited("1"));
        var clock = Stopwatch.StartNew();

        using var response = await _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"backup/rate-limited\",\"messages\":[]}"));

        // A lower bound only: the retry cannot have come before the upstream's Retry-After of 1 s.
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.95), $"answered after {clock.Elapsed}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("2", Header(response, "x-wharf-attempts"));
        Assert.Equal(2, UpstreamsFixture.CallsFor(upstreams.Backup, "rate-limited").Count);
    }

    [Fact]
    public async Task A_refused_connection_is_retried_then_falls_back_to_the_next_provider()
    {
        int before = UpstreamsFixture.CallsFor(upstreams.Backup, "fallback-model").Count;

        using var response = await ChatAsync("fallback-model");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(("backup", "4"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-attempts")));
        var json = await Wire.JsonAsync(response);
        Assert.Equal("backup", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.Equal(before + 1, UpstreamsFixture.CallsFor(upstreams.Backup, "fallback-model").Count);
    }

    [Fact]
    public async Task A_200_whose_JSON_is_broken_is_retried_and_falls_back()
    {
        upstreams.Sim.SetRule("malformed-model", Fault.MalformedJson());

        using var response = await ChatAsync("malformed-model");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(("backup", "4"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-attempts")));
        Assert.Equal(3, UpstreamsFixture.CallsFor(upstreams.Sim, "malformed-model").Count);
        Assert.Equal("chat.completion", (await Wire.JsonAsync(response)).GetProperty("object").GetString());
    }

    [Fact]
    public async Task The_upstreams_400_about_the_request_is_passed_back_without_retry_or_fallback()
    {
        upstreams.Sim.SetRule("rejected-model", Fault.Status(400,
            "{\"error\":{\"message\":\"'messages' is too short\",\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":\"messages_too_short\"}}"));

        using var response = await ChatAsync("rejected-model");

        var error = await Wire.AssertErrorAsync(response, 400, "messages", "messages_too_short");
        Assert.Equal("'messages' is too short", error.GetProperty("message").GetString());
        var json = await Wire.JsonAsync(response);
        Assert.Equal(("user", "upstream"), (json.GetProperty("error_type").GetString(), json.GetProperty("error_origin").GetString()));
        Assert.Equal(("sim", "1"), (Header(response, "x-wharf-provider"), Header(response, "x-wharf-attempts")));
        Assert.Single(UpstreamsFixture.CallsFor(upstreams.Sim, "rejected-model"));
        Assert.Empty(UpstreamsFixture.CallsFor(upstreams.Backup, "rejected-model"));
    }

    [Fact]
    public async Task A_refused_credential_moves_on_and_never_shows_the_key()
    {
        upstreams.Backup.SetRule("creds-model", Fault.Status(403));

        using var response = await ChatAsync("creds-model");

        string raw = await response.Content.ReadAsStringAsync();
        AssertNoKey(raw);
        await Wire.AssertErrorAsync(response, 502, code: "all_candidates_failed");
        var json = await Wire.JsonAsync(response);
        Assert.Equal([401, 403], json.GetProperty("failed_statuses").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("credentials_invalid_or_forbidden", json.GetProperty("provider_failure_diagnostics").GetProperty("category").GetString());
        Assert.Contains("Wharf:Providers:backup:ApiKey", json.GetProperty("provider_failure_diagnostics").GetProperty("hint").GetString(), StringComparison.Ordinal);
        var first = json.GetProperty("failure_sample")[0];
        Assert.Equal(("badkey", 401, false), (first.GetProperty("provider").GetString(), first.GetProperty("status").GetInt32(), first.GetProperty("retryable").GetBoolean()));
        Assert.Equal("2", Header(response, "x-wharf-attempts"));
    }

    [Fact]
    public async Task A_402_names_the_provider_whose_billing_failed()
    {
        upstreams.Backup.SetRule("billing-model", Fault.Status(402));

        using var response = await _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"backup/billing-model\",\"messages\":[]}"));

        await Wire.AssertErrorAsync(response, 502);
        var json = await Wire.JsonAsync(response);
        Assert.Equal("backup", json.GetProperty("provider_payment_required_provider").GetString());
        Assert.Contains("402", json.GetProperty("provider_payment_required_support_notice").GetString(), StringComparison.Ordinal);
        Assert.Equal("provider_access_missing", json.GetProperty("provider_failure_diagnostics").GetProperty("category").GetString());
    }

    [Fact]
    public async Task A_model_no_candidate_has_is_the_upstreams_404_passed_back()
    {
        upstreams.Backup.SetRule("gone-model", Fault.Status(404,
            "{\"error\":{\"message\":\"The model `gone-model` does not exist\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"}}"));

        using var response = await _client.PostAsync("/v1/chat/completions", UpstreamsFixture.Json("{\"model\":\"backup/gone-model\",\"messages\":[]}"));

        await Wire.AssertErrorAsync(response, 404, code: "model_not_found");
        var json = await Wire.JsonAsync(response);
        Assert.Equal(("user", "upstream"), (json.GetProperty("error_type").GetString(), json.GetProperty("error_origin").GetString()));
        Assert.Equal("model_unavailable_for_endpoint", json.GetProperty("provider_failure_diagnostics").GetProperty("category").GetString());
    }

    [Fact]
    public async Task Timeouts_on_every_call_are_a_504()
    {
        using var response = await ChatAsync("slow-model");

        await Wire.AssertErrorAsync(response, 504, code: "upstream_timeout");
        var json = await Wire.JsonAsync(response);
        Assert.Equal(3, json.GetProperty("attempt_count").GetInt32());
        Assert.Equal([504, 504, 504], json.GetProperty("failed_statuses").EnumerateArray().Select(e => e.GetInt32()));
        Assert.All(json.GetProperty("failure_sample").EnumerateArray(), s => Assert.Equal("timeout", s.GetProperty("type").GetString()));
        await upstreams.Slow.WaitForAbortedAsync(3).WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task No_upstream_key_appears_in_any_answer_or_in_the_servers_log()
    {
        upstreams.Sim.SetRule("log-check-model", Fault.Status(500));
        foreach (string model in (string[])["log-check-model", "creds-model", "fallback-model", "badkey/x", "sim/ok"])
        {
            using var response = await ChatAsync(model);
            AssertNoKey(await response.Content.ReadAsStringAsync());
            AssertNoKey(string.Join("\n", response.Headers.Select(h => h.Key + ": " + string.Join(",", h.Value))));
        }
        using (var providers = await _client.GetAsync("/v1/providers"))
        {
            AssertNoKey(await providers.Content.ReadAsStringAsync());
        }
        string log = upstreams.Server.Output;
        Assert.Contains("Every candidate failed", log, StringComparison.Ordinal);
        AssertNoKey(log);
    }
}
