using System.Globalization;
using Wharf.Core.Errors;
using Wharf.Core.Ids;

namespace Wharf.Core.Files;

/// <summary>The raw parameters of <c>GET /v1/files</c>, as the client sent them.</summary>
public sealed record FileListRequest
{
    public string? Limit { get; init; }
    public string? Order { get; init; }
    public string? After { get; init; }
    public string? Before { get; init; }
    public string? Purpose { get; init; }
    public string? Status { get; init; }
    public string? Provider { get; init; }
    public string? Collection { get; init; }
    /// <summary>The <c>metadata.&lt;key&gt;=&lt;value&gt;</c> filters; all must match.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; init; } = [];
}

/// <summary>A validated file listing: one keyset range over the workspace's files.</summary>
public sealed record FileListQuery
{
    public required string WorkspaceId { get; init; }
    public required int Limit { get; init; }
    /// <summary>Newest first when true (the default).</summary>
    public bool Descending { get; init; } = true;
    /// <summary>Items that follow this id in the list's order.</summary>
    public string? After { get; init; }
    /// <summary>The items immediately preceding this id in the list's order.</summary>
    public string? Before { get; init; }
    public string? Purpose { get; init; }
    public string? Status { get; init; }
    public string? Provider { get; init; }
    public string? Collection { get; init; }
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; init; } = [];

    public const int MaxMetadataFilters = 16;

    /// <summary>Checks every parameter; the first fault is returned as a 400 naming its parameter.</summary>
    public static Result<FileListQuery> Parse(string workspaceId, FileListRequest request, FilesOptions options, FilePurposes purposes)
    {
        int limit = options.DefaultListLimit;
        if (request.Limit is not null)
        {
            if (!int.TryParse(request.Limit, NumberStyles.None, CultureInfo.InvariantCulture, out limit)
                || limit < 1 || limit > options.MaxListLimit)
            {
                return WharfErrors.Invalid("limit", $"Invalid 'limit': expected an integer between 1 and {options.MaxListLimit}.", "invalid_limit");
            }
        }

        bool descending = true;
        if (request.Order is not null)
        {
            switch (request.Order)
            {
                case "desc": descending = true; break;
                case "asc": descending = false; break;
                default: return WharfErrors.Invalid("order", "Invalid 'order': expected 'asc' or 'desc'.", "invalid_order");
            }
        }

        if (request.After is not null && !WharfIds.IsFileId(request.After))
        {
            return WharfErrors.Invalid("after", "Invalid 'after': expected a file id such as 'file-...'.", "invalid_cursor");
        }
        if (request.Before is not null && !WharfIds.IsFileId(request.Before))
        {
            return WharfErrors.Invalid("before", "Invalid 'before': expected a file id such as 'file-...'.", "invalid_cursor");
        }
        if (request.After is not null && request.Before is not null)
        {
            return WharfErrors.Invalid("before", "Give either 'after' or 'before', not both.", "invalid_cursor");
        }

        if (request.Purpose is not null && !purposes.CanList(request.Purpose))
        {
            return WharfErrors.Invalid("purpose", $"Invalid 'purpose' filter: expected one of {string.Join(", ", purposes.Uploadable)}, {FilePurposes.BatchOutput}.", "invalid_purpose");
        }
        if (request.Status is not null && !FileStatus.Filterable.Contains(request.Status))
        {
            return WharfErrors.Invalid("status", $"Invalid 'status' filter: expected one of {string.Join(", ", FileStatus.Filterable)}.", "invalid_status");
        }
        if (request.Provider is { Length: 0 })
        {
            return WharfErrors.Invalid("provider", "Invalid 'provider' filter: it must not be empty.", "invalid_provider");
        }
        if (request.Metadata.Count > MaxMetadataFilters)
        {
            return WharfErrors.Invalid("metadata", $"At most {MaxMetadataFilters} metadata filters may be given.", "invalid_metadata");
        }
        foreach (var (key, _) in request.Metadata)
        {
            if (key.Length is 0 or > FileMetadata.MaxKeyLength)
            {
                return WharfErrors.Invalid("metadata", $"Invalid metadata filter key: 1 to {FileMetadata.MaxKeyLength} characters after 'metadata.'.", "invalid_metadata");
            }
        }

        return new FileListQuery
        {
            WorkspaceId = workspaceId,
            Limit = limit,
            Descending = descending,
            After = request.After,
            Before = request.Before,
            Purpose = request.Purpose,
            Status = request.Status,
            Provider = request.Provider,
            Collection = request.Collection,
            Metadata = request.Metadata,
        };
    }
}
