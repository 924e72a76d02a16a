using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Server.Api;

/// <summary>
/// Reads <c>POST /v1/files</c>'s multipart body in one pass: the <c>file</c> part is streamed to the blob store's
/// staging area as it arrives (whatever the order of the parts), the small text fields are read into strings.
/// </summary>
internal sealed class MultipartFileUpload : IAsyncDisposable
{
    private const int MaxFieldChars = 64 * 1024;
    private const int MaxParts = 64;

    private MultipartFileUpload(FileUploadRequest fields, StagedBlob content)
    {
        Fields = fields;
        Content = content;
    }

    public FileUploadRequest Fields { get; }

    public StagedBlob Content { get; }

    public ValueTask DisposeAsync() => Content.DisposeAsync();

    public static async Task<Result<MultipartFileUpload>> ReadAsync(HttpRequest request, FileService files, CancellationToken cancellationToken)
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
                if (name == "file")
                {
                    if (staged is not null)
                    {
                        return await FailAsync(staged, WharfErrors.Invalid("file", "Only one 'file' part may be sent.", "duplicate_file"));
                    }
                    filename = disposition.FileNameStar.HasValue
                        ? disposition.FileNameStar.Value
                        : HeaderUtilities.RemoveQuotes(disposition.FileName).Value;
                    contentType = section.ContentType;
                    staged = await files.StageAsync(section.Body, cancellationToken);
                    if (staged is null)
                    {
                        return WharfErrors.FileTooLarge(files.MaxUploadBytes);
                    }
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
            return await FailAsync(staged, WharfErrors.FileTooLarge(files.MaxUploadBytes));
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
            return WharfErrors.Missing("file");
        }
        var upload = new FileUploadRequest
        {
            Purpose = fields.GetValueOrDefault("purpose"),
            Filename = filename,
            ContentType = contentType,
            Metadata = fields.GetValueOrDefault("metadata"),
            Collection = fields.GetValueOrDefault("collection"),
            Provider = fields.GetValueOrDefault("provider"),
            ExpiresAfterAnchor = fields.GetValueOrDefault("expires_after[anchor]"),
            ExpiresAfterSeconds = fields.GetValueOrDefault("expires_after[seconds]"),
        };
        return new MultipartFileUpload(upload, staged);
    }

    private static async Task<Result<MultipartFileUpload>> FailAsync(StagedBlob? staged, WharfError error)
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
