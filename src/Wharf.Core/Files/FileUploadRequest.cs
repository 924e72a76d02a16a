using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Wharf.Core.Errors;

namespace Wharf.Core.Files;

/// <summary>The text fields of <c>POST /v1/files</c>, as the client sent them.</summary>
public sealed record FileUploadRequest
{
    public string? Purpose { get; init; }
    public string? Filename { get; init; }
    public string? ContentType { get; init; }
    public string? Metadata { get; init; }
    public string? Collection { get; init; }
    public string? Provider { get; init; }
    public string? ExpiresAfterAnchor { get; init; }
    public string? ExpiresAfterSeconds { get; init; }
}

/// <summary>Checks of a file's fields shared by every way a file is created.</summary>
public static class FileFieldRules
{
    public const long MinExpirySeconds = 3600;
    public const long MaxExpirySeconds = 2_592_000;
    public const long BatchDefaultExpirySeconds = 2_592_000;
    public const int MaxFilenameLength = 1024;
    public const int MaxCollectionLength = 256;
    public const int MaxContentTypeLength = 255;

    /// <summary>Seconds until expiry from creation, or null for none; <c>batch</c> defaults to 30 days.</summary>
    public static Result<long?> ExpirySeconds(string? anchor, string? seconds, string purpose)
    {
        if (anchor is null && seconds is null)
        {
            return Result<long?>.From(purpose == FilePurposes.Batch ? BatchDefaultExpirySeconds : null);
        }
        if (anchor != "created_at")
        {
            return WharfErrors.Invalid("expires_after[anchor]", "Invalid 'expires_after[anchor]': the only supported anchor is 'created_at'.", "invalid_expires_after");
        }
        if (seconds is null
            || !long.TryParse(seconds, NumberStyles.None, CultureInfo.InvariantCulture, out long value)
            || value < MinExpirySeconds || value > MaxExpirySeconds)
        {
            return WharfErrors.Invalid("expires_after[seconds]", $"Invalid 'expires_after[seconds]': expected an integer between {MinExpirySeconds} and {MaxExpirySeconds}.", "invalid_expires_after");
        }
        return Result<long?>.From(value);
    }

    /// <summary>
    /// Cleans a client-given filename: it is data, never a path. Control characters are dropped and a name
    /// that is empty afterwards is refused; everything else (non-ASCII, slashes) is kept as the client named it.
    /// </summary>
    public static Result<string> Filename(string? raw)
    {
        if (string.IsNullOrWhiteSpace(raw))
        {
            return WharfErrors.Invalid("file", "The 'file' part must carry a filename.", "missing_filename");
        }
        var clean = new string(raw.Where(c => !char.IsControl(c)).ToArray()).Trim();
        if (clean.Length == 0)
        {
            return WharfErrors.Invalid("file", "The filename holds no printable character.", "invalid_filename");
        }
        if (clean.Length > MaxFilenameLength)
        {
            return WharfErrors.Invalid("file", $"The filename is longer than {MaxFilenameLength} characters.", "invalid_filename");
        }
        return clean;
    }

    public static Result<string?> Collection(string? raw)
    {
        if (raw is null)
        {
            return Result<string?>.From(null);
        }
        if (raw.Length is 0 or > MaxCollectionLength || raw.Any(char.IsControl))
        {
            return WharfErrors.Invalid("collection", $"Invalid 'collection': 1 to {MaxCollectionLength} printable characters.", "invalid_collection");
        }
        return raw;
    }

    /// <summary>
    /// Whether a content type can be stored and sent back: a file's type is served as its <c>Content-Type</c>, and
    /// a response header holds only printable ASCII. So: 1 to 255 characters from space to '~', not all blanks.
    /// </summary>
    public static bool IsSendableContentType([NotNullWhen(true)] string? value) =>
        !string.IsNullOrWhiteSpace(value)
        && value.Length <= MaxContentTypeLength
        && value.All(c => c is >= ' ' and <= '~');

    /// <summary>A file part's content type: none when absent or blank, else it must be sendable (<see cref="IsSendableContentType"/>).</summary>
    public static Result<string?> ContentType(string? raw, string param)
    {
        if (string.IsNullOrWhiteSpace(raw))
        {
            return Result<string?>.From(null);
        }
        if (!IsSendableContentType(raw))
        {
            return WharfErrors.Invalid(param, $"Invalid content type of '{param}': at most {MaxContentTypeLength} printable ASCII characters, e.g. 'text/plain; charset=utf-8'.", "invalid_content_type");
        }
        return raw;
    }
}
