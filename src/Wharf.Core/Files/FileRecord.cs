namespace Wharf.Core.Files;

/// <summary>A file as the catalog keeps it. Every file belongs to exactly one workspace.</summary>
public sealed record FileRecord
{
    public required string Id { get; init; }
    public required string WorkspaceId { get; init; }
    public required long Bytes { get; init; }
    /// <summary>Unix seconds.</summary>
    public required long CreatedAt { get; init; }
    public required string Filename { get; init; }
    public required string Purpose { get; init; }
    public required string Status { get; init; }
    public string? StatusDetails { get; init; }
    /// <summary>Unix seconds, or null when the file does not expire.</summary>
    public long? ExpiresAt { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = EmptyMetadata;
    public string? Collection { get; init; }
    public required string Provider { get; init; }
    /// <summary>
    /// Lowercase hex SHA-256 of the content; null for a short while after an upload whose parts could not be
    /// hashed in order while they streamed is completed, until the background pass has computed it.
    /// </summary>
    public required string? Sha256 { get; init; }
    /// <summary>The media type the client sent for the content, if any.</summary>
    public string? ContentType { get; init; }
    /// <summary>True when the content is kept as segments (the parts of an upload), not as one blob.</summary>
    public bool Segmented { get; init; }

    public static readonly IReadOnlyDictionary<string, string> EmptyMetadata = new Dictionary<string, string>();
}

/// <summary>The <c>status</c> values OpenAI's SDKs accept on a file object.</summary>
public static class FileStatus
{
    public const string Uploaded = "uploaded";
    public const string Processed = "processed";
    public const string Error = "error";
    /// <summary>Only a list filter: files whose processing is under way.</summary>
    public const string Processing = "processing";

    public static readonly IReadOnlyList<string> Filterable = [Uploaded, Processed, Error, Processing];
}

/// <summary>A page of a keyset-paginated list.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, bool HasMore);

/// <summary>The bytes of a file, opened for reading, with its record.</summary>
public sealed record FileContent(FileRecord File, Stream Content) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Content.DisposeAsync();
}
