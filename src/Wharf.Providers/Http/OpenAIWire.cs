using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Wharf.Core.Providers;

namespace Wharf.Providers.Http;

/// <summary>
/// OpenAI's wire format over HTTP, shared by the adapters that speak it (OpenAI-compatible servers, Azure OpenAI):
/// requests go where the <see cref="IOpenAIDialect"/> says, every answer becomes an outcome value. Errors are read
/// (at most <see cref="UpstreamAnswers.MaxErrorBodyBytes"/>) and classified by <see cref="UpstreamFailure.FromAnswer"/>;
/// a timeout is told from the caller's cancellation, which propagates as such.
/// </summary>
internal sealed class OpenAIWire(ProviderContext context, HttpClient http, IOpenAIDialect dialect)
{
    /// <summary>A JSON answer up to this size is read whole and checked before it is handed on; a larger one streams unchecked.</summary>
    public const int MaxCheckedAnswerBytes = 32 * 1024 * 1024;

    /// <summary>The first buffer of a JSON answer that declares no length.</summary>
    private const int FirstBufferBytes = 16 * 1024;

    private static readonly MediaTypeHeaderValue Json = new("application/json");

    private readonly IReadOnlyCollection<string> _secrets =
        [.. new[] { context.Options.ApiKey }.Concat(context.Options.Headers.Values).OfType<string>().Where(s => s.Length > 0)];

    public IReadOnlyCollection<string> Secrets => _secrets;

    public async Task<UpstreamOutcome<ModelResponse>> SendModelRequestAsync(ModelCall call, CancellationToken cancellationToken)
    {
        var request = NewRequest(HttpMethod.Post, dialect.ModelUri(call.Endpoint, call.Model));
        request.Content = new ReadOnlyMemoryContent(call.Body) { Headers = { ContentType = Json } };
        if (call.Stream)
        {
            request.Headers.Accept.ParseAdd("text/event-stream");
        }
        var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        // One linked token for the headers and, for a JSON answer, the body's read.
        var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        UpstreamOutcome<HttpResponseMessage> sent;
        try
        {
            sent = await SendAsync(request, deadline, cancellationToken, linked.Token);
        }
        catch
        {
            linked.Dispose();
            deadline.Dispose();
            throw;
        }
        if (!sent.IsOk)
        {
            linked.Dispose();
            deadline.Dispose();
            return sent.Failure;
        }
        var response = sent.Value;
        if (response.Content.Headers.ContentType?.MediaType is "text/event-stream")
        {
            // Streamed on as it arrives; from here the timeout bounds the wait for each next piece.
            linked.Dispose();
            deadline.Dispose();
            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            return new ModelResponse((int)response.StatusCode, response.Content.Headers.ContentType.ToString(),
                new UpstreamBodyStream(body, new UpstreamDeadline(context.Time, context.Timeout)), new DisposeOnce(response));
        }
        using (deadline)
        using (linked)
        {
            return await ReadCheckedAnswerAsync(response, deadline, cancellationToken, linked.Token);
        }
    }

    /// <summary>
    /// A JSON answer read whole within the timeout and checked to be one well-formed JSON value, so that a broken
    /// answer is a (retryable) failure before anything reaches the client.
    /// </summary>
    /// <param name="linkedToken">The caller's token linked with the deadline's.</param>
    private async Task<UpstreamOutcome<ModelResponse>> ReadCheckedAnswerAsync(
        HttpResponseMessage response, UpstreamDeadline deadline, CancellationToken cancellationToken, CancellationToken linkedToken)
    {
        int status = (int)response.StatusCode;
        string? contentType = response.Content.Headers.ContentType?.ToString();
        long? declared = response.Content.Headers.ContentLength;
        if (declared > MaxCheckedAnswerBytes)
        {
            return new ModelResponse(status, contentType, Idle(await response.Content.ReadAsStreamAsync(cancellationToken)), new DisposeOnce(response));
        }
        // Read into a pooled buffer, one byte larger than the declared length so that the end shows in one read;
        // it goes back to the pool when the answer is disposed (or at once, when no answer is handed on).
        byte[] buffer = ArrayPool<byte>.Shared.Rent(declared is { } length ? (int)length + 1 : FirstBufferBytes);
        int filled = 0;
        bool handedOn = false;
        // Disposed here unless it is handed on (then the answer's reader reads the rest of it, and disposes it).
        Stream? body = null;
        try
        {
            body = await response.Content.ReadAsStreamAsync(linkedToken);
            int read;
            while ((read = await body.ReadAsync(buffer.AsMemory(filled), linkedToken)) > 0)
            {
                filled += read;
                if (filled > MaxCheckedAnswerBytes)
                {
                    // Too large to hold: the part read so far, then the rest as it comes, unchecked.
                    var rest = Idle(body);
                    body = null;
                    handedOn = true;
                    return new ModelResponse(status, contentType, new ConcatenatedStream(new PooledBufferStream(buffer, filled), rest), new DisposeOnce(response));
                }
                if (filled == buffer.Length)
                {
                    byte[] larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }
            await body.DisposeAsync();
            body = null;
            response.Dispose();
            if (!IsOneJsonValue(buffer.AsSpan(0, filled)))
            {
                return UpstreamFailure.Malformed(status, "The upstream answered with a body that is not valid JSON.");
            }
            handedOn = true;
            return new ModelResponse(status, contentType, new PooledBufferStream(buffer, filled));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            response.Dispose();
            return UpstreamFailure.Timeout();
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            response.Dispose();
            return UpstreamFailure.ConnectionFailed("The upstream closed the connection before its answer ended.");
        }
        finally
        {
            if (body is not null)
            {
                await body.DisposeAsync();
            }
            if (!handedOn)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>The rest of an answer as handed on unchecked: each read must bring something within the timeout.</summary>
    private UpstreamBodyStream Idle(Stream body) => new(body, new UpstreamDeadline(context.Time, context.Timeout));

    private static bool IsOneJsonValue(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read())
            {
                return false;
            }
            reader.Skip();
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public async Task<UpstreamOutcome<UpstreamFile>> UploadFileAsync(UpstreamFileUpload upload, CancellationToken cancellationToken)
    {
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        var request = NewRequest(HttpMethod.Post, dialect.FilesUri(null, ""));
        // A progress timeout: the connection, each write of the body and then the answer must each come within the
        // timeout (a large file takes what it takes, an upstream that stops reading it fails the upload).
        request.Content = new MultipartFileContent(upload.Content, upload.Length, upload.Filename, upload.Purpose, upload.ContentType, deadline);
        deadline.Arm();
        var answer = await SendForJsonAsync(request, deadline, UpstreamWireJson.Default.FileObjectWire, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        return answer.Value.ToUpstreamFile() is { } file ? file : UpstreamFailure.Malformed(200, "The upstream's file object has no id.");
    }

    public async Task<UpstreamOutcome<bool>> DeleteFileAsync(string upstreamFileId, CancellationToken cancellationToken)
    {
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        var sent = await SendAsync(NewRequest(HttpMethod.Delete, dialect.FilesUri(upstreamFileId, "")), deadline, cancellationToken, notFoundIsAnswer: true);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        sent.Value.Dispose();
        return true;
    }

    public async Task<UpstreamOutcome<UpstreamFilePage>> ListFilesAsync(UpstreamFileQuery query, CancellationToken cancellationToken)
    {
        var parameters = new StringBuilder();
        Add(parameters, "limit", query.Limit?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add(parameters, "after", query.After);
        Add(parameters, "order", query.Order);
        Add(parameters, "purpose", query.Purpose);
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        var answer = await SendForJsonAsync(NewRequest(HttpMethod.Get, dialect.FilesUri(null, parameters.ToString())), deadline, UpstreamWireJson.Default.FileListWire, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        var files = new List<UpstreamFile>();
        foreach (var item in answer.Value.Data ?? [])
        {
            if (item.ToUpstreamFile() is not { } file)
            {
                return UpstreamFailure.Malformed(200, "The upstream's file list holds a file without an id.");
            }
            files.Add(file);
        }
        return new UpstreamFilePage(files, answer.Value.HasMore ?? false);
    }

    public async Task<UpstreamOutcome<UpstreamBatch>> CreateBatchAsync(UpstreamBatchCreate batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch.InputFileId); // this wire takes its input as a provider file
        var request = NewRequest(HttpMethod.Post, dialect.BatchesUri(null, null, ""));
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(
            new BatchCreateWire(batch.InputFileId, dialect.BatchEndpoint(batch.Endpoint), batch.CompletionWindow, batch.Metadata),
            UpstreamWireJson.Default.BatchCreateWire);
        request.Content = new ByteArrayContent(body) { Headers = { ContentType = Json } };
        return await SendForBatchAsync(request, cancellationToken);
    }

    public Task<UpstreamOutcome<UpstreamBatch>> GetBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        SendForBatchAsync(NewRequest(HttpMethod.Get, dialect.BatchesUri(upstreamBatchId, null, "")), cancellationToken);

    public Task<UpstreamOutcome<UpstreamBatch>> CancelBatchAsync(string upstreamBatchId, CancellationToken cancellationToken) =>
        SendForBatchAsync(NewRequest(HttpMethod.Post, dialect.BatchesUri(upstreamBatchId, "cancel", "")), cancellationToken);

    public async Task<UpstreamOutcome<UpstreamBatchPage>> ListBatchesAsync(UpstreamBatchQuery query, CancellationToken cancellationToken)
    {
        var parameters = new StringBuilder();
        Add(parameters, "limit", query.Limit?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add(parameters, "after", query.After);
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        var answer = await SendForJsonAsync(NewRequest(HttpMethod.Get, dialect.BatchesUri(null, null, parameters.ToString())), deadline, UpstreamWireJson.Default.BatchListWire, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        var batches = new List<UpstreamBatch>();
        foreach (var item in answer.Value.Data ?? [])
        {
            if (item.ToUpstreamBatch() is not { } batch)
            {
                return UpstreamFailure.Malformed(200, "The upstream's batch list holds a batch without an id or status.");
            }
            batches.Add(batch);
        }
        return new UpstreamBatchPage(batches, answer.Value.HasMore ?? false);
    }

    /// <summary>
    /// The file's content as it arrives: the headers within the timeout, then each read of the body within it too (a
    /// body that stops coming fails its read with an <see cref="IOException"/>, as a dropped one does).
    /// </summary>
    public async Task<UpstreamOutcome<UpstreamFileContent>> DownloadFileAsync(string upstreamFileId, CancellationToken cancellationToken)
    {
        UpstreamOutcome<HttpResponseMessage> sent;
        using (var deadline = new UpstreamDeadline(context.Time, context.Timeout))
        {
            deadline.Arm();
            sent = await SendAsync(NewRequest(HttpMethod.Get, dialect.FileContentUri(upstreamFileId)), deadline, cancellationToken);
        }
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        var response = sent.Value;
        try
        {
            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            return new UpstreamFileContent(Idle(body), response.Content.Headers.ContentLength, new DisposeOnce(response));
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            response.Dispose();
            return UpstreamFailure.ConnectionFailed("The upstream closed the connection before its answer ended.");
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private async Task<UpstreamOutcome<UpstreamBatch>> SendForBatchAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var deadline = new UpstreamDeadline(context.Time, context.Timeout);
        deadline.Arm();
        var answer = await SendForJsonAsync(request, deadline, UpstreamWireJson.Default.BatchObjectWire, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        return answer.Value.ToUpstreamBatch() is { } batch ? batch : UpstreamFailure.Malformed(200, "The upstream's batch object has no id or status.");
    }

    private static void Add(StringBuilder query, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            query.Append(query.Length == 0 ? "" : "&").Append(name).Append('=').Append(Uri.EscapeDataString(value));
        }
    }

    /// <summary>A request to the provider with its configured headers and its credential.</summary>
    public HttpRequestMessage NewRequest(HttpMethod method, Uri uri)
    {
        var request = new HttpRequestMessage(method, uri);
        foreach (var (name, value) in context.Options.Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        dialect.Authorize(request);
        return request;
    }

    /// <summary>Sends and reads a small JSON answer within the deadline.</summary>
    public async Task<UpstreamOutcome<T>> SendForJsonAsync<T>(HttpRequestMessage request, UpstreamDeadline deadline, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        var sent = await SendAsync(request, deadline, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure;
        }
        using var response = sent.Value;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(linked.Token);
            return await JsonSerializer.DeserializeAsync(body, type, linked.Token) is { } value
                ? value
                : UpstreamFailure.Malformed((int)response.StatusCode, "The upstream answered null.");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return UpstreamFailure.Timeout();
        }
        catch (JsonException)
        {
            return UpstreamFailure.Malformed((int)response.StatusCode, "The upstream answered with a body that is not the JSON expected.");
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            return UpstreamFailure.ConnectionFailed("The upstream closed the connection before its answer ended.");
        }
    }

    /// <summary>
    /// Sends a request and waits for the answer's headers within the deadline. A 2xx answer (and a 404 when
    /// <paramref name="notFoundIsAnswer"/>) is the caller's to read and dispose; any other status is read as a failure.
    /// </summary>
    public async Task<UpstreamOutcome<HttpResponseMessage>> SendAsync(HttpRequestMessage request, UpstreamDeadline deadline, CancellationToken cancellationToken, bool notFoundIsAnswer = false)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        return await SendAsync(request, deadline, cancellationToken, linked.Token, notFoundIsAnswer);
    }

    /// <param name="linkedToken">The caller's token linked with the deadline's (the caller's to dispose).</param>
    private async Task<UpstreamOutcome<HttpResponseMessage>> SendAsync(
        HttpRequestMessage request, UpstreamDeadline deadline, CancellationToken cancellationToken, CancellationToken linkedToken, bool notFoundIsAnswer = false)
    {
        using (request)
        {
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linkedToken);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return UpstreamFailure.Timeout();
            }
            catch (HttpRequestException e)
            {
                return UpstreamFailure.ConnectionFailed(Describe(e));
            }
            if (response.IsSuccessStatusCode || notFoundIsAnswer && response.StatusCode == HttpStatusCode.NotFound)
            {
                return response;
            }
            using (response)
            {
                try
                {
                    return await UpstreamAnswers.ReadFailureAsync(response, _secrets, context.Time, linkedToken);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return UpstreamFailure.FromAnswer((int)response.StatusCode, UpstreamAnswers.RetryAfter(response.Headers, context.Time), null, null);
                }
            }
        }
    }

    /// <summary>What went wrong with the connection, without the address or anything else from the request.</summary>
    internal static string Describe(HttpRequestException e) => e.HttpRequestError switch
    {
        HttpRequestError.NameResolutionError => "The upstream's host name could not be resolved.",
        HttpRequestError.ConnectionError => "The connection to the upstream failed (refused or reset).",
        HttpRequestError.SecureConnectionError => "The TLS handshake with the upstream failed.",
        HttpRequestError.ResponseEnded => "The upstream closed the connection before answering.",
        HttpRequestError.InvalidResponse => "The upstream's answer was not valid HTTP.",
        HttpRequestError.ProxyTunnelError => "The proxy to the upstream failed.",
        _ => "The request to the upstream failed.",
    };
}

/// <summary>Disposes the upstream's answer (and so releases its connection) once, however often it is asked.</summary>
internal sealed class DisposeOnce(IDisposable owned) : IAsyncDisposable
{
    private int _disposed;

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            owned.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
