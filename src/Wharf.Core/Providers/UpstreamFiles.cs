namespace Wharf.Core.Providers;

/// <summary>A file to send to a provider's Files API, streamed from Wharf's store.</summary>
public sealed record UpstreamFileUpload(Stream Content, long Length, string Filename, string Purpose, string? ContentType);

/// <summary>A file as a provider lists it, mapped to OpenAI's file object (its id is the provider's).</summary>
public sealed record UpstreamFile(string Id, long Bytes, long CreatedAt, string Filename, string Purpose, string? Status, long? ExpiresAt = null);

/// <summary>A page request to a provider's own file list; the cursor is the provider's, passed through.</summary>
public sealed record UpstreamFileQuery(int? Limit, string? After, string? Order, string? Purpose);

public sealed record UpstreamFilePage(IReadOnlyList<UpstreamFile> Data, bool HasMore)
{
    /// <summary>
    /// What the next page starts after, when it is not the last id of <see cref="Data"/>: the last file of the
    /// provider's own page when Wharf kept only some of it, or the provider's own page token when it pages by one
    /// (Gemini's <c>nextPageToken</c>), passed back to it as <see cref="UpstreamFileQuery.After"/>.
    /// </summary>
    public string? Cursor { get; init; }
}
