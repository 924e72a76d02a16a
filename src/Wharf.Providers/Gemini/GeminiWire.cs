using System.Buffers;
using System.Net.Http.Headers;
using System.Text.Json;
using Wharf.Core.Providers;
using Wharf.Providers.Http;

namespace Wharf.Providers.Gemini;

/// <summary>
/// Gemini's HTTP: <c>{BaseUrl}/{version}/models/{model}:{method}</c> with <c>x-goog-api-key</c> and the configured
/// headers; every error answer read as Google's error (<see cref="GeminiErrors"/>), every wait bounded by the
/// provider's timeout on the injected clock, a timeout told from the caller's cancellation.
/// </summary>
internal sealed class GeminiWire(ProviderContext context, HttpClient http, Uri baseUrl, string apiVersion)
{
    /// <summary>The most of a JSON answer read to translate it; a larger one is the upstream's fault.</summary>
    public const int MaxAnswerBytes = 32 * 1024 * 1024;

    private static readonly MediaTypeHeaderValue Json = new("application/json");

    private readonly string _root = $"{baseUrl.AbsoluteUri.TrimEnd('/')}/{apiVersion}";

    private readonly IReadOnlyCollection<string> _secrets =
        [.. new[] { context.Options.ApiKey }.Concat(context.Options.Headers.Values).OfType<string>().Where(s => s.Length > 0)];

    public TimeProvider Time => context.Time;

    /// <summary><c>models/{model}:{method}</c>, with <c>?alt=sse</c> for a streamed method.</summary>
    public Uri ModelUri(string model, string method, bool sse = false) =>
        new($"{_root}/models/{Uri.EscapeDataString(model)}:{method}{(sse ? "?alt=sse" : "")}");

    /// <summary>
    /// Posts a JSON body and waits for the answer's headers within the timeout. A 2xx answer is the caller's to read
    /// and dispose; any other is read as a failure.
    /// </summary>
    public async Task<UpstreamOutcome<HttpResponseMessage>> PostAsync(Uri uri, byte[] body, bool eventStream, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, uri);
        foreach (var (name, value) in context.Options.Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        request.Headers.TryAddWithoutValidation("x-goog-api-key", context.Options.ApiKey);
        if (eventStream)
        {
            request.Headers.Accept.ParseAdd("text/event-stream");
        }
        request.Content = new ByteArrayContent(body) { Headers = { ContentType = Json } };
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        deadline.Arm();
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return UpstreamFailure.Timeout();
        }
        catch (HttpRequestException e)
        {
            return UpstreamFailure.ConnectionFailed(OpenAIWire.Describe(e));
        }
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            byte[] buffer = ArrayPool<byte>.Shared.Rent(UpstreamAnswers.MaxErrorBodyBytes);
            try
            {
                int length = await UpstreamAnswers.ReadPrefixAsync(response, buffer, linked.Token);
                return GeminiErrors.Classify((int)response.StatusCode, buffer.AsSpan(0, length), UpstreamAnswers.RetryAfter(response.Headers, context.Time), _secrets);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return GeminiErrors.Classify((int)response.StatusCode, [], UpstreamAnswers.RetryAfter(response.Headers, context.Time), _secrets);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>A 2xx JSON answer read whole (at most <see cref="MaxAnswerBytes"/>) within the timeout and parsed.</summary>
    public async Task<UpstreamOutcome<JsonDocument>> ReadJsonAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        deadline.Arm();
        int status = (int)response.StatusCode;
        if (response.Content.Headers.ContentLength > MaxAnswerBytes)
        {
            return UpstreamFailure.Malformed(status, $"The upstream's answer is larger than {MaxAnswerBytes} bytes.");
        }
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(linked.Token);
            await using var bounded = new BoundedReadStream(body, MaxAnswerBytes);
            return await JsonDocument.ParseAsync(bounded, default, linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return UpstreamFailure.Timeout();
        }
        catch (JsonException)
        {
            return UpstreamFailure.Malformed(status, "The upstream answered with a body that is not valid JSON.");
        }
        catch (InvalidDataException)
        {
            return UpstreamFailure.Malformed(status, $"The upstream's answer is larger than {MaxAnswerBytes} bytes.");
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            return UpstreamFailure.ConnectionFailed("The upstream closed the connection before its answer ended.");
        }
    }

    /// <summary>A streamed answer's body as handed on: each read must bring something within the timeout.</summary>
    public async Task<Stream> ReadStreamAsync(HttpResponseMessage response, CancellationToken cancellationToken) =>
        new UpstreamBodyStream(await response.Content.ReadAsStreamAsync(cancellationToken), new UpstreamDeadline(context.Time, context.Timeout));

    /// <summary>A body that fails with <see cref="InvalidDataException"/> once more than its bound is read.</summary>
    private sealed class BoundedReadStream(Stream inner, long bound) : ForwardReadStream
    {
        private long _read;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int read = await inner.ReadAsync(buffer, cancellationToken);
            _read += read;
            return _read > bound ? throw new InvalidDataException("The answer is larger than its bound.") : read;
        }
    }
}
