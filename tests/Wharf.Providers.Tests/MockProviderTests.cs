using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Responses;
using Wharf.Core.Providers;

namespace Wharf.Providers.Tests;

public sealed class MockProviderTests
{
    private static ProviderHarness Start(params (string, string?)[] options) =>
        ProviderHarness.Start([("demo:Type", "mock"), .. options.Select(o => ("demo:" + o.Item1, o.Item2))]);

    private static ModelCall Call(ProviderCapability endpoint, string json, bool stream = false) => new(endpoint, "mock-1", Encoding.UTF8.GetBytes(json), stream);

    private static async Task<string> AnswerAsync(IProvider provider, ModelCall call)
    {
        var outcome = await provider.SendModelRequestAsync(call, CancellationToken.None);
        Assert.True(outcome.IsOk, outcome.Failure?.ToString());
        return await OpenAIAdapterTests.ReadAllAsync(outcome.Value);
    }

    private const string ChatJson = """{"model":"mock-1","messages":[{"role":"user","content":"Hello there"}]}""";

    [Fact]
    public async Task AChatCompletionParsesWithTheOfficialSdkAndHasUsage()
    {
        await using var harness = Start();
        string json = await AnswerAsync(harness["demo"], Call(ProviderCapability.ChatCompletions, ChatJson));
        var completion = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(json))!;

        Assert.Equal("mock-1", completion.Model);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.StartsWith("This is a mock answer (", completion.Content[0].Text, StringComparison.Ordinal);
        Assert.Contains("from demo for mock-1.", completion.Content[0].Text, StringComparison.Ordinal);
        Assert.StartsWith("chatcmpl-mock", completion.Id, StringComparison.Ordinal);
        Assert.Equal(harness.Time.GetUtcNow().ToUnixTimeSeconds(), completion.CreatedAt.ToUnixTimeSeconds());
        Assert.True(completion.Usage.InputTokenCount > 0);
        Assert.Equal(completion.Content[0].Text.Split(' ').Length, completion.Usage.OutputTokenCount);
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task TheSameBodyGetsTheSameAnswerAndAnotherBodyAnother()
    {
        await using var harness = Start();
        string first = await AnswerAsync(harness["demo"], Call(ProviderCapability.ChatCompletions, ChatJson));
        string again = await AnswerAsync(harness["demo"], Call(ProviderCapability.ChatCompletions, ChatJson));
        string other = await AnswerAsync(harness["demo"], Call(ProviderCapability.ChatCompletions, ChatJson.Replace("Hello there", "Bye", StringComparison.Ordinal)));
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public async Task AStreamedChatIsChunksThenDoneAndIncludesUsageWhenAsked()
    {
        await using var harness = Start();
        string sse = await AnswerAsync(harness["demo"], Call(ProviderCapability.ChatCompletions,
            """{"model":"mock-1","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true}}""", stream: true));

        string[] events = sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var updates = events[..^1].Select(e =>
        {
            Assert.StartsWith("data: ", e, StringComparison.Ordinal);
            return ModelReaderWriter.Read<StreamingChatCompletionUpdate>(BinaryData.FromString(e["data: ".Length..]))!;
        }).ToList();
        Assert.Equal(ChatMessageRole.Assistant, updates[0].Role);
        string text = string.Concat(updates.SelectMany(u => u.ContentUpdate).Select(p => p.Text));
        Assert.StartsWith("This is a mock answer (", text, StringComparison.Ordinal);
        Assert.Equal(ChatFinishReason.Stop, updates[^2].FinishReason);
        Assert.Empty(updates[^1].ContentUpdate);
        Assert.Equal(text.Split(' ').Length, updates[^1].Usage.OutputTokenCount);
        Assert.All(updates[..^1], u => Assert.Null(u.Usage));
        // Each chunk is one JSON object carrying "usage": null until the last, as OpenAI sends them with include_usage.
        Assert.All(events[..^2], e => Assert.Contains("\"usage\":null", e, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AStreamedChatWithoutIncludeUsageHasNoUsageChunk()
    {
        await using var harness = Start();
        string sse = await AnswerAsync(harness["demo"], Call(ProviderCapability.ChatCompletions, """{"model":"mock-1","messages":[],"stream":true}""", stream: true));
        Assert.DoesNotContain("usage", sse, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", sse, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EmbeddingsParseWithTheOfficialSdkAsFloatsAndAsBase64()
    {
        await using var harness = Start();
        string floats = await AnswerAsync(harness["demo"], Call(ProviderCapability.Embeddings, """{"model":"mock-1","input":["a","b","c"],"dimensions":16}"""));
        var collection = ModelReaderWriter.Read<OpenAIEmbeddingCollection>(BinaryData.FromString(floats))!;
        Assert.Equal(3, collection.Count);
        Assert.All(collection, e => Assert.Equal(16, e.ToFloats().Length));
        Assert.Equal(1.0, Math.Sqrt(collection[0].ToFloats().ToArray().Sum(v => (double)v * v)), 3);
        Assert.True(collection.Usage.InputTokenCount > 0);

        string base64 = await AnswerAsync(harness["demo"], Call(ProviderCapability.Embeddings, """{"model":"mock-1","input":"a","encoding_format":"base64"}"""));
        var encoded = ModelReaderWriter.Read<OpenAIEmbeddingCollection>(BinaryData.FromString(base64))!;
        Assert.Single(encoded);
        Assert.Equal(1536, encoded[0].ToFloats().Length);
    }

    [Fact]
    public async Task EmbeddingsWithTooManyInputsAreRejectedAndABadDimensionsValueIsNoFault()
    {
        await using var harness = Start();
        string many = "{\"model\":\"mock-1\",\"input\":[" + string.Join(',', Enumerable.Repeat("\"\"", 2049)) + "]}";
        var failure = (await harness["demo"].SendModelRequestAsync(Call(ProviderCapability.Embeddings, many), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.RequestRejected, 400, "input"), (failure.Category, failure.Status!.Value, failure.Error!.Param));

        string answer = await AnswerAsync(harness["demo"], Call(ProviderCapability.Embeddings, """{"model":"mock-1","input":"a","dimensions":"8"}"""));
        var collection = ModelReaderWriter.Read<OpenAIEmbeddingCollection>(BinaryData.FromString(answer))!;
        Assert.Equal(1536, Assert.Single(collection).ToFloats().Length);
    }

    [Fact]
    public async Task ATextCompletionHasOpenAIsShape()
    {
        await using var harness = Start();
        using var json = JsonDocument.Parse(await AnswerAsync(harness["demo"], Call(ProviderCapability.Completions, """{"model":"mock-1","prompt":"Say hi"}""")));
        var root = json.RootElement;
        Assert.Equal("text_completion", root.GetProperty("object").GetString());
        Assert.StartsWith("This is a mock answer", root.GetProperty("choices")[0].GetProperty("text").GetString(), StringComparison.Ordinal);
        Assert.Equal("stop", root.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.True(root.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);

        string sse = await AnswerAsync(harness["demo"], Call(ProviderCapability.Completions, """{"model":"mock-1","prompt":"Say hi","stream":true}""", stream: true));
        Assert.EndsWith("data: [DONE]\n\n", sse, StringComparison.Ordinal);
        Assert.Contains("\"object\":\"text_completion\"", sse, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AResponseParsesWithTheOfficialSdkAndItsStreamIsTypedEvents()
    {
        await using var harness = Start();
        string json = await AnswerAsync(harness["demo"], Call(ProviderCapability.Responses, """{"model":"mock-1","input":"Say hi","instructions":"Be brief"}"""));
        var response = ModelReaderWriter.Read<ResponseResult>(BinaryData.FromString(json))!;
        Assert.Equal(ResponseStatus.Completed, response.Status);
        Assert.StartsWith("This is a mock answer", response.GetOutputText(), StringComparison.Ordinal);
        using (var document = JsonDocument.Parse(json))
        {
            Assert.Equal("Be brief", document.RootElement.GetProperty("instructions").GetString());
        }
        Assert.True(response.Usage.TotalTokenCount > 0);

        string sse = await AnswerAsync(harness["demo"], Call(ProviderCapability.Responses, """{"model":"mock-1","input":"Say hi","stream":true}""", stream: true));
        var events = sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("event: response.created\ndata: ", events[0], StringComparison.Ordinal);
        Assert.StartsWith("event: response.completed\ndata: ", events[^1], StringComparison.Ordinal);
        var updates = events.Select(e => ModelReaderWriter.Read<StreamingResponseUpdate>(BinaryData.FromString(e[(e.IndexOf("data: ", StringComparison.Ordinal) + 6)..]))!).ToList();
        string text = string.Concat(updates.OfType<StreamingResponseOutputTextDeltaUpdate>().Select(u => u.Delta));
        Assert.StartsWith("This is a mock answer", text, StringComparison.Ordinal);
        Assert.Equal(text, updates.OfType<StreamingResponseCompletedUpdate>().Single().Response.GetOutputText());
        Assert.Equal(Enumerable.Range(0, updates.Count), updates.Select(u => u.SequenceNumber));
    }

    [Fact]
    public async Task TheAnswerComesAfterTheConfiguredLatencyOnTheInjectedClock()
    {
        await using var harness = Start(("LatencyMs", "250"));
        var call = harness["demo"].SendModelRequestAsync(Call(ProviderCapability.ChatCompletions, ChatJson), CancellationToken.None);
        harness.Time.Advance(TimeSpan.FromMilliseconds(249));
        Assert.False(call.IsCompleted);
        harness.Time.Advance(TimeSpan.FromMilliseconds(1));
        var outcome = await call.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(outcome.IsOk);
        await outcome.Value.DisposeAsync();
    }

    [Fact]
    public async Task TheLatencyWaitEndsWithTheCallersCancellation()
    {
        await using var harness = Start(("LatencyMs", "60000"));
        using var cancel = new CancellationTokenSource();
        var call = harness["demo"].SendModelRequestAsync(Call(ProviderCapability.ChatCompletions, ChatJson), cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }

    [Fact]
    public async Task FailureRateOneFailsEveryCallWithARetryable503AndZeroNone()
    {
        await using var failing = Start(("FailureRate", "1"));
        for (int i = 0; i < 5; i++)
        {
            var failure = (await failing["demo"].SendModelRequestAsync(Call(ProviderCapability.ChatCompletions, ChatJson), CancellationToken.None)).Failure!;
            Assert.Equal((UpstreamFailureKind.Answered, FailureCategory.ServerError, 503, true), (failure.Kind, failure.Category, failure.Status!.Value, failure.Retryable));
            Assert.Equal("mock_failure", failure.Error!.Code);
        }
        await using var healthy = Start(("FailureRate", "0"));
        for (int i = 0; i < 5; i++)
        {
            Assert.True((await healthy["demo"].SendModelRequestAsync(Call(ProviderCapability.ChatCompletions, ChatJson), CancellationToken.None)).IsOk);
        }
    }

    [Theory]
    [InlineData(ProviderCapability.ChatCompletions, "not json", "messages")]
    [InlineData(ProviderCapability.ChatCompletions, """{"model":"mock-1"}""", "messages")]
    [InlineData(ProviderCapability.Embeddings, """["input"]""", "input")]
    [InlineData(ProviderCapability.Completions, """{"model":"mock-1","messages":[]}""", "prompt")]
    public async Task ABodyThatIsNotARequestIsRejectedAsTheUpstreamsVerdict(ProviderCapability endpoint, string json, string param)
    {
        await using var harness = Start();
        var failure = (await harness["demo"].SendModelRequestAsync(Call(endpoint, json), CancellationToken.None)).Failure!;
        Assert.Equal((FailureCategory.RequestRejected, 400, false, param), (failure.Category, failure.Status!.Value, failure.Retryable, failure.Error!.Param));
    }

    [Fact]
    public async Task TheMockHasNoFiles()
    {
        await using var harness = Start();
        var demo = harness["demo"];
        Assert.DoesNotContain(ProviderCapability.Files, demo.Capabilities);
        Assert.Equal(FailureCategory.Unsupported, (await demo.UploadFileAsync(new UpstreamFileUpload(Stream.Null, 0, "a", "batch", null), CancellationToken.None)).Failure!.Category);
        Assert.Equal(FailureCategory.Unsupported, (await demo.DeleteFileAsync("file-1", CancellationToken.None)).Failure!.Category);
        Assert.Equal(FailureCategory.Unsupported, (await demo.ListFilesAsync(new UpstreamFileQuery(null, null, null, null), CancellationToken.None)).Failure!.Category);
    }

    [Fact]
    public async Task LocalServesNothingUpstream()
    {
        await using var harness = Start();
        var local = harness["local"];
        Assert.Equal(("local", "local"), (local.Id, local.Type));
        Assert.Empty(local.Capabilities);
        Assert.Equal(FailureCategory.Unsupported, (await local.SendModelRequestAsync(Call(ProviderCapability.ChatCompletions, ChatJson), CancellationToken.None)).Failure!.Category);
        Assert.Equal(FailureCategory.Unsupported, (await local.UploadFileAsync(new UpstreamFileUpload(Stream.Null, 0, "a", "batch", null), CancellationToken.None)).Failure!.Category);
        Assert.Equal(FailureCategory.Unsupported, (await local.DeleteFileAsync("file-1", CancellationToken.None)).Failure!.Category);
        Assert.Equal(FailureCategory.Unsupported, (await local.ListFilesAsync(new UpstreamFileQuery(null, null, null, null), CancellationToken.None)).Failure!.Category);
    }
}
