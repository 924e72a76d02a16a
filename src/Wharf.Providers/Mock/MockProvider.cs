using System.Text.Json;
using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Mock;

/// <summary>
/// Type <c>mock</c>: answers every model endpoint itself, deterministically, in OpenAI's shapes (see
/// <see cref="MockAnswers"/>), after <c>LatencyMs</c> on the injected clock, and fails a <c>FailureRate</c> share
/// of calls with a retryable 503. For demos, tests and benchmarks without a paid key. No files, no batches.
/// </summary>
internal sealed class MockAdapter : IProviderAdapter
{
    public string Type => "mock";

    public IEnumerable<string> Validate(string key, ProviderOptions options)
    {
        if (options.LatencyMs is < 0 or > 600_000)
        {
            yield return $"{key}:LatencyMs must be between 0 and 600000.";
        }
        if (!(options.FailureRate is >= 0 and <= 1))
        {
            yield return $"{key}:FailureRate must be between 0 and 1.";
        }
        if (options.NativeBatches == true)
        {
            yield return $"{key}:NativeBatches: type 'mock' has no native batch API (its batches run through the gateway).";
        }
    }

    public IProvider Create(ProviderContext context) =>
        new MockProvider(context.Id, TimeSpan.FromMilliseconds(context.Options.LatencyMs), context.Options.FailureRate, context.Time, Random.Shared);
}

internal sealed class MockProvider(string id, TimeSpan latency, double failureRate, TimeProvider time, Random random) : IProvider
{
    public string Id => id;

    public string Type => "mock";

    public IReadOnlySet<ProviderCapability> Capabilities { get; } = new HashSet<ProviderCapability>(ProviderCapabilities.ModelEndpoints);

    public async Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken)
    {
        if (latency > TimeSpan.Zero)
        {
            await Task.Delay(latency, time, cancellationToken);
        }
        if (failureRate > 0 && random.NextDouble() < failureRate)
        {
            byte[] error = MockAnswers.Error("The mock provider failed this call on purpose (FailureRate).", "server_error", null, "mock_failure");
            return UpstreamFailure.FromAnswer(503, null, UpstreamAnswers.ParseError(error, []), CredentialRedaction.Preview(error, []));
        }
        if (Read(call) is not { } request)
        {
            string field = MockAnswers.RequiredField(call.Endpoint);
            byte[] error = MockAnswers.Error($"The request must be a JSON object with '{field}'.", "invalid_request_error", field, null);
            return UpstreamFailure.FromAnswer(400, null, UpstreamAnswers.ParseError(error, []), CredentialRedaction.Preview(error, []));
        }
        if (call.Endpoint == ProviderCapability.Embeddings && MockAnswers.EmbeddingCount(request) > MockAnswers.MaxEmbeddingInputs)
        {
            byte[] error = MockAnswers.Error($"'input' may hold at most {MockAnswers.MaxEmbeddingInputs} items.", "invalid_request_error", "input", null);
            return UpstreamFailure.FromAnswer(400, null, UpstreamAnswers.ParseError(error, []), CredentialRedaction.Preview(error, []));
        }
        bool stream = call.Stream && call.Endpoint != ProviderCapability.Embeddings;
        byte[] body = stream ? MockAnswers.EventStream(request) : MockAnswers.Json(request);
        return new ModelResponse(200, stream ? "text/event-stream; charset=utf-8" : "application/json", new MemoryStream(body, writable: false));
    }

    private MockAnswers.Request? Read(ModelCall call)
    {
        try
        {
            using var document = JsonDocument.Parse(call.Body);
            var body = document.RootElement.Clone();
            if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty(MockAnswers.RequiredField(call.Endpoint), out _))
            {
                return null;
            }
            return new MockAnswers.Request(call.Endpoint, call.Model, MockAnswers.DigestOf(call.Body.Span), Math.Max(1, (call.Body.Length + 3) / 4),
                body, id, time.GetUtcNow().ToUnixTimeSeconds());
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFile>>(UpstreamFailure.Unsupported("The mock provider has no Files API."));

    public Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<bool>>(UpstreamFailure.Unsupported("The mock provider has no Files API."));

    public Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFilePage>>(UpstreamFailure.Unsupported("The mock provider has no Files API."));

    public Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken) => NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) => NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) => NoBatches<UpstreamBatch>();

    public Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken) => NoBatches<UpstreamBatchPage>();

    public Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken) =>
        Task.FromResult<UpstreamOutcome<UpstreamFileContent>>(UpstreamFailure.Unsupported("The mock provider has no Files API."));

    private static Task<UpstreamOutcome<T>> NoBatches<T>() =>
        Task.FromResult<UpstreamOutcome<T>>(UpstreamFailure.Unsupported("The mock provider has no native batch API: run the batch with \"execution\": \"gateway\"."));
}
