using System.Buffers;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Wharf.Core.Providers;
using Wharf.Providers.Http;
using Wharf.Core.Streams;

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

    /// <summary><c>{BaseUrl}/{version}/{path}</c>, for a resource path such as <c>files/abc</c> or <c>batches/xyz:cancel</c>.</summary>
    public Uri ResourceUri(string path, string query = "") => new($"{_root}/{path}{(query.Length > 0 ? "?" + query : "")}");

    /// <summary><c>{BaseUrl}/upload/{version}/files</c>: where a resumable upload starts.</summary>
    public Uri UploadUri => new($"{baseUrl.AbsoluteUri.TrimEnd('/')}/upload/{apiVersion}/files");

    /// <summary><c>{BaseUrl}/download/{version}/{file}:download?alt=media</c>: a file's bytes (a batch's responses file).</summary>
    public Uri DownloadUri(string fileName) => new($"{baseUrl.AbsoluteUri.TrimEnd('/')}/download/{apiVersion}/{fileName}:download?alt=media");

    /// <summary>Whether an address the upstream gave (a resumable upload's session) is on the configured host, so the key may go there.</summary>
    public bool IsOnUpstream(Uri uri) =>
        uri.IsAbsoluteUri && Uri.Compare(uri, baseUrl, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    /// <summary>A request to Gemini with the configured headers and the key.</summary>
    public HttpRequestMessage NewRequest(HttpMethod method, Uri uri)
    {
        var request = new HttpRequestMessage(method, uri);
        foreach (var (name, value) in context.Options.Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        request.Headers.TryAddWithoutValidation("x-goog-api-key", context.Options.ApiKey);
        return request;
    }

    /// <summary>
    /// Posts a JSON body and waits for the answer's headers within the timeout. A 2xx answer is the caller's to read
    /// and dispose; any other is read as a failure.
    /// </summary>
    public async Task<UpstreamOutcome<HttpResponseMessage>> PostAsync(Uri uri, byte[] body, bool eventStream, CancellationToken cancellationToken)
    {
        var request = NewRequest(HttpMethod.Post, uri);
        if (eventStream)
        {
            request.Headers.Accept.ParseAdd("text/event-stream");
        }
        request.Content = new ByteArrayContent(body) { Headers = { ContentType = Json } };
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        return await SendAsync(request, deadline, cancellationToken);
    }

    /// <summary>
    /// Sends a request (and disposes it) and waits for the answer's headers within the deadline. A 2xx answer (and a
    /// 404 when <paramref name="notFoundIsAnswer"/>) is the caller's to read and dispose; any other is read as
    /// Google's error.
    /// </summary>
    public async Task<UpstreamOutcome<HttpResponseMessage>> SendAsync(HttpRequestMessage request, UpstreamDeadline deadline, CancellationToken cancellationToken, bool notFoundIsAnswer = false)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        HttpResponseMessage response;
        using (request)
        {
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
        }
        if (response.IsSuccessStatusCode || notFoundIsAnswer && response.StatusCode == System.Net.HttpStatusCode.NotFound)
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

    /// <summary>Sends a request and reads its small JSON answer (at most <see cref="MaxAnswerBytes"/>) into <typeparamref name="T"/>, within the timeout.</summary>
    public async Task<UpstreamOutcome<T>> SendForJsonAsync<T>(HttpRequestMessage request, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        UpstreamOutcome<HttpResponseMessage> sent;
        using (var deadline = new UpstreamDeadline(context.Time, context.Timeout))
        {
            deadline.Arm();
            sent = await SendAsync(request, deadline, cancellationToken);
        }
        return sent.IsOk ? await ReadJsonAsync(sent.Value, type, cancellationToken) : sent.Failure;
    }

    /// <summary>A 2xx JSON answer (disposed here) read into <typeparamref name="T"/> within the timeout; one that is not that shape is the upstream's fault.</summary>
    public async Task<UpstreamOutcome<T>> ReadJsonAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        using (response)
        {
            using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
            deadline.Arm();
            int status = (int)response.StatusCode;
            try
            {
                await using var body = await response.Content.ReadAsStreamAsync(linked.Token);
                await using var bounded = new BoundedReadStream(body, MaxAnswerBytes);
                return await JsonSerializer.DeserializeAsync(bounded, type, linked.Token) is { } value
                    ? value
                    : UpstreamFailure.Malformed(status, "The upstream answered null.");
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return UpstreamFailure.Timeout();
            }
            catch (JsonException)
            {
                return UpstreamFailure.Malformed(status, "The upstream answered with a body that is not the JSON expected.");
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
    }

    /// <summary><see cref="SendAsync"/> within a deadline of the provider's timeout of its own, armed at once.</summary>
    public async Task<UpstreamOutcome<HttpResponseMessage>> SendWithinTimeoutAsync(HttpRequestMessage request, CancellationToken cancellationToken, bool notFoundIsAnswer = false)
    {
        using var deadline = NewDeadline();
        deadline.Arm();
        return await SendAsync(request, deadline, cancellationToken, notFoundIsAnswer);
    }

    /// <summary>A new deadline of the provider's timeout (not armed).</summary>
    public UpstreamDeadline NewDeadline() => new(context.Time, context.Timeout);

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
