using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Wharf.Core.Providers;
using Wharf.Providers.Decorators;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

public sealed class DecoratorTests(OpenAISimulatorFixture fixture) : IClassFixture<OpenAISimulatorFixture>
{
    private readonly OpenAISimulator _sim = fixture.Simulator;

    private ProviderHarness Start(params (string, string?)[] more)
    {
        _sim.ClearFaults();
        return ProviderHarness.Start([("up:Type", "openai"), ("up:ApiKey", _sim.ApiKey), ("up:BaseUrl", _sim.BaseUrl.ToString()), .. more]);
    }

    [Fact]
    public async Task MaxConcurrencyHoldsUnderLoadAndTheRestWaitInsteadOfBeingRefused()
    {
        await using var harness = Start(("up:MaxConcurrency", "3"));
        var limiter = Assert.IsType<ConcurrencyLimitedProvider>(harness["up"]);
        var hold = new Hold();
        _sim.Always = Fault.Hold(hold);
        int maxBefore = _sim.MaxInFlight;
        Assert.True(maxBefore <= 3, "another test of this class left requests in flight");

        // Each caller relays its answer and disposes it, which gives its slot back (as the dispatcher does).
        var calls = Enumerable.Range(0, 20).Select(async _ =>
        {
            var outcome = await limiter.SendModelRequestAsync(OpenAIAdapterTests.Chat(), CancellationToken.None);
            if (outcome.IsOk)
            {
                await OpenAIAdapterTests.ReadAllAsync(outcome.Value);
            }
            return outcome.IsOk;
        }).ToList();
        await _sim.WaitForInFlightAsync(3).WaitAsync(TimeSpan.FromSeconds(10));
        // Every call is either at the upstream or waiting for a slot: none can reach it without a slot.
        await Until(() => limiter.Waiting == 17);
        Assert.Equal(3, _sim.InFlight);
        Assert.Equal(3, limiter.InFlight);
        Assert.All(calls, c => Assert.False(c.IsCompleted));

        _sim.Always = null;
        hold.Release();
        var outcomes = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(outcomes, Assert.True);
        Assert.Equal(3, _sim.MaxInFlight);
        Assert.Equal(0, limiter.InFlight);
    }

    [Fact]
    public async Task AStreamedAnswerHoldsItsSlotUntilItIsDisposed()
    {
        await using var harness = Start(("up:MaxConcurrency", "1"));
        var limiter = Assert.IsType<ConcurrencyLimitedProvider>(harness["up"]);
        var streamed = (await limiter.SendModelRequestAsync(OpenAIAdapterTests.Chat(stream: true), CancellationToken.None)).Value;
        Assert.Equal(1, limiter.InFlight);

        var next = limiter.SendModelRequestAsync(OpenAIAdapterTests.Chat(), CancellationToken.None);
        await Until(() => limiter.Waiting == 1);
        Assert.False(next.IsCompleted);

        await streamed.DisposeAsync();
        await streamed.DisposeAsync(); // twice gives the slot back once
        var outcome = await next.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(outcome.IsOk);
        await outcome.Value.DisposeAsync();
        Assert.Equal(0, limiter.InFlight);
    }

    [Fact]
    public async Task AWaitForASlotEndsWithTheCallersCancellation()
    {
        await using var harness = Start(("up:MaxConcurrency", "1"));
        var limiter = Assert.IsType<ConcurrencyLimitedProvider>(harness["up"]);
        var held = (await limiter.SendModelRequestAsync(OpenAIAdapterTests.Chat(stream: true), CancellationToken.None)).Value;
        int received = _sim.Received;

        using var cancel = new CancellationTokenSource();
        var waiting = limiter.SendModelRequestAsync(OpenAIAdapterTests.Chat(), cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(0, limiter.Waiting);
        Assert.Equal(received, _sim.Received);

        await held.DisposeAsync();
        Assert.Equal(0, limiter.InFlight);
    }

    [Fact]
    public async Task FailuresAndFilesReleaseTheirSlots()
    {
        await using var harness = Start(("up:MaxConcurrency", "1"));
        var limiter = Assert.IsType<ConcurrencyLimitedProvider>(harness["up"]);
        _sim.Enqueue(Fault.Status(500));
        Assert.False((await limiter.SendModelRequestAsync(OpenAIAdapterTests.Chat(), CancellationToken.None)).IsOk);
        Assert.True((await limiter.ListFilesAsync(new UpstreamFileQuery(1, null, null, null), CancellationToken.None)).IsOk);
        Assert.Equal(0, limiter.InFlight);
    }

    [Fact]
    public async Task WithoutMaxConcurrencyThereIsNoLimiter()
    {
        await using var harness = Start();
        Assert.IsType<TelemetryProvider>(harness["up"]);
    }

    [Fact]
    public async Task EveryCallIsCountedAndTimedByProviderOperationOutcomeAndStatusWithNothingSecretInItsTags()
    {
        await using var harness = Start();
        var meters = harness.Services.GetRequiredService<ProviderTelemetry>();
        using var calls = new MetricCollector<long>(meters.Calls);
        using var durations = new MetricCollector<double>(meters.Duration);
        var activities = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Wharf.Providers",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => { lock (activities) { activities.Add(activity); } },
        };
        ActivitySource.AddActivityListener(listener);

        var ok = await harness["up"].SendModelRequestAsync(OpenAIAdapterTests.Chat(), CancellationToken.None);
        await ok.Value.DisposeAsync();
        _sim.Enqueue(Fault.RateLimited("1"));
        await harness["up"].SendModelRequestAsync(OpenAIAdapterTests.Chat(), CancellationToken.None);
        await harness["up"].ListFilesAsync(new UpstreamFileQuery(null, null, null, null), CancellationToken.None);

        var measured = calls.GetMeasurementSnapshot();
        Assert.Equal(3, measured.Count);
        Assert.Equal(("up", "openai", "chat.completions", "ok", 200), Tags(measured[0].Tags));
        Assert.Equal(("up", "openai", "chat.completions", "rate_limited", 429), Tags(measured[1].Tags));
        Assert.Equal(("up", "openai", "files.list", "ok", 200), Tags(measured[2].Tags));
        Assert.Equal(3, durations.GetMeasurementSnapshot().Count);
        Assert.All(durations.GetMeasurementSnapshot(), m => Assert.True(m.Value >= 0));

        List<Activity> seen;
        lock (activities)
        {
            seen = [.. activities.Where(a => Equals(a.GetTagItem("wharf.provider.id"), "up"))];
        }
        Assert.Contains(seen, a => a.DisplayName == "provider chat.completions" && a.Status == ActivityStatusCode.Error);
        foreach (var tag in measured.SelectMany(m => m.Tags).Concat(seen.SelectMany(a => a.TagObjects)))
        {
            Assert.DoesNotContain(_sim.ApiKey, tag.Value?.ToString() ?? "", StringComparison.Ordinal);
            Assert.DoesNotContain("127.0.0.1", tag.Value?.ToString() ?? "", StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task EveryCallsOutcomeIsAmongItsProvidersRecentOnesNewestFirst()
    {
        await using var harness = Start();
        var recent = harness.Services.GetRequiredService<RecentUpstreamOutcomes>();

        var ok = await harness["up"].SendModelRequestAsync(OpenAIAdapterTests.Chat(), CancellationToken.None);
        await ok.Value.DisposeAsync();
        _sim.Enqueue(Fault.RateLimited("1"));
        await harness["up"].SendModelRequestAsync(OpenAIAdapterTests.Chat(), CancellationToken.None);
        await harness["up"].ListFilesAsync(new UpstreamFileQuery(null, null, null, null), CancellationToken.None);

        var outcomes = recent.Of("up");
        Assert.Equal(
            [("files.list", "ok", (int?)200), ("chat.completions", "rate_limited", 429), ("chat.completions", "ok", 200)],
            outcomes.Select(o => (o.Operation, o.Outcome, o.Status)));
        Assert.All(outcomes, o => Assert.True(o.DurationMs >= 0 && o.At > 1_600_000_000));
        Assert.Empty(recent.Of("another"));
    }

    [Fact]
    public void RecentOutcomesKeepTheLastFiftyOfEachProviderWhateverTheTraffic()
    {
        var recent = new RecentUpstreamOutcomes();
        for (int i = 0; i < 1000; i++)
        {
            recent.Add("a", new RecentUpstreamOutcome(i, "chat.completions", "ok", 200, i));
        }
        recent.Add("b", new RecentUpstreamOutcome(7, "embeddings", "server_error", 503, 1));

        var kept = recent.Of("a");
        Assert.Equal(RecentUpstreamOutcomes.PerProvider, kept.Count);
        Assert.Equal(Enumerable.Range(950, 50).Reverse().Select(i => (long)i), kept.Select(o => o.At));
        Assert.Equal(("embeddings", "server_error"), (recent.Of("b")[0].Operation, recent.Of("b")[0].Outcome));
    }

    [Fact]
    public async Task BatchCallsPassThroughBothDecoratorsAreCountedByOperationAndReleaseTheirSlots()
    {
        await using var harness = Start(("up:MaxConcurrency", "1"));
        var limiter = Assert.IsType<ConcurrencyLimitedProvider>(harness["up"]);
        var meters = harness.Services.GetRequiredService<ProviderTelemetry>();
        using var calls = new MetricCollector<long>(meters.Calls);
        byte[] lines = System.Text.Encoding.UTF8.GetBytes(OpenAIBatchAdapterTests.Lines("/v1/chat/completions", "gpt-4o-mini"));
        string input = (await limiter.UploadFileAsync(new UpstreamFileUpload(new MemoryStream(lines), lines.Length, "in.jsonl", "batch", null), CancellationToken.None)).Value.Id;

        var created = await limiter.CreateBatchAsync(new UpstreamBatchCreate(input, "/v1/chat/completions", "24h", new Dictionary<string, string>()), CancellationToken.None);
        Assert.True(created.IsOk, created.Failure?.ToString());
        await _sim.WaitForBatchEndAsync(created.Value.Id);
        var batch = (await limiter.GetBatchAsync(created.Value.Id, CancellationToken.None)).Value;
        Assert.True((await limiter.ListBatchesAsync(new UpstreamBatchQuery(1, null), CancellationToken.None)).IsOk);
        _sim.Enqueue(Fault.Status(500));
        Assert.False((await limiter.CancelBatchAsync(batch.Id, CancellationToken.None)).IsOk);
        var download = await limiter.DownloadFileAsync(batch.OutputFileId!, CancellationToken.None);
        await download.Value.DisposeAsync();

        Assert.Equal(0, limiter.InFlight);
        var operations = calls.GetMeasurementSnapshot().Select(m => (m.Tags["wharf.provider.operation"], m.Tags["wharf.provider.outcome"])).ToList();
        Assert.Equal(
            [("files.upload", "ok"), ("batches.create", "ok"), ("batches.get", "ok"), ("batches.list", "ok"), ("batches.cancel", "server_error"), ("files.content", "ok")],
            operations);
    }

    /// <summary>Waits for a state another task reaches (fails after 10 s of not reaching it).</summary>
    private static async Task Until(Func<bool> condition)
    {
        for (int i = 0; i < 10_000 && !condition(); i++)
        {
            await Task.Delay(1);
        }
        Assert.True(condition());
    }

    private static (object?, object?, object?, object?, object?) Tags(IReadOnlyDictionary<string, object?> tags) =>
        (tags["wharf.provider.id"], tags["wharf.provider.type"], tags["wharf.provider.operation"], tags["wharf.provider.outcome"], tags["http.response.status_code"]);

    [Fact]
    public async Task FailuresAreLoggedWithoutTheKeyTheBodyOrTheUpstreamsWords()
    {
        await using var harness = Start();
        string echo = $$$"""{"error":{"message":"bad key {{{_sim.ApiKey}}} for SECRET-CONTENT-42","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}""";
        _sim.Enqueue(Fault.Status(401, echo));
        var call = new ModelCall(ProviderCapability.ChatCompletions, "m", """{"model":"m","messages":[{"role":"user","content":"PRIVATE-PROMPT-7"}]}"""u8.ToArray(), false);
        var failure = (await harness["up"].SendModelRequestAsync(call, CancellationToken.None)).Failure!;
        Assert.Equal(401, failure.Status);
        _sim.Enqueue(Fault.CloseConnection());
        await harness["up"].SendModelRequestAsync(call, CancellationToken.None);
        await harness["up"].UploadFileAsync(new UpstreamFileUpload(new MemoryStream("FILE-BYTES-9"u8.ToArray()), 12, "x.txt", "batch", null), CancellationToken.None);

        var lines = harness.Logs.Lines;
        Assert.Contains(lines, l => l.Contains("Provider up chat.completions failed: Answered, status 401, credentials_invalid_or_forbidden", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Provider up chat.completions failed: ConnectionFailed", StringComparison.Ordinal));
        foreach (string secret in new[] { _sim.ApiKey, "SECRET-CONTENT-42", "PRIVATE-PROMPT-7", "FILE-BYTES-9", "Bearer" })
        {
            Assert.DoesNotContain(lines, l => l.Contains(secret, StringComparison.Ordinal));
        }
    }
}
