using System.ClientModel.Primitives;
using System.Text;
using OpenAI.Chat;
using Wharf.Core.Providers;
using Wharf.Simulators;

namespace Wharf.Providers.Tests;

/// <summary>One OpenAI simulator for the class; the tests of a class run one at a time, each scripting its own faults.</summary>
public sealed class OpenAISimulatorFixture : IAsyncLifetime
{
    public OpenAISimulator Simulator { get; private set; } = null!;

    public async Task InitializeAsync() => Simulator = await OpenAISimulator.StartAsync();

    public async Task DisposeAsync() => await Simulator.DisposeAsync();
}

public sealed class OpenAIAdapterTests(OpenAISimulatorFixture fixture) : IClassFixture<OpenAISimulatorFixture>, IAsyncLifetime
{
    private readonly OpenAISimulator _sim = fixture.Simulator;
    private ProviderHarness _harness = null!;

    private IProvider Provider => _harness["up"];

    public Task InitializeAsync()
    {
        _sim.ClearFaults();
        _harness = ProviderHarness.Start(
            ("up:Type", "openai"), ("up:ApiKey", _sim.ApiKey), ("up:BaseUrl", _sim.BaseUrl.ToString()), ("up:TimeoutSeconds", "30"),
            ("up:Headers:X-Title", "wharf-tests"));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    internal static ModelCall Chat(string model = "gpt-4o-mini", bool stream = false, string extra = "") =>
        new(ProviderCapability.ChatCompletions, model,
            Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"user","content":"Hello"}]{{(stream ? ",\"stream\":true" : "")}}{{extra}}}"""), stream);

    internal static async Task<string> ReadAllAsync(ModelResponse response)
    {
        await using (response)
        {
            return await new StreamReader(response.Content).ReadToEndAsync();
        }
    }

    [Fact]
    public async Task AChatCompletionIsSentAsItIsWithTheKeyAndHeadersAndItsAnswerParsesWithTheOfficialSdk()
    {
        var call = Chat(extra: ",\"temperature\":0.5");
        var outcome = await Provider.SendModelRequestAsync(call, CancellationToken.None);

        Assert.True(outcome.IsOk);
        Assert.Equal(200, outcome.Value.Status);
        Assert.False(outcome.Value.IsEventStream);
        string body = await ReadAllAsync(outcome.Value);
        var completion = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(body))!;
        Assert.Equal(_sim.ReplyText, completion.Content[0].Text);

        var sent = _sim.Requests[^1];
        Assert.Equal(("POST", "/v1/chat/completions"), (sent.Method, sent.Path));
        Assert.Equal(call.Body.ToArray(), sent.Body);
        Assert.Equal("Bearer " + _sim.ApiKey, sent.Header("Authorization"));
        Assert.Equal("wharf-tests", sent.Header("X-Title"));
        Assert.StartsWith("application/json", sent.Header("Content-Type"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ProviderCapability.Completions, "/v1/completions", """{"model":"m","prompt":"Say hi"}""")]
    [InlineData(ProviderCapability.Embeddings, "/v1/embeddings", """{"model":"m","input":["a","b"]}""")]
    [InlineData(ProviderCapability.Responses, "/v1/responses", """{"model":"m","input":"Say hi"}""")]
    public async Task EveryModelEndpointGoesToItsPath(ProviderCapability endpoint, string path, string json)
    {
        var outcome = await Provider.SendModelRequestAsync(new ModelCall(endpoint, "m", Encoding.UTF8.GetBytes(json), false), CancellationToken.None);
        Assert.True(outcome.IsOk);
        Assert.Contains("\"model\":\"m\"", await ReadAllAsync(outcome.Value), StringComparison.Ordinal);
        Assert.Equal(path, _sim.Requests[^1].Path);
    }

    [Theory]
    [InlineData(401, FailureCategory.CredentialsInvalidOrForbidden, false)]
    [InlineData(402, FailureCategory.ProviderAccessMissing, false)]
    [InlineData(403, FailureCategory.CredentialsInvalidOrForbidden, false)]
    [InlineData(404, FailureCategory.ModelUnavailableForEndpoint, false)]
    [InlineData(400, FailureCategory.RequestRejected, false)]
    [InlineData(500, FailureCategory.ServerError, true)]
    [InlineData(503, FailureCategory.ServerError, true)]
    public async Task AnErrorAnswerBecomesAClassifiedFailureWithTheUpstreamsErrorFields(int status, FailureCategory category, bool retryable)
    {
        _sim.Enqueue(Fault.Status(status));
        var outcome = await Provider.SendModelRequestAsync(Chat(), CancellationToken.None);

        Assert.False(outcome.IsOk);
        var failure = outcome.Failure;
        Assert.Equal((UpstreamFailureKind.Answered, category, (int?)status, retryable), (failure.Kind, failure.Category, failure.Status, failure.Retryable));
        Assert.NotNull(failure.Error?.Message);
        Assert.NotNull(failure.Error.Code);
        Assert.Contains(failure.Error.Message!, failure.PayloadPreview, StringComparison.Ordinal);
        Assert.Null(failure.RetryAfter);
    }

    [Fact]
    public async Task A429CarriesItsRetryAfterInSeconds()
    {
        _sim.Enqueue(Fault.RateLimited("7"));
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.RateLimited, true, (int?)429), (failure.Category, failure.Retryable, failure.Status));
        Assert.Equal(TimeSpan.FromSeconds(7), failure.RetryAfter);
        Assert.Equal("rate_limit_exceeded", failure.Error?.Code);
        Assert.Equal("requests", failure.Error?.Description);
    }

    [Fact]
    public async Task RetryAfterAsAnHttpDateCountsFromTheInjectedClock()
    {
        string date = _harness.Time.GetUtcNow().AddSeconds(42).ToString("R");
        _sim.Enqueue(Fault.RateLimited(date));
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal(TimeSpan.FromSeconds(42), failure.RetryAfter);
    }

    [Fact]
    public async Task RetryAfterMsIsPreferredForItsPrecision()
    {
        _sim.Enqueue(Fault.RateLimited("2", retryAfterMs: "1500"));
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal(TimeSpan.FromMilliseconds(1500), failure.RetryAfter);
    }

    [Fact]
    public async Task AWrongKeyIsACredentialFailureWhosePreviewAndMessageHoldNoKey()
    {
        await using var harness = ProviderHarness.Start(("up:Type", "openai"), ("up:ApiKey", "sk-wrong-key-for-this-test-987654321"), ("up:BaseUrl", _sim.BaseUrl.ToString()));
        var failure = (await harness["up"].SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;

        Assert.Equal((FailureCategory.CredentialsInvalidOrForbidden, (int?)401, false), (failure.Category, failure.Status, failure.Retryable));
        Assert.Equal("invalid_api_key", failure.Error?.Code);
        // OpenAI quotes a wrong key masked (first and last characters): neither the key nor its quoted parts remain.
        Assert.DoesNotContain("sk-wrong-key-for-this-test-987654321", failure.PayloadPreview, StringComparison.Ordinal);
        Assert.DoesNotContain("4321", failure.PayloadPreview, StringComparison.Ordinal);
        Assert.DoesNotContain("4321", failure.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("Incorrect API key provided: [redacted]", failure.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUpstreamQuotingTheConfiguredKeyOrHeadersGetsThemRedacted()
    {
        string body = $$$"""{"error":{"message":"key {{{_sim.ApiKey}}} and title wharf-tests refused; Authorization: Bearer abc.def.ghi","type":"invalid_request_error","param":null,"code":"nope"}}""";
        _sim.Enqueue(Fault.Status(403, body));
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;

        foreach (string text in new[] { failure.PayloadPreview!, failure.Error!.Message! })
        {
            Assert.DoesNotContain(_sim.ApiKey, text, StringComparison.Ordinal);
            Assert.DoesNotContain("wharf-tests", text, StringComparison.Ordinal);
            Assert.DoesNotContain("abc.def.ghi", text, StringComparison.Ordinal);
        }
        Assert.Contains("key [redacted] and title [redacted] refused", failure.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnErrorBodyIsReadOnlyUpToItsLimitAndThePreviewIsTruncated()
    {
        string huge = "{\"error\":{\"message\":\"" + new string('x', 100_000) + "\"}}";
        _sim.Enqueue(Fault.Status(500, huge));
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;

        Assert.Equal(500, failure.Status);
        Assert.Equal(512, failure.PayloadPreview!.Length);
        Assert.EndsWith("…", failure.PayloadPreview, StringComparison.Ordinal);
        Assert.Null(failure.Error); // the first 8 KiB are not a whole JSON document
    }

    [Fact]
    public async Task MalformedJsonOnA200IsARetryableMalformedFailure()
    {
        _sim.Enqueue(Fault.MalformedJson());
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal((UpstreamFailureKind.Malformed, FailureCategory.ServerError, (int?)200, true), (failure.Kind, failure.Category, failure.Status, failure.Retryable));
    }

    [Fact]
    public async Task AConnectionClosedBeforeTheAnswerIsARetryableConnectionFailure()
    {
        _sim.Enqueue(Fault.CloseConnection());
        var failure = (await Provider.SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal((UpstreamFailureKind.ConnectionFailed, FailureCategory.ServerError, (int?)null, true), (failure.Kind, failure.Category, failure.Status, failure.Retryable));
    }

    [Fact]
    public async Task ARefusedConnectionIsARetryableConnectionFailureThatNamesNoAddress()
    {
        int port = RefusedPort.Get();
        await using var harness = ProviderHarness.Start(("up:Type", "openai"), ("up:ApiKey", "sk-123456"), ("up:BaseUrl", $"http://127.0.0.1:{port}/v1"));
        var failure = (await harness["up"].SendModelRequestAsync(Chat(), CancellationToken.None)).Failure!;
        Assert.Equal((UpstreamFailureKind.ConnectionFailed, true), (failure.Kind, failure.Retryable));
        Assert.DoesNotContain(port.ToString(System.Globalization.CultureInfo.InvariantCulture), failure.Error!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoAnswerWithinTheTimeoutIsATimeoutAndTheUpstreamSeesTheRequestEnd()
    {
        var hold = new Hold();
        _sim.Enqueue(Fault.Hold(hold));
        int aborted = _sim.Aborted;
        var call = Provider.SendModelRequestAsync(Chat(), CancellationToken.None);
        await _sim.WaitForInFlightAsync(1).WaitAsync(TimeSpan.FromSeconds(10));

        _harness.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(call.IsCompleted);
        var failure = (await _harness.AdvanceUntilDoneAsync(call, TimeSpan.FromSeconds(1))).Failure!;

        Assert.Equal((UpstreamFailureKind.Timeout, FailureCategory.ServerError, true), (failure.Kind, failure.Category, failure.Retryable));
        await _sim.WaitForAbortedAsync(aborted + 1).WaitAsync(TimeSpan.FromSeconds(10));
        hold.Release();
    }

    [Fact]
    public async Task TheCallersCancellationPropagatesAsCancellationAndAbortsTheUpstreamRequest()
    {
        var hold = new Hold();
        _sim.Enqueue(Fault.Hold(hold));
        int aborted = _sim.Aborted;
        using var cancel = new CancellationTokenSource();
        var call = Provider.SendModelRequestAsync(Chat(), cancel.Token);
        await _sim.WaitForInFlightAsync(1).WaitAsync(TimeSpan.FromSeconds(10));

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await _sim.WaitForAbortedAsync(aborted + 1).WaitAsync(TimeSpan.FromSeconds(10));
        hold.Release();
    }

    [Fact]
    public async Task AStreamedAnswerPassesItsEventsOnAsTheyArrive()
    {
        var pause = new Hold();
        _sim.Enqueue(Fault.PauseStreamAfterFirstEvent(pause));
        var outcome = await Provider.SendModelRequestAsync(Chat(stream: true), CancellationToken.None);
        Assert.True(outcome.IsOk);
        await using var response = outcome.Value;
        Assert.True(response.IsEventStream);
        Assert.Equal("text/event-stream", _sim.Requests[^1].Header("Accept"));

        // The first event is readable while the upstream still holds the rest.
        var reader = new StreamReader(response.Content);
        string? first = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("data: {", first, StringComparison.Ordinal);
        Assert.Contains("\"role\":\"assistant\"", first, StringComparison.Ordinal);
        Assert.Equal(1, _sim.InFlight);

        pause.Release();
        string rest = await reader.ReadToEndAsync();
        Assert.EndsWith("data: [DONE]\n\n", rest, StringComparison.Ordinal);
        Assert.Equal(_sim.ReplyText.Split(' ').Length, rest.Split("\"content\":", StringSplitOptions.None).Length - 1);
    }

    [Fact]
    public async Task AStreamDroppedMidwayFailsTheReadAfterWhatArrived()
    {
        var drop = new Hold();
        _sim.Enqueue(Fault.DropStreamAfter(2, drop));
        var outcome = await Provider.SendModelRequestAsync(Chat(stream: true), CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        await using var response = outcome.Value;
        var reader = new StreamReader(response.Content);
        Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);
        Assert.Equal("", await reader.ReadLineAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);

        drop.Release();
        await Assert.ThrowsAnyAsync<IOException>(() => reader.ReadToEndAsync());
    }

    [Fact]
    public async Task AStreamThatGoesSilentForTheTimeoutFailsItsRead()
    {
        var pause = new Hold();
        _sim.Enqueue(Fault.PauseStreamAfterFirstEvent(pause));
        var outcome = await Provider.SendModelRequestAsync(Chat(stream: true), CancellationToken.None);
        await using var response = outcome.Value;
        var reader = new StreamReader(response.Content);
        await reader.ReadLineAsync();
        await reader.ReadLineAsync();

        var read = reader.ReadLineAsync();
        var error = await Assert.ThrowsAsync<IOException>(() => _harness.AdvanceUntilDoneAsync(read, TimeSpan.FromSeconds(5)));
        Assert.IsType<TimeoutException>(error.InnerException);
        pause.Release();
    }

    [Fact]
    public async Task AJsonAnswerLargerThanTheCheckedBoundAndSentChunkedArrivesWholeAndByteExact()
    {
        // The rest beyond the bound is far more than a connection drains when its answer is let go unread.
        byte[] answer = LargeJson(Wharf.Providers.Http.OpenAIWire.MaxCheckedAnswerBytes + (40 << 20) + 17);
        _sim.Enqueue(Fault.ChunkedJson(answer));
        var outcome = await Provider.SendModelRequestAsync(Chat(), CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        await using var response = outcome.Value;
        Assert.False(response.IsEventStream);

        var received = new MemoryStream();
        await response.Content.CopyToAsync(received).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(answer.Length, received.Length);
        Assert.True(answer.AsSpan().SequenceEqual(received.GetBuffer().AsSpan(0, (int)received.Length)), "The answer arrived altered.");
    }

    [Fact]
    public async Task TheUncheckedRestOfALargeJsonAnswerFailsItsReadWhenTheUpstreamGoesSilentForTheTimeout()
    {
        var last = new Hold();
        byte[] answer = LargeJson(Wharf.Providers.Http.OpenAIWire.MaxCheckedAnswerBytes + (3 << 20));
        _sim.Enqueue(Fault.ChunkedJson(answer, lastPieceWhen: last));
        var outcome = await Provider.SendModelRequestAsync(Chat(), CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        await using var response = outcome.Value;

        // Everything before the held last piece (the simulator's pieces are 1 MiB) is readable...
        long beforeLast = (answer.Length - 1L) >> 20 << 20;
        byte[] buffer = new byte[1 << 16];
        for (long total = 0; total < beforeLast;)
        {
            int read = await response.Content.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, beforeLast - total))).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(read > 0, "The answer ended early.");
            total += read;
        }

        // ...then nothing comes: the next read fails once the timeout has passed.
        var stalled = response.Content.ReadAsync(buffer).AsTask();
        _harness.Time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(stalled.IsCompleted);
        var error = await Assert.ThrowsAsync<IOException>(() => _harness.AdvanceUntilDoneAsync(stalled, TimeSpan.FromSeconds(1)));
        Assert.IsType<TimeoutException>(error.InnerException);
        last.Release();
    }

    /// <summary>A chat completion object padded with pseudo-random letters to <paramref name="length"/> bytes.</summary>
    private static byte[] LargeJson(int length)
    {
        byte[] head = Encoding.UTF8.GetBytes("{\"id\":\"chatcmpl-large\",\"object\":\"chat.completion\",\"padding\":\"");
        byte[] tail = Encoding.UTF8.GetBytes("\"}");
        byte[] json = new byte[length];
        head.CopyTo(json, 0);
        var random = new Random(7);
        for (int i = head.Length; i < length - tail.Length; i++)
        {
            json[i] = (byte)('a' + random.Next(26));
        }
        tail.CopyTo(json, length - tail.Length);
        return json;
    }
}
