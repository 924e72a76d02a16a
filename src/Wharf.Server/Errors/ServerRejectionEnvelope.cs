using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Wharf.Core.Errors;
using Wharf.Server.Hosting;

namespace Wharf.Server.Errors;

/// <summary>
/// Gives the error envelope to the answers Kestrel writes on its own, before any middleware runs: a malformed request
/// line or header (400), a request line or headers over the limits (414, 431), headers that did not arrive in time
/// (408). Kestrel has no hook for these (it resets the headers, sets <c>Content-Length: 0</c> and closes the
/// connection), so this connection middleware sits between Kestrel and the socket: while no request is in the
/// application, what Kestrel writes is held until it flushes, and an empty 4xx/5xx answer is rewritten with the
/// envelope as its body. Everything else passes through untouched.
/// </summary>
internal static class ServerRejectionEnvelope
{
    /// <summary>Adds the middleware to an endpoint (<c>ConfigureEndpointDefaults</c>).</summary>
    public static void Use(ListenOptions listen)
    {
        var limits = listen.KestrelServerOptions.Limits;
        var messages = new RejectionMessages(limits.MaxRequestLineSize, limits.MaxRequestHeadersTotalSize, limits.MaxRequestHeaderCount);
        var services = listen.ApplicationServices;
        listen.Use(next => connection => RunAsync(next, connection, messages, services));
    }

    /// <summary>The application's first middleware: marks the connection's answer as the application's until it is sent.</summary>
    public static IApplicationBuilder UseServerRejectionEnvelope(this IApplicationBuilder app) =>
        app.Use(static (context, next) =>
        {
            if (context.Features.Get<RejectionEnvelopeWriter>() is { } writer)
            {
                writer.ApplicationOwnsResponse = true;
                context.Response.OnCompleted(static state =>
                {
                    ((RejectionEnvelopeWriter)state).ApplicationOwnsResponse = false;
                    return Task.CompletedTask;
                }, writer);
            }
            return next(context);
        });

    private static async Task RunAsync(ConnectionDelegate next, ConnectionContext connection, RejectionMessages messages, IServiceProvider services)
    {
        var transport = connection.Transport;
        var writer = new RejectionEnvelopeWriter(transport.Output, messages, services);
        connection.Features.Set(writer);
        connection.Transport = new Transport(transport.Input, writer);
        try
        {
            await next(connection);
        }
        finally
        {
            connection.Transport = transport;
        }
    }

    private sealed class Transport(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }
}

/// <summary>What a client is told when Kestrel refuses its request.</summary>
internal sealed class RejectionMessages(int maxRequestLineBytes, int maxRequestHeadersBytes, int maxRequestHeaderCount)
{
    public WharfError For(int status) => status switch
    {
        400 => new WharfError(400, "The request could not be parsed: its request line or headers are malformed.", null, "malformed_request"),
        408 => new WharfError(408, "The request headers did not arrive in time.", null, "request_timeout"),
        414 => new WharfError(414, $"The request line is longer than the server accepts ({maxRequestLineBytes} bytes).", null, "request_line_too_long"),
        431 => new WharfError(431,
            $"The request headers are larger than the server accepts ({maxRequestHeadersBytes} bytes and {maxRequestHeaderCount} headers in all).",
            null, "request_headers_too_large"),
        _ => new WharfError(status, "The server could not read the request.", null, null),
    };
}

/// <summary>
/// The connection's output, as Kestrel sees it. While <see cref="ApplicationOwnsResponse"/> is false (no request is in
/// the application), Kestrel's writes are held in a small buffer and examined when it flushes; otherwise every call
/// goes straight to the socket's writer.
/// </summary>
internal sealed class RejectionEnvelopeWriter(PipeWriter inner, RejectionMessages messages, IServiceProvider services) : PipeWriter
{
    /// <summary>Kestrel's own answers are a status line and a few headers; anything larger is not one of them.</summary>
    private const int MaxHeldBytes = 4096;

    private static readonly byte[] ContentLengthZero = "content-length: 0"u8.ToArray();

    private ArrayBufferWriter<byte>? _held;
    private bool _lastFromHeld;

    /// <summary>Set while a request is in the application, until its answer is sent.</summary>
    public bool ApplicationOwnsResponse { get; set; }

    private bool Holding => !ApplicationOwnsResponse;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        if (Holding)
        {
            _lastFromHeld = true;
            return (_held ??= new ArrayBufferWriter<byte>(256)).GetMemory(sizeHint);
        }
        Release();
        _lastFromHeld = false;
        return inner.GetMemory(sizeHint);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        if (Holding)
        {
            _lastFromHeld = true;
            return (_held ??= new ArrayBufferWriter<byte>(256)).GetSpan(sizeHint);
        }
        Release();
        _lastFromHeld = false;
        return inner.GetSpan(sizeHint);
    }

    public override void Advance(int bytes)
    {
        if (!_lastFromHeld)
        {
            inner.Advance(bytes);
            return;
        }
        _held!.Advance(bytes);
        if (_held.WrittenCount > MaxHeldBytes)
        {
            Release();
        }
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_held is { WrittenCount: > 0 } held)
        {
            if (Holding && RejectionRewrite.TryRewrite(held.WrittenSpan, messages, services, out byte[]? answer))
            {
                inner.Write(answer);
                held.ResetWrittenCount();
            }
            else
            {
                Release();
            }
        }
        return inner.FlushAsync(cancellationToken);
    }

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    public override void Complete(Exception? exception = null)
    {
        Release();
        inner.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        Release();
        return inner.CompleteAsync(exception);
    }

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes + (_held?.WrittenCount ?? 0);

    /// <summary>Sends what is held unchanged.</summary>
    private void Release()
    {
        if (_held is { WrittenCount: > 0 } held)
        {
            inner.Write(held.WrittenSpan);
            held.ResetWrittenCount();
        }
    }

    /// <summary>Parses and rebuilds the small header block Kestrel writes for a request it refused.</summary>
    private static class RejectionRewrite
    {
        public static bool TryRewrite(ReadOnlySpan<byte> written, RejectionMessages messages, IServiceProvider services, out byte[]? answer)
        {
            answer = null;
            // "HTTP/1.1 431 Request Header Fields Too Large\r\n" ... "\r\n\r\n", nothing after it.
            if (!written.StartsWith("HTTP/1."u8) || written.Length < 16 || !written.EndsWith("\r\n\r\n"u8)
                || written.IndexOf("\r\n\r\n"u8) != written.Length - 4
                || !int.TryParse(written.Slice(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out int status)
                || status is < 400 or > 599)
            {
                return false;
            }
            int statusLineEnd = written.IndexOf("\r\n"u8);
            var output = new ArrayBufferWriter<byte>(1024);
            output.Write(written[..(statusLineEnd + 2)]);
            bool emptyBody = false;
            var headers = written[(statusLineEnd + 2)..^2];
            while (headers.Length > 0)
            {
                int end = headers.IndexOf("\r\n"u8);
                var line = headers[..end];
                headers = headers[(end + 2)..];
                if (Ascii.EqualsIgnoreCase(line, ContentLengthZero))
                {
                    emptyBody = true;
                    continue;
                }
                if (line.StartsWith("content-length:"u8) || line.StartsWith("Content-Length:"u8)
                    || line.StartsWith("Transfer-Encoding:"u8) || line.StartsWith("Content-Type:"u8))
                {
                    return false; // a body of some kind was announced: not one of Kestrel's empty answers
                }
                output.Write(line);
                output.Write("\r\n"u8);
            }
            if (!emptyBody)
            {
                return false;
            }

            string requestId = RequestIdMiddleware.NewId();
            var json = services.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
            byte[] body = JsonSerializer.SerializeToUtf8Bytes(ErrorEnvelope.From(messages.For(status), requestId), json);
            output.Write(Encoding.ASCII.GetBytes(
                $"Content-Type: application/json\r\nContent-Length: {body.Length.ToString(CultureInfo.InvariantCulture)}\r\n{RequestIdMiddleware.Header}: {requestId}\r\n\r\n"));
            output.Write(body);
            answer = output.WrittenSpan.ToArray();
            return true;
        }
    }
}
