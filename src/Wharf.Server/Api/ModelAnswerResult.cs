using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using Wharf.Core.Errors;
using Wharf.Core.Providers;
using Wharf.Core.Routing;
using Wharf.Server.Errors;

namespace Wharf.Server.Api;

/// <summary>
/// Passes an upstream's answer on: its status, content type and body as they are, the <c>x-wharf-*</c> headers,
/// and <c>extra_fields</c> added to a JSON object answer read whole (<c>Wharf:Responses:ExtraFields</c>). Anything
/// else (a stream, a large answer) is copied as it arrives, each read flushed at once; a client that goes away
/// cancels the upstream read, and the answer's disposal releases the upstream connection. A stream the upstream
/// breaks after its first bytes ends with an SSE <c>error</c> event holding the error envelope (another body: the
/// connection is reset, so the client never takes a cut body for a whole one).
/// </summary>
internal sealed partial class ModelAnswerResult(ModelAnswer answer) : IResult
{
    private const int CopyBufferBytes = 16 * 1024;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        await using var owned = answer;
        var response = httpContext.Response;
        var aborted = httpContext.RequestAborted;
        WharfHeaders.Set(response, answer.Provider, answer.Model, answer.Attempts);
        response.StatusCode = answer.Status;
        if (answer.ContentType is { Length: > 0 } contentType)
        {
            response.ContentType = contentType;
        }
        if (answer.IsComplete)
        {
            await WriteWholeAsync(httpContext, aborted);
            return;
        }
        if (answer.IsEventStream)
        {
            response.Headers.CacheControl = "no-cache";
        }
        httpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.Body.WriteAsync(answer.Head, aborted);
        await response.Body.FlushAsync(aborted);

        byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBufferBytes);
        try
        {
            while (true)
            {
                int read;
                try
                {
                    read = await answer.Rest.ReadAsync(buffer, aborted);
                }
                catch (OperationCanceledException) when (aborted.IsCancellationRequested)
                {
                    return; // the client went away: disposing the answer cancels the upstream call
                }
                catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException or ObjectDisposedException)
                {
                    var failure = ex is OperationCanceledException || ex.InnerException is TimeoutException
                        ? UpstreamFailure.Timeout()
                        : UpstreamFailure.ConnectionFailed("The upstream connection broke off.");
                    await EndBrokenAsync(httpContext, answer.BrokenStream(failure));
                    return;
                }
                if (read == 0)
                {
                    return;
                }
                await response.Body.WriteAsync(buffer.AsMemory(0, read), aborted);
                await response.Body.FlushAsync(aborted);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task WriteWholeAsync(HttpContext httpContext, CancellationToken aborted)
    {
        var response = httpContext.Response;
        var head = answer.Head;
        bool addExtraFields = answer.JsonObjectEnd is not null
            && httpContext.RequestServices.GetRequiredService<IOptions<ModelResponseOptions>>().Value.ExtraFields;
        if (!addExtraFields)
        {
            response.ContentLength = head.Length;
            await response.Body.WriteAsync(head, aborted);
            return;
        }
        int end = answer.JsonObjectEnd!.Value;
        // The member is written synchronously by this thread's writer, then the answer is put together in one
        // pooled buffer: no writer, no growing buffer and no copy of the answer allocated per request.
        var member = ExtraFieldsMember.Write(answer.ExtraFields, answer.IsEmptyJsonObject);
        int length = head.Length + member.Length;
        byte[] whole = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            head.Span[..end].CopyTo(whole);
            member.CopyTo(whole.AsSpan(end));
            head.Span[end..].CopyTo(whole.AsSpan(end + member.Length));
            response.ContentLength = length;
            await response.Body.WriteAsync(whole.AsMemory(0, length), aborted);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(whole);
        }
    }

    /// <summary>
    /// The <c>extra_fields</c> member (with its leading comma unless the object is empty), written by a writer and a
    /// buffer kept per thread: the span is valid until the same thread writes the next one.
    /// </summary>
    private static class ExtraFieldsMember
    {
        private const int MaxKeptBytes = 64 * 1024;

        [ThreadStatic]
        private static ArrayBufferWriter<byte>? t_buffer;

        [ThreadStatic]
        private static Utf8JsonWriter? t_writer;

        public static ReadOnlySpan<byte> Write(ExtraFields extra, bool emptyObject)
        {
            var buffer = t_buffer;
            if (buffer is null || buffer.Capacity > MaxKeptBytes)
            {
                // A writer grown for an unusually long model name is not kept for good.
                t_buffer = buffer = new ArrayBufferWriter<byte>(8 * 1024);
                t_writer = null;
            }
            buffer.ResetWrittenCount();
            buffer.Write(emptyObject ? "\"extra_fields\":"u8 : ",\"extra_fields\":"u8);
            var writer = t_writer ??= new Utf8JsonWriter(buffer);
            writer.Reset(buffer);
            writer.WriteStartObject();
            writer.WriteString("provider"u8, extra.Provider);
            writer.WriteString("model_requested"u8, extra.ModelRequested);
            writer.WriteString("model_deployment"u8, extra.ModelDeployment);
            writer.WriteString("request_type"u8, extra.RequestType);
            writer.WriteNumber("latency"u8, extra.Latency);
            writer.WriteEndObject();
            writer.Flush();
            return buffer.WrittenSpan;
        }
    }

    /// <summary>An event stream ends with an SSE <c>error</c> event; any other body is cut by a connection reset.</summary>
    private async Task EndBrokenAsync(HttpContext httpContext, WharfError error)
    {
        var logger = httpContext.RequestServices.GetRequiredService<ILogger<ModelAnswerResult>>();
        StreamBroke(logger, answer.Provider, httpContext.TraceIdentifier);
        if (!answer.IsEventStream)
        {
            httpContext.Abort();
            return;
        }
        var json = httpContext.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
        byte[] envelope = JsonSerializer.SerializeToUtf8Bytes(ErrorEnvelope.From(error, httpContext.TraceIdentifier), json.GetTypeInfo(typeof(ErrorEnvelope)));
        var body = httpContext.Response.Body;
        await body.WriteAsync("\n\nevent: error\ndata: "u8.ToArray(), httpContext.RequestAborted);
        await body.WriteAsync(envelope, httpContext.RequestAborted);
        await body.WriteAsync("\n\n"u8.ToArray(), httpContext.RequestAborted);
        await body.FlushAsync(httpContext.RequestAborted);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream {Provider} broke off its answer after it had started, in request {RequestId}.")]
    private static partial void StreamBroke(ILogger logger, string provider, string requestId);
}
