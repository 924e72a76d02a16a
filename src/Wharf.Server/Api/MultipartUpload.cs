using System.Buffers;
using System.Text;
using System.Text.Unicode;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using Wharf.Core.Errors;
using Wharf.Core.Json;
using Wharf.Core.Ports;
using Wharf.Server.Errors;

namespace Wharf.Server.Api;

/// <summary>
/// Reads a multipart/form-data body in one pass: the one binary part (named by the caller: <c>file</c> for files,
/// <c>data</c> for upload parts) is streamed to the blob store's staging area as it arrives, whatever the order of
/// the parts; the small text fields are read into strings, all of them together held to one small budget.
/// </summary>
internal sealed class MultipartUpload : IAsyncDisposable
{
    /// <summary>
    /// All text fields of one request together, names and values, in UTF-8 bytes. The largest legitimate form
    /// (16 metadata keys of 64 characters and values of 512, every character \u-escaped, plus the short fields)
    /// is under 57,000 bytes.
    /// </summary>
    public const int MaxFieldBytes = 64 * 1024;

    /// <summary>The headers of one part, as the framework's default.</summary>
    public const int MaxPartHeaderBytes = 16 * 1024;

    /// <summary>Bytes read between two parts, or after the closing boundary (the epilogue, ignored), before the body is treated as ended.</summary>
    public const int MaxGapBytes = 64 * 1024;

    private const int MaxParts = 64;
    private const int ReaderBufferBytes = 4 * 1024;

    private MultipartUpload(IReadOnlyDictionary<string, string> fields, string? filename, string? contentType, StagedBlob content)
    {
        Fields = fields;
        Filename = filename;
        ContentType = contentType;
        Content = content;
    }

    public IReadOnlyDictionary<string, string> Fields { get; }

    /// <summary>The binary part's filename (RFC 5987 <c>filename*</c> first), if it had one.</summary>
    public string? Filename { get; }

    public string? ContentType { get; }

    public StagedBlob Content { get; }

    public string? Field(string name) => Fields.GetValueOrDefault(name);

    public ValueTask DisposeAsync() => Content.DisposeAsync();

    /// <param name="request">The request whose body is read.</param>
    /// <param name="binaryPart">The name of the part that holds the bytes.</param>
    /// <param name="stage">Streams that part's bytes to storage, refusing them past a limit.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    public static async Task<Result<MultipartUpload>> ReadAsync(
        HttpRequest request,
        string binaryPart,
        Func<Stream, CancellationToken, Task<Result<StagedBlob>>> stage,
        CancellationToken cancellationToken)
    {
        // Counted from here to the answer: the body is read (and staged) within this call.
        using var inFlight = request.HttpContext.RequestServices.GetService<Wharf.Core.Telemetry.WharfMetrics>()?.UploadStarted(binaryPart == "file" ? "file" : "part");
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            return WharfErrors.NotMultipart();
        }
        string boundary = HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value ?? "";
        if (boundary.Length is 0 or > 200)
        {
            return WharfErrors.MalformedMultipart("the Content-Type has no valid boundary.");
        }

        StagedBlob? staged = null;
        string? filename = null;
        string? contentType = null;
        var body = new GapLimitedStream(request.Body, MaxGapBytes);
        using var fields = new FormFields();
        try
        {
            // The framework skips the epilogue with the headers' limit: it must hold the gap's bytes plus what its
            // buffer already holds. The gap stream, not that limit, bounds what is read; part headers are checked below.
            var reader = new MultipartReader(boundary, body, ReaderBufferBytes)
            {
                HeadersCountLimit = 16,
                HeadersLengthLimit = MaxGapBytes + 2 * ReaderBufferBytes,
            };
            int parts = 0;
            while (await NextSectionAsync(reader, body, cancellationToken) is { } section)
            {
                if (body.GapExhausted || HeaderBytes(section) > MaxPartHeaderBytes)
                {
                    return await FailAsync(staged, PartHeadersTooLong());
                }
                if (++parts > MaxParts)
                {
                    return await FailAsync(staged, WharfErrors.MalformedMultipart($"more than {MaxParts} parts."));
                }
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                    || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
                {
                    return await FailAsync(staged, WharfErrors.MalformedMultipart("a part has no 'Content-Disposition: form-data' header."));
                }
                string name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
                if (name == binaryPart)
                {
                    if (staged is not null)
                    {
                        return await FailAsync(staged, WharfErrors.Invalid(binaryPart, $"Only one '{binaryPart}' part may be sent.", "duplicate_part"));
                    }
                    filename = disposition.FileNameStar.HasValue
                        ? disposition.FileNameStar.Value
                        : HeaderUtilities.RemoveQuotes(disposition.FileName).Value;
                    contentType = section.ContentType;
                    var kept = await stage(section.Body, cancellationToken);
                    if (!kept.IsOk)
                    {
                        return kept.Error;
                    }
                    staged = kept.Value;
                }
                else if (await fields.ReadAsync(name, section.Body, binaryPart, cancellationToken) is { } refused)
                {
                    return await FailAsync(staged, refused);
                }
            }
        }
        catch (BadHttpRequestException ex)
        {
            return await FailAsync(staged, RequestBodyErrors.From(ex, binaryPart));
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException)
        {
            return await FailAsync(staged, body.GapExhausted
                ? PartHeadersTooLong()
                : WharfErrors.MalformedMultipart(ex is InvalidDataException
                    ? ClientJson.Printable(ex.Message, 200)
                    : "the body ended before the closing boundary."));
        }
        catch
        {
            if (staged is not null)
            {
                await staged.DisposeAsync();
            }
            throw;
        }

        if (staged is null)
        {
            return WharfErrors.Missing(binaryPart);
        }
        return new MultipartUpload(fields.Values, filename, contentType, staged);
    }

    /// <summary>The next part, reading at most <see cref="MaxGapBytes"/> to find it (or to skip the epilogue).</summary>
    private static async Task<MultipartSection?> NextSectionAsync(MultipartReader reader, GapLimitedStream body, CancellationToken cancellationToken)
    {
        body.BeginGap();
        try
        {
            return await reader.ReadNextSectionAsync(cancellationToken);
        }
        finally
        {
            body.EndGap();
        }
    }

    /// <summary>The size of a part's headers, counted as the framework counts them: each line without its line break.</summary>
    private static int HeaderBytes(MultipartSection section)
    {
        int total = 0;
        foreach (var (name, values) in section.Headers ?? [])
        {
            foreach (string? value in values)
            {
                total += name.Length + 1 + (value?.Length ?? 0);
            }
        }
        return total;
    }

    private static WharfError PartHeadersTooLong() =>
        WharfErrors.MalformedMultipart($"a part's headers are longer than {MaxPartHeaderBytes} bytes.");

    private static async Task<Result<MultipartUpload>> FailAsync(StagedBlob? staged, WharfError error)
    {
        if (staged is not null)
        {
            await staged.DisposeAsync();
        }
        return error;
    }

    /// <summary>
    /// The form's text fields: each read into one pooled buffer (rented at the first field, returned when the request
    /// is read), checked as UTF-8, then kept as a string; all of them together held to <see cref="MaxFieldBytes"/>.
    /// </summary>
    private sealed class FormFields : IDisposable
    {
        private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
        private byte[]? _buffer;
        private int _left = MaxFieldBytes;

        public IReadOnlyDictionary<string, string> Values => _values;

        /// <summary>Reads one field to its end; an error when it does not fit in what is left of the budget or is not UTF-8.</summary>
        public async Task<WharfError?> ReadAsync(string name, Stream body, string binaryPart, CancellationToken cancellationToken)
        {
            string param = ClientJson.Printable(name);
            _left -= Encoding.UTF8.GetByteCount(name);
            if (_left < 0)
            {
                return TooLarge(param, binaryPart);
            }
            _buffer ??= ArrayPool<byte>.Shared.Rent(MaxFieldBytes + 1);
            var room = _buffer.AsMemory(0, _left + 1);
            int total = 0;
            while (total < room.Length)
            {
                int read = await body.ReadAsync(room[total..], cancellationToken);
                if (read == 0)
                {
                    break;
                }
                total += read;
            }
            if (total > _left)
            {
                return TooLarge(param, binaryPart);
            }
            _left -= total;
            var bytes = _buffer.AsSpan(0, total);
            if (!Utf8.IsValid(bytes))
            {
                return WharfErrors.Invalid(param, $"The field '{param}' is not valid UTF-8 text.", "invalid_utf8");
            }
            _values.TryAdd(name, Encoding.UTF8.GetString(bytes));
            return null;
        }

        public void Dispose()
        {
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
        }

        private static WharfError TooLarge(string param, string binaryPart) => new(413,
            $"The form's text fields are larger than {MaxFieldBytes} bytes in all (names and values). Only the '{binaryPart}' part may be large.",
            param, "form_fields_too_large");
    }

    /// <summary>
    /// The request body as the multipart reader sees it. Between two parts (while the reader looks for the next part's
    /// headers, or skips the epilogue after the closing boundary, which RFC 2046 says to ignore) at most a fixed number
    /// of bytes is read; past that the body reads as ended, so an epilogue of any length costs a bounded read.
    /// Inside a part, reads pass straight through.
    /// </summary>
    private sealed class GapLimitedStream(Stream inner, int maxGapBytes) : Stream
    {
        private int _gapLeft = -1;

        /// <summary>A gap reached its limit: from then on the body reads as ended.</summary>
        public bool GapExhausted { get; private set; }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void BeginGap() => _gapLeft = maxGapBytes;

        public void EndGap() => _gapLeft = -1;

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            _gapLeft < 0 && !GapExhausted
                ? inner.ReadAsync(buffer, offset, count, cancellationToken)
                : ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (GapExhausted)
            {
                return ValueTask.FromResult(0);
            }
            return _gapLeft < 0 ? inner.ReadAsync(buffer, cancellationToken) : ReadInGapAsync(buffer, cancellationToken);
        }

        private async ValueTask<int> ReadInGapAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            if (_gapLeft == 0)
            {
                GapExhausted = true;
                return 0;
            }
            int read = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, _gapLeft)], cancellationToken);
            _gapLeft -= read;
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
