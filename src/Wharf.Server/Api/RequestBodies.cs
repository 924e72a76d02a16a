using System.Text.Json.Serialization;

namespace Wharf.Server.Api;

// The request bodies as the OpenAPI document describes them. The handlers read their bodies field by field
// (JsonBody, MultipartUpload) so that each bad field gets its own 400 with its `param`; these records only give the
// document the shapes (names as on the wire, through the snake_case naming policy).

/// <summary>The multipart form of <c>POST /v1/files</c>.</summary>
internal sealed record FileUploadForm(
    IFormFile File,
    string Purpose,
    [property: JsonPropertyName("expires_after[anchor]")] string? ExpiresAfterAnchor,
    [property: JsonPropertyName("expires_after[seconds]")] long? ExpiresAfterSeconds,
    [property: JsonPropertyName("metadata")] string? Metadata,
    string? Collection,
    string? Provider);

/// <summary>The multipart form of <c>POST /v1/uploads/{id}/parts</c>: one part of at most 64 MB.</summary>
internal sealed record UploadPartForm(IFormFile Data);

internal sealed record ExpiresAfterBody(string Anchor, long Seconds);

/// <summary>
/// The JSON body of <c>POST /v1/uploads</c>; <c>metadata</c>, <c>collection</c> and <c>provider</c> are Wharf's, for
/// the file the upload becomes (as <c>POST /v1/files</c> takes them).
/// </summary>
internal sealed record UploadCreateBody(
    string Filename,
    string Purpose,
    long Bytes,
    string MimeType,
    ExpiresAfterBody? ExpiresAfter,
    IReadOnlyDictionary<string, string>? Metadata,
    string? Collection,
    string? Provider);

/// <summary>The JSON body of <c>POST /v1/uploads/{id}/complete</c>.</summary>
internal sealed record UploadCompleteBody(IReadOnlyList<string> PartIds, string? Md5);

/// <summary>The JSON body of <c>POST /v1/batches</c>; <c>execution</c> and <c>provider</c> are Wharf's.</summary>
internal sealed record BatchCreateBody(
    string InputFileId,
    string Endpoint,
    string CompletionWindow,
    IReadOnlyDictionary<string, string>? Metadata,
    ExpiresAfterBody? OutputExpiresAfter,
    string? Execution,
    string? Provider);

/// <summary>
/// A model request: the provider's own body (OpenAI's shape), passed through but for <c>model</c> (an optional
/// <c>provider/</c> prefix) and Wharf's <c>provider</c>; every other member is the upstream's.
/// </summary>
internal sealed record ModelRequestBody(string Model, string? Provider, bool? Stream);

/// <summary>The JSON body of <c>POST</c> and <c>PATCH /admin/workspaces</c> (an explicit null clears a setting).</summary>
internal sealed record WorkspaceBody(
    string? Name, long? StorageQuotaBytes, int? RateLimitRpm, IReadOnlyList<string>? AllowedProviders, string? WebhookUrl);

/// <summary>The JSON body of <c>POST /admin/workspaces/{id}/keys</c>.</summary>
internal sealed record KeyCreateBody(string Name, IReadOnlyList<string>? Scopes, long? ExpiresAt, int? RateLimitRpm);
