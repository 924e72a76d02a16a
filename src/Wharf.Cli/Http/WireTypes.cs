using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wharf.Cli.Http;

// What the CLI reads of the server's answers and sends in its requests. Only the fields it uses: `--json` prints
// the server's own documents as they came, so nothing the server adds is lost by these records.

internal sealed record FileObject(
    string Id, long Bytes, long CreatedAt, string Filename, string Purpose, string Status,
    string? Provider, string? Collection, string? Sha256, Dictionary<string, string>? Metadata);

/// <summary>An upload as the CLI reads it; <c>metadata</c>, <c>collection</c> and <c>provider</c> are Wharf's, for its file.</summary>
internal sealed record UploadObject(
    string Id, long Bytes, string Status, FileObject? File, List<UploadPartObject>? Parts,
    Dictionary<string, string>? Metadata = null, string? Collection = null, string? Provider = null);

internal sealed record UploadPartObject(string Id, long Bytes, string? Sha256);

internal sealed record BatchCounts(int Total, int Completed, int Failed);

internal sealed record BatchError(string? Code, string? Message, string? Param, int? Line);

internal sealed record BatchErrorList(List<BatchError> Data);

internal sealed record BatchObject(
    string Id, string Endpoint, string Status, string InputFileId, string? OutputFileId, string? ErrorFileId,
    long CreatedAt, BatchCounts? RequestCounts, BatchErrorList? Errors)
{
    /// <summary>A status after which nothing changes any more.</summary>
    public bool IsFinal => Status is "completed" or "failed" or "expired" or "cancelled";
}

internal sealed record PageOfElements(List<JsonElement> Data, string? FirstId, string? LastId, bool HasMore);

internal sealed record WorkspaceObject(
    string Id, string Name, long CreatedAt, long? StorageQuotaBytes, long StorageUsageBytes, int? RateLimitRpm,
    List<string>? AllowedProviders);

internal sealed record KeyObject(
    string Id, string WorkspaceId, string Name, string Prefix, long CreatedAt, long? ExpiresAt, long? LastUsedAt,
    List<string> Scopes, string? Key);

internal sealed record ProviderObject(string Id, string Type, List<string> Capabilities, List<string>? Models);

internal sealed record ErrorBody(string? Message, string? Type, string? Param, string? Code);

internal sealed record ProviderFailureHint(string? Category, string? Hint);

internal sealed record ErrorEnvelope(ErrorBody? Error, string? Message, string? GenerationId, ProviderFailureHint? ProviderFailureDiagnostics);

/// <summary><c>POST /v1/uploads</c>; <c>metadata</c>, <c>collection</c> and <c>provider</c> are Wharf's (null: not sent).</summary>
internal sealed record UploadCreateBody(
    string Filename, string Purpose, long Bytes, string MimeType, Dictionary<string, string>? Metadata, string? Collection, string? Provider);

internal sealed record UploadCompleteBody(List<string> PartIds);

internal sealed record BatchCreateBody(string InputFileId, string Endpoint, string CompletionWindow, Dictionary<string, string>? Metadata);

internal sealed record WorkspaceCreateBody(string Name);

internal sealed record KeyCreateBody(string Name, List<string>? Scopes);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(FileObject))]
[JsonSerializable(typeof(UploadObject))]
[JsonSerializable(typeof(UploadPartObject))]
[JsonSerializable(typeof(BatchObject))]
[JsonSerializable(typeof(PageOfElements))]
[JsonSerializable(typeof(WorkspaceObject))]
[JsonSerializable(typeof(KeyObject))]
[JsonSerializable(typeof(ProviderObject))]
[JsonSerializable(typeof(ErrorEnvelope))]
[JsonSerializable(typeof(UploadCreateBody))]
[JsonSerializable(typeof(UploadCompleteBody))]
[JsonSerializable(typeof(BatchCreateBody))]
[JsonSerializable(typeof(WorkspaceCreateBody))]
[JsonSerializable(typeof(KeyCreateBody))]
[JsonSerializable(typeof(Files.UploadState))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class CliJson : JsonSerializerContext;
