using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using Wharf.Core.Errors;
using Wharf.Core.Ports;

namespace Wharf.Server.Api;

/// <summary>
/// Reads a multipart/form-data body in one pass: the one binary part (named by the caller: <c>file</c> for files,
/// <c>data</c> for upload parts) is streamed to the blob store's staging area as it arrives, whatever the order of
/// the parts; the small text fields are read into strings.
/// </summary>
internal sealed class MultipartUpload : IAsyncDisposable
{
    private const int MaxFieldChars = 64 * 1024;
    private const int MaxParts = 64;

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

        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        StagedBlob? staged = null;
        string? filename = null;
        string? contentType = null;
        try
        {
            var reader = new MultipartReader(boundary, request.Body) { HeadersCountLimit = 16, HeadersLengthLimit = 16 * 1024 };
            int parts = 0;
            while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
            {
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
                        return kept.Error!;
                    }
                    staged = kept.Value;
                }
                else
                {
                    string? value = await ReadFieldAsync(section.Body, cancellationToken);
                    if (value is null)
                    {
                        return await FailAsync(staged, WharfErrors.Invalid(name, $"The field is longer than {MaxFieldChars} characters.", "field_too_long"));
                    }
                    fields.TryAdd(name, value);
                }
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return await FailAsync(staged, new WharfError(413, "The request body is larger than this endpoint accepts.", binaryPart, "request_too_large"));
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or DecoderFallbackException)
        {
            return await FailAsync(staged, WharfErrors.MalformedMultipart(ex is InvalidDataException
                ? ex.Message
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
        return new MultipartUpload(fields, filename, contentType, staged);
    }

    private static async Task<Result<MultipartUpload>> FailAsync(StagedBlob? staged, WharfError error)
    {
        if (staged is not null)
        {
            await staged.DisposeAsync();
        }
        return error;
    }

    /// <summary>A text field as UTF-8, or null when it is longer than the limit.</summary>
    private static async Task<string?> ReadFieldAsync(Stream body, CancellationToken cancellationToken)
    {
        char[] buffer = ArrayPool<char>.Shared.Rent(MaxFieldChars + 1);
        try
        {
            using var reader = new StreamReader(body, new UTF8Encoding(false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: false, bufferSize: 4096, leaveOpen: true);
            int total = 0;
            while (total <= MaxFieldChars)
            {
                int read = await reader.ReadAsync(buffer.AsMemory(total, MaxFieldChars + 1 - total), cancellationToken);
                if (read == 0)
                {
                    return new string(buffer, 0, total);
                }
                total += read;
            }
            return null;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }
}
