using System.Text;
using System.Text.Json;
using Wharf.Core.Errors;
using Wharf.Core.Providers;
using Wharf.Core.Routing;

namespace Wharf.Core.Tests.Routing;

public sealed class ModelDispatcherTests
{
    private const string Chat = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    private const string Completion = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[]}";

    private readonly RoutingRig _rig = new();

    private static async Task<WharfError> FailsAsync(Task<Result<ModelAnswer>> sending)
    {
        var result = await sending;
        if (result.IsOk)
        {
            await result.Value.DisposeAsync();
        }
        return result.ErrorOf();
    }

    [Fact]
    public async Task A_first_answer_is_accepted_with_its_provider_model_attempts_and_extra_fields()
    {
        var a = _rig.Add("a").ThenJson(Completion);
        _rig.Routing.Default = ["a"];

        var result = await _rig.SendAsync("{\"model\":\"a/gpt\",\"provider\":\"a\",\"n\":1}");

        Assert.True(result.IsOk);
        await using var answer = result.Value;
        Assert.Equal(("a", "gpt", 1), (answer.Provider, answer.Model, answer.Attempts));
        Assert.Equal(new ExtraFields("a", "a/gpt", "gpt", "chat.completions", 0), answer.ExtraFields);
        Assert.True(answer.IsComplete);
        Assert.Equal(Completion, Encoding.UTF8.GetString(answer.Head.Span));
        Assert.Equal(Completion.Length - 1, answer.JsonObjectEnd);
        var call = Assert.Single(a.Calls);
        Assert.Equal((ProviderCapability.ChatCompletions, "gpt", false), (call.Endpoint, call.Model, call.Stream));
        Assert.Equal("{\"model\":\"gpt\",\"n\":1}", Encoding.UTF8.GetString(call.Body.Span));
    }

    [Fact]
    public async Task Retryable_failures_are_retried_MaxRetries_times_per_candidate_then_the_next_is_tried_in_order()
    {
        var a = _rig.Add("a").ThenStatus(500);
        var b = _rig.Add("b").ThenStatus(503);
        var c = _rig.Add("c").ThenStatus(500).ThenJson(Completion);
        _rig.Routing.Default = ["a", "b", "c"];

        var result = await _rig.SendAsync(Chat);

        Assert.True(result.IsOk);
        await using var answer = result.Value;
        Assert.Equal((3, 3, 2), (a.Calls.Count, b.Calls.Count, c.Calls.Count));
        Assert.Equal(("c", 8), (answer.Provider, answer.Attempts));
        Assert.Equal(7, answer.Failures.Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Every_candidate_failing_is_a_502_with_the_calls_counted(int maxRetries)
    {
        _rig.Routing.MaxRetries = maxRetries;
        _rig.Add("a").ThenStatus(500, message: "boom", code: "server_broke");
        _rig.Add("b").ThenStatus(429);
        _rig.Routing.Default = ["a", "b"];

        var error = await FailsAsync(_rig.SendAsync(Chat));

        Assert.Equal((502, "all_candidates_failed", false), (error.Status, error.Code, error.FromUpstream));
        var d = error.Upstream!;
        int calls = 2 * (maxRetries + 1);
        Assert.Equal(calls, d.AttemptCount);
        Assert.Equal(["a", "b"], d.FailedProviders);
        Assert.Equal([.. Enumerable.Repeat(500, maxRetries + 1), .. Enumerable.Repeat(429, maxRetries + 1)], d.FailedStatuses);
        Assert.Equal(Math.Min(calls, 10), d.FailureSample.Count);
        Assert.Equal(new FailureSample("b", "upstream_error", 429, null, "upstream said 429", null, null, "{\"error\":{\"message\":\"upstream said 429\"}}", true), d.FailureSample[^1]);
        Assert.Equal(new UpstreamErrorFields(null, "upstream said 429", null, null), d.UpstreamError);
        Assert.Equal(("rate_limited", "b"), (d.ProviderFailureDiagnostics!.Category, d.ProviderFailureDiagnostics.Provider));
        Assert.Contains("429", d.ProviderFailureDiagnostics.Hint, StringComparison.Ordinal);
        Assert.Equal(new ExtraFields("b", "m", "m", "chat.completions", d.ExtraFields!.Latency), d.ExtraFields);
        Assert.NotNull(d.RoutingDiagnostics);
        Assert.NotNull(d.ProviderCandidateDiagnostics);
        Assert.NotNull(d.ProviderEnablement);
        Assert.Null(d.ProviderPaymentRequiredProvider);
        Assert.Contains("'a' answered 500", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_failure_sample_keeps_the_latest_ten_calls()
    {
        _rig.Routing.MaxRetries = 4;
        _rig.Add("a").ThenStatus(500);
        _rig.Add("b").ThenStatus(502);
        _rig.Add("c").ThenStatus(503);
        _rig.Routing.Default = ["a", "b", "c"];

        var d = (await FailsAsync(_rig.SendAsync(Chat))).Upstream!;

        Assert.Equal(15, d.AttemptCount);
        Assert.Equal(15, d.FailedStatuses.Count);
        Assert.Equal([.. Enumerable.Repeat(502, 5), .. Enumerable.Repeat(503, 5)], d.FailureSample.Select(s => s.Status!.Value));
    }

    [Fact]
    public async Task Backoff_is_exponential_with_jitter_and_waits_on_the_clock()
    {
        _rig.Routing.MaxRetries = 4;
        _rig.Routing.RetryMaxDelayMilliseconds = 1_000;
        _rig.Jitter = 0.5;
        _rig.Add("a").ThenStatus(500);
        _rig.Routing.Default = ["a"];

        await FailsAsync(_rig.SendAsync(Chat));

        // base 200 ms doubling (200, 400, 800, then the 1000 ms ceiling), half of it waited.
        Assert.Equal([100, 200, 400, 500], _rig.Time.Waits.Select(w => w.TotalMilliseconds));
    }

    [Fact]
    public async Task The_next_call_waits_until_the_clock_has_moved_past_the_backoff()
    {
        var a = _rig.Add("a").ThenStatus(429, retryAfter: TimeSpan.FromSeconds(7)).ThenJson(Completion);
        _rig.Routing.Default = ["a"];
        using var request = RoutingRig.Request(Chat);
        var plan = _rig.Router().Route(request, null, RoutingRig.Workspace(null)).Value;

        var sending = _rig.Dispatcher().DispatchAsync("ws_1", request, plan, CancellationToken.None);
        await a.NextCallAsync();
        Assert.Equal(TimeSpan.FromSeconds(7), await _rig.Time.NextWaitAsync());
        _rig.Time.Advance(TimeSpan.FromSeconds(7) - TimeSpan.FromTicks(1));
        Assert.Single(a.Calls);
        Assert.False(sending.IsCompleted);
        _rig.Time.Advance(TimeSpan.FromTicks(1));
        await a.NextCallAsync();

        await using var answer = (await sending).Value;
        Assert.Equal(2, answer.Attempts);
        Assert.Equal(7_000, answer.ExtraFields.Latency);
    }

    [Theory]
    [InlineData(3, 0.5, 3_000)]      // Retry-After longer than the jittered backoff (100 ms): honoured
    [InlineData(120, 0.5, 30_000)]   // longer than MaxRetryAfterSeconds: capped
    [InlineData(0, 0.5, 100)]        // shorter than the backoff: the backoff
    public async Task Retry_After_is_honoured_up_to_its_cap(int retryAfterSeconds, double jitter, double expectedMs)
    {
        _rig.Routing.MaxRetries = 1;
        _rig.Jitter = jitter;
        _rig.Add("a").ThenStatus(429, retryAfter: TimeSpan.FromSeconds(retryAfterSeconds)).ThenJson(Completion);
        _rig.Routing.Default = ["a"];

        await using var answer = (await _rig.SendAsync(Chat)).Value;

        Assert.Equal([expectedMs], _rig.Time.Waits.Select(w => w.TotalMilliseconds));
    }

    [Fact]
    public async Task The_cap_on_Retry_After_is_configurable()
    {
        _rig.Routing.MaxRetryAfterSeconds = 2;
        var dispatcher = _rig.Dispatcher();
        Assert.Equal(TimeSpan.FromSeconds(2), dispatcher.Backoff(0, TimeSpan.FromHours(1)));
        Assert.Equal(TimeSpan.FromMilliseconds(100), dispatcher.Backoff(0, TimeSpan.FromSeconds(-5)));
        await Task.CompletedTask;
    }

    [Theory]
    [InlineData(400)]
    [InlineData(413)]
    [InlineData(422)]
    public async Task The_upstreams_verdict_on_the_request_is_passed_back_at_once(int status)
    {
        var a = _rig.Add("a").ThenStatus(status, message: "messages[0] is bad", code: "bad_messages", param: "messages");
        var b = _rig.Add("b").ThenJson(Completion);
        _rig.Routing.Default = ["a", "b"];

        var error = await FailsAsync(_rig.SendAsync(Chat));

        Assert.Equal((status, "messages[0] is bad", "messages", "bad_messages"), (error.Status, error.Message, error.Param, error.Code));
        Assert.True(error.FromUpstream);
        Assert.Equal(("user", "upstream"), (error.ErrorType, error.Origin));
        Assert.Equal((1, 0), (a.Calls.Count, b.Calls.Count));
        Assert.Equal(1, error.Upstream!.AttemptCount);
        Assert.Equal("a", error.Upstream.ExtraFields!.Provider);
    }

    [Fact]
    public async Task A_request_a_translating_adapter_cannot_express_is_the_users_400_naming_the_parameter_with_no_call_counted()
    {
        var a = _rig.Add("a").ThenFail(UpstreamFailure.Untranslatable("logprobs", "'logprobs' has no equivalent."));
        var b = _rig.Add("b").ThenJson(Completion);
        _rig.Routing.Default = ["a", "b"];

        var error = await FailsAsync(_rig.SendAsync(Chat));

        Assert.Equal((400, "logprobs", "unsupported_parameter"), (error.Status, error.Param, error.Code));
        Assert.False(error.FromUpstream);
        Assert.Equal(("user", "user"), (error.ErrorType, error.Origin));
        Assert.Contains("'logprobs'", error.Message, StringComparison.Ordinal);
        Assert.Equal((1, 0), (a.Calls.Count, b.Calls.Count));
        Assert.Equal(0, error.Upstream!.AttemptCount);
    }

    [Theory]
    [InlineData(401, "credentials_invalid_or_forbidden")]
    [InlineData(403, "credentials_invalid_or_forbidden")]
    [InlineData(402, "provider_access_missing")]
    public async Task Credential_and_billing_refusals_move_to_the_next_candidate_without_retries(int status, string category)
    {
        var a = _rig.Add("a").ThenStatus(status);
        var b = _rig.Add("b").ThenStatus(status);
        _rig.Routing.Default = ["a", "b"];

        var error = await FailsAsync(_rig.SendAsync(Chat));

        Assert.Equal((1, 1), (a.Calls.Count, b.Calls.Count));
        Assert.Equal((502, "system", "upstream"), (error.Status, error.ErrorType, error.Origin));
        Assert.Equal(category, error.Upstream!.ProviderFailureDiagnostics!.Category);
        Assert.Equal([status, status], error.Upstream.FailedStatuses);
        Assert.All(error.Upstream.FailureSample, s => Assert.False(s.Retryable));
        if (status == 402)
        {
            Assert.Equal("b", error.Upstream.ProviderPaymentRequiredProvider);
            Assert.Contains("402", error.Upstream.ProviderPaymentRequiredSupportNotice, StringComparison.Ordinal);
        }
        else
        {
            Assert.Null(error.Upstream.ProviderPaymentRequiredProvider);
            Assert.Contains("Wharf:Providers:b:ApiKey", error.Upstream.ProviderFailureDiagnostics.Hint, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_payment_refusal_before_a_later_failure_is_still_reported()
    {
        _rig.Routing.MaxRetries = 0;
        _rig.Add("a").ThenStatus(402);
        _rig.Add("b").ThenStatus(500);
        _rig.Routing.Default = ["a", "b"];

        var d = (await FailsAsync(_rig.SendAsync(Chat))).Upstream!;

        Assert.Equal("a", d.ProviderPaymentRequiredProvider);
        Assert.Equal(("server_error", "b"), (d.ProviderFailureDiagnostics!.Category, d.ProviderFailureDiagnostics.Provider));
    }

    [Fact]
    public async Task A_404_from_every_candidate_is_passed_back_and_a_404_then_another_failure_is_a_502()
    {
        var a = _rig.Add("a").ThenStatus(404, message: "The model 'm' does not exist", code: "model_not_found", param: "model");
        var b = _rig.Add("b").ThenStatus(404, message: "no such model", code: "model_not_found", param: "model");
        _rig.Routing.Default = ["a", "b"];

        var error = await FailsAsync(_rig.SendAsync(Chat));

        Assert.Equal((1, 1), (a.Calls.Count, b.Calls.Count));
        Assert.Equal((404, "no such model", "model", true), (error.Status, error.Message, error.Param, error.FromUpstream));
        Assert.Equal("model_unavailable_for_endpoint", error.Upstream!.ProviderFailureDiagnostics!.Category);

        var rig = new RoutingRig();
        rig.Routing.MaxRetries = 0;
        rig.Add("a").ThenStatus(404);
        rig.Add("b").ThenStatus(500);
        rig.Routing.Default = ["a", "b"];
        Assert.Equal(502, (await FailsAsync(rig.SendAsync(Chat))).Status);
    }

    [Fact]
    public async Task Timeouts_everywhere_are_a_504()
    {
        _rig.Routing.MaxRetries = 1;
        _rig.Add("a").ThenFail(UpstreamFailure.Timeout());
        _rig.Add("b").ThenFail(UpstreamFailure.Timeout());
        _rig.Routing.Default = ["a", "b"];

        var error = await FailsAsync(_rig.SendAsync(Chat));

        Assert.Equal((504, "upstream_timeout", "upstream_error"), (error.Status, error.Code, error.Type));
        Assert.Equal(4, error.Upstream!.AttemptCount);
        Assert.Equal([504, 504, 504, 504], error.Upstream.FailedStatuses);
        Assert.All(error.Upstream.FailureSample, s => Assert.Equal(("timeout", true), (s.Type, s.Retryable)));
        Assert.Contains("TimeoutSeconds", error.Upstream.ProviderFailureDiagnostics!.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_timeout_and_an_answer_are_a_502()
    {
        _rig.Routing.MaxRetries = 0;
        _rig.Add("a").ThenFail(UpstreamFailure.Timeout());
        _rig.Add("b").ThenStatus(500);
        _rig.Routing.Default = ["a", "b"];

        Assert.Equal(502, (await FailsAsync(_rig.SendAsync(Chat))).Status);
    }

    [Fact]
    public async Task A_refused_connection_falls_back_to_the_next_candidate()
    {
        _rig.Routing.MaxRetries = 0;
        var a = _rig.Add("a").ThenFail(UpstreamFailure.ConnectionFailed("Connection refused."));
        var b = _rig.Add("b").ThenJson(Completion);
        _rig.Routing.Default = ["a", "b"];

        await using var answer = (await _rig.SendAsync(Chat)).Value;

        Assert.Equal(("b", 2), (answer.Provider, answer.Attempts));
        Assert.Equal(UpstreamFailureKind.ConnectionFailed, Assert.Single(answer.Failures).Failure.Kind);
        Assert.Single(a.Calls);
    }

    [Fact]
    public async Task A_provider_without_credentials_is_skipped_and_not_counted_as_a_call()
    {
        var a = _rig.Add("a").ThenFail(UpstreamFailure.CredentialsNotConfigured());
        _rig.Routing.Default = ["a"];

        var error = await FailsAsync(_rig.SendAsync(Chat));

        Assert.Single(a.Calls);
        Assert.Equal((502, 0), (error.Status, error.Upstream!.AttemptCount));
        Assert.Empty(error.Upstream.FailedStatuses);
        Assert.Equal(["a"], error.Upstream.FailedProviders);
        Assert.Equal(("not_attempted", (int?)null), (error.Upstream.FailureSample[0].Type, error.Upstream.FailureSample[0].Status));
        Assert.Equal("credentials_not_configured", error.Upstream.ProviderFailureDiagnostics!.Category);
        Assert.Contains("has no API key configured", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_that_breaks_before_its_first_byte_is_retried_and_the_broken_answer_released()
    {
        var a = _rig.Add("a");
        a.ThenStream(new BreakingStream([])).ThenStream(new MemoryStream([])).ThenStream(new MemoryStream("data: {}\n\n"u8.ToArray()));
        _rig.Routing.Default = ["a"];

        await using var answer = (await _rig.SendAsync("{\"model\":\"m\",\"stream\":true}")).Value;

        Assert.Equal(3, answer.Attempts);
        Assert.Equal([UpstreamFailureKind.ConnectionFailed, UpstreamFailureKind.Malformed], answer.Failures.Select(f => f.Failure.Kind));
        Assert.Equal(2, a.Disposed);
        Assert.True(answer.IsEventStream);
        Assert.Equal("data: {}\n\n", Encoding.UTF8.GetString(answer.Head.Span));
        Assert.True(a.Calls.All(c => c.Stream));
    }

    [Fact]
    public async Task A_stream_that_breaks_after_its_first_byte_is_accepted_and_its_error_carries_the_diagnostics()
    {
        var a = _rig.Add("a").ThenStream(new BreakingStream("data: {\"n\":1}\n\n"u8.ToArray()));
        _rig.Routing.Default = ["a"];

        await using var answer = (await _rig.SendAsync("{\"model\":\"m\",\"stream\":true}")).Value;
        Assert.False(answer.IsComplete);
        await Assert.ThrowsAsync<IOException>(async () => await answer.Rest.CopyToAsync(Stream.Null));

        var error = answer.BrokenStream(UpstreamFailure.ConnectionFailed("reset"));
        Assert.Equal((502, "upstream_stream_failed"), (error.Status, error.Code));
        Assert.Equal((1, "a"), (error.Upstream!.AttemptCount, error.Upstream.FailedProviders.Single()));
        Assert.Equal([502], error.Upstream.FailedStatuses);
    }

    [Fact]
    public async Task A_2xx_answer_that_is_not_JSON_is_a_failure_retried_like_any_other()
    {
        _rig.Routing.MaxRetries = 1;
        _rig.Add("a").ThenJson("{\"id\":\"x\",").ThenJson("{\"id\": truncated");
        var b = _rig.Add("b").ThenJson("[1,2]");
        _rig.Routing.Default = ["a", "b"];

        await using var answer = (await _rig.SendAsync(Chat)).Value;

        Assert.Equal(("b", 3), (answer.Provider, answer.Attempts));
        Assert.All(answer.Failures, f => Assert.Equal(UpstreamFailureKind.Malformed, f.Failure.Kind));
        Assert.Null(answer.JsonObjectEnd); // an array gets no extra_fields
        Assert.True(answer.IsComplete);
    }

    [Fact]
    public async Task A_JSON_answer_over_the_bound_is_passed_through_unread_and_unchecked()
    {
        _rig.Responses.MaxBufferedJsonBytes = 32;
        string big = "{\"data\":\"" + new string('x', 100) + "\"}";
        _rig.Add("a").ThenJson(big);
        _rig.Routing.Default = ["a"];

        await using var answer = (await _rig.SendAsync(Chat)).Value;

        Assert.False(answer.IsComplete);
        Assert.Null(answer.JsonObjectEnd);
        using var rest = new MemoryStream();
        await answer.Rest.CopyToAsync(rest);
        Assert.Equal(big, Encoding.UTF8.GetString([.. answer.Head.ToArray(), .. rest.ToArray()]));
    }

    [Theory]
    [InlineData("{}", 1, true)]
    [InlineData(" { \"a\" : 1 } \n", 11, false)]
    [InlineData("{\"extra_fields\":{},\"a\":1}", null, false)]
    [InlineData("\"text\"", null, false)]
    public void Where_extra_fields_can_go_is_found_in_a_JSON_answer(string json, int? end, bool empty)
    {
        Assert.True(ModelDispatcher.TryReadJson(Encoding.UTF8.GetBytes(json), out int? objectEnd, out bool isEmpty));
        Assert.Equal((end, empty), (objectEnd, isEmpty));
    }

    [Theory]
    [InlineData("")]
    [InlineData("{} {}")]
    [InlineData("{\"a\":}")]
    [InlineData("{\"a\":1")]
    public void A_body_that_is_not_one_JSON_value_is_refused(string json) =>
        Assert.False(ModelDispatcher.TryReadJson(Encoding.UTF8.GetBytes(json), out _, out _));

    [Fact]
    public async Task The_rewriter_sees_each_candidate_and_its_body_is_what_is_sent()
    {
        _rig.Routing.MaxRetries = 0;
        var rewriter = new RecordingRewriter();
        _rig.Rewriter = rewriter;
        var a = _rig.Add("a").ThenStatus(500);
        var b = _rig.Add("b").ThenJson(Completion);
        _rig.Routing.Default = ["a", "b"];

        await using var answer = (await _rig.SendAsync("{\"model\":\"m\",\"file_id\":\"file-1\"}")).Value;

        Assert.Equal(["a", "b"], rewriter.Seen.Select(c => c.Provider.Id));
        Assert.All(rewriter.Seen, c => Assert.Equal("ws_1", c.WorkspaceId));
        Assert.Equal("{\"model\":\"m\",\"file_id\":\"file-1@a\"}", Encoding.UTF8.GetString(a.Calls[0].Body.Span));
        Assert.Equal("{\"model\":\"m\",\"file_id\":\"file-1@b\"}", Encoding.UTF8.GetString(b.Calls[0].Body.Span));
    }

    [Fact]
    public async Task A_rewriter_failure_moves_on_and_its_refusal_is_answered_at_once()
    {
        var a = _rig.Add("a").ThenJson(Completion);
        var b = _rig.Add("b").ThenJson(Completion);
        _rig.Routing.Default = ["a", "b"];
        _rig.Rewriter = new RecordingRewriter { FailFor = "a" };

        await using (var answer = (await _rig.SendAsync(Chat)).Value)
        {
            Assert.Equal(("b", 1), (answer.Provider, answer.Attempts));
            Assert.Empty(a.Calls);
        }

        _rig.Rewriter = new RecordingRewriter { RefuseFor = "a" };
        var error = await FailsAsync(_rig.SendAsync(Chat));
        Assert.Equal((404, "file_id"), (error.Status, error.Param));
        Assert.Single(b.Calls);
    }

    [Fact]
    public async Task A_client_that_goes_away_during_a_backoff_stops_the_dispatch()
    {
        var a = _rig.Add("a").ThenStatus(500);
        _rig.Routing.Default = ["a"];
        using var request = RoutingRig.Request(Chat);
        var plan = _rig.Router().Route(request, null, RoutingRig.Workspace(null)).Value;
        using var gone = new CancellationTokenSource();

        var sending = _rig.Dispatcher().DispatchAsync("ws_1", request, plan, gone.Token);
        await _rig.Time.NextWaitAsync();
        gone.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending);
        Assert.Single(a.Calls);
    }

    private sealed class RecordingRewriter : IModelBodyRewriter
    {
        public List<ModelBodyContext> Seen { get; } = [];

        public string? FailFor { get; init; }

        public string? RefuseFor { get; init; }

        public ValueTask<ModelBodyRewrite> RewriteAsync(ModelBodyContext context, CancellationToken cancellationToken)
        {
            Seen.Add(context);
            if (context.Provider.Id == FailFor)
            {
                return ValueTask.FromResult(ModelBodyRewrite.Failed(UpstreamFailure.FromAnswer(500, null, null, null)));
            }
            if (context.Provider.Id == RefuseFor)
            {
                return ValueTask.FromResult(ModelBodyRewrite.Refused(WharfErrors.NoSuchFile("file-1") with { Param = "file_id" }));
            }
            string body = Encoding.UTF8.GetString(context.Body.Span);
            return ValueTask.FromResult(ModelBodyRewrite.Send(Encoding.UTF8.GetBytes(body.Replace("file-1", "file-1@" + context.Provider.Id, StringComparison.Ordinal))));
        }
    }
}
